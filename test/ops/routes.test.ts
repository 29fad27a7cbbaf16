import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Store, StoreUnavailableError } from '../../src/store/index.js';
import { logCapture, startGateway, type TestGateway } from '../helpers/gateway.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

describe('operations endpoints', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.close();
  });

  it('serves /health, /__lbheartbeat__ and /__version__', async () => {
    expect(await (await fetch(`${gw.url}/health`)).json()).toMatchObject({ status: 'OK', version: expect.any(String) });
    const lb = await fetch(`${gw.url}/__lbheartbeat__`);
    expect(lb.status).toBe(200);
    expect(await (await fetch(`${gw.url}/__version__`)).json()).toEqual({
      version: expect.any(String),
      commit: expect.any(String),
      source: expect.any(String),
      build: expect.any(String),
    });
  });

  it('checks the store in /__heartbeat__ and answers 503 when it fails', async () => {
    const ok = await fetch(`${gw.url}/__heartbeat__`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'OK', database: 'OK' });
    const store = gw.store as Store & { health: () => Promise<void> };
    const original = store.health.bind(store);
    store.health = async () => {
      throw new Error('down');
    };
    try {
      const bad = await fetch(`${gw.url}/__heartbeat__`);
      expect(bad.status).toBe(503);
      expect(await bad.json()).toMatchObject({ status: 'ERROR', database: 'ERROR' });
    } finally {
      store.health = original;
    }
  });

  /** An endpoint of a client that has gone away, so a push reads the store. */
  async function offlineEndpoint(g: TestGateway): Promise<string> {
    const c = await PushClient.connect(g.wsUrl);
    const uaid = await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    c.close();
    await c.closedWith;
    while (g.clients.get(uaid)) await new Promise((r) => setImmediate(r));
    return endpoint;
  }

  // Issue 10 §3 changed this: only the backends' StoreUnavailableError is an outage (503); before, any exception was.
  it('answers 503 errno 201 with Retry-After, never 404/410, when storage is unavailable under a push', async () => {
    const endpoint = await offlineEndpoint(gw);
    const store = gw.store;
    const original = store.getUser.bind(store);
    store.getUser = async () => {
      throw new StoreUnavailableError('storage down');
    };
    try {
      const res = await post(endpoint, { TTL: '60' });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('120');
      expect(await res.json()).toMatchObject({ code: 503, errno: 201 });
    } finally {
      store.getUser = original;
    }
    expect((await post(endpoint, { TTL: '60' })).status).toBe(201);
  });

  it('answers 500 errno 999 with the stack in the log for a storage bug, and logs an outage once per burst', async () => {
    const log = logCapture();
    const g = await startGateway({ logLevel: 'warn' }, { logStream: log });
    try {
      const endpoint = await offlineEndpoint(g);
      const original = g.store.getUser.bind(g.store);
      g.store.getUser = async () => {
        throw new TypeError('a bug in the backend');
      };
      const res = await post(endpoint, { TTL: '60' });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ code: 500, errno: 999 });
      const logged = log.lines.find((l) => l['msg'] === 'unexpected error') as { err: { message: string; stack: string } } | undefined;
      expect(logged?.err.message).toBe('a bug in the backend');
      expect(logged?.err.stack).toContain('TypeError: a bug in the backend');

      g.store.getUser = async () => {
        throw new StoreUnavailableError('disk I/O error');
      };
      for (let i = 0; i < 5; i++) expect((await post(endpoint, { TTL: '60' })).status).toBe(503);
      expect(log.lines.filter((l) => String(l['msg']).startsWith('storage unavailable'))).toHaveLength(1);
      g.store.getUser = original;
      expect((await post(endpoint, { TTL: '60' })).status).toBe(201);
    } finally {
      await g.close();
    }
  });

  it('exposes Prometheus metrics for connections, notifications and latency', async () => {
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    await post(endpoint, { TTL: '60' });
    const n = await c.next();
    c.ack(n['channelID'] as string, n['version'] as string);
    c.send({});
    await c.next();
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/^pushgate_connections \d+/m);
    expect(text).toMatch(/^pushgate_notifications_total\{outcome="accepted",path="direct"\} [1-9]/m);
    expect(text).toMatch(/^pushgate_notifications_total\{outcome="acked",path="direct"\} [1-9]/m);
    expect(text).toMatch(/^pushgate_delivery_latency_seconds_count\{path="direct"\} [1-9]/m);
    expect(text).toMatch(/^pushgate_push_request_duration_seconds_count [1-9]/m);
    expect(text).toMatch(/^pushgate_http_requests_total\{route="\/wpush\/:apiVersion\/:token",status="201"\} [1-9]/m);
    c.close();
  });
});
