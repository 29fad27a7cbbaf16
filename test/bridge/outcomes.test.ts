/**
 * Each provider's client tells an unreachable provider (errno 902) from one that does not answer in time
 * (errno 903), against the fakes (a slow reply) and a port nobody listens on; and the per-app queue is bounded.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridges, loadBridges } from '../../src/bridge/index.js';
import { DEFAULT_RETRY, ReliableBridge } from '../../src/bridge/reliable.js';
import type { Bridge, BridgeMessage, BridgeResult } from '../../src/bridge/types.js';
import { Metrics } from '../../src/ops/metrics.js';
import { makePki, type TestPki } from '../fakes/pki.js';
import { ADM_CLIENT, APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, ProviderFakes } from '../fakes/providers.js';
import { freePort } from '../helpers/gateway.js';

const TOKENS = { fcm: 'fcm-device-token-outcome', apns: 'cd'.repeat(32), adm: 'amzn1.adm-registration.v3.outcome' } as const;
const msg = (token: string): BridgeMessage => ({ token, data: { a: 'b' }, ttl: 60, priority: 'normal', collapseKey: null });

describe('unreachable and timeout outcomes per provider', () => {
  let pki: TestPki;
  let fakes: ProviderFakes;
  let live: Bridges;
  let dead: Bridges;
  beforeAll(async () => {
    pki = makePki();
    fakes = new ProviderFakes(pki);
    await fakes.start();
    const file = (name: string, origin: string) => {
      const path = join(pki.dir, name);
      writeFileSync(
        path,
        JSON.stringify({
          fcm: { f: { serviceAccount: fakes.serviceAccountFile, baseUrl: origin, tokenUrl: `${origin}/token`, ca: pki.caFile } },
          apns: { a: { topic: APNS_TOPIC, token: { keyFile: fakes.apnsKeyFile, keyId: APNS_KEY_ID, teamId: APNS_TEAM }, baseUrl: origin, ca: pki.caFile } },
          adm: { k: { ...ADM_CLIENT, baseUrl: origin, tokenUrl: `${origin}/auth/o2/token`, ca: pki.caFile } },
        }),
      );
      return path;
    };
    // One attempt each, so the outcome of the client itself is seen.
    const policy = { ...DEFAULT_RETRY, maxAttempts: 1 };
    live = loadBridges(file('live.json', fakes.origin), new Metrics(), policy, { timeoutMs: 400 });
    dead = loadBridges(file('dead.json', `https://127.0.0.1:${await freePort()}`), new Metrics(), policy, { timeoutMs: 400 });
  });
  afterAll(async () => {
    await live.close();
    await dead.close();
    await fakes.stop();
  });

  it.each([
    ['fcm', 'f'],
    ['apns', 'a'],
    ['adm', 'k'],
  ] as const)('%s: a refused connection is unreachable', async (type, app) => {
    expect(await dead.get(type, app)!.send(msg(TOKENS[type]))).toMatchObject({ outcome: 'unreachable' });
  });

  it.each([
    ['fcm', 'f'],
    ['apns', 'a'],
    ['adm', 'k'],
  ] as const)('%s: no answer within the timeout is a timeout', async (type, app) => {
    const bridge = live.get(type, app)!;
    // A first send fetches and caches the access token, so the slow reply is the send's own.
    expect(await bridge.send(msg(TOKENS[type]))).toEqual({ outcome: 'delivered' });
    fakes.script(TOKENS[type], { status: 200, body: {}, delayMs: 1200 });
    expect(await bridge.send(msg(TOKENS[type]))).toMatchObject({ outcome: 'timeout' });
  });
});

describe('the bounded per-app queue', () => {
  class Gated implements Bridge {
    readonly type = 'fcm' as const;
    readonly appId = 'gated';
    calls = 0;
    constructor(private readonly gate: Promise<void>) {}
    validateToken(): boolean {
      return true;
    }
    async send(): Promise<BridgeResult> {
      this.calls++;
      await this.gate;
      return { outcome: 'delivered' };
    }
    async close(): Promise<void> {}
  }

  it('refuses at once beyond maxQueued (in flight + waiting) with 503 and Retry-After, and counts it', async () => {
    let open: () => void = () => {};
    const inner = new Gated(new Promise<void>((r) => (open = r)));
    const metrics = new Metrics();
    const bridge = new ReliableBridge(inner, { ...DEFAULT_RETRY, maxConcurrent: 2, maxQueued: 5, queueFullRetryAfter: 7 }, metrics);
    const accepted = Array.from({ length: 5 }, () => bridge.send(msg('t')));
    expect(bridge.queued).toBe(5);
    expect(await bridge.send(msg('t'))).toEqual({ outcome: 'retry-later', reason: expect.stringContaining('5 sends queued'), status: 503, retryAfter: 7 });
    expect(await metrics.registry.metrics()).toMatch(/pushgate_bridge_failed_total\{type="fcm",app="gated",reason="queue_full"\} 1/);
    open();
    expect(await Promise.all(accepted)).toEqual(Array(5).fill({ outcome: 'delivered' }));
    expect(inner.calls).toBe(5);
    expect(bridge.queued).toBe(0);
    expect(await bridge.send(msg('t'))).toEqual({ outcome: 'delivered' });
  });
});
