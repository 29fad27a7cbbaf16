/**
 * Each documented error reply of FCM v1 and ADM, as the provider fakes give it, becomes the outcome the bridge
 * contract names (dead token, retry later with the provider's Retry-After, too large, misconfigured credentials,
 * a rejected message), one attempt each so the client's own classification is seen. A provider that refuses our
 * access token gets one new token and one more try (FCM UNAUTHENTICATED, ADM 401 AccessTokenExpired).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridges, loadBridges } from '../../src/bridge/index.js';
import { DEFAULT_RETRY } from '../../src/bridge/reliable.js';
import type { BridgeMessage } from '../../src/bridge/types.js';
import { Metrics } from '../../src/ops/metrics.js';
import { makePki, type TestPki } from '../fakes/pki.js';
import { ADM_CLIENT, Errors, ProviderFakes } from '../fakes/providers.js';

const msg = (token: string): BridgeMessage => ({ token, data: { a: 'b' }, ttl: 60, priority: 'normal', collapseKey: null });
const fcmError = (status: number, body: object) => ({ status, body: { error: body } });

describe('provider error replies → bridge outcomes', () => {
  let pki: TestPki;
  let fakes: ProviderFakes;
  let bridges: Bridges;
  beforeAll(async () => {
    pki = makePki();
    fakes = new ProviderFakes(pki);
    await fakes.start();
    const o = fakes.origin;
    const path = join(pki.dir, 'errors.json');
    writeFileSync(
      path,
      JSON.stringify({
        fcm: { f: { serviceAccount: fakes.serviceAccountFile, baseUrl: o, tokenUrl: `${o}/token`, ca: pki.caFile } },
        adm: {
          k: { ...ADM_CLIENT, baseUrl: o, tokenUrl: `${o}/auth/o2/token`, ca: pki.caFile },
          wrong: { ...ADM_CLIENT, clientSecret: 'not-the-adm-secret-0000', baseUrl: o, tokenUrl: `${o}/auth/o2/token`, ca: pki.caFile },
        },
      }),
    );
    bridges = loadBridges(path, new Metrics(), { ...DEFAULT_RETRY, maxAttempts: 1 }, { timeoutMs: 5000 });
  });
  afterAll(async () => {
    await bridges.close();
    await fakes.stop();
  });

  it.each([
    ['unregistered', Errors.adm.unregistered, { outcome: 'dead-token', code: 'Unregistered' }],
    ['invalid registration id', Errors.adm.invalidRegistrationId, { outcome: 'dead-token', code: 'InvalidRegistrationId' }],
    ['message too large', Errors.adm.messageTooLarge, { outcome: 'rejected', tooLarge: true, code: 'MessageTooLarge' }],
    ['max rate exceeded', Errors.adm.tooManyRequests(45), { outcome: 'retry-later', status: 429, retryAfter: 45, code: 'MaxRateExceeded' }],
    ['unavailable', Errors.adm.unavailable, { outcome: 'retry-later', status: 503, code: 'Unavailable' }],
    ['invalid data', { status: 400, body: { reason: 'InvalidData' } }, { outcome: 'rejected', tooLarge: false, code: 'InvalidData' }],
    [
      'a new registration id',
      { status: 200, body: { registrationID: 'amzn1.adm-registration.v3.newer' } },
      { outcome: 'delivered', newToken: 'amzn1.adm-registration.v3.newer' },
    ],
  ])('ADM %s', async (name, reply, expected) => {
    const token = `amzn1.adm-registration.v3.${name.replace(/ /g, '-')}`;
    fakes.script(token, reply);
    expect(await bridges.get('adm', 'k')!.send(msg(token))).toMatchObject(expected);
  });

  it('ADM: a refused access token is renewed once, then counts as misconfigured (errno 901)', async () => {
    const expired = { status: 401, body: { reason: 'AccessTokenExpired' } };
    const before = fakes.admTokenRequests;
    fakes.script('amzn1.adm-registration.v3.expired-once', expired);
    expect(await bridges.get('adm', 'k')!.send(msg('amzn1.adm-registration.v3.expired-once'))).toMatchObject({ outcome: 'delivered' });
    fakes.script('amzn1.adm-registration.v3.expired-twice', expired, expired);
    expect(await bridges.get('adm', 'k')!.send(msg('amzn1.adm-registration.v3.expired-twice'))).toMatchObject({
      outcome: 'misconfigured',
      errno: 901,
      code: 'AccessTokenExpired',
    });
    expect(fakes.admTokenRequests - before).toBe(2);
  });

  it('ADM: client credentials the token endpoint refuses are misconfigured (errno 901), not an outage', async () => {
    expect(await bridges.get('adm', 'wrong')!.send(msg('amzn1.adm-registration.v3.any'))).toMatchObject({ outcome: 'misconfigured', errno: 901 });
  });

  it.each([
    ['unregistered', Errors.fcm.unregistered, { outcome: 'dead-token', code: 'UNREGISTERED' }],
    ['sender id mismatch', Errors.fcm.senderIdMismatch, { outcome: 'dead-token', code: 'SENDER_ID_MISMATCH' }],
    ['quota exceeded', Errors.fcm.quotaExceeded(30), { outcome: 'retry-later', status: 429, retryAfter: 30, code: 'QUOTA_EXCEEDED' }],
    ['unavailable', Errors.fcm.unavailable, { outcome: 'retry-later', status: 503, code: 'UNAVAILABLE' }],
    ['internal', Errors.fcm.internal, { outcome: 'retry-later', status: 503, code: 'INTERNAL' }],
    ['third party auth', Errors.fcm.thirdPartyAuth, { outcome: 'misconfigured', errno: 901, code: 'THIRD_PARTY_AUTH_ERROR' }],
    ['invalid argument', Errors.fcm.invalidArgument, { outcome: 'rejected', tooLarge: false, code: 'INVALID_ARGUMENT' }],
    ['a 404 without error code', fcmError(404, { message: 'gone' }), { outcome: 'dead-token' }],
    ['a 429 without error code', fcmError(429, { message: 'slow down' }), { outcome: 'retry-later', status: 429 }],
    ['a 502 without error code', fcmError(502, { message: 'bad gateway' }), { outcome: 'retry-later', status: 503 }],
    ['a 413 without error code', fcmError(413, { message: 'too big' }), { outcome: 'rejected', tooLarge: true }],
  ])('FCM %s', async (name, reply, expected) => {
    const token = `fcm-errors-${name.replace(/ /g, '-')}`;
    fakes.script(token, reply);
    expect(await bridges.get('fcm', 'f')!.send(msg(token))).toMatchObject(expected);
  });

  it('FCM: UNAUTHENTICATED gets one new access token, and twice counts as misconfigured (errno 901)', async () => {
    const unauthenticated = fcmError(401, { code: 401, status: 'UNAUTHENTICATED', message: 'Request had invalid authentication credentials.' });
    fakes.script('fcm-errors-unauth-once', unauthenticated);
    expect(await bridges.get('fcm', 'f')!.send(msg('fcm-errors-unauth-once'))).toMatchObject({ outcome: 'delivered' });
    fakes.script('fcm-errors-unauth-twice', unauthenticated, unauthenticated);
    expect(await bridges.get('fcm', 'f')!.send(msg('fcm-errors-unauth-twice'))).toMatchObject({
      outcome: 'misconfigured',
      errno: 901,
      code: 'UNAUTHENTICATED',
    });
  });
});
