// The webpush router (src/webpush/endpoint/router.ts) in process, on a real SQLite store, for the paths that
// otherwise run only inside `pushgate serve` children: a sibling worker holding the client (IPC answers
// delivered, stored, busy, absent, no-channel), a fleet peer holding it (the same outcomes, and the route cache),
// a holder that saved and then never answered, idle-expired and bridged records, and per-worker seq lanes. The
// sibling and peer are recorders standing in for the IPC link and the peer HTTP client (saving into the store
// where the holder would), which test/cluster and test/webpush/endpoint/peer-client cover.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Siblings } from '../../../src/cluster/worker.js';
import type { OfferOutcome } from '../../../src/webpush/connection/clients.js';
import { Metrics } from '../../../src/ops/metrics.js';
import { openStore, type Notification, type Store } from '../../../src/store/index.js';
import { ClientRegistry } from '../../../src/webpush/connection/clients.js';
import type { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { type PushRequest, WebPushRouter } from '../../../src/webpush/endpoint/router.js';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { workerPeerId } from '../../../src/webpush/protocol/peer-link.js';

const UAID = 'a'.repeat(32);
const CH = '11111111-2222-4333-8444-555555555555';
const ME = 'http://me.internal:9000';
const OTHER = 'http://other.internal:9000';
const DAY = 86_400_000;

const request = (ttl = 60): PushRequest => ({ uaid: UAID, channelID: CH, ttl, topic: null, urgency: 'normal', data: null, headers: null });

/** A holder's answer; with `saves`, the recorder saves the message into the store first, as a holder does. */
function siblings(answer: OfferOutcome, saves: Store | null = null) {
  const pushed: Notification[] = [];
  const s: Siblings = {
    push: async (n) => {
      pushed.push(n);
      if (saves) await saves.saveMessage(n);
      return answer;
    },
    notify: async () => false,
    dropOlder: () => {},
  };
  return { s, pushed };
}

type PeerAnswer = Awaited<ReturnType<PeerClient['push']>>;

function peers(answers: Record<string, PeerAnswer>, saves: Store | null = null) {
  const pushed: string[] = [];
  const notified: string[] = [];
  const p = {
    push: async (peer: string, n: Notification) => {
      pushed.push(peer);
      if (saves) await saves.saveMessage(n);
      return answers[peer] ?? 'absent';
    },
    notify: async (peer: string, uaid: string) => (notified.push(`${peer} ${uaid}`), true),
  } as unknown as PeerClient;
  return { p, pushed, notified };
}

describe('WebPushRouter', () => {
  let store: Store;
  let now: number;
  const fernet = new MultiFernet([FernetKey.generate()]);
  const make = (opts: { siblings?: Siblings; peers?: PeerClient; msgLimit?: number; peerId?: string } = {}) =>
    new WebPushRouter(
      store,
      new ClientRegistry(),
      fernet,
      new Metrics(),
      opts.msgLimit ?? 100,
      opts.peerId ?? (opts.peers ? ME : null),
      opts.peers ?? null,
      null,
      opts.siblings ?? null,
      {
        userMaxIdleMs: 60 * DAY,
        storageBatch: 10,
        now: () => now,
      },
    );

  beforeEach(async () => {
    store = await openStore('sqlite::memory:');
    now = Date.now();
    await store.addUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: null });
    await store.addChannel(UAID, { channelID: CH, keyHash: null });
  });
  afterEach(() => store.close());

  describe('with sibling workers', () => {
    it('delivers through the worker holding the client and writes nothing itself: that worker saved it', async () => {
      const { s, pushed } = siblings('delivered');
      const saves = vi.spyOn(store, 'saveMessage');
      await expect(make({ siblings: s }).route(request())).resolves.toMatchObject({ path: 'direct' });
      expect(pushed.map((n) => [n.uaid, n.channelID])).toEqual([[UAID, CH]]);
      expect(saves).not.toHaveBeenCalled();
    });

    it('answers 404-style invalidSubscription without writing when the holder has no such channel', async () => {
      const { s } = siblings('no-channel');
      const saves = vi.spyOn(store, 'saveMessage');
      await expect(make({ siblings: s }).route(request())).rejects.toMatchObject({ kind: 'invalidSubscription' });
      expect(saves).not.toHaveBeenCalled();
    });

    it('leaves a message the holder stored to it, and bounds the backlog', async () => {
      const { s } = siblings('stored', store);
      const saves = vi.spyOn(store, 'saveMessage');
      const router = make({ siblings: s, msgLimit: 1 });
      for (let i = 0; i < 11; i++) await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      // The recorder's saves only: the endpoint wrote none.
      expect(saves).toHaveBeenCalledTimes(11);
      expect(await store.countMessages(UAID, 20)).toBe(11);
      await router.route(request());
      expect(await store.getUser(UAID)).toBeNull();
    });

    it('stores for a holder that did not save (busy), and drops a TTL 0 message instead', async () => {
      const { s } = siblings('busy');
      const router = make({ siblings: s });
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      await expect(router.route(request(0))).resolves.toMatchObject({ path: 'dropped' });
      expect(await store.countMessages(UAID, 10)).toBe(1);
    });

    it('a worker that saved and died before answering (the primary answers absent) leaves exactly one copy', async () => {
      const { s } = siblings('absent', store);
      await expect(make({ siblings: s }).route(request())).resolves.toMatchObject({ path: 'stored' });
      expect(await store.countMessages(UAID, 10)).toBe(1);
    });

    it('falls back to the store when no worker holds the client', async () => {
      const { s } = siblings('absent');
      await expect(make({ siblings: s }).route(request())).resolves.toMatchObject({ path: 'stored' });
      expect(await store.countMessages(UAID, 10)).toBe(1);
    });
  });

  describe('in a fleet', () => {
    it('hands the message to the peer the record names, then goes there straight from the route cache', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const { p, pushed } = peers({ [OTHER]: 'delivered' });
      const router = make({ peers: p });
      const saves = vi.spyOn(store, 'saveMessage');
      await expect(router.route(request())).resolves.toMatchObject({ path: 'direct' });
      expect(saves).not.toHaveBeenCalled();
      // The cache answers even after the record no longer names the peer: no store read on that hop.
      await store.removeUser(UAID);
      await expect(router.route(request())).resolves.toMatchObject({ path: 'direct' });
      expect(pushed).toEqual([OTHER, OTHER]);
    });

    it("leaves this node's other workers to the mesh: a record naming one is no link to hop to", async () => {
      const { p, pushed } = peers({ [workerPeerId(ME, 2)]: 'delivered', [workerPeerId(OTHER, 2)]: 'delivered' });
      // The workers' directory (asked first, without the store) knows of no worker holding the client: the record
      // naming worker 2 of this node is stale, and the message is stored, with no link opened to this node itself.
      const { s, pushed: offered } = siblings('absent');
      const router = make({ peers: p, siblings: s, peerId: workerPeerId(ME, 1) });
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: workerPeerId(ME, 2) });
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      expect([offered.length, pushed]).toEqual([1, []]);
      // The same worker index on another node is another node.
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: workerPeerId(OTHER, 2) });
      await expect(router.route(request())).resolves.toMatchObject({ path: 'direct' });
      expect([offered.length, pushed]).toEqual([2, [workerPeerId(OTHER, 2)]]);
    });

    it('drops an expired cache entry without hopping or writing, and lets the user record decide', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const { p, pushed } = peers({ [OTHER]: 'delivered' });
      const router = make({ peers: p });
      await router.route(request());
      const saves = vi.spyOn(store, 'saveMessage');
      await store.removeUser(UAID);
      now += 31_000;
      await expect(router.route(request())).rejects.toMatchObject({ kind: 'invalidSubscription' });
      expect(pushed).toEqual([OTHER]);
      expect(saves).not.toHaveBeenCalled();
    });

    it('renews a cache entry each time its peer answers for the client, and not when the peer does not answer', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const answers: Record<string, PeerAnswer> = { [OTHER]: 'delivered' };
      const { p, pushed } = peers(answers);
      const router = make({ peers: p });
      await router.route(request());
      const reads = vi.spyOn(store, 'getUser');
      // A push every 20 s for a minute: each answer renews the entry, so none of them reads the record.
      for (let i = 0; i < 3; i++) {
        now += 20_000;
        await expect(router.route(request())).resolves.toMatchObject({ path: 'direct' });
      }
      expect([pushed.length, reads.mock.calls.length]).toEqual([4, 0]);
      // A peer that took the push and did not answer renews nothing: 31 s on, the record decides again.
      answers[OTHER] = 'unanswered';
      now += 20_000;
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      answers[OTHER] = 'delivered';
      now += 11_000;
      await expect(router.route(request())).resolves.toMatchObject({ path: 'direct' });
      expect([pushed.length, reads.mock.calls.length]).toEqual([6, 1]);
    });

    it('takes the full path when the cached peer no longer holds the client', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const answers: Record<string, PeerAnswer> = { [OTHER]: 'delivered' };
      const { p, pushed } = peers(answers, store);
      const router = make({ peers: p });
      await router.route(request());
      answers[OTHER] = 'absent';
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      // Cached hop, then the record's hop, both refused; the stale route is cleared from the record.
      expect(pushed).toEqual([OTHER, OTHER, OTHER]);
      expect((await store.getUser(UAID))?.peerId).toBeNull();
      // The first message stays stored until the peer's client acks it (the recorder never does); the second, which
      // the recorder saved twice as a holder that never answered would, and the endpoint once, is there once.
      expect(await store.countMessages(UAID, 10)).toBe(2);
    });

    it('stores for a peer that did not save (busy) and asks it to look at storage', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const { p, notified } = peers({ [OTHER]: 'busy' });
      await expect(make({ peers: p }).route(request())).resolves.toMatchObject({ path: 'stored' });
      expect(notified).toEqual([`${OTHER} ${UAID}`]);
      expect((await store.getUser(UAID))?.peerId).toBe(OTHER);
      expect(await store.countMessages(UAID, 10)).toBe(1);
    });

    it('saves a copy, and only that, when the peer took the push and did not answer in time', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      // The recorder saves first, as a holder whose answer was late does: one copy, the route kept, nobody notified.
      const { p, pushed, notified } = peers({ [OTHER]: 'unanswered' }, store);
      const router = make({ peers: p });
      const reads = vi.spyOn(store, 'getUser');
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      await expect(router.route(request(0))).resolves.toMatchObject({ path: 'dropped' });
      expect(await store.countMessages(UAID, 10)).toBe(1);
      expect(notified).toEqual([]);
      expect((await store.getUser(UAID))?.peerId).toBe(OTHER);
      expect(pushed).toEqual([OTHER, OTHER]);
      // A silent peer is not cached as the client's route: the second push read the record again (two reads, and the
      // assertion's own third), so a client that reconnected elsewhere meanwhile would be found there.
      expect(reads).toHaveBeenCalledTimes(3);
    });

    it('leaves a message the peer stored to it, without a write or a notify', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 1000, peerId: OTHER });
      const { p, notified } = peers({ [OTHER]: 'stored' }, store);
      const router = make({ peers: p });
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      await expect(router.route(request())).resolves.toMatchObject({ path: 'stored' });
      expect(notified).toEqual([]);
      expect(await store.countMessages(UAID, 10)).toBe(2);
    });

    it('refuses an unknown uaid and a channel the record does not have', async () => {
      const { p } = peers({});
      const router = make({ peers: p });
      await expect(router.route({ ...request(), uaid: 'b'.repeat(32) })).rejects.toMatchObject({ kind: 'invalidSubscription' });
      await expect(router.route({ ...request(), channelID: '99999999-2222-4333-8444-555555555555' })).rejects.toMatchObject({ kind: 'invalidSubscription' });
      expect(await store.countMessages(UAID, 10)).toBe(0);
    });

    it('answers a bridged record without the bridge configured as bridgeMisconfigured, and a missing channel as invalid', async () => {
      await store.updateUser({ uaid: UAID, routerType: 'fcm', routerData: { app_id: 'app', token: 't' }, connectedAt: now, peerId: null });
      const { p } = peers({});
      const router = make({ peers: p });
      await expect(router.route(request())).rejects.toMatchObject({ kind: 'bridgeMisconfigured' });
      await expect(router.route({ ...request(), channelID: '99999999-2222-4333-8444-555555555555' })).rejects.toMatchObject({ kind: 'invalidSubscription' });
    });
  });

  it('removes a webpush uaid idle past PUSHGATE_USER_MAX_IDLE_DAYS and answers expiredEndpoint', async () => {
    await store.removeUser(UAID);
    await store.addUser({ uaid: UAID, routerType: 'webpush', routerData: null, connectedAt: now - 61 * DAY, peerId: null });
    await store.addChannel(UAID, { channelID: CH, keyHash: null });
    await expect(make().route(request())).rejects.toMatchObject({ kind: 'expiredEndpoint' });
    expect(await store.getUser(UAID)).toBeNull();
  });

  it('resets a uaid whose stored backlog passes msg_limit plus one storage batch', async () => {
    const router = make({ msgLimit: 1 });
    for (let i = 0; i < 11; i++) await router.route(request());
    expect(await store.getUser(UAID)).not.toBeNull();
    await router.route(request());
    expect(await store.getUser(UAID)).toBeNull();
    await expect(router.route(request())).rejects.toMatchObject({ kind: 'invalidSubscription' });
  });

  it('gives each worker its own residue class of seqs, strictly increasing', () => {
    const router = make();
    router.useSeqLane(3, 4);
    const seqs = Array.from({ length: 5 }, () => router.nextSeq());
    expect(seqs.every((s) => s % 4 === 3)).toBe(true);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
  });
});
