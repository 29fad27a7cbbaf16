/**
 * Issue 9's findings against the XEP-0357 push component, replayed as attacks from the attacker's side:
 *
 * - finding 2  (publish-options open relay)      → 'finding 2: …' (a user of an allow-listed server pushes to a device_id of her choice)
 * - finding 3  (publishes not tied to the owner) → 'finding 3: …' (a federated/foreign JID holding node and secret)
 * - finding 4  (SSRF via register-push-webpush)  → 'finding 4: …' (loopback, private, link-local, IPv4-mapped, http:, names
 *                                                  resolving inside, DNS rebinding at send time; replies identical)
 * - finding 5  (registration abuse, XMPP)        → 'finding 5: …' (2,001 registrations of one account, pipelined; oversized fields)
 * - finding 10 (stanza size)                     → 'finding 10: …' (a 32 MB stanza streamed in chunks)
 * - finding 17 (failed auth, XMPP)               → 'finding 17: …' (`node dist/cli.js serve` as its own process: its whole
 *                                                  log output and /metrics)
 *
 * Real parts: the gateway, its component, SQLite, the FCM/APNs/ADM fakes, a fake XEP-0114 server. The attacker's
 * DNS is the one stand-in: `dns.lookup` answers names under .attacker.test from a table the test changes (as a
 * rebinding attacker's authoritative server would); every other name goes to the system resolver.
 */
import { createECDH } from 'node:crypto';
import dns from 'node:dns';
import { mkdtempSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element } from '@xmpp/xml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { NS } from '../../src/xmpp/namespaces.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';
import { freePort } from '../helpers/gateway.js';
import { buildDist, authFailureLines, startNode, type NodeProcess } from '../helpers/node-process.js';
import { componentClient, FakeComponentServer, xml } from '../helpers/xmpp-server.js';

const PUSH = 'push.example.org';
const VICTIM = 'fcm-victim-device-0001';
/** A real P-256 subscription key: a send must get as far as the network for the SSRF checks to mean anything. */
const KEY = createECDH('prime256v1').generateKeys().toString('base64url');
const AUTH = Buffer.alloc(16, 3).toString('base64url');

function errorOf(reply: Element): { type: string; condition: string; text?: string } | null {
  if (reply.attrs['type'] !== 'error') return null;
  const error = reply.getChild('error')!;
  const condition = error.getChildElements().find((c) => c.attrs['xmlns'] === NS.stanzas && c.name !== 'text')!.name;
  const text = error.getChildText('text', NS.stanzas) ?? undefined;
  return { type: error.attrs['type']!, condition, ...(text ? { text } : {}) };
}

/** A local TCP listener that counts every connection: the internal service an SSRF would reach. */
async function tripwire(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s: Socket) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0, connections: () => n };
}

/** The attacker's DNS: names under .attacker.test answer from `answers`; anything else goes to the real resolver. */
const answers: Record<string, string[]> = {};
const realLookup = dns.lookup;
function attackerLookup(hostname: string, options: unknown, callback?: unknown): void {
  const cb = (typeof options === 'function' ? options : callback) as (err: Error | null, a: unknown, f?: number) => void;
  const opts = (typeof options === 'object' && options ? options : typeof options === 'number' ? { family: options } : {}) as dns.LookupOptions;
  if (!hostname.endsWith('.attacker.test')) return void (realLookup as (h: string, o: dns.LookupOptions, c: typeof cb) => void)(hostname, opts, cb);
  const addrs = (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  if (addrs.length === 0) return process.nextTick(() => cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), undefined));
  process.nextTick(() => (opts.all ? cb(null, addrs) : cb(null, addrs[0]!.address, addrs[0]!.family)));
}

describe('attacks on the XEP-0357 push component (issue 9)', () => {
  let server: FakeComponentServer;
  let w: BridgeWorld;
  let x: ReturnType<typeof componentClient>;
  let wire: Awaited<ReturnType<typeof tripwire>>;
  beforeAll(async () => {
    // Installed before the gateway exists, so its endpoint guard resolves through it (as it would through the system's).
    dns.lookup = attackerLookup as typeof dns.lookup;
    syncBuiltinESMExports();
    wire = await tripwire();
    server = new FakeComponentServer(PUSH, 'component-secret');
    await server.listen();
    const vapid = webpush.generateVAPIDKeys();
    // Shipped defaults for the stanza size and the registrations per account.
    w = await bridgeWorld({
      xmppService: server.service,
      xmppDomain: PUSH,
      xmppPassword: 'component-secret',
      xmppPublishOptionsDomains: 'allowed.example',
      vapidPublicKey: vapid.publicKey,
      vapidPrivateKey: vapid.privateKey,
    });
    await server.connected();
    x = componentClient(server);
  });
  afterAll(async () => {
    dns.lookup = realLookup;
    syncBuiltinESMExports();
    await w.close();
    await server.close();
    await new Promise<void>((r) => wire.server.close(() => r()));
  });
  beforeEach(() => w.fakes.reset());

  it('finding 2: mallory@allowed.example/phone cannot push to a device_id of her choosing, whatever JID form she uses', async () => {
    // A user of an allow-listed server may create a node (MongooseIM's tutorial has the client do it); a node sends nothing by itself.
    expect((await x.create('mallory-node', 'mallory@allowed.example/phone')).attrs['type']).toBe('result');
    expect((await x.create('legit-node', 'alice@allowed.example/res')).attrs['type']).toBe('result');
    const lure = { service: 'fcm', device_id: VICTIM, click_action: 'https://evil.example/login' };
    for (const node of ['mallory-node', 'legit-node']) {
      for (const from of ['mallory@allowed.example/phone', 'mallory@allowed.example', 'allowed.example/phone', 'evil.example', 'mallory@evil.example/x']) {
        expect(errorOf(await x.publish(node, lure, from)), `${from} → ${node}`).toMatchObject({ type: 'auth', condition: 'forbidden' });
      }
    }
    // Racing for a node name: twenty users create the same one at once; one wins, the rest get conflict, and the
    // winner keeps it (a second save must not take the first one's node).
    const race = await Promise.all(Array.from({ length: 20 }, (_, i) => x.create('contested-node', `user${i}@allowed.example/r`)));
    expect(race.filter((r) => r.attrs['type'] === 'result')).toHaveLength(1);
    expect(race.map(errorOf).filter((e) => e?.condition === 'conflict')).toHaveLength(19);
    const winner = race.findIndex((r) => r.attrs['type'] === 'result');
    expect((await w.gw.store.getPushRegistration('contested-node'))!.account).toBe(`user${winner}@allowed.example`);
    // A user of a server not on the list cannot even create one.
    expect(errorOf(await x.create('eve-node', 'eve@example.org/x'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(errorOf(await x.create('evil-node', 'evil.example'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(await w.gw.store.getPushRegistration('eve-node')).toBeNull();
    // The allowed server's own publish with bad options is refused as a bad request, not relayed.
    expect(errorOf(await x.publish('legit-node', { service: 'wns', device_id: VICTIM }, 'allowed.example'))).toMatchObject({
      type: 'modify',
      condition: 'bad-request',
    });
    expect(w.fakes.received).toHaveLength(0);
    // Control: the same publish from the allowed server itself is the path the attacker tried, and it does reach the provider.
    expect((await x.publish('legit-node', { service: 'fcm', device_id: VICTIM }, 'allowed.example')).attrs['type']).toBe('result');
    expect(w.fakes.for('fcm', VICTIM)).toHaveLength(1);
  });

  it('finding 3: a federated or foreign JID holding a node and its secret cannot publish; refusals are counted', async () => {
    const reg = await x.register('register-push-fcm', { token: VICTIM, 'device-id': 'stolen' }, 'juliet@example.org/phone');
    const before = (await w.gw.metrics.authFailures.get()).values.reduce((n, v) => n + v.value, 0);
    // The node and secret leaked (a compromised server, a log): every sender but the account's own server is refused.
    for (const from of [
      'evil.example',
      'example.org.evil.example',
      'mallory@example.org/phone',
      'juliet@example.org',
      'juliet@example.org/phone',
      'example.org/res',
      'allowed.example',
    ]) {
      expect(errorOf(await x.publish(reg.node, { secret: reg.secret }, from)), from).toMatchObject({ type: 'auth', condition: 'forbidden' });
    }
    // A wrong secret from the right server is refused the same way.
    expect(errorOf(await x.publish(reg.node, { secret: 'guess' }, 'example.org'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(w.fakes.received).toHaveLength(0);
    const after = (await w.gw.metrics.authFailures.get()).values;
    expect(after.reduce((n, v) => n + v.value, 0) - before).toBe(8);
    // Control: the registering account's server (bare domain JID, any case) does reach the device.
    expect((await x.publish(reg.node, { secret: reg.secret }, 'EXAMPLE.org')).attrs['type']).toBe('result');
    expect(w.fakes.for('fcm', VICTIM)).toHaveLength(1);
  });

  describe('finding 4: register-push-webpush as an SSRF probe', () => {
    const attempt = (endpoint: string, from = 'mallory@example.org/probe') => x.command('register-push-webpush', { endpoint, p256dh: KEY, auth: AUTH }, from);

    it('refuses every internal, non-https or inside-resolving endpoint with one identical reply, never connecting', async () => {
      const p = wire.port;
      Object.assign(answers, {
        'ten.attacker.test': ['10.0.0.5'],
        'ula.attacker.test': ['fd00::1'],
        'mapped.attacker.test': ['::ffff:127.0.0.1'],
        'metadata.attacker.test': ['169.254.169.254'],
        'mixed.attacker.test': ['93.184.215.14', '127.0.0.1'],
        'public.attacker.test': ['93.184.215.14'],
      });
      const endpoints = [
        `https://127.0.0.1:${p}/wpush/x`, // loopback, a port that answers
        `https://127.0.0.1:${await freePort()}/wpush/x`, // loopback, a port that does not
        `https://127.1.2.3:${p}/x`,
        `https://[::1]:${p}/x`,
        `https://10.1.2.3/x`,
        `https://172.16.0.1/x`,
        `https://192.168.1.1/x`,
        `https://100.64.0.1/x`,
        `https://169.254.169.254/latest/meta-data/`, // link-local: cloud metadata
        `https://[fe80::1]/x`,
        `https://[fd12:3456::1]/x`,
        `https://[::ffff:127.0.0.1]:${p}/x`, // IPv4-mapped IPv6 (the URL parser turns it into [::ffff:7f00:1])
        `https://[::ffff:a00:1]/x`,
        `https://0.0.0.0:${p}/x`,
        `https://2130706433:${p}/x`, // 127.0.0.1 as a decimal host
        `http://127.0.0.1:${p}/x`,
        `http://public.attacker.test/x`, // plain http to a public address
        `https://localhost:${p}/x`, // a name the system resolves to loopback
        `https://ten.attacker.test/x`,
        `https://ula.attacker.test/x`,
        `https://mapped.attacker.test:${p}/x`,
        `https://metadata.attacker.test/x`,
        `https://mixed.attacker.test:${p}/x`, // one public and one loopback answer
        `https://nxdomain.attacker.test/x`,
        `https://user:pw@public.attacker.test/x`,
      ];
      const replies = [];
      for (const endpoint of endpoints) replies.push(errorOf(await attempt(endpoint)));
      // One answer whatever the reason: the reply tells the caller nothing about the target.
      for (const [i, r] of replies.entries()) expect(r, endpoints[i]).toEqual(replies[0]);
      expect(replies[0]).toMatchObject({ type: 'modify', condition: 'not-acceptable' });
      expect(wire.connections()).toBe(0);
      expect(await w.gw.store.countPushRegistrations('mallory@example.org', 100)).toBe(0);
    });

    it('a name that was public at registration and rebinds to loopback at send time: refused, nothing connects', async () => {
      answers['rebind.attacker.test'] = ['93.184.215.14'];
      answers['rebind2.attacker.test'] = ['93.184.215.14'];
      const open = await x.register(
        'register-push-webpush',
        { endpoint: `https://rebind.attacker.test:${wire.port}/push`, p256dh: KEY, auth: AUTH, 'device-id': 'rb1' },
        'mallory@example.org/rebind',
      );
      const closed = await x.register(
        'register-push-webpush',
        { endpoint: `https://rebind2.attacker.test:${await freePort()}/push`, p256dh: KEY, auth: AUTH, 'device-id': 'rb2' },
        'mallory@example.org/rebind',
      );
      // The attacker's DNS now points both names inside: one at a listening port, one at a closed one.
      answers['rebind.attacker.test'] = ['127.0.0.1'];
      answers['rebind2.attacker.test'] = ['127.0.0.1'];
      const a = errorOf(await x.publish(open.node, { secret: open.secret }, 'example.org'));
      const b = errorOf(await x.publish(closed.node, { secret: closed.secret }, 'example.org'));
      expect(a).toMatchObject({ type: 'cancel', condition: 'item-not-found' });
      // Whether the target listens or not, the publisher learns the same thing.
      expect(b).toEqual(a);
      expect(wire.connections()).toBe(0);
      // The registration is treated as dead and dropped, so it cannot be replayed.
      expect(await w.gw.store.getPushRegistration(open.node)).toBeNull();
      expect(await w.gw.store.getPushRegistration(closed.node)).toBeNull();
    });
  });

  describe('finding 5: registration abuse', () => {
    it('2,001 registrations of one account sent at once: the default cap (20) holds, the rest are refused', async () => {
      const from = 'hoarder@example.org/x';
      const replies = await Promise.all(
        Array.from({ length: 2001 }, (_, i) => x.command('register-push-fcm', { token: `fcm-hoard-${i}`, 'device-id': `d${i}` }, from)),
      );
      const accepted = replies.filter((r) => r.attrs['type'] === 'result').length;
      const refused = replies.map(errorOf).filter((e) => e?.type === 'cancel' && e.condition === 'not-allowed').length;
      expect(accepted).toBe(w.gw.config.xmppMaxRegistrations);
      expect(refused).toBe(2001 - accepted);
      expect(await w.gw.store.countPushRegistrations('hoarder@example.org', 10_000)).toBe(w.gw.config.xmppMaxRegistrations);
      // Node creation (MongooseIM) is under the same cap.
      const creates = await Promise.all(Array.from({ length: 40 }, (_, i) => x.create(`hoard-node-${i}`, 'hoarder@allowed.example/x')));
      expect(creates.filter((r) => r.attrs['type'] === 'result')).toHaveLength(w.gw.config.xmppMaxRegistrations);
      // Re-registering a device it already has still works at the cap.
      expect((await x.command('register-push-fcm', { token: 'fcm-hoard-new', 'device-id': 'd0' }, from)).attrs['type']).toBe('result');
    }, 60_000);

    it.each([
      ['a 5,000-character token', 'register-push-fcm', { token: 'x'.repeat(5000), 'device-id': 'long' }],
      ['a 1 MB token', 'register-push-fcm', { token: 'x'.repeat(1_000_000 - 1000), 'device-id': 'huge' }],
      ['a long device id', 'register-push-fcm', { token: VICTIM, 'device-id': 'd'.repeat(300) }],
      ['a long application', 'register-push-fcm', { token: VICTIM, 'device-id': 'app', application: 'a'.repeat(300) }],
      ['a long Web Push endpoint', 'register-push-webpush', { endpoint: `https://public.attacker.test/${'p'.repeat(5000)}`, p256dh: KEY, auth: AUTH }],
      ['a long auth key', 'register-push-webpush', { endpoint: 'https://public.attacker.test/x', p256dh: KEY, auth: 'A'.repeat(5000) }],
      // 65 bytes that are no P-256 point: accepted, it would fail every later send (answered wait for ever).
      [
        'a p256dh off the curve',
        'register-push-webpush',
        { endpoint: 'https://public.attacker.test/x', p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url'), auth: AUTH },
      ],
      ['a long v1 node', 'v1-register-push', { type: 'fcm', node: 'n'.repeat(300), token: VICTIM }],
    ])('refuses %s with modify/bad-request, storing nothing', async (_name, command, fields) => {
      answers['public.attacker.test'] = ['93.184.215.14'];
      const reply = await x.command(command, fields, 'bloater@example.org/x');
      expect(errorOf(reply)).toMatchObject({ type: 'modify', condition: 'bad-request' });
      expect(await w.gw.store.countPushRegistrations('bloater@example.org', 100)).toBe(0);
    });

    it('refuses a node name over 256 characters', async () => {
      expect(errorOf(await x.create('n'.repeat(300), 'bloater@allowed.example/x'))).toMatchObject({ type: 'cancel', condition: 'not-acceptable' });
    });
  });

  it('finding 10: a 32 MB stanza streamed in chunks closes the stream with policy-violation before it is held; the component comes back', async () => {
    const before = server.handshakes;
    const closed = server.nextStreamError();
    let peak = process.memoryUsage().heapUsed;
    const base = peak;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
    const written = await server.pump(
      `<iq type='set' id='big' from='example.org' to='${PUSH}'><pubsub xmlns='${NS.pubsub}'><publish node='n'><item>`,
      'x'.repeat(65536),
      32 * 1024 * 1024,
    );
    clearInterval(sampler);
    expect(await closed).toBe('policy-violation');
    // Closed before the 32 MB were through (what was written includes the kernel's socket buffers, so only the
    // total is bounded here); the heap never held anything near them (the default limit is 1 MB).
    expect(written).toBeLessThan(32 * 1024 * 1024);
    expect(peak - base).toBeLessThan(16 * 1024 * 1024);
    await server.connected();
    expect(server.handshakes).toBe(before + 1);
    expect((await x.iq('get', 'a@example.org/r', xml('query', { xmlns: NS.discoInfo }))).attrs['type']).toBe('result');
  }, 30_000);
});

describe("finding 17: failed XMPP authentications, seen from the operator's side of a real process", () => {
  let server: FakeComponentServer;
  let w: BridgeWorld;
  let node: NodeProcess;
  let url: string;
  const componentSecret = 'component-secret-never-logged';
  beforeAll(async () => {
    buildDist();
    server = new FakeComponentServer(PUSH, componentSecret);
    await server.listen();
    w = await bridgeWorld();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    node = await startNode({
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_PORT: String(port),
      PUSHGATE_PUBLIC_URL: url,
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
      PUSHGATE_STORE: 'sqlite::memory:',
      PUSHGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'pushgate-sec-')),
      PUSHGATE_BRIDGES: w.bridgesFile,
      PUSHGATE_XMPP_SERVICE: server.service,
      PUSHGATE_XMPP_DOMAIN: PUSH,
      PUSHGATE_XMPP_PASSWORD: componentSecret,
      PUSHGATE_XMPP_PUBLISH_OPTIONS_DOMAINS: 'allowed.example',
    });
    await server.connected();
  }, 120_000);
  afterAll(async () => {
    await node?.kill('SIGTERM');
    await w?.close();
    await server?.close();
  });

  it('logs each refusal with its reason and never a secret; /metrics counts them by reason', async () => {
    const x = componentClient(server);
    const reg = await x.register('register-push-fcm', { token: VICTIM, 'device-id': 'logged' }, 'juliet@example.org/phone');
    const guessed = 'guessed-secret-0123456789';
    expect(errorOf(await x.publish(reg.node, { secret: guessed }, 'example.org'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(errorOf(await x.publish(reg.node, null, 'example.org'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(errorOf(await x.publish(reg.node, { secret: reg.secret }, 'evil.example'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(errorOf(await x.create('n1', 'eve@example.org/x'))).toMatchObject({ type: 'auth', condition: 'forbidden' });
    expect(errorOf(await x.publish(reg.node, { service: 'fcm', device_id: VICTIM, secret: guessed }, 'mallory@allowed.example/x'))).toMatchObject({
      type: 'auth',
      condition: 'forbidden',
    });
    expect(w.fakes.received).toHaveLength(0);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="xmpp",reason="wrong-secret"\} 2/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="xmpp",reason="foreign-sender"\} 2/);
    expect(metrics).toMatch(/pushgate_auth_failures_total\{door="xmpp",reason="create-sender"\} 1/);

    // The log lines are written as the refusals happen; wait (bounded) for the last one to be read.
    const failed = await authFailureLines(node, 5);
    expect(failed.map((l) => [l['door'], l['reason']])).toEqual([
      ['xmpp', 'wrong-secret'],
      ['xmpp', 'wrong-secret'],
      ['xmpp', 'foreign-sender'],
      ['xmpp', 'create-sender'],
      ['xmpp', 'foreign-sender'],
    ]);
    const all = node.output.join('');
    for (const secret of [guessed, reg.secret, componentSecret]) expect(all).not.toContain(secret);
    expect(metrics).not.toContain(guessed);
  });
});
