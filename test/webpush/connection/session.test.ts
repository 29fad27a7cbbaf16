/**
 * The session state machine without a socket (issue 10 §2): events in, effects out through a recording port,
 * against an in-memory SQLite store and a controllable clock. Covers hello, uaid spellings, idle expiry, flow
 * control, the msg_limit reset, ack/nack, takeover, in-flight and backpressure bounds, the channel cap,
 * durable direct messages and Megaphone broadcasts.
 */
import type { FastifyBaseLogger } from 'fastify';
import fc from 'fast-check';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Metrics } from '../../../src/ops/metrics.js';
import { SqliteStore } from '../../../src/store/sqlite.js';
import type { Notification } from '../../../src/store/index.js';
import { BroadcastVersions } from '../../../src/webpush/broadcast/source.js';
import { ClientRegistry, DirectSave, deliverDurably } from '../../../src/webpush/connection/clients.js';
import { type ClientMessage, parseClientMessage } from '../../../src/webpush/connection/messages.js';
import { type ConnectionContext, Session } from '../../../src/webpush/connection/session.js';
import { generateVapidKeys } from '../../../src/webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { CloseCode } from '../../../src/webpush/protocol/websocket.js';
import { workerPeerId } from '../../../src/webpush/protocol/peer-link.js';
import type { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { channelId, payload } from '../../helpers/push.js';
import { ModelClient, RecordingPort, settle } from '../../helpers/session.js';

const silent = { warn() {}, error() {}, info() {}, debug() {} } as unknown as FastifyBaseLogger;
const DAY = 86_400_000;

const stores: SqliteStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function world(overrides: Partial<ConnectionContext> = {}) {
  const store = new SqliteStore(':memory:');
  stores.push(store);
  let clock = Date.now();
  let seq = 0;
  const broadcasts = new BroadcastVersions();
  const ctx: ConnectionContext = {
    store,
    clients: new ClientRegistry(),
    fernet: new MultiFernet([FernetKey.generate()]),
    metrics: new Metrics(),
    log: silent,
    publicUrl: 'https://push.example',
    peerId: null,
    peers: null,
    msgLimit: 150,
    storageBatch: 10,
    helloTimeoutMs: 10_000,
    minPingIntervalMs: 45_000,
    maxUnacked: 100,
    wsHighWater: 1 << 20,
    // Every direct message saved at once, unless a test sets a wait (the ack-wait tests below).
    ackWaitMs: 0,
    maxChannels: 1000,
    userMaxIdleMs: 60 * DAY,
    broadcasts,
    nextSeq: () => (seq = Math.max(seq + 1, clock * 1000)),
    now: () => clock,
    ...overrides,
  };
  const open = () => {
    const port = new RecordingPort();
    const session = new Session(port, ctx);
    return {
      port,
      session,
      say: async (m: ClientMessage | string) => {
        // Acks do not wait for their deletes (session.ts ack): settle them so the store can be read.
        await session.onMessage(typeof m === 'string' ? parse(m) : m);
        await session.idle();
      },
    };
  };
  const message = (uaid: string, channelID: string, text: string, ttl = 600): Notification => {
    const s = ctx.nextSeq();
    return {
      uaid,
      channelID,
      seq: s,
      version: `v-${text}`,
      ttl,
      expiry: clock + ttl * 1000,
      topic: null,
      urgency: 'normal',
      data: payload(text),
      headers: { encoding: 'aes128gcm' },
      timestamp: clock,
    };
  };
  return { ctx, store, broadcasts, open, message, tick: (ms: number) => (clock += ms) };
}

function parse(text: string): ClientMessage {
  const r = parseClientMessage(text);
  if (!r.ok) throw new Error(r.reason);
  return r.message;
}
const hello = (uaid?: string, broadcasts: Record<string, string> = {}) =>
  JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts, ...(uaid ? { uaid } : {}) });
const register = (chid: string) => JSON.stringify({ messageType: 'register', channelID: chid });
const ack = (...versions: [string, string][]) =>
  JSON.stringify({ messageType: 'ack', updates: versions.map(([channelID, version]) => ({ channelID, version, code: 100 })) });

/** A known user agent with one channel, disconnected. */
async function known(w: ReturnType<typeof world>): Promise<{ uaid: string; chid: string }> {
  const { port, session, say } = w.open();
  await say(hello());
  const uaid = port.take()[0]!['uaid'] as string;
  const chid = channelId();
  await say(register(chid));
  expect(port.take()[0]).toMatchObject({ status: 200 });
  await session.onClosed();
  return { uaid, chid };
}

describe('session state machine (no socket)', () => {
  it('answers hello with a fresh uaid and use_webpush, and writes the user only at the first register', async () => {
    const w = world();
    const { port, say } = w.open();
    await say(hello());
    const [reply] = port.take();
    expect(reply).toMatchObject({ messageType: 'hello', status: 200, use_webpush: true, broadcasts: {} });
    const uaid = reply!['uaid'] as string;
    expect(uaid).toMatch(/^[0-9a-f]{32}$/);
    expect(await w.store.getUser(uaid)).toBeNull();
    await say(register(channelId()));
    expect(await w.store.getUser(uaid)).not.toBeNull();
  });

  it("issues a new uaid's user row and its first channel row together (one group commit), and retries the user after a failed register", async () => {
    const w = world();
    const { port, say } = w.open();
    await say(hello());
    const uaid = port.take()[0]!['uaid'] as string;
    const addUser = w.store.addUser.bind(w.store);
    const addChannel = w.store.addChannel.bind(w.store);
    let userSettled = false;
    let channelIssuedBeforeUserSettled: boolean | null = null;
    w.store.addUser = (u) => addUser(u).finally(() => (userSettled = true));
    // The first channel write fails as an outage would; the second goes through.
    let failNext = true;
    w.store.addChannel = (id, ch) => {
      channelIssuedBeforeUserSettled = !userSettled;
      if (failNext) return ((failNext = false), Promise.reject(new Error('disk full')));
      return addChannel(id, ch);
    };
    const first = channelId();
    await say(register(first));
    expect(port.take()[0]).toMatchObject({ messageType: 'register', channelID: first, status: 500 });
    expect(channelIssuedBeforeUserSettled).toBe(true);
    userSettled = false;
    await w.store.removeUser(uaid);
    await say(register(first));
    expect(port.take()[0]).toMatchObject({ messageType: 'register', channelID: first, status: 200 });
    expect(channelIssuedBeforeUserSettled).toBe(true);
    expect(await w.store.getUser(uaid)).not.toBeNull();
    expect(await w.store.getChannel(uaid, first)).not.toBeNull();
  });

  it('only hello is legal first, and only once', async () => {
    const w = world();
    const a = w.open();
    await a.say(register(channelId()));
    expect(a.port.closedWith?.code).toBe(CloseCode.policyViolation);
    const b = w.open();
    await b.say(hello());
    await b.say(hello());
    expect(b.port.closedWith?.code).toBe(CloseCode.policyViolation);
  });

  it('closes at the hello timeout only while unidentified', async () => {
    const w = world();
    const a = w.open();
    a.session.onHelloTimeout();
    expect(a.port.closedWith?.code).toBe(CloseCode.policyViolation);
    const b = w.open();
    await b.say(hello());
    b.session.onHelloTimeout();
    expect(b.port.closedWith).toBeNull();
  });

  it('resumes a uaid spelled dashed, upper case, braced or as a URN, normalised', async () => {
    const w = world();
    const { uaid } = await known(w);
    const dashed = `${uaid.slice(0, 8)}-${uaid.slice(8, 12)}-${uaid.slice(12, 16)}-${uaid.slice(16, 20)}-${uaid.slice(20)}`;
    for (const spelling of [dashed.toUpperCase(), uaid.toUpperCase(), `{${dashed}}`, `urn:uuid:${dashed}`]) {
      const { port, session, say } = w.open();
      await say(hello(spelling));
      expect(port.take()[0]!['uaid']).toBe(uaid);
      await session.onClosed();
    }
  });

  it('removes a uaid idle longer than the limit at its hello (controllable clock)', async () => {
    const w = world();
    const { uaid } = await known(w);
    w.tick(59 * DAY);
    const a = w.open();
    await a.say(hello(uaid));
    expect(a.port.take()[0]!['uaid']).toBe(uaid);
    await a.session.onClosed();
    w.tick(61 * DAY);
    const b = w.open();
    await b.say(hello(uaid));
    expect(b.port.take()[0]!['uaid']).not.toBe(uaid);
    expect(await w.store.getUser(uaid)).toBeNull();
  });

  it('delivers stored messages in batches, the next only once the previous is acked, and deletes acked ones', async () => {
    const w = world({ storageBatch: 2 });
    const { uaid, chid } = await known(w);
    for (const t of ['a', 'b', 'c']) await w.store.saveMessage(w.message(uaid, chid, t));
    // hello answered, then the first batch in one write
    const c = w.open();
    await c.say(hello(uaid));
    const frames = c.port.take();
    expect(frames.map((f) => f['messageType'])).toEqual(['hello', 'notification', 'notification']);
    expect(c.port.writes).toBe(2);
    await c.say(ack([chid, 'v-a']));
    expect(c.port.take()).toEqual([]);
    await c.say(ack([chid, 'v-b']));
    expect(c.port.take().map((f) => f['data'])).toEqual(['c']);
    expect(await w.store.countMessages(uaid, 10)).toBe(1);
  });

  it('matches an ack by version alone, as autopush does', async () => {
    const w = world();
    const { uaid, chid } = await known(w);
    await w.store.saveMessage(w.message(uaid, chid, 'x'));
    const { port, say } = w.open();
    await say(hello(uaid));
    port.take();
    await say(ack([channelId(), 'v-x']));
    expect(await w.store.countMessages(uaid, 10)).toBe(0);
  });

  it('a nack moves flow control on and keeps the message stored for the next session', async () => {
    const w = world({ storageBatch: 1 });
    const { uaid, chid } = await known(w);
    for (const t of ['a', 'b']) await w.store.saveMessage(w.message(uaid, chid, t));
    const { port, say } = w.open();
    await say(hello(uaid));
    expect(port.take().map((f) => f['data'])).toEqual([undefined, 'a']);
    await say(JSON.stringify({ messageType: 'nack', version: 'v-a', code: 302 }));
    expect(port.take().map((f) => f['data'])).toEqual(['b']);
    expect(await w.store.countMessages(uaid, 10)).toBe(2);
  });

  it('resets the uaid when a run of reads passes msg_limit: earlier batches delivered, then close 1000', async () => {
    const w = world({ msgLimit: 3, storageBatch: 2 });
    const { uaid, chid } = await known(w);
    for (const t of ['a', 'b', 'c', 'd', 'e']) await w.store.saveMessage(w.message(uaid, chid, t));
    const { port, say } = w.open();
    await say(hello(uaid));
    expect(port.take().map((f) => f['data'])).toEqual([undefined, 'a', 'b']);
    await say(ack([chid, 'v-a'], [chid, 'v-b']));
    expect(port.take()).toEqual([]);
    expect(port.closedWith?.code).toBe(CloseCode.normal);
    expect(await w.store.getUser(uaid)).toBeNull();
  });

  it('a newer connection of the same uaid takes over: the older one is closed with 1000', async () => {
    const w = world();
    const { uaid } = await known(w);
    const a = w.open();
    await a.say(hello(uaid));
    const b = w.open();
    await b.say(hello(uaid));
    expect(a.port.closedWith?.code).toBe(CloseCode.normal);
    expect(w.ctx.clients.get(uaid)).toBe(b.session);
  });

  it("tells the node a uaid moved from to drop its older connection, but not this node's other worker (the mesh does)", async () => {
    const ME = 'http://me.internal:9000';
    const dropped: string[] = [];
    const peers = { dropOlder: async (peer: string) => (dropped.push(peer), true) } as unknown as PeerClient;
    const w = world({ peerId: workerPeerId(ME, 1), peers });
    const { uaid } = await known(w);
    for (const [recorded, told] of [
      ['http://other.internal:9000', ['http://other.internal:9000']],
      [workerPeerId('http://other.internal:9000', 1), [workerPeerId('http://other.internal:9000', 1)]],
      [workerPeerId(ME, 2), []],
      [workerPeerId(ME, 1), []],
    ] as const) {
      const user = (await w.store.getUser(uaid))!;
      await w.store.updateUser({ ...user, peerId: recorded });
      dropped.length = 0;
      const c = w.open();
      await c.say(hello(uaid));
      expect(dropped, recorded).toEqual(told);
      // This session's hello recorded its own worker's peer id.
      expect((await w.store.getUser(uaid))!.peerId).toBe(workerPeerId(ME, 1));
      await c.session.onClosed();
    }
  });

  it('sends directly until maxUnacked are in flight or the socket buffer is over its high-water mark', async () => {
    const w = world({ maxUnacked: 2, wsHighWater: 1000 });
    const { uaid, chid } = await known(w);
    const { port, session, say } = w.open();
    await say(hello(uaid));
    port.take();
    expect(session.deliverDirect(w.message(uaid, chid, '1'))).toBe(true);
    expect(session.deliverDirect(w.message(uaid, chid, '2'))).toBe(true);
    expect(session.deliverDirect(w.message(uaid, chid, '3'))).toBe(false);
    await say(ack([chid, 'v-1'], [chid, 'v-2']));
    port.buffered = 5000;
    expect(session.deliverDirect(w.message(uaid, chid, '4'))).toBe(false);
    port.buffered = 0;
    expect(session.deliverDirect(w.message(uaid, chid, '5'))).toBe(true);
  });

  it('deletes a durable direct message on ack, and never sends it twice when it later reads storage', async () => {
    const w = world();
    const { uaid, chid } = await known(w);
    const { port, session, say } = w.open();
    await say(hello(uaid));
    port.take();
    const direct = w.message(uaid, chid, 'direct');
    const save = new DirectSave((n) => w.store.saveMessage(n), direct);
    expect(session.deliverDirect(direct, { save })).toBe(true);
    await save.safe;
    expect(await save.begun).toBe(true);
    // A stored message arrives: the session reads storage, which also holds the unacked direct one.
    await w.store.saveMessage(w.message(uaid, chid, 'stored'));
    session.storageChanged();
    await session.idle();
    expect(port.take().map((f) => f['data'])).toEqual(['direct', 'stored']);
    await say(ack([chid, 'v-direct'], [chid, 'v-stored']));
    expect(await w.store.countMessages(uaid, 10)).toBe(0);
  });

  it("handles the client's next frame while an ack's delete is still committing, and never resends the acked message", async () => {
    const w = world();
    const { uaid, chid } = await known(w);
    const { port, session } = w.open();
    await session.onMessage(parse(hello(uaid)));
    port.take();
    const direct = w.message(uaid, chid, 'direct');
    const save = new DirectSave((n) => w.store.saveMessage(n), direct);
    expect(session.deliverDirect(direct, { save })).toBe(true);
    await save.safe;
    port.take();
    // The store's delete hangs until the test lets it go.
    let release!: () => void;
    const forgetMessage = w.store.forgetMessage.bind(w.store);
    w.store.forgetMessage = (m) => new Promise<void>((r) => (release = r)).then(() => forgetMessage(m));
    await session.onMessage(parse(ack([chid, 'v-direct'])));
    // A register sent after the ack is answered although the delete has not committed.
    const next = channelId();
    await session.onMessage(parse(register(next)));
    expect(port.take().map((f) => [f['messageType'], f['status']])).toEqual([['register', 200]]);
    // A storage read in the meantime still finds the acked message, and does not send it again.
    session.storageChanged();
    await session.onMessage(parse(JSON.stringify({ messageType: 'ping' })));
    expect(port.take()).toEqual([{}]);
    expect(await w.store.countMessages(uaid, 10)).toBe(1);
    release();
    await session.idle();
    expect(await w.store.countMessages(uaid, 10)).toBe(0);
  });

  it('reads a message saved behind its cursor once told, getting past what it sent in one read even while pushes keep coming', async () => {
    const w = world({ storageBatch: 2 });
    const { uaid, chid } = await known(w);
    const { port, session, say } = w.open();
    await say(hello(uaid));
    port.take();
    const direct = async (text: string) => {
      const n = w.message(uaid, chid, text);
      const save = new DirectSave((m) => w.store.saveMessage(m), n);
      expect(session.deliverDirect(n, { save })).toBe(true);
      await save.safe;
    };
    for (const text of ['d1', 'd2', 'd3']) await direct(text);
    // Stamped now, saved only later: a push whose hop to this worker or node took a while.
    const late = w.message(uaid, chid, 'late');
    for (const text of ['d4', 'd5', 'd6']) await direct(text);
    expect(port.take()).toHaveLength(6);
    // A read of storage moves the cursor past every message there, all of them sent already.
    session.storageChanged();
    await session.idle();
    expect(port.take()).toEqual([]);
    // From now on a push is stored during every read of storage (a client that cannot keep up with its pushes).
    const fetchMessages = w.store.fetchMessages.bind(w.store);
    let reads = 0;
    w.store.fetchMessages = (...args) => {
      if (++reads > 50) throw new Error('the session never got past the messages it had sent');
      session.storageChanged();
      return fetchMessages(...args);
    };
    await w.store.saveMessage(late);
    session.storageChanged();
    await settle();
    await session.idle();
    expect(port.take().map((f) => f['data'])).toEqual(['late']);
    expect(reads).toBeLessThanOrEqual(3);
  });

  it("in a fleet, notifies the node of the uaid's newer connection of what an older one left in storage (autopush-rs)", async () => {
    const notified: [string, string][] = [];
    const peers = { notify: (peer: string, u: string) => (notified.push([peer, u]), Promise.resolve(true)), dropOlder: () => Promise.resolve(true) };
    const w = world({ peerId: 'http://a.internal:9000', peers: peers as unknown as PeerClient, ackWaitMs: 1000 });
    const { uaid, chid } = await known(w);
    const older = async () => {
      const c = w.open();
      await c.say(hello(uaid));
      // What an earlier connection left is read at hello; acked, so this one takes direct messages.
      const stored = c.port.take().filter((f) => f['messageType'] === 'notification');
      if (stored.length > 0) await c.say(ack(...stored.map((f): [string, string] => [chid, f['version'] as string])));
      const n = w.message(uaid, chid, `unacked-${notified.length}`);
      // Sent, not acked, its save still waiting for the ack: saved when the connection ends.
      expect(c.session.deliverDirect(n, { save: new DirectSave((m) => w.store.saveMessage(m), n) })).toBe(true);
      return c.session;
    };
    // No newer connection: the router record still names this one, and no node is told.
    const alone = await older();
    await alone.onClosed();
    await settle();
    expect(notified).toEqual([]);
    // The client said hello on node b meanwhile (and may have read storage before this save): b is told.
    const moved = await older();
    w.tick(5);
    const user = (await w.store.getUser(uaid))!;
    await w.store.updateUser({ ...user, connectedAt: user.connectedAt + 5, peerId: 'http://b.internal:9000' });
    await moved.onClosed();
    await settle();
    expect(notified).toEqual([['http://b.internal:9000', uaid]]);
    expect(await w.store.countMessages(uaid, 10)).toBe(1);
  });

  it('stores an unacked direct message that was not durable at disconnect, re-stamped so a newer session reads it', async () => {
    const w = world();
    const { uaid, chid } = await known(w);
    const a = w.open();
    await a.say(hello(uaid));
    a.session.deliverDirect(w.message(uaid, chid, 'volatile'));
    await a.session.onClosed();
    const b = w.open();
    await b.say(hello(uaid));
    expect(b.port.take().map((f) => f['data'])).toEqual([undefined, 'volatile']);
  });

  describe('the ack wait (README "Durability"): a promptly acked direct message is never written', () => {
    /** A session that has said hello and acked nothing yet, and a direct sender with a save. */
    async function connected(wait: number) {
      const w = world({ ackWaitMs: wait });
      const { uaid, chid } = await known(w);
      const c = w.open();
      await c.say(hello(uaid));
      const send = (text: string) => {
        const n = w.message(uaid, chid, text);
        const save = new DirectSave((m) => w.store.saveMessage(m), n);
        expect(c.session.deliverDirect(n, { save })).toBe(true);
        return save;
      };
      return { w, uaid, chid, c, send };
    }

    /** The same after the client has acked once at once (its estimate: 0 ms). */
    async function acking(wait: number) {
      const connection = await connected(wait);
      const { chid, c, send } = connection;
      // No estimate yet: the first message waits for its ack too, and the ack releases it unwritten.
      const first = send('first');
      expect(first.begun).toBeNull();
      await c.say(ack([chid, 'v-first']));
      await first.safe;
      expect(first.begun).toBeNull();
      c.port.take();
      return connection;
    }

    it('a client that has acked nothing yet and lets its first wait run out: saved then, and every later one at once', async () => {
      const { chid, c, send } = await connected(20);
      const first = send('first');
      const second = send('second');
      // Both wait: nothing is known of this client yet.
      expect([first.begun, second.begun]).toEqual([null, null]);
      await Promise.all([first.safe, second.safe]);
      expect([await first.begun, await second.begun]).toEqual([true, true]);
      // The wait ran out without an ack: the client counts as slow, and its next message is saved at once.
      const third = send('third');
      expect(third.begun).not.toBeNull();
      // Three prompt acks bring the estimate (the whole wait, 20 ms, moved a quarter of the way each time) back under
      // half of it.
      await c.say(ack([chid, 'v-first'], [chid, 'v-second'], [chid, 'v-third']));
      expect(send('fourth').begun).toBeNull();
    });

    it('a client that acks within half the wait: its message waits for the ack, and is never written', async () => {
      const { w, uaid, chid, c, send } = await acking(60_000);
      const save = send('prompt');
      expect(save.begun).toBeNull();
      expect(c.port.take().map((f) => f['data'])).toEqual(['prompt']);
      await c.say(ack([chid, 'v-prompt']));
      // The sender's answer is released by the ack, with nothing written: this message's write and the first one's spared.
      await save.safe;
      expect(save.begun).toBeNull();
      expect(await w.store.countMessages(uaid, 10)).toBe(0);
      expect((await w.ctx.metrics.directWritesSkipped.get()).values[0]?.value).toBe(2);
    });

    it('no ack within the wait: the message is saved then, and the ack that comes later deletes it', async () => {
      const { w, uaid, chid, c, send } = await acking(20);
      const save = send('late');
      expect(save.begun).toBeNull();
      // The answer waits for the save the wait's end began.
      await save.safe;
      expect(await save.begun).toBe(true);
      expect((await w.store.fetchMessages(uaid, 0, 10, Date.now())).map((n) => n.data)).toEqual(['late']);
      await c.say(ack([chid, 'v-late']));
      expect(await w.store.countMessages(uaid, 10)).toBe(0);
    });

    it('a client slow to ack (over half the wait) gets every message saved at once', async () => {
      const { w, chid, c, send } = await acking(60_000);
      const slow = send('slow');
      w.tick(40_000);
      await c.say(ack([chid, 'v-slow']));
      // Its estimate is now 10 s (a quarter of the way to 40 s), still within half the wait: the next one waits too.
      // A second ack, 100 s late, takes the estimate to 32.5 s, over half the wait.
      const again = send('again');
      expect(again.begun).toBeNull();
      w.tick(100_000);
      await c.say(ack([chid, 'v-again']));
      await Promise.all([slow.safe, again.safe]);
      const atOnce = send('saved-at-once');
      expect(atOnce.begun).not.toBeNull();
      expect(await atOnce.begun).toBe(true);
    });

    it('a connection that ends before the ack saves the waiting message, re-stamped, before its sender is answered', async () => {
      const { w, uaid, c, send } = await acking(60_000);
      const save = send('unacked');
      expect(save.begun).toBeNull();
      await c.session.onClosed();
      await save.safe;
      expect(await save.begun).toBe(true);
      const next = w.open();
      await next.say(hello(uaid));
      expect(next.port.take().map((f) => f['data'])).toEqual([undefined, 'unacked']);
    });

    it('a connection that ends with several messages waiting saves each one re-stamped, however slow the store', async () => {
      const { w, c, send } = await acking(20);
      const saves = [send('a'), send('b')];
      // Every ordering key from here on is a re-stamp.
      const restampedFrom = w.ctx.nextSeq();
      // The store holds every save until both have been asked for: the first one outlasts the second one's wait.
      const seqs: number[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let bothAsked!: () => void;
      const asked = new Promise<void>((r) => (bothAsked = r));
      const saveMessage = w.store.saveMessage.bind(w.store);
      w.store.saveMessage = async (m) => {
        seqs.push(m.seq);
        if (seqs.length === 2) bothAsked();
        await gate;
        return saveMessage(m);
      };
      const closing = c.session.onClosed();
      await asked;
      release();
      await closing;
      await Promise.all(saves.map((save) => save.safe));
      expect(seqs.every((seq) => seq > restampedFrom)).toBe(true);
    });

    it('a nack saves the waiting message at once (a nacked message stays stored until its TTL ends)', async () => {
      const { w, uaid, c, send } = await acking(60_000);
      const save = send('nacked');
      await c.say(JSON.stringify({ messageType: 'nack', version: 'v-nacked', code: 301 }));
      await save.safe;
      expect(await save.begun).toBe(true);
      expect(await w.store.countMessages(uaid, 10)).toBe(1);
    });
  });

  it('refuses a register beyond maxChannels with status 500', async () => {
    const w = world({ maxChannels: 2 });
    const { port, say } = w.open();
    await say(hello());
    port.take();
    await say(register(channelId()));
    await say(register(channelId()));
    await say(register(channelId()));
    expect(port.take().map((f) => f['status'])).toEqual([200, 200, 500]);
  });

  it('serves Megaphone broadcasts: hello delta and errors, broadcast_subscribe, and changes to subscribers only', async () => {
    const w = world();
    w.broadcasts.update({ 'remote-settings/monitor_changes': '"10"', 'other/id': 'v1' });
    const { port, session, say } = w.open();
    await say(hello(undefined, { 'remote-settings/monitor_changes': '"9"', 'missing/id': 'x' }));
    expect(port.take()[0]!['broadcasts']).toEqual({ 'remote-settings/monitor_changes': '"10"', errors: { 'missing/id': 'Broadcast not found' } });
    await say(JSON.stringify({ messageType: 'broadcast_subscribe', broadcasts: { 'other/id': 'v1' } }));
    expect(port.take()).toEqual([]);
    session.broadcastChanged(
      new Map([
        ['other/id', 'v2'],
        ['not/mine', 'z'],
      ]),
    );
    expect(port.take()).toEqual([{ messageType: 'broadcast', broadcasts: { 'other/id': 'v2' } }]);
    const other = w.open();
    await other.say(hello());
    other.port.take();
    other.session.broadcastChanged(new Map([['other/id', 'v3']]));
    expect(other.port.take()).toEqual([]);
  });
});

/**
 * Delivery against a model (fast-check): generated runs of pushes (TTL > 0 and TTL 0, to a connected client or not),
 * acks, nacks, disconnects, reconnects and takeovers of one user agent, through the real sessions, deliverDurably and an
 * in-memory SQLite store, with small flow-control bounds and an ack wait that saves at once or only when the
 * connection ends. What README "Durability" promises:
 * - a session never sends one message twice;
 * - a message once acked never comes back, in any later session;
 * - every accepted TTL > 0 message reaches the client: after the run, one more session that acks all it gets
 *   receives every accepted message not acked before;
 * - every push settles (its sender is answered), and a TTL 0 message is never delivered from storage.
 */
describe('delivery, for generated runs of pushes, acks, nacks and reconnects', () => {
  const op = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('push' as const), channel: fc.nat(1), ttl0: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('nack' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('ackAll' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('disconnect' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('connect' as const) }) },
    // A new connection while the old one is open: the newer hello takes over, and the older session ends.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('takeover' as const) }) },
    // The ack waits running out: every direct message still waiting for its ack begins its save.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('lapse' as const) }) },
  );

  it('never sends twice, never brings back an acked message, and loses no accepted one', async () => {
    // The ack wait's timers are the test's to run (`lapse`); the store's group commits keep the real setImmediate.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40, size: 'max' }), fc.constantFrom(0, 60_000), async (ops, ackWaitMs) => {
        const w = world({ maxUnacked: 3, storageBatch: 2, ackWaitMs });
        const { uaid, chid } = await known(w);
        const chids = [chid];
        let text = 0;
        /** TTL > 0 messages whose push was accepted, durable from then on; TTL 0 ones that were sent. */
        const accepted = new Set<string>();
        const ttl0 = new Set<string>();
        const pushes: Promise<unknown>[] = [];
        const client = new ModelClient();
        type Connection = ReturnType<typeof w.open>;
        let current = null as Connection | null;
        /** The session's answer to the last client message: its first frame that is not a notification (kept aside). */
        const answerOf = (s: Connection) => {
          const frames = s.port.take();
          const i = frames.findIndex((f) => f['messageType'] !== 'notification');
          s.port.frames.push(...frames.filter((_, j) => j !== i));
          return frames[i];
        };

        const connect = async () => {
          const s = w.open();
          current = s;
          client.connected();
          await s.say(hello(uaid));
          expect(answerOf(s)).toMatchObject({ messageType: 'hello', uaid, status: 200 });
          if (chids.length < 2) {
            chids.push(channelId());
            await s.say(register(chids[1]!));
            expect(answerOf(s)).toMatchObject({ messageType: 'register', status: 200 });
          }
        };
        const collect = () => {
          if (current) client.take(current.port.take());
        };
        const answer = async (version: string, kind: 'ack' | 'nack') => {
          const channelID = client.answer(version, kind);
          await current!.say(kind === 'ack' ? ack([channelID, version]) : JSON.stringify({ messageType: 'nack', version, code: 301 }));
        };

        await connect();
        for (const o of ops) {
          if (o.kind === 'push') {
            const n = w.message(uaid, chids[o.channel % chids.length]!, `m${++text}`, o.ttl0 ? 0 : 600);
            const holder = w.ctx.clients.get(uaid);
            // The endpoint's local path: the connected client durably, else storage (TTL 0: dropped).
            const pushed = holder
              ? deliverDurably(w.store, w.ctx.clients, holder, n)
              : n.ttl > 0
                ? w.store.saveMessage(n).then(() => 'stored')
                : Promise.resolve('dropped');
            if (n.ttl > 0) accepted.add(n.version);
            else ttl0.add(n.version);
            pushes.push(pushed);
          } else if (o.kind === 'disconnect') {
            if (current) await current.session.onClosed();
            collect();
            current = null;
          } else if (o.kind === 'connect' || o.kind === 'takeover') {
            if (o.kind === 'takeover' && current) {
              collect();
              const old = current;
              w.tick(1);
              await connect();
              // The registry closed the older session (1000); its end stores what it held unacked.
              expect(old.port.closedWith?.code).toBe(CloseCode.normal);
              await old.session.closed();
            } else if (!current) await connect();
          } else if (o.kind === 'lapse') {
            vi.advanceTimersByTime(ackWaitMs);
          } else if (current) {
            const versions = [...client.unacked.keys()];
            if (o.kind === 'ackAll') for (const v of versions) await answer(v, 'ack');
            else if (versions.length > 0) await answer(versions[o.pick % versions.length]!, o.kind);
          }
          await settle();
          collect();
        }
        // One more session that acks everything it gets, until nothing more comes.
        if (current) await current.session.onClosed();
        await settle();
        await connect();
        for (;;) {
          await settle();
          collect();
          const versions = [...client.unacked.keys()];
          if (versions.length === 0) break;
          for (const v of versions) await answer(v, 'ack');
        }
        client.expectNoneLost(accepted);
        for (const v of ttl0) expect(client.received, `TTL 0 ${v} came from storage`).not.toContain(v);
        await current!.session.onClosed();
        await Promise.all(pushes);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Any sequence of client messages (typed, as the parser gives them: right and wrong uaids, channel ids, keys,
 * versions and codes), with pushes arriving between them: the session answers each register and unregister once,
 * with its channelID, and never fails (a close with 1011, internal error, is a bug here: the store never fails).
 */
describe('the session, for generated client messages', () => {
  const { publicKey } = generateVapidKeys();
  const chidArb = fc.oneof(fc.constantFrom(...Array.from({ length: 3 }, () => channelId())), fc.uuid(), fc.constantFrom('', 'not-a-uuid', 'A'.repeat(36)));
  const versionArb = fc.oneof(
    fc.nat(20).map((i) => `v-m${i}`),
    fc.string({ maxLength: 8 }),
  );
  const codeArb = fc.option(fc.oneof(fc.constantFrom(100, 101, 102, 301, 302, 303), fc.integer()), { nil: null });
  const broadcastsArb = fc
    .dictionary(fc.constantFrom('remote-settings/monitor_changes', 'x/y', ''), fc.string({ maxLength: 6 }), { maxKeys: 3 })
    .map((o) => new Map(Object.entries(o)));
  // A second hello, or a second ping within the minimum interval, closes the session (1008): those come rarely.
  const messageArb: fc.Arbitrary<ClientMessage | { push: number }> = fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({
        messageType: fc.constant('hello' as const),
        uaid: fc.option(fc.constantFrom('0'.repeat(32), 'f'.repeat(32)), { nil: null }),
        useWebpush: fc.boolean(),
        broadcasts: broadcastsArb,
      }),
    },
    {
      weight: 10,
      arbitrary: fc.record({
        messageType: fc.constant('register' as const),
        channelID: chidArb,
        key: fc.option(fc.constantFrom(publicKey, '', 'bad key'), { nil: null }),
      }),
    },
    { weight: 5, arbitrary: fc.record({ messageType: fc.constant('unregister' as const), channelID: chidArb, code: codeArb }) },
    {
      weight: 8,
      arbitrary: fc.record({
        messageType: fc.constant('ack' as const),
        updates: fc.array(fc.record({ channelID: chidArb, version: versionArb, code: codeArb }), { maxLength: 3 }),
      }),
    },
    { weight: 4, arbitrary: fc.record({ messageType: fc.constant('nack' as const), version: fc.option(versionArb, { nil: null }), code: codeArb }) },
    { weight: 1, arbitrary: fc.record({ messageType: fc.constant('ping' as const) }) },
    { weight: 3, arbitrary: fc.record({ messageType: fc.constant('broadcast_subscribe' as const), broadcasts: broadcastsArb }) },
    { weight: 12, arbitrary: fc.record({ push: fc.nat(2) }) },
  );

  it('answers each register and unregister once and never fails', async () => {
    // Mostly a session that says hello first: anything else before it is closed at once (1008).
    const helloFirst = fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });
    // Runs whose session was still open after its last message: most runs must reach deep into their messages.
    let openToTheEnd = 0;
    await fc.assert(
      fc.asyncProperty(helloFirst, fc.array(messageArb, { maxLength: 30, size: 'max' }), fc.constantFrom(0, 60_000), async (first, rest, ackWaitMs) => {
        const messages = first ? [{ messageType: 'hello', uaid: null, useWebpush: true, broadcasts: new Map() } as ClientMessage, ...rest] : rest;
        const w = world({ maxUnacked: 2, storageBatch: 2, ackWaitMs });
        w.broadcasts.update({ 'remote-settings/monitor_changes': 'v1' });
        const { port, session, say } = w.open();
        const pushes: Promise<unknown>[] = [];
        let text = 0;
        for (const m of messages) {
          if ('push' in m) {
            // A push to one of the channels this session may have registered; refused ones (no such channel) are fine.
            const client = w.ctx.clients.get(session.uaid);
            const channel = [...(client?.channels.keys() ?? [])][m.push];
            if (client && channel)
              pushes.push(deliverDurably(w.store, w.ctx.clients, client, w.message(session.uaid, channel, `m${text++}`, m.push === 2 ? 0 : 600)));
            continue;
          }
          await say(m);
          const answers = port.take().filter((f) => f['messageType'] === m.messageType);
          if ((m.messageType === 'register' || m.messageType === 'unregister') && port.closedWith === null) {
            expect(answers, JSON.stringify(m)).toHaveLength(1);
            expect(answers[0]!['channelID']).toBe(m.channelID);
          }
          expect(port.closedWith?.code, JSON.stringify(m)).not.toBe(CloseCode.internalError);
        }
        if (port.closedWith === null) openToTheEnd++;
        await session.onClosed();
        await Promise.all(pushes);
        expect(port.closedWith?.code).not.toBe(CloseCode.internalError);
      }),
      { numRuns: 200 },
    );
    expect(openToTheEnd).toBeGreaterThan(50);
  });
});
