/**
 * The MongoosePush API on its own listener, driven with the bodies MongooseIM versions send
 * (mod_push_service_mongoosepush: v3 since 3.6, v2 in 2.1–3.5 with its `null` fields, v1's flat body)
 * against the FCM and APNs fakes, with MongoosePush's status codes and bodies per version.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { APNS_TOPIC, Errors } from '../fakes/providers.js';
import { freePort } from '../helpers/gateway.js';

const FCM = 'fcm-device-token-mongoose';
const APNS = '12'.repeat(32);

/** Options MongooseIM forwards from publish-options are strings, as XEP-0004 fields are. */
const v3Alert = (service: 'fcm' | 'apns', extra: Record<string, unknown> = {}) => ({
  service,
  mode: 'prod',
  priority: 'high',
  topic: APNS_TOPIC,
  mutable_content: 'true',
  time_to_live: '3600',
  alert: { body: 'hello', title: 'alice@example.com', tag: 'alice@example.com', badge: 3, click_action: '.Open', sound: 'ding.caf' },
  ...extra,
});
/** MongooseIM 3.6+ with publish-option silent=true: the summary as data, message-count as an integer. */
const v3Silent = (service: 'fcm' | 'apns') => ({
  service,
  data: { 'message-count': 2, 'last-message-sender': 'alice@example.com', 'last-message-body': 'hello' },
});
/** MongooseIM 2.x (v2): mode defaulted, topic and click_action null when the client gave none. */
const v2Alert = (service: 'fcm' | 'apns') => ({
  service,
  mode: 'prod',
  alert: { body: 'hello', title: 'alice@example.com', tag: 'alice@example.com', badge: 1, click_action: null },
  topic: null,
});
/** The flat v1 body (MongoosePush's FlatNotification), as the setup guide this project started from sends it. */
const v1Flat = (service: 'fcm' | 'apns') => ({
  service,
  title: 'alice@example.com',
  body: 'hello',
  badge: 1,
  tag: 'alice@example.com',
  click_action: '.Open',
  mode: 'prod',
});

describe('the MongoosePush API, as MongooseIM calls it', () => {
  let w: BridgeWorld;
  let base: string;
  beforeAll(async () => {
    const port = await freePort();
    w = await bridgeWorld({ mongoosepushPort: port });
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await w.close();
  });
  beforeEach(() => w.fakes.reset());

  const push = (version: string, device: string, body: unknown) =>
    fetch(`${base}/${version}/notification/${device}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const json = async (res: Response) => JSON.parse(await res.text()) as unknown;

  it('v3: delivers MongooseIM 3.6+ alerts (string options cast) to FCM and APNs', async () => {
    const res = await push('v3', FCM, v3Alert('fcm'));
    expect(res.status).toBe(200);
    expect(await json(res)).toBeNull();
    expect(w.fakes.for('fcm', FCM)[0]!.body).toEqual({
      token: FCM,
      notification: { title: 'alice@example.com', body: 'hello' },
      data: {},
      android: { priority: 'high', ttl: '3600s', notification: { click_action: '.Open', tag: 'alice@example.com', sound: 'ding.caf' } },
    });
    expect((await push('v3', APNS, v3Alert('apns'))).status).toBe(200);
    const apns = w.fakes.for('apns', APNS)[0]!;
    expect(apns.headers).toMatchObject({ 'apns-topic': APNS_TOPIC, 'apns-push-type': 'alert', 'apns-priority': '10' });
    expect(apns.body).toEqual({
      aps: {
        alert: { title: 'alice@example.com', body: 'hello' },
        badge: 3,
        sound: 'ding.caf',
        category: '.Open',
        'thread-id': 'alice@example.com',
        'mutable-content': 1,
      },
    });
  });

  it('v3: a silent publish is an FCM data message and an APNs background push', async () => {
    expect((await push('v3', FCM, v3Silent('fcm'))).status).toBe(200);
    expect(w.fakes.for('fcm', FCM)[0]!.body).toMatchObject({
      data: { 'message-count': '2', 'last-message-sender': 'alice@example.com', 'last-message-body': 'hello' },
      android: { priority: 'normal' },
    });
    expect(w.fakes.for('fcm', FCM)[0]!.body['notification']).toBeUndefined();
    expect((await push('v3', APNS, { ...v3Silent('apns'), mode: 'dev' })).status).toBe(200);
    const silent = w.fakes.for('apns', APNS)[0]!;
    expect(silent.auth).toBe('certificate');
    expect(silent.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
    expect(silent.body).toEqual({
      aps: { 'content-available': 1 },
      'message-count': 2,
      'last-message-sender': 'alice@example.com',
      'last-message-body': 'hello',
    });
  });

  it('v2: delivers MongooseIM 2.x bodies with their null fields', async () => {
    expect((await push('v2', FCM, v2Alert('fcm'))).status).toBe(200);
    expect(w.fakes.for('fcm', FCM)[0]!.body).toMatchObject({
      notification: { title: 'alice@example.com', body: 'hello' },
      android: { notification: { tag: 'alice@example.com' } },
    });
    expect((await push('v2', APNS, v2Alert('apns'))).status).toBe(200);
    expect(w.fakes.for('apns', APNS)[0]!.headers).toMatchObject({ 'apns-topic': APNS_TOPIC });
    // MongooseIM 2.x with silent=true: mode, topic null and the summary as data.
    expect(
      (await push('v2', FCM, { service: 'fcm', mode: 'prod', topic: null, data: { 'message-count': 4, 'last-message-sender': 'bob@example.com' } })).status,
    ).toBe(200);
    expect(w.fakes.for('fcm', FCM)[1]!.body).toMatchObject({ data: { 'message-count': '4', 'last-message-sender': 'bob@example.com' } });
  });

  it('v1: delivers the flat body as an alert', async () => {
    const res = await push('v1', FCM, { ...v1Flat('fcm'), data: { nested: { a: 1 } } });
    expect(res.status).toBe(200);
    expect(w.fakes.for('fcm', FCM)[0]!.body).toMatchObject({
      notification: { title: 'alice@example.com', body: 'hello' },
      data: { nested: '{"a":1}' },
      android: { notification: { click_action: '.Open' } },
    });
    expect((await push('v1', APNS, { ...v1Flat('apns'), topic: `${APNS_TOPIC}.voip` })).status).toBe(200);
    expect(w.fakes.for('apns', APNS)[0]!.headers).toMatchObject({ 'apns-topic': `${APNS_TOPIC}.voip`, 'apns-push-type': 'alert' });
    // Unset options as JSON null, as MongooseIM's early makers wrote them.
    expect((await push('v1', FCM, { ...v1Flat('fcm'), topic: null, click_action: null, badge: null })).status).toBe(200);
  });

  // MongoosePush's answers per version: v3 its own codes and `reason`, v1/v2 500 with the provider's reason in `details`.
  it.each([
    ['FCM UNREGISTERED', FCM, 'fcm', () => w.fakes.script(FCM, Errors.fcm.unregistered), [410, { reason: 'unregistered' }], [500, { details: 'UNREGISTERED' }]],
    [
      'APNs Unregistered',
      APNS,
      'apns',
      () => w.fakes.script(APNS, Errors.apns.unregistered),
      [410, { reason: 'unregistered' }],
      [500, { details: 'Unregistered' }],
    ],
    [
      'APNs BadDeviceToken (invalid_request in MongoosePush)',
      APNS,
      'apns',
      () => w.fakes.script(APNS, Errors.apns.badDeviceToken),
      [400, { reason: 'invalid_request' }],
      [500, { details: 'BadDeviceToken' }],
    ],
    [
      'FCM QUOTA_EXCEEDED',
      FCM,
      'fcm',
      () => w.fakes.script(FCM, Errors.fcm.quotaExceeded(20)),
      [429, { reason: 'too_many_requests' }],
      [500, { details: 'QUOTA_EXCEEDED' }],
    ],
    [
      'FCM staying UNAVAILABLE',
      FCM,
      'fcm',
      () => w.fakes.script(FCM, ...Array.from({ length: 6 }, () => Errors.fcm.unavailable)),
      [503, { reason: 'service_internal' }],
      [500, { details: 'UNAVAILABLE' }],
    ],
    [
      'FCM THIRD_PARTY_AUTH_ERROR (auth)',
      FCM,
      'fcm',
      () => w.fakes.script(FCM, Errors.fcm.thirdPartyAuth),
      [503, { reason: 'service_internal' }],
      [500, { details: 'THIRD_PARTY_AUTH_ERROR' }],
    ],
    [
      'FCM INVALID_ARGUMENT',
      FCM,
      'fcm',
      () => w.fakes.script(FCM, Errors.fcm.invalidArgument),
      [400, { reason: 'invalid_request' }],
      [500, { details: 'INVALID_ARGUMENT' }],
    ],
  ] as const)('answers %s as MongoosePush does in v3 and v2', async (_name, device, service, arrange, v3, v2) => {
    for (const [version, [status, body]] of [
      ['v3', v3],
      ['v2', v2],
      ['v1', v2],
    ] as const) {
      w.fakes.reset();
      arrange();
      const res = await push(version, device, version === 'v1' ? v1Flat(service) : v3Alert(service));
      expect([version, res.status]).toEqual([version, status]);
      expect(await json(res)).toEqual(body);
    }
  });

  it('answers no_matching_pool for tags no app carries (400 in v3, 500 in v2)', async () => {
    const v3 = await push('v3', FCM, { ...v3Silent('fcm'), tags: ['beta'] });
    expect(v3.status).toBe(400);
    expect(await json(v3)).toEqual({ reason: 'no_matching_pool' });
    const v2 = await push('v2', FCM, { ...v3Silent('fcm'), tags: ['beta'] });
    expect(v2.status).toBe(500);
    expect(await json(v2)).toEqual({ details: 'no_matching_pool' });
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });

  it('answers 413 payload_too_large before sending', async () => {
    const res = await push('v3', FCM, { service: 'fcm', data: { big: 'x'.repeat(5000) } });
    expect(res.status).toBe(413);
    expect(await json(res)).toEqual({ reason: 'payload_too_large' });
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });

  it('answers a device id the provider cannot have as the provider would (invalid_request)', async () => {
    const res = await push('v3', 'not-hex', v3Alert('apns'));
    expect(res.status).toBe(400);
    expect(await json(res)).toEqual({ reason: 'invalid_request' });
  });

  it.each([
    [
      'v3',
      'an empty body',
      '',
      [
        ['/service', 'Missing field: service'],
        ['/alert', 'Missing field: alert'],
      ],
    ],
    ['v3', 'an unknown field', { ...v3Silent('fcm'), color: 'red' }, [['/color', 'Unexpected field: color']]],
    ['v3', 'an unknown service', { service: 'wns', data: {} }, [['/service', 'Invalid value for enum']]],
    ['v3', 'a bad priority', { ...v3Alert('fcm'), priority: 'urgent' }, [['/priority', 'Invalid value for enum']]],
    ['v3', 'a time_to_live that is no integer', { ...v3Silent('fcm'), time_to_live: 'infinity' }, [['/time_to_live', 'Invalid integer. Got: string']]],
    ['v3', 'an alert without a title', { service: 'fcm', alert: { body: 'b' } }, [['/alert/title', 'Missing field: title']]],
    ['v2', 'an unknown alert field', { service: 'fcm', alert: { body: 'b', title: 't', colour: 'red' } }, [['/alert/colour', 'Unexpected field: colour']]],
    ['v1', 'a flat body without body', { service: 'fcm', title: 't' }, [['/body', 'Missing field: body']]],
    ['v1', 'a deep body', v3Alert('fcm'), null],
  ] as const)('%s: answers 422 with OpenApiSpex errors for %s', async (version, _name, body, expected) => {
    const res = await push(version, FCM, body);
    expect(res.status).toBe(422);
    const errors = (await json(res)) as { errors: { title: string; source: { pointer: string }; message: string }[] };
    if (expected) expect(errors.errors).toEqual(expected.map(([pointer, message]) => ({ title: 'Invalid value', source: { pointer }, message })));
    else expect(errors.errors.length).toBeGreaterThan(0);
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });

  it('answers 400 for a body that is not JSON, 413 for one over 64 KB', async () => {
    expect((await push('v3', FCM, '{nope')).status).toBe(400);
    expect((await push('v3', FCM, { service: 'fcm', data: { big: 'x'.repeat(70_000) } })).status).toBe(413);
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });

  it('is not served on the public port: /v1, /v2 and /v3 are 404 there and nothing is sent', async () => {
    for (const version of ['v1', 'v2', 'v3']) {
      const res = await fetch(`${w.gw.url}/${version}/notification/${FCM}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(v3Alert('fcm')),
      });
      expect([version, res.status]).toEqual([version, 404]);
    }
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });
});
