import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeConfigError, loadBridges } from '../../src/bridge/index.js';
import { ReliableBridge } from '../../src/bridge/reliable.js';
import type { Bridge, BridgeMessage, BridgeResult } from '../../src/bridge/types.js';
import { Metrics } from '../../src/ops/metrics.js';
import { makePki, type TestPki } from '../fakes/pki.js';
import { ProviderFakes } from '../fakes/providers.js';

describe('the bridges file', () => {
  let pki: TestPki;
  let fakes: ProviderFakes;
  beforeAll(async () => {
    pki = makePki();
    fakes = new ProviderFakes(pki);
    await fakes.start();
  });
  afterAll(async () => {
    await fakes.stop();
  });

  const load = (doc: unknown) => {
    const file = join(pki.dir, `bridges-${Math.random()}.json`);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return () => loadBridges(file, new Metrics());
  };

  it.each([
    ['not JSON', '{', /cannot read .* as JSON/],
    ['an unknown provider', { gcm: {} }, /unknown key "gcm"/],
    ['a missing service account', { fcm: { a: { serviceAccount: '/nonexistent.json' } } }, /fcm app "a": cannot read serviceAccount/],
    [
      'an APNs app without topic',
      () => ({ apns: { a: { token: { keyFile: fakes.apnsKeyFile, keyId: 'KEY1234567', teamId: 'TEAM123456' } } } }),
      /apns app "a": "topic" is required \(the app's bundle id\)/,
    ],
    ['an APNs app without credentials', { apns: { a: { topic: 't' } } }, /apns app "a": give either "token"/],
    [
      'a bad APNs key id',
      () => ({ apns: { a: { topic: 't', token: { keyFile: fakes.apnsKeyFile, keyId: 'x', teamId: 'TEAM123456' } } } }),
      /apns app "a": "token.keyId" must be Apple's 10-character key id, got "x"/,
    ],
    [
      'an RSA key as a .p8',
      () => ({ apns: { a: { topic: 't', token: { keyFile: pki.clientKeyFile, keyId: 'KEY1234567', teamId: 'TEAM123456' } } } }),
      /must be the \.p8 EC key/,
    ],
    [
      'a certificate with the wrong key',
      () => ({ apns: { a: { topic: 't', cert: { certFile: pki.clientCertFile, keyFile: join(pki.dir, 'server.key') } } } }),
      /does not match/,
    ],
    ['an ADM app without secret', { adm: { a: { clientId: 'x' } } }, /adm app "a": "clientSecret" is required/],
    [
      'a bad baseUrl',
      () => ({ adm: { a: { clientId: 'x', clientSecret: 'y', baseUrl: 'ftp://x' } } }),
      /adm app "a": "baseUrl" must be an http\(s\) URL, got "ftp:\/\/x"/,
    ],
    ['a mongoosepush app that does not exist', { mongoosepush: { fcm: 'nope' } }, /not a configured fcm app/],
    ['an unknown mongoosepush service', { mongoosepush: { wns: 'x' } }, /must be fcm, apns-prod or apns-dev/],
    ['an unknown field in an app', () => ({ fcm: { a: { serviceAccount: fakes.serviceAccountFile, colour: 'red' } } }), /fcm app "a": unknown field "colour"/],
    [
      'an unknown field in the APNs token',
      () => ({ apns: { a: { topic: 't', token: { keyFile: fakes.apnsKeyFile, keyId: 'KEY1234567', teamId: 'TEAM123456', alg: 'x' } } } }),
      /apns app "a": unknown field "token.alg"/,
    ],
    [
      'both token and cert',
      () => ({
        apns: {
          a: {
            topic: 't',
            token: { keyFile: fakes.apnsKeyFile, keyId: 'KEY1234567', teamId: 'TEAM123456' },
            cert: { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
          },
        },
      }),
      /not both/,
    ],
    [
      'a sandbox that is not a boolean',
      () => ({ apns: { a: { topic: 't', sandbox: 'yes', token: { keyFile: fakes.apnsKeyFile, keyId: 'KEY1234567', teamId: 'TEAM123456' } } } }),
      /apns app "a": "sandbox" must be true or false, got "yes"/,
    ],
    ['an app id with a slash', { adm: { 'a/b': { clientId: 'x', clientSecret: 'y' } } }, /adm app id "a\/b" must be letters, digits/],
    ['a provider section that is a list', { fcm: [] }, /"fcm" must map app ids to settings/],
  ])('stops the start for %s, naming the fault', (_name, doc, message) => {
    const load1 = load(typeof doc === 'function' ? doc() : doc);
    expect(load1).toThrow(BridgeConfigError);
    expect(load1).toThrow(message);
  });

  it('never echoes a secret in its message', () => {
    const load1 = load({ adm: { a: { clientId: 'x', clientSecret: 12345 } } });
    expect(load1).toThrow(/adm app "a": "clientSecret" must be the client secret of the app$/);
  });

  it('accepts every provider with baseUrl, tokenUrl and ca', async () => {
    const bridges = load({
      fcm: { f: { serviceAccount: fakes.serviceAccountFile, baseUrl: fakes.origin, ca: pki.caFile } },
      adm: { a: { clientId: 'x', clientSecret: 'y', tokenUrl: `${fakes.origin}/auth/o2/token` } },
    })();
    expect(
      bridges
        .list()
        .map((b) => `${b.type}:${b.appId}`)
        .sort(),
    ).toEqual(['adm:a', 'fcm:f']);
    expect(bridges.only('fcm')?.appId).toBe('f');
    await bridges.close();
  });
});

describe('retries, backoff and the concurrency cap', () => {
  class Scripted implements Bridge {
    readonly type = 'fcm' as const;
    readonly appId = 'test';
    calls = 0;
    active = 0;
    maxActive = 0;
    constructor(
      private readonly results: BridgeResult[],
      private readonly gate?: Promise<void>,
    ) {}
    validateToken(): boolean {
      return true;
    }
    async send(): Promise<BridgeResult> {
      this.calls++;
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      if (this.gate) await this.gate;
      this.active--;
      return this.results.shift() ?? { outcome: 'delivered' };
    }
    async close(): Promise<void> {}
  }
  const msg: BridgeMessage = { token: 't', data: {}, ttl: 60, priority: 'normal', collapseKey: null };

  it('backs off exponentially with full jitter and honours a short Retry-After', async () => {
    const waits: number[] = [];
    const inner = new Scripted([
      { outcome: 'retry-later', reason: 'x', status: 503, retryAfter: null },
      { outcome: 'unreachable', reason: 'connect' },
      { outcome: 'retry-later', reason: 'x', status: 503, retryAfter: 1 },
    ]);
    const bridge = new ReliableBridge(
      inner,
      { maxConcurrent: 4, maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 2000, maxQueued: 100, queueFullRetryAfter: 10 },
      new Metrics(),
      async (ms) => {
        waits.push(ms);
      },
    );
    expect(await bridge.send(msg)).toEqual({ outcome: 'delivered' });
    expect(inner.calls).toBe(4);
    expect(waits[0]).toBeLessThan(100);
    expect(waits[1]).toBeLessThan(200);
    expect(waits[2]).toBe(1000);
  });

  it('hands a long Retry-After back to the caller instead of waiting', async () => {
    const inner = new Scripted([{ outcome: 'retry-later', reason: 'x', status: 429, retryAfter: 60 }]);
    const bridge = new ReliableBridge(
      inner,
      { maxConcurrent: 4, maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2000, maxQueued: 100, queueFullRetryAfter: 10 },
      new Metrics(),
      async () => {
        throw new Error('must not wait');
      },
    );
    expect(await bridge.send(msg)).toMatchObject({ outcome: 'retry-later', retryAfter: 60 });
    expect(inner.calls).toBe(1);
  });

  it('never retries a dead token, a rejection or refused credentials', async () => {
    for (const result of [
      { outcome: 'dead-token', reason: 'x' },
      { outcome: 'rejected', reason: 'x', tooLarge: false },
      { outcome: 'misconfigured', reason: 'x', errno: 901 },
    ] as BridgeResult[]) {
      const inner = new Scripted([result]);
      const bridge = new ReliableBridge(
        inner,
        { maxConcurrent: 1, maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 10, maxQueued: 100, queueFullRetryAfter: 10 },
        new Metrics(),
      );
      expect(await bridge.send(msg)).toEqual(result);
      expect(inner.calls).toBe(1);
    }
  });

  it('keeps at most maxConcurrent requests in flight per app', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const inner = new Scripted([], gate);
    const bridge = new ReliableBridge(
      inner,
      { maxConcurrent: 3, maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxQueued: 100, queueFullRetryAfter: 10 },
      new Metrics(),
    );
    const sends = Array.from({ length: 10 }, () => bridge.send(msg));
    await new Promise((r) => setImmediate(r));
    expect(inner.active).toBe(3);
    open();
    await Promise.all(sends);
    expect(inner.calls).toBe(10);
    expect(inner.maxActive).toBe(3);
  });
});
