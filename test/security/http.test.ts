/**
 * Attacks on the HTTP listeners and the operational defaults (issue 9 §8, §13–§17), each replayed against a real
 * gateway and asserting the safe outcome: silent and slow sockets are reaped, idle sockets cannot crowd out a
 * sender, the internal port refuses to run open and counts refused secrets, peers can speak TLS, /metrics can
 * leave the public port, keys are created only by the explicit step and owner-only, SIGTERM lets an HTTP/2
 * request finish and then cuts the session, and the Docker files run unprivileged with one fleet-wide key set.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { selfSignedCertificate } from '../fakes/pki.js';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parse as parseYaml } from 'yaml';
import { ConfigError, ensureGeneratedKeys, loadConfig } from '../../src/config.js';
import { PeerClient } from '../../src/webpush/endpoint/peer-client.js';
import { freePort, logCapture, startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildDist, startNode } from '../helpers/node-process.js';
import { channelId, post } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/** Polls a condition until it holds, failing after `ms`. */
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Opens a TCP connection that says nothing; resolves once connected. */
function silentSocket(port: number): Promise<Socket & { closedAt?: number }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1') as Socket & { closedAt?: number };
    s.on('error', () => {});
    s.once('close', () => (s.closedAt = Date.now()));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function endpointOf(gw: TestGateway): Promise<{ client: PushClient; endpoint: string }> {
  const client = await PushClient.connect(gw.wsUrl);
  await client.hello();
  const endpoint = (await client.register(channelId()))['pushEndpoint'] as string;
  return { client, endpoint };
}

describe('public listener limits (issue 9 §8)', () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway({ headersTimeout: 1, requestTimeout: 2, keepAliveTimeout: 1, maxConnections: 100 });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.close();
  });

  it('400 silent sockets neither starve a sender nor outlive the headers timeout', async () => {
    const { client, endpoint } = await endpointOf(gw);
    const sockets = await Promise.all(Array.from({ length: 400 }, () => silentSocket(port)));
    const opened = Date.now();
    // The cap holds: the oldest idle sockets were closed to make room for newer ones.
    expect(gw.guard.size).toBeLessThanOrEqual(100);
    const res = await post(endpoint, { TTL: '60' });
    expect(res.status).toBe(201);
    expect((await client.next())['messageType']).toBe('notification');
    await waitFor(() => sockets.every((s) => s.closedAt !== undefined), 4000, 'every silent socket to be closed');
    expect(Math.max(...sockets.map((s) => s.closedAt! - opened))).toBeLessThan(3000);
    expect(gw.guard.closed.evicted).toBeGreaterThanOrEqual(300);
    // Operators see the same counts on /metrics.
    const evicted = (await gw.metrics.httpConnectionsClosed.get()).values.find((v) => v.labels.reason === 'evicted');
    expect(evicted?.value).toBe(gw.guard.closed.evicted);
    client.close();
  });

  it('closes a request whose body never completes, and a slowloris trickling its headers', async () => {
    const { client, endpoint } = await endpointOf(gw);
    const url = new URL(endpoint);
    const slowBody = await silentSocket(port);
    slowBody.write(
      `POST ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTTL: 60\r\nContent-Length: 4096\r\nContent-Encoding: aes128gcm\r\n\r\n` + 'x'.repeat(10),
    );
    const slowHeaders = await silentSocket(port);
    const trickle = setInterval(() => slowHeaders.closedAt === undefined && slowHeaders.write('X'), 100);
    const started = Date.now();
    try {
      await waitFor(() => slowBody.closedAt !== undefined && slowHeaders.closedAt !== undefined, 5000, 'the slow sockets to be closed');
    } finally {
      clearInterval(trickle);
    }
    expect(slowHeaders.closedAt! - started).toBeLessThan(2500);
    expect(slowBody.closedAt! - started).toBeLessThan(3500);
    expect(gw.guard.closed.requestTimeout).toBeGreaterThanOrEqual(1);
    const byReason = new Map((await gw.metrics.httpConnectionsClosed.get()).values.map((v) => [v.labels.reason, v.value]));
    expect(byReason.get('requestTimeout')).toBe(gw.guard.closed.requestTimeout);
    expect(byReason.get('headersTimeout')).toBe(gw.guard.closed.headersTimeout);
    client.close();
  });

  it('lets websockets leave the HTTP connection count once upgraded', async () => {
    const g = await startGateway({ maxConnections: 3 });
    try {
      const clients = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const c = await PushClient.connect(g.wsUrl);
          await c.hello();
          return c;
        }),
      );
      expect(g.guard.size).toBe(0);
      const { client, endpoint } = await endpointOf(g);
      expect((await post(endpoint, { TTL: '0' })).status).toBe(201);
      for (const c of [...clients, client]) c.close();
    } finally {
      await g.close();
    }
  });
});

describe('the internal (router) port (issue 9 §13, §17)', () => {
  it('refuses to start without PUSHGATE_ROUTER_SECRET, naming the setting', () => {
    const load = (env: Record<string, string>) => () =>
      loadConfig({ env: { PUSHGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'pg-sec-')), ...env }, file: 'config/pushgate.json' });
    expect(load({ PUSHGATE_ROUTER_PORT: '8999' })).toThrow(/PUSHGATE_ROUTER_SECRET is required with PUSHGATE_ROUTER_PORT/);
    expect(load({ PUSHGATE_ROLE: 'endpoint', PUSHGATE_STORE: 'mongodb://127.0.0.1/x' })).toThrow(/PUSHGATE_ROUTER_SECRET is required/);
    expect(load({ PUSHGATE_ROUTER_PORT: '8999', PUSHGATE_ROUTER_SECRET: 'a-secret-of-24-characters' })).not.toThrow();
  });

  it('refuses a wrong or missing secret, counts it and logs it without the secret; speaks TLS to peers that trust its CA', async () => {
    const secret = 'router-secret-0123456789abcdef';
    const wrong = 'wrong-secret-must-not-be-logged';
    const { cert, key } = selfSignedCertificate();
    const log = logCapture();
    const routerPort = await freePort();
    const g = await startGateway({ routerPort, routerSecret: secret, routerTlsCert: cert, routerTlsKey: key, logLevel: 'warn' }, { logStream: log });
    try {
      const peerUrl = `https://127.0.0.1:${routerPort}`;
      const uaid = 'a'.repeat(32);
      // A peer that trusts the fleet CA reaches the port (404: no such client here); one that does not, cannot.
      const trusted = new PeerClient(secret, 3000, readFileSync(cert));
      const untrusted = new PeerClient(secret, 3000, null);
      const wrongSecret = new PeerClient(wrong, 3000, readFileSync(cert));
      try {
        expect(await trusted.notify(peerUrl, uaid)).toBe(false);
        const client = await PushClient.connect(g.wsUrl);
        const held = await client.hello();
        expect(await trusted.notify(peerUrl, held)).toBe(true);
        client.close();
        expect(await untrusted.notify(peerUrl, uaid)).toBe(false);
        expect(await wrongSecret.notify(peerUrl, uaid)).toBe(false);
        const plain = await fetch(`${peerUrl.replace('https', 'http')}/notif/${uaid}`, { method: 'PUT' }).then(
          (r) => r.status,
          () => 0,
        );
        expect(plain).not.toBe(200);
      } finally {
        trusted.close();
        untrusted.close();
        wrongSecret.close();
      }
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toMatch(/^pushgate_auth_failures_total\{door="router",reason="mismatch"\} 1$/m);
      const lines = log.lines.filter((l) => l['msg'] === 'authentication failed');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ door: 'router', reason: 'mismatch' });
      expect(JSON.stringify(log.lines)).not.toContain(wrong);
      expect(JSON.stringify(log.lines)).not.toContain(secret);
    } finally {
      await g.close();
    }
  });
});

describe('metrics on a private listener (issue 9 §17)', () => {
  it('serves /metrics on PUSHGATE_METRICS_PORT only, not on the public port', async () => {
    const metricsPort = await freePort();
    const g = await startGateway({ metricsPort, metricsHost: '127.0.0.1' });
    try {
      expect((await fetch(`${g.url}/metrics`)).status).toBe(404);
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^pushgate_connections \d+/m);
      expect((await fetch(`${g.url}/health`)).status).toBe(200);
    } finally {
      await g.close();
    }
  });
});

describe('keys and the data directory (issue 9 §14, issue 10 §4)', () => {
  it('loading the configuration writes nothing; ensureGeneratedKeys creates owner-only files once', () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'pg-keys-')), 'data');
    const load = () => loadConfig({ env: { PUSHGATE_DATA_DIR: dataDir }, file: 'config/pushgate.json' });
    const first = load();
    expect(existsSync(dataDir)).toBe(false);
    expect(first.keptKeys.map((k) => k.state)).toEqual(['pending', 'pending', 'pending']);
    const created = ensureGeneratedKeys(first);
    expect(created.map((k) => k.name).sort()).toEqual(['auth_key', 'crypto_key', 'vapid_key']);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    for (const k of created) expect(statSync(k.file).mode & 0o777).toBe(0o600);
    const second = load();
    expect(second.keptKeys.map((k) => k.state)).toEqual(['loaded', 'loaded', 'loaded']);
    expect(second.cryptoKey).toBe(first.cryptoKey);
    expect(ensureGeneratedKeys(second)).toEqual([]);
  });

  it('a gateway refuses a configuration whose generated keys were never written', async () => {
    const { createGateway } = await import('../../src/gateway.js');
    const config = loadConfig({
      env: { PUSHGATE_DATA_DIR: join(mkdtempSync(join(tmpdir(), 'pg-keys-')), 'd') },
      file: 'config/pushgate.json',
      overrides: { store: 'sqlite::memory:', logLevel: 'silent' },
    });
    await expect(createGateway(config)).rejects.toThrow(ConfigError);
  });

  it('serve says loudly when it CREATED the crypto key, and that it LOADED it on the next start', async () => {
    buildDist();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'pg-serve-')), 'data');
    const env = {
      PUSHGATE_DATA_DIR: dataDir,
      PUSHGATE_STORE: `sqlite:${join(dataDir, 'pushgate.db')}`,
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_PORT: String(await freePort()),
    };
    const first = await startNode(env);
    await first.kill('SIGTERM');
    const created = first.output
      .join('')
      .split('\n')
      .find((l) => l.includes('crypto key'));
    expect(JSON.parse(created!)).toMatchObject({ level: 50 });
    expect(created).toContain('CREATED');
    expect(created).toContain('now INVALID');
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'pushgate.db')).mode & 0o777).toBe(0o600);
    const second = await startNode(env);
    await second.kill('SIGTERM');
    const loaded = second.output
      .join('')
      .split('\n')
      .find((l) => l.includes('crypto key'));
    expect(loaded).toContain('LOADED');
    expect(loaded).not.toContain('CREATED');
  }, 120_000);
});

describe('shutdown with TLS (issue 9 §16)', () => {
  it('lets an in-flight HTTP/2 POST finish within the grace, then closes the sessions', async () => {
    const { cert, key } = selfSignedCertificate();
    const g = await startGateway({ tlsCert: cert, tlsKey: key, shutdownGrace: 3 });
    const ca = readFileSync(cert);
    const ws = new WebSocket(g.wsUrl, ['push-notification'], { ca });
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (d) => frames.push(JSON.parse((d as Buffer).toString()) as Record<string, unknown>));
    ws.send(JSON.stringify({ messageType: 'hello', use_webpush: true }));
    await waitFor(() => frames.length === 1, 5000, 'hello');
    ws.send(JSON.stringify({ messageType: 'register', channelID: channelId() }));
    await waitFor(() => frames.length === 2, 5000, 'register');
    ws.close();
    const endpoint = new URL(frames[1]!['pushEndpoint'] as string);

    const session = h2connect(g.url, { ca });
    const idle = h2connect(g.url, { ca });
    // The gateway cuts the idle session at close: its reset is expected.
    for (const s of [session, idle]) s.on('error', () => {});
    await Promise.all([session, idle].map((s) => new Promise((r) => s.once('connect', r))));
    const body = Buffer.alloc(64, 1);
    const stream = session.request({
      ':method': 'POST',
      ':path': endpoint.pathname,
      ttl: '60',
      'content-encoding': 'aes128gcm',
      'content-length': String(body.length),
    });
    stream.write(body.subarray(0, 10));
    const status = new Promise<number>((resolve, reject) => {
      stream.once('response', (h) => resolve(Number(h[':status'])));
      stream.once('error', reject);
    });
    stream.resume();
    // The request is in flight when SIGTERM's close starts.
    await waitFor(() => g.guard.inFlight === 1, 2000, 'the request to reach the gateway');
    const closing = Date.now();
    const closed = g.close();
    setTimeout(() => stream.end(body.subarray(10)), 300);
    expect(await status).toBe(201);
    await closed;
    expect(Date.now() - closing).toBeLessThan(3000 + 1500);
    await waitFor(() => session.closed || session.destroyed, 2000, 'the busy session to be closed');
    await waitFor(() => idle.closed || idle.destroyed, 2000, 'the idle session to be closed');
  });
});

describe('Docker image and compose fleet (issue 9 §15)', () => {
  it('the image runs as its non-root user with a writable owner-only data directory', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const user = final.match(/^USER\s+(\S+)/m)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(final).toMatch(/chown node:node \/app\/data/);
    expect(final).toMatch(/PUSHGATE_DATA_DIR=\/app\/data/);
    // The data directory is prepared before the switch to the unprivileged user.
    expect(final.indexOf('chown node:node /app/data')).toBeLessThan(final.indexOf(`USER ${user}`));
  });

  it('every compose node is unprivileged, may hold 100,000 clients, and shares one crypto key, auth key, VAPID key pair and router secret', () => {
    const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
      services: Record<
        string,
        { user?: string; image?: string; build?: unknown; environment?: Record<string, string>; ulimits?: { nofile?: { soft?: number; hard?: number } } }
      >;
    };
    const nodes = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(nodes.length).toBeGreaterThanOrEqual(3);
    const shared = [
      'PUSHGATE_CRYPTO_KEY',
      'PUSHGATE_AUTH_KEYS',
      'PUSHGATE_VAPID_PUBLIC_KEY',
      'PUSHGATE_VAPID_PRIVATE_KEY',
      'PUSHGATE_ROUTER_SECRET',
      'PUSHGATE_STORE',
    ];
    for (const [name, s] of nodes) {
      expect(s.user, name).toBe('node');
      // One descriptor per websocket (README Operations, "Descriptors"), not Docker's default soft limit.
      expect(s.ulimits?.nofile?.soft, name).toBeGreaterThanOrEqual(100_000);
      expect(s.ulimits?.nofile?.hard, name).toBe(s.ulimits?.nofile?.soft);
      for (const k of shared) {
        // Set from one required variable, identical on every node (never generated per node).
        expect(s.environment?.[k], `${name} ${k}`).toBe(nodes[0]![1].environment?.[k]);
        if (k !== 'PUSHGATE_STORE') expect(s.environment?.[k], `${name} ${k}`).toMatch(/^\$\{[A-Z_]+:\?/);
      }
    }
  });
});
