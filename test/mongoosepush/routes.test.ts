import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { Errors } from '../fakes/providers.js';

const FCM = 'fcm-device-token-mongoose';
const APNS = '12'.repeat(32);

describe('the MongoosePush v3 API, as MongooseIM calls it', () => {
  let w: BridgeWorld;
  beforeAll(async () => {
    w = await bridgeWorld();
  });
  afterAll(async () => {
    await w.close();
  });
  beforeEach(() => w.fakes.reset());

  const push = (device: string, body: unknown) =>
    fetch(`${w.gw.url}/v3/notification/${device}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('sends an FCM alert with its click action, tag and sound', async () => {
    const res = await push(FCM, {
      service: 'fcm',
      priority: 'high',
      time_to_live: 3600,
      alert: { title: 'alice@example.com', body: 'hello', click_action: '.Open', tag: 'chat', sound: 'ding.mp3' },
      data: { 'message-count': 1, nested: { a: 1 } },
    });
    expect(res.status).toBe(200);
    expect(w.fakes.for('fcm', FCM)[0]!.body).toEqual({
      token: FCM,
      notification: { title: 'alice@example.com', body: 'hello' },
      data: { 'message-count': '1', nested: '{"a":1}' },
      android: { priority: 'high', ttl: '3600s', notification: { click_action: '.Open', tag: 'chat', sound: 'ding.mp3' } },
    });
  });

  it('sends an APNs alert to the production app and a silent push to the dev app', async () => {
    expect((await push(APNS, { service: 'apns', mode: 'prod', mutable_content: true, topic: 'org.example.pushgate.voip', alert: { title: 't', body: 'b', badge: 3 } })).status).toBe(200);
    const alert = w.fakes.for('apns', APNS)[0]!;
    expect(alert.auth).toBe('token');
    expect(alert.headers).toMatchObject({ 'apns-topic': 'org.example.pushgate.voip', 'apns-push-type': 'alert', 'apns-priority': '10' });
    expect(alert.body).toEqual({ aps: { alert: { title: 't', body: 'b' }, badge: 3, 'mutable-content': 1 } });
    expect((await push(APNS, { service: 'apns', mode: 'dev', data: { wake: 'up' } })).status).toBe(200);
    const silent = w.fakes.for('apns', APNS)[1]!;
    expect(silent.auth).toBe('certificate');
    expect(silent.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
    expect(silent.body).toEqual({ aps: { 'content-available': 1 }, wake: 'up' });
  });

  it.each([
    ['410 unregistered', () => w.fakes.script(FCM, Errors.fcm.unregistered), 410, 'unregistered'],
    ['429 too_many_requests', () => w.fakes.script(FCM, Errors.fcm.quotaExceeded(20)), 429, 'too_many_requests'],
    ['503 when the provider stays down', () => w.fakes.script(FCM, Errors.fcm.unavailable, Errors.fcm.unavailable, Errors.fcm.unavailable), 503, 'service_internal'],
    ['503 internal_config for refused credentials', () => w.fakes.script(FCM, Errors.fcm.thirdPartyAuth), 503, 'internal_config'],
    ['400 for a refused message', () => w.fakes.script(FCM, Errors.fcm.invalidArgument), 400, 'invalid_request'],
  ])('answers %s', async (_name, arrange, status, reason) => {
    arrange();
    const res = await push(FCM, { service: 'fcm', data: { a: 'b' } });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ reason });
  });

  it('answers 413 payload_too_large before sending', async () => {
    const res = await push(FCM, { service: 'fcm', data: { big: 'x'.repeat(5000) } });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ reason: 'payload_too_large' });
    expect(w.fakes.for('fcm', FCM)).toHaveLength(0);
  });

  it.each([
    ['no service', { data: { a: 'b' } }],
    ['an unknown service', { service: 'wns', data: { a: 'b' } }],
    ['neither alert nor data', { service: 'fcm' }],
    ['an alert without a title', { service: 'fcm', alert: { body: 'b' } }],
    ['an unknown field', { service: 'fcm', data: {}, color: 'red' }],
    ['a bad mode', { service: 'apns', mode: 'staging', data: {} }],
    ['a negative time_to_live', { service: 'fcm', data: {}, time_to_live: -1 }],
    ['a body that is not JSON', '{nope'],
  ])('answers 400 invalid_request for %s', async (_name, body) => {
    const res = await push(FCM, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ reason: 'invalid_request' });
  });

  it('answers 400 for a device id the service cannot have', async () => {
    const res = await push('not-hex', { service: 'apns', alert: { title: 't', body: 'b' } });
    expect(res.status).toBe(400);
  });
});
