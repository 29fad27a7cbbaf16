import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../../src/webpush/protocol/websocket.js';
import { FernetKey } from '../../../src/webpush/protocol/fernet.js';
import { startGateway } from '../../helpers/gateway.js';
import { GATEWAY_KINDS, ONE_PROCESS, goneOffline, type GatewayKind, type GatewayUnderTest, underTest } from '../../helpers/kinds.js';
import { BrowserKeys } from '../../helpers/browser-keys.js';
import { channelId, post, sendWebPush } from '../../helpers/push.js';
import { PushClient } from '../../helpers/ws-client.js';

const gateways: { close(): Promise<void> }[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(gateways.splice(0).map((g) => g.close()));
});

/** Starts a gateway of `kind` that the test's end closes. */
const starter =
  (kind: GatewayKind) =>
  async (values: Parameters<GatewayKind['start']>[0] = {}): Promise<GatewayUnderTest> => {
    const gw = await kind.start(values);
    gateways.push(gw);
    return gw;
  };

/** A registered user agent that then goes offline. */
async function offlineSubscriber(gw: GatewayUnderTest, channels = 1): Promise<{ uaid: string; chids: string[]; endpoints: string[] }> {
  const c = await PushClient.connect(gw.wsUrl);
  const uaid = await c.hello();
  const chids: string[] = [];
  const endpoints: string[] = [];
  for (let i = 0; i < channels; i++) {
    const chid = channelId();
    chids.push(chid);
    endpoints.push((await c.register(chid))['pushEndpoint'] as string);
  }
  await goneOffline(gw, c, uaid);
  return { uaid, chids, endpoints };
}

const pushText = (endpoint: string, text: string, headers: Record<string, string> = {}) =>
  post(endpoint, { TTL: '600', 'Content-Encoding': 'aes128gcm', ...headers }, Buffer.from(text));

const textOf = (n: Record<string, unknown>) => Buffer.from(n['data'] as string, 'base64url').toString();

// What a client sees of storage, against each gateway of GATEWAY_KINDS: with workers the POSTs land on either worker
// and a reconnect may land on the other one; in the split fleet every push crosses the peer link.
describe.each(GATEWAY_KINDS)('stored messages ($name)', (kind: GatewayKind) => {
  const gateway = starter(kind);

  it('stores for an offline client and delivers in order after hello; acked ones are deleted', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    for (const t of ['one', 'two', 'three']) expect((await pushText(endpoints[0]!, t)).status).toBe(201);
    const c = await PushClient.connect(gw.wsUrl);
    expect(await c.hello(uaid)).toBe(uaid);
    const got = [await c.next(), await c.next(), await c.next()];
    expect(got.map(textOf)).toEqual(['one', 'two', 'three']);
    for (const n of got) c.ack(n['channelID'] as string, n['version'] as string);
    await vi.waitFor(async () => expect(await gw.store.countMessages(uaid, 100)).toBe(0));
    await goneOffline(gw, c, uaid);
    const again = await PushClient.connect(gw.wsUrl);
    await again.hello(uaid);
    // Nothing is redelivered: a fresh push is the next thing this client sees.
    expect((await pushText(endpoints[0]!, 'four')).status).toBe(201);
    expect(textOf(await again.next())).toBe('four');
    again.close();
  });

  it('reads the next batch only once the previous one is acked (flow control)', async () => {
    const gw = await gateway({ storageBatch: 3 });
    const { uaid, endpoints } = await offlineSubscriber(gw);
    for (let i = 0; i < 7; i++) await pushText(endpoints[0]!, `m${i}`);
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    const first = [await c.next(), await c.next(), await c.next()];
    expect(first.map(textOf)).toEqual(['m0', 'm1', 'm2']);
    // A ping round trip proves the server has processed everything before it and sent nothing more.
    c.send({});
    expect(await c.next()).toEqual({});
    expect(c.idle).toBe(true);
    for (const n of first) c.ack(n['channelID'] as string, n['version'] as string);
    const second = [await c.next(), await c.next(), await c.next()];
    expect(second.map(textOf)).toEqual(['m3', 'm4', 'm5']);
    for (const n of second) c.ack(n['channelID'] as string, n['version'] as string);
    expect(textOf(await c.next())).toBe('m6');
    c.close();
  });

  it('queues new messages behind stored ones while they drain', async () => {
    const gw = await gateway({ storageBatch: 1 });
    const { uaid, endpoints } = await offlineSubscriber(gw);
    await pushText(endpoints[0]!, 'stored-1');
    await pushText(endpoints[0]!, 'stored-2');
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    const n1 = await c.next();
    await pushText(endpoints[0]!, 'live');
    c.ack(n1['channelID'] as string, n1['version'] as string);
    const n2 = await c.next();
    c.ack(n2['channelID'] as string, n2['version'] as string);
    const n3 = await c.next();
    expect([n1, n2, n3].map(textOf)).toEqual(['stored-1', 'stored-2', 'live']);
    c.close();
  });

  it('replaces an unread message with the same Topic on the same channel', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw, 2);
    await pushText(endpoints[0]!, 'old', { Topic: 'scores' });
    await pushText(endpoints[1]!, 'other channel, same topic', { Topic: 'scores' });
    await pushText(endpoints[0]!, 'new', { Topic: 'scores' });
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    const got = [await c.next(), await c.next()];
    expect(got.map(textOf).sort()).toEqual(['new', 'other channel, same topic']);
    c.send({});
    expect(await c.next()).toEqual({});
    c.close();
  });

  it('never stores TTL 0, but delivers it to a connected client', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    expect((await post(endpoints[0]!, { TTL: '0' })).status).toBe(201);
    expect(await gw.store.countMessages(uaid, 10)).toBe(0);
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    // TTL 0 is never stored: with workers, one that lands on the other worker before its directory knows the client
    // is dropped (README, "All cores of one machine").
    await gw.settled();
    expect((await post(endpoints[0]!, { TTL: '0' })).headers.get('ttl')).toBe('0');
    expect(await c.next()).toMatchObject({ messageType: 'notification', ttl: 0 });
    c.close();
  });

  it('keeps a nacked stored message for the next connection', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    await pushText(endpoints[0]!, 'undecryptable');
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    const n = await c.next();
    c.send({ messageType: 'nack', version: n['version'], code: 301 });
    c.send({});
    expect(await c.next()).toEqual({});
    c.close();
    await c.closedWith;
    const again = await PushClient.connect(gw.wsUrl);
    await again.hello(uaid);
    expect(await again.next()).toMatchObject({ version: n['version'] });
    again.close();
  });

  it('stores direct messages the client never acked and delivers them after reconnect', async () => {
    const gw = await gateway();
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    await pushText(endpoint, 'unacked');
    const n = await c.next();
    c.close();
    await vi.waitFor(async () => expect(await gw.store.countMessages(uaid, 10)).toBe(1));
    const again = await PushClient.connect(gw.wsUrl);
    await again.hello(uaid);
    expect(await again.next()).toMatchObject({ version: n['version'] });
    again.close();
  });

  it('never writes the direct pushes of a client that acks at once: each 201 waits for its ack instead (the ack wait)', async () => {
    // The longest wait, so that a loaded machine's acks still count as prompt.
    const gw = await gateway({ ackWaitMs: 1000 });
    const c = await PushClient.connect(gw.wsUrl);
    const uaid = await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    // A push that lands on the worker not holding the client before it learns of the client is stored, not sent.
    await gw.settled();
    const texts = ['first', 'two', 'three', 'four'];
    for (const t of texts) {
      const posted = pushText(endpoint, t);
      const n = await c.next();
      expect(textOf(n)).toBe(t);
      c.ack(n['channelID'] as string, n['version'] as string);
      expect((await posted).status).toBe(201);
    }
    // None reached the store, the first one included (no ack seen yet from this client: it waits, as for a prompt one).
    expect(await gw.metric('pushgate_direct_writes_skipped_total')).toBe(texts.length);
    await vi.waitFor(async () => expect(await gw.store.countMessages(uaid, 10)).toBe(0));
    c.close();
  });

  // Documented behaviour changed (issue 11): the endpoint never refuses for backlog; the session resets at read.
  it('resets a uaid when its session reads more than msg_limit stored messages: earlier batches delivered, then 1000', async () => {
    const gw = await gateway({ msgLimit: 3, storageBatch: 2 });
    const { uaid, chids, endpoints } = await offlineSubscriber(gw);
    for (let i = 0; i < 5; i++) expect((await pushText(endpoints[0]!, `m${i}`)).status).toBe(201);
    const c = await PushClient.connect(gw.wsUrl);
    expect(await c.hello(uaid)).toBe(uaid);
    const first = [await c.next(), await c.next()];
    expect(first.map(textOf)).toEqual(['m0', 'm1']);
    for (const n of first) c.ack(chids[0]!, n['version'] as string);
    // The second batch would bring the count to 4 > 3: the uaid is dropped and the socket closed with 1000.
    expect((await c.closedWith).code).toBe(CloseCode.normal);
    expect(c.idle).toBe(true);
    expect((await pushText(endpoints[0]!, 'after reset')).status).toBe(410);
    const again = await PushClient.connect(gw.wsUrl);
    expect(await again.hello(uaid)).not.toBe(uaid);
    again.close();
  });

  it('never refuses a message for backlog, and resets at once when the backlog passes msg_limit plus one batch', async () => {
    const gw = await gateway({ msgLimit: 3, storageBatch: 2 });
    const { uaid, endpoints } = await offlineSubscriber(gw);
    // 5 = msg_limit + batch stored messages are kept; the 6th is accepted too, then the uaid is reset.
    for (let i = 0; i < 6; i++) expect((await pushText(endpoints[0]!, `m${i}`)).status).toBe(201);
    expect(await gw.store.getUser(uaid)).toBeNull();
    expect(await gw.store.countMessages(uaid, 100)).toBe(0);
    expect((await pushText(endpoints[0]!, 'after reset')).status).toBe(410);
  });

  it('cancels a stored message with DELETE /m/{id}', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    const res = await pushText(endpoints[0]!, 'cancel me');
    await pushText(endpoints[0]!, 'keep me');
    const location = res.headers.get('location')!;
    expect((await fetch(location, { method: 'DELETE' })).status).toBe(204);
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    expect(textOf(await c.next())).toBe('keep me');
    c.send({});
    expect(await c.next()).toEqual({});
    c.close();
  });

  it('cancels a topic message by its id', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    const res = await pushText(endpoints[0]!, 'topical', { Topic: 't1' });
    expect((await fetch(res.headers.get('location')!, { method: 'DELETE' })).status).toBe(204);
    expect(await gw.store.countMessages(uaid, 10)).toBe(0);
  });
});

// A clock moved in this process, and a gateway stopped and started again on its database: one process only (the
// cluster suites stop and kill workers: test/cluster/workers.test.ts).
describe('stored messages (one process)', () => {
  const gateway = starter(ONE_PROCESS);

  it('never delivers an expired message', async () => {
    const gw = await gateway();
    const { uaid, endpoints } = await offlineSubscriber(gw);
    await post(endpoints[0]!, { TTL: '5', 'Content-Encoding': 'aes128gcm' }, 'short-lived');
    await pushText(endpoints[0]!, 'long-lived');
    // Move the clock past the first TTL instead of sleeping.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10_000 });
    const c = await PushClient.connect(gw.wsUrl);
    await c.hello(uaid);
    expect(textOf(await c.next())).toBe('long-lived');
    c.send({});
    expect(await c.next()).toEqual({});
    c.close();
  });

  it('keeps stored and unacked messages across a graceful shutdown and restart on the same database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-restart-'));
    const settings = { store: `sqlite:${join(dir, 'db.sqlite')}`, cryptoKey: FernetKey.generate() };
    const gw1 = await startGateway(settings);
    const browser = new BrowserKeys();
    const c = await PushClient.connect(gw1.wsUrl);
    const uaid = await c.hello();
    const endpoint = (await c.register(channelId()))['pushEndpoint'] as string;
    expect((await sendWebPush(browser.subscription(endpoint), 'in flight')).status).toBe(201);
    await c.next();
    await gw1.close();
    expect((await c.closedWith).code).toBe(CloseCode.goingAway);
    const gw2 = await gateway({ ...settings, port: gw1.config.port, publicUrl: gw1.config.publicUrl });
    const again = await PushClient.connect(gw2.wsUrl);
    expect(await again.hello(uaid)).toBe(uaid);
    expect(browser.decrypt(await again.next())).toBe('in flight');
    again.close();
  });

  it('finishes a push request that is in flight when shutdown starts, and keeps its message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-inflight-'));
    const settings = { store: `sqlite:${join(dir, 'db.sqlite')}`, cryptoKey: FernetKey.generate() };
    const gw1 = await startGateway(settings);
    const { uaid, endpoints } = await offlineSubscriber(underTest(gw1));
    const body = Buffer.from('sent while the server stops');
    const url = new URL(endpoints[0]!);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { TTL: '600', 'Content-Encoding': 'aes128gcm', 'Content-Length': body.length },
    });
    const response = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    // The server has parsed the request's headers (and has part of its body) before shutdown begins.
    const arrived = new Promise((resolve) => gw1.app.server.once('request', resolve));
    req.write(body.subarray(0, 5));
    await arrived;
    const closing = gw1.close();
    req.end(body.subarray(5));
    expect(await response).toBe(201);
    await closing;
    const gw2 = await gateway({ ...settings, port: gw1.config.port, publicUrl: gw1.config.publicUrl });
    const c = await PushClient.connect(gw2.wsUrl);
    await c.hello(uaid);
    expect(textOf(await c.next())).toBe('sent while the server stops');
    c.close();
  });
});
