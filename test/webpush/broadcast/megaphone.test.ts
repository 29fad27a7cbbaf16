/**
 * Megaphone broadcast versions: the poller against a tiny local fake Megaphone service (autoconnect's
 * request shape), and Pushgate's own Megaphone-compatible API with versions shared through the store.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Counter } from 'prom-client';
import { FakeMegaphone } from '../../fakes/megaphone.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import type { BroadcastSource } from '../../../src/webpush/broadcast/source.js';
import { pollMegaphone } from '../../../src/webpush/broadcast/megaphone.js';

const TOKEN = 'megaphone-test-token-0123456789';

async function count(counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0);
}

/** Resolves with the first change the source reports that satisfies `match`; fails after `timeoutMs`. */
function nextChange(source: BroadcastSource, match: (m: ReadonlyMap<string, string>) => boolean, timeoutMs = 5000): Promise<ReadonlyMap<string, string>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no broadcast change in time'));
    }, timeoutMs);
    const off = source.subscribe((changed) => {
      if (!match(changed)) return;
      clearTimeout(timer);
      off();
      resolve(changed);
    });
  });
}

describe('Megaphone poller (autoconnect megaphone.rs)', () => {
  const fake = new FakeMegaphone();
  let gw: TestGateway;

  beforeAll(async () => {
    await fake.start();
    fake.broadcasts = { 'remote-settings/monitor_changes': '"1700000000"' };
    gw = await startGateway({ megaphoneUrl: fake.url, megaphoneToken: TOKEN, megaphonePollInterval: 1 });
  });
  afterAll(async () => {
    await gw.close();
    await fake.stop();
  });
  afterEach(() => {
    fake.mode = 'ok';
  });

  it('reads the versions before the gateway serves, with GET and the Bearer token', () => {
    expect(Object.fromEntries(gw.broadcasts.versions())).toEqual({ 'remote-settings/monitor_changes': '"1700000000"' });
    expect(fake.requests[0]!.method).toBe('GET');
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('tells subscribers about a changed or added version at the next poll', async () => {
    const changed = nextChange(gw.broadcasts, (m) => m.has('remote-settings/monitor_changes'));
    fake.broadcasts = { 'remote-settings/monitor_changes': '"1700000099"', 'other/chan': 'v2' };
    expect(Object.fromEntries(await changed)).toEqual({ 'remote-settings/monitor_changes': '"1700000099"', 'other/chan': 'v2' });
  });

  it('keeps the versions it knows when Megaphone fails, answers garbage, or times out, and counts each', async () => {
    const before = Object.fromEntries(gw.broadcasts.versions());
    for (const [mode, outcome] of [
      ['error', 'http'],
      ['garbage', 'invalid'],
    ] as const) {
      fake.mode = mode;
      expect((await pollMegaphone(fake.url, TOKEN)).outcome).toBe(outcome);
    }
    fake.mode = 'slow';
    expect((await pollMegaphone(fake.url, TOKEN, 200)).outcome).toBe('timeout');
    // The gateway's own poller meets the failure too: its counter moves and the versions stay.
    fake.mode = 'error';
    const failures = await count(gw.metrics.megaphoneRefreshes, { source: 'megaphone', outcome: 'http' });
    await expect.poll(() => count(gw.metrics.megaphoneRefreshes, { source: 'megaphone', outcome: 'http' }), { timeout: 5000 }).toBeGreaterThan(failures);
    expect(Object.fromEntries(gw.broadcasts.versions())).toEqual(before);
  });

  it('does not open the own API when a Megaphone URL is set', async () => {
    const res = await fetch(`${gw.url}/v1/broadcasts`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
  });
});

describe("Pushgate's own Megaphone API, versions in the store", () => {
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    // Two peers on one store: a PUT on one is served by the other within the poll interval.
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'pushgate-megaphone-')), 'shared.db')}`;
    a = await startGateway({ store, megaphoneToken: TOKEN, megaphonePollInterval: 1 });
    b = await startGateway({ store, megaphoneToken: TOKEN, megaphonePollInterval: 1 });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  const put = (gw: TestGateway, path: string, body: string, token: string | null = TOKEN) =>
    fetch(`${gw.url}/v1/broadcasts/${path}`, { method: 'PUT', body, headers: token === null ? {} : { authorization: `Bearer ${token}` } });

  it('refuses a missing or wrong token with 401, counted, before looking at anything else', async () => {
    const before = await count(a.metrics.authFailures, { door: 'megaphone' });
    const missing = await put(a, 'rs/chan', 'v1', null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await missing.json()).toEqual({ code: 401, errno: 120, error: expect.any(String) });
    const wrong = await put(a, 'bad id!/x', 'v1', 'not-the-token-at-all-000000');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ errno: 121 });
    expect((await fetch(`${a.url}/v1/broadcasts`)).status).toBe(401);
    expect(await count(a.metrics.authFailures, { door: 'megaphone' })).toBe(before + 3);
    expect(await a.store.getBroadcasts()).toEqual({});
  });

  it('refuses bad ids and versions with Megaphone errnos', async () => {
    for (const [path, body, errno] of [
      ['bad.id/chan', 'v1', 100],
      [`rs/${'c'.repeat(129)}`, 'v1', 101],
      ['rs/chan', '', 102],
      ['rs/chan', 'v'.repeat(201), 103],
      ['rs/chan', 'é', 103],
    ] as const) {
      const res = await put(a, path, body);
      expect(res.status, `${path} ${body.slice(0, 10)}`).toBe(400);
      expect(await res.json()).toMatchObject({ code: 400, errno });
    }
  });

  it('sets a version (201, then 200), serves it here at once and on the other peer within the poll interval', async () => {
    const seenOnB = nextChange(b.broadcasts, (m) => m.get('remote-settings/monitor_changes') === '"1700000001"');
    const first = await put(a, 'remote-settings/monitor_changes', '"1700000001"');
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ code: 201 });
    expect(a.broadcasts.versions().get('remote-settings/monitor_changes')).toBe('"1700000001"');
    await seenOnB;
    expect((await put(b, 'remote-settings/monitor_changes', '"1700000002"')).status).toBe(200);
    const list = await fetch(`${a.url}/v1/broadcasts`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await list.json()).toEqual({ code: 200, broadcasts: { 'remote-settings/monitor_changes': '"1700000002"' } });
  });
});
