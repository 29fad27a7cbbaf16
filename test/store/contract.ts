import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { DashboardRecord, Notification, Store } from '../../src/store/index.js';
import { newUaid } from '../../src/webpush/protocol/ids.js';
import { channelId, payload } from '../helpers/push.js';

/**
 * The storage contract every backend must meet, run against each of them: the same calls, the same answers.
 */
export function storeContract(name: string, open: () => Promise<Store>, propertyRuns = 100): void {
  describe(`store contract: ${name}`, () => {
    let seq = Date.now() * 1000;
    const message = (uaid: string, chid: string, over: Partial<Notification> = {}): Notification => ({
      uaid,
      channelID: chid,
      seq: ++seq,
      version: `v${seq}`,
      ttl: 60,
      expiry: Date.now() + 60_000,
      topic: null,
      urgency: 'normal',
      data: payload('ZGF0YQ'),
      headers: { encoding: 'aes128gcm' },
      timestamp: Date.now(),
      ...over,
    });
    const user = (uaid: string, connectedAt: number) => ({ uaid, routerType: 'webpush', routerData: null, connectedAt, peerId: null });

    it('adds a user, and only a newer connection takes an existing record over', async () => {
      const store = await open();
      const uaid = newUaid();
      expect(await store.addUser(user(uaid, 100))).toBe(true);
      expect(await store.addUser({ ...user(uaid, 50), peerId: 'stale' })).toBe(false);
      expect((await store.getUser(uaid))?.connectedAt).toBe(100);
      expect(await store.addUser({ ...user(uaid, 200), peerId: 'node-b' })).toBe(true);
      expect(await store.getUser(uaid)).toEqual({ ...user(uaid, 200), peerId: 'node-b' });
      expect(await store.getUser(newUaid())).toBeNull();
      await store.close();
    });

    it('updates a user only when its record is not newer', async () => {
      const store = await open();
      const uaid = newUaid();
      await store.addUser(user(uaid, 100));
      expect(await store.updateUser({ ...user(uaid, 150), routerData: { a: 1 } })).toBe(true);
      expect(await store.updateUser({ ...user(uaid, 120), peerId: 'late' })).toBe(false);
      expect(await store.getUser(uaid)).toEqual({ ...user(uaid, 150), routerData: { a: 1 } });
      expect(await store.updateUser(user(newUaid(), 1))).toBe(false);
      await store.close();
    });

    it('clears a route only while it still names the same node and connection', async () => {
      const store = await open();
      const uaid = newUaid();
      await store.addUser({ ...user(uaid, 100), peerId: 'http://a' });
      // Node B took the client over: node A's late clean-up must not erase B's route.
      await store.updateUser({ ...user(uaid, 200), peerId: 'http://b' });
      expect(await store.clearNodeId(uaid, 100, 'http://a')).toBe(false);
      expect((await store.getUser(uaid))?.peerId).toBe('http://b');
      expect(await store.clearNodeId(uaid, 200, 'http://a')).toBe(false);
      expect(await store.clearNodeId(uaid, 200, 'http://b')).toBe(true);
      expect((await store.getUser(uaid))?.peerId).toBeNull();
      await store.close();
    });

    it('decides two nodes racing to register the same uaid by connectedAt', async () => {
      const store = await open();
      // Both orders of arrival, several times over.
      for (let i = 0; i < 10; i++) {
        const uaid = newUaid();
        const late = () => store.addUser({ ...user(uaid, 300), peerId: 'http://late' });
        const early = () => store.addUser({ ...user(uaid, 200), peerId: 'http://early' });
        const [a, b] = await Promise.all(i % 2 ? [late(), early()] : [early(), late()]);
        expect(a || b).toBe(true);
        // Whatever the order, the newest connection wins.
        expect((await store.getUser(uaid))?.peerId).toBe('http://late');
      }
      await store.close();
    });

    it('keeps channels with their key hashes and removes them with their messages', async () => {
      const store = await open();
      const uaid = newUaid();
      const [a, b] = [channelId(), channelId()];
      await store.addUser(user(uaid, 1));
      await store.addChannel(uaid, { channelID: a, keyHash: null });
      await store.addChannel(uaid, { channelID: b, keyHash: Buffer.alloc(32, 9) });
      expect(await store.getChannel(uaid, b)).toEqual({ channelID: b, keyHash: Buffer.alloc(32, 9) });
      expect((await store.getChannels(uaid)).map((c) => c.channelID).sort()).toEqual([a, b].sort());
      await store.saveMessage(message(uaid, a));
      expect(await store.removeChannel(uaid, a)).toBe(true);
      expect(await store.removeChannel(uaid, a)).toBe(false);
      expect(await store.getChannel(uaid, a)).toBeNull();
      expect(await store.countMessages(uaid, 10)).toBe(0);
      await store.close();
    });

    it('returns pending messages in order after a cursor, never expired ones', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const m1 = message(uaid, chid);
      const expired = message(uaid, chid, { expiry: Date.now() - 1 });
      const m2 = message(uaid, chid, { data: null, headers: null });
      for (const m of [m1, expired, m2]) await store.saveMessage(m);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([m1, m2]);
      expect(await store.fetchMessages(uaid, m1.seq, 10, Date.now())).toEqual([m2]);
      expect(await store.fetchMessages(uaid, 0, 1, Date.now())).toEqual([m1]);
      expect(await store.countMessages(uaid, 10)).toBe(2);
      expect(await store.countMessages(uaid, 1)).toBe(1);
      expect(await store.fetchMessages(newUaid(), 0, 10, Date.now())).toEqual([]);
      await store.close();
    });

    it('replaces a pending message with the same topic on the same channel only', async () => {
      const store = await open();
      const uaid = newUaid();
      const [a, b] = [channelId(), channelId()];
      await store.saveMessage(message(uaid, a, { topic: 't' }));
      const other = message(uaid, b, { topic: 't' });
      await store.saveMessage(other);
      const newer = message(uaid, a, { topic: 't', data: payload('bmV3') });
      await store.saveMessage(newer);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([other, newer]);
      expect(await store.removeTopicMessage(uaid, a, 't')).toBe(true);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([other]);
      await store.close();
    });

    it('removes a message by seq; an ack racing a topic replacement leaves the replacement', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const old = message(uaid, chid, { topic: 'x' });
      await store.saveMessage(old);
      const replacement = message(uaid, chid, { topic: 'x' });
      await store.saveMessage(replacement);
      expect(await store.removeMessage(uaid, old.seq, old.version)).toBe(false);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([replacement]);
      expect(await store.removeMessage(uaid, replacement.seq, 'another version')).toBe(false);
      expect(await store.removeMessage(uaid, replacement.seq, replacement.version)).toBe(true);
      await store.close();
    });

    it('saving a message again by its key leaves one copy, never an error (a holder saved it, then the endpoint did)', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const plain = message(uaid, chid);
      const topical = message(uaid, chid, { topic: 'z' });
      await store.saveMessage(plain);
      await store.saveMessage(topical);
      // Again, one after the other and both in one turn (one group commit on the backends that batch).
      await store.saveMessage(plain);
      await store.saveMessage(topical);
      await Promise.all([store.saveMessage(plain), store.saveMessage(plain), store.saveMessage(topical)]);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([plain, topical]);
      expect(await store.countMessages(uaid, 10)).toBe(2);
      await store.forgetMessage(plain);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([topical]);
      await store.close();
    });

    it('never replaces another message that holds the key: both are kept (two processes stamped alike)', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const first = message(uaid, chid);
      const second = { ...message(uaid, chid), seq: first.seq };
      const third = { ...message(uaid, chid), seq: first.seq };
      await store.saveMessage(first);
      await Promise.all([store.saveMessage(second), store.saveMessage(third)]);
      // Saved again (the endpoint's copy after a silent holder): still one copy of each.
      await store.saveMessage(second);
      const versions = async () => (await store.fetchMessages(uaid, 0, 10, Date.now())).map((m) => m.version).sort();
      expect(await versions()).toEqual([first, second, third].map((m) => m.version).sort());
      expect(await store.countMessages(uaid, 10)).toBe(3);
      // Each is deleted by its own version; a delete naming another version at the seq deletes nothing.
      expect(await store.removeMessage(uaid, first.seq, 'another version')).toBe(false);
      await store.forgetMessage(second);
      expect(await versions()).toEqual([first, third].map((m) => m.version).sort());
      expect(await store.removeMessage(uaid, first.seq, third.version)).toBe(true);
      expect(await store.fetchMessages(uaid, 0, 10, Date.now())).toEqual([first]);
      await store.close();
    });

    it('forgets acked messages, many in one turn, by key: a replaced topic message or an unknown one is left alone', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const plain = Array.from({ length: 20 }, () => message(uaid, chid));
      // Saved in one turn too: the backends may batch both kinds of write.
      await Promise.all(plain.map((m) => store.saveMessage(m)));
      const old = message(uaid, chid, { topic: 'y' });
      await store.saveMessage(old);
      const replacement = message(uaid, chid, { topic: 'y' });
      await store.saveMessage(replacement);
      const kept = plain.slice(15);
      await Promise.all([
        ...plain.slice(0, 15).map((m) => store.forgetMessage(m)),
        store.forgetMessage(old),
        store.forgetMessage({ uaid, seq: 999_999_999, version: 'v-unknown', channelID: chid, topic: null }),
      ]);
      expect(await store.fetchMessages(uaid, 0, 50, Date.now())).toEqual([...kept, replacement]);
      await store.forgetMessage(replacement);
      expect(await store.fetchMessages(uaid, 0, 50, Date.now())).toEqual(kept);
      await store.close();
    });

    it('keeps push registrations by node, one node per account and device', async () => {
      const store = await open();
      const reg = (node: string, token: string) => ({
        node,
        secretHash: 'ab'.repeat(32),
        account: 'juliet@example.org',
        deviceId: 'phone-1',
        kind: 'fcm',
        appId: 'org.example.app',
        token,
        keys: null,
        includeSender: false,
        includeBody: true,
        background: false,
        createdAt: 1,
      });
      const first = await store.savePushRegistration(reg(`node-${newUaid()}`, 'token-1'));
      const again = await store.savePushRegistration(reg(`node-${newUaid()}`, 'token-2'));
      expect(again.node).toBe(first.node);
      expect(await store.getPushRegistration(first.node)).toEqual({ ...reg(first.node, 'token-2') });
      const other = await store.savePushRegistration({ ...reg(`node-${newUaid()}`, 't'), deviceId: 'tablet' });
      expect(other.node).not.toBe(first.node);
      expect(await store.removePushRegistration(first.node)).toBe(true);
      expect(await store.removePushRegistration(first.node)).toBe(false);
      expect(await store.getPushRegistration(first.node)).toBeNull();
      expect(await store.getPushRegistration(other.node)).not.toBeNull();
      await store.close();
    });

    it('finds push registrations by account and device, and counts them per account up to a cap', async () => {
      const store = await open();
      const account = `romeo-${newUaid()}@example.org`;
      const reg = (deviceId: string) => ({
        node: `node-${newUaid()}`,
        secretHash: 'cd'.repeat(32),
        account,
        deviceId,
        kind: 'fcm',
        appId: 'org.example.app',
        token: `token-${deviceId}`,
        keys: null,
        includeSender: false,
        includeBody: false,
        background: false,
        createdAt: 2,
        sealedSecret: 'sealed',
      });
      expect(await store.findPushRegistration(account, 'phone')).toBeNull();
      expect(await store.countPushRegistrations(account, 10)).toBe(0);
      const saved = await store.savePushRegistration(reg('phone'));
      for (const d of ['tablet', 'laptop', 'watch']) await store.savePushRegistration(reg(d));
      expect(await store.findPushRegistration(account, 'phone')).toEqual(saved);
      expect(await store.findPushRegistration(account, 'desk')).toBeNull();
      expect(await store.findPushRegistration(`other-${account}`, 'phone')).toBeNull();
      expect(await store.countPushRegistrations(account, 10)).toBe(4);
      expect(await store.countPushRegistrations(account, 2)).toBe(2);
      await store.close();
    });

    it('removes a user with everything it owns, and sweeps expired messages', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      await store.addUser(user(uaid, 1));
      await store.addChannel(uaid, { channelID: chid, keyHash: null });
      await store.saveMessage(message(uaid, chid));
      await store.removeUser(uaid);
      expect(await store.getUser(uaid)).toBeNull();
      expect(await store.getChannels(uaid)).toEqual([]);
      expect(await store.countMessages(uaid, 10)).toBe(0);
      const other = newUaid();
      await store.saveMessage(message(other, chid, { expiry: Date.now() - 1000 }));
      await store.saveMessage(message(other, chid));
      expect(await store.sweepExpired(Date.now())).toBeGreaterThanOrEqual(1);
      expect(await store.countMessages(other, 10)).toBe(1);
      await store.health();
      await store.close();
    });

    // Megaphone broadcasts
    it('keeps broadcast versions: a put creates, a second put replaces, all are listed', async () => {
      const store = await open();
      const a = `test-${newUaid()}/monitor_changes`;
      const b = `test-${newUaid()}/other`;
      expect(await store.putBroadcast(a, '"1700000000"')).toBe(true);
      expect(await store.putBroadcast(b, 'v1')).toBe(true);
      expect(await store.putBroadcast(a, '"1700000001"')).toBe(false);
      const all = await store.getBroadcasts();
      expect(all[a]).toBe('"1700000001"');
      expect(all[b]).toBe('v1');
    });

    // --- websocket door: bounded channel loading (issue 9 item 7) ---
    it("pages a uaid's channels in channelID order, after a given channelID", async () => {
      const store = await open();
      const uaid = newUaid();
      const chids = Array.from({ length: 7 }, () => channelId()).sort();
      for (const chid of chids) await store.addChannel(uaid, { channelID: chid, keyHash: null });
      await store.addChannel(newUaid(), { channelID: channelId(), keyHash: null });
      const first = await store.getChannelsPage(uaid, '', 3);
      expect(first.map((c) => c.channelID)).toEqual(chids.slice(0, 3));
      const second = await store.getChannelsPage(uaid, first[2]!.channelID, 3);
      expect(second.map((c) => c.channelID)).toEqual(chids.slice(3, 6));
      const last = await store.getChannelsPage(uaid, second[2]!.channelID, 3);
      expect(last).toEqual([{ channelID: chids[6], keyHash: null }]);
    });

    // Developer dashboard (src/dashboard)
    const record = (keyHash: string, receivedAt: number, over: Partial<DashboardRecord> = {}): DashboardRecord => ({
      keyHash,
      ref: `${String(receivedAt).padStart(15, '0')}:${randomUUID()}`,
      id: `m${receivedAt}`,
      receivedAt,
      ttl: 60,
      topic: null,
      urgency: 'normal',
      size: 10,
      subscription: 'abc',
      outcome: 'stored',
      status: null,
      errno: null,
      detail: null,
      deliveredAt: null,
      ...over,
    });

    it('dashboard: keeps records only for opted-in keys, replaces them by ref, and erases them at opt-out', async () => {
      const store = await open();
      const key = randomUUID();
      const other = randomUUID();
      await store.addDashboardKey(key, 1);
      await store.addDashboardKey(key, 2);
      expect(await store.listDashboardKeys()).toContain(key);
      const a = record(key, 1000);
      await store.saveDashboardRecords([a, record(other, 1000)]);
      expect(await store.listDashboardRecords(other, { limit: 10 })).toEqual([]);
      await store.saveDashboardRecords([{ ...a, outcome: 'delivered', deliveredAt: 1500 }]);
      expect(await store.listDashboardRecords(key, { limit: 10 })).toEqual([{ ...a, outcome: 'delivered', deliveredAt: 1500 }]);
      expect(await store.removeDashboardKey(key)).toBe(true);
      expect(await store.removeDashboardKey(key)).toBe(false);
      expect(await store.listDashboardKeys()).not.toContain(key);
      // A late batch after the opt-out brings nothing back.
      await store.saveDashboardRecords([record(key, 2000)]);
      await store.addDashboardKey(key, 3);
      expect(await store.listDashboardRecords(key, { limit: 10 })).toEqual([]);
      await store.close();
    });

    it('dashboard: lists newest first with cursor, outcome and time filters, and prunes by count and age', async () => {
      const store = await open();
      const key = randomUUID();
      await store.addDashboardKey(key, 1);
      const recs = [1000, 2000, 3000, 4000, 5000].map((t, i) => record(key, t, { outcome: i % 2 === 0 ? 'stored' : 'rejected' }));
      await store.saveDashboardRecords(recs);
      const page1 = await store.listDashboardRecords(key, { limit: 2 });
      expect(page1.map((r) => r.receivedAt)).toEqual([5000, 4000]);
      const page2 = await store.listDashboardRecords(key, { limit: 2, before: page1[1]!.ref });
      expect(page2.map((r) => r.receivedAt)).toEqual([3000, 2000]);
      expect((await store.listDashboardRecords(key, { limit: 10, outcome: 'rejected' })).map((r) => r.receivedAt)).toEqual([4000, 2000]);
      expect((await store.listDashboardRecords(key, { limit: 10, since: 2000, until: 4000 })).map((r) => r.receivedAt)).toEqual([4000, 3000, 2000]);
      // Older than 1500 goes (1000), then only the newest 3 stay.
      expect(await store.pruneDashboardRecords(key, 3, 1500)).toBe(2);
      expect((await store.listDashboardRecords(key, { limit: 10 })).map((r) => r.receivedAt)).toEqual([5000, 4000, 3000]);
      await store.removeDashboardKey(key);
      await store.close();
    });

    // Developer dashboard, fleet events
    it('dashboard: a tagged message keeps its dashboardKey through storage; an untracked one has none', async () => {
      const store = await open();
      const uaid = newUaid();
      const chid = channelId();
      const key = 'ab'.repeat(32);
      await store.saveMessage(message(uaid, chid, { seq: 1, dashboardKey: key }));
      await store.saveMessage(message(uaid, chid, { seq: 2, topic: 'news', dashboardKey: key }));
      await store.saveMessage(message(uaid, chid, { seq: 3 }));
      const got = await store.fetchMessages(uaid, 0, 10, Date.now());
      expect(got.map((n) => n.dashboardKey)).toEqual([key, key, undefined]);
      expect('dashboardKey' in got[2]!).toBe(false);
      await store.close();
    });

    it('dashboard: marks a record by message id (or by subscription and Topic) only from the given outcomes, for its key or any key', async () => {
      const store = await open();
      const key = randomUUID();
      const other = randomUUID();
      await store.addDashboardKey(key, 1);
      await store.addDashboardKey(other, 1);
      const stored = record(key, 1000, { id: 'msg-1' });
      const done = record(key, 2000, { id: 'msg-2', outcome: 'delivered_from_storage', deliveredAt: 2100 });
      await store.saveDashboardRecords([stored, done]);
      const marks = await store.markDashboardRecords([
        { keyHash: other, id: 'msg-1', from: ['stored'], outcome: 'deleted', deliveredAt: null },
        { keyHash: key, id: 'msg-1', from: ['stored'], outcome: 'delivered_from_storage', deliveredAt: 1500 },
        { keyHash: null, id: 'msg-2', from: ['stored'], outcome: 'deleted', deliveredAt: null },
        { keyHash: key, id: 'nowhere', from: ['stored'], outcome: 'deleted', deliveredAt: null },
      ]);
      expect(marks).toEqual([false, true, false, false]);
      expect(await store.listDashboardRecords(key, { limit: 10 })).toEqual([done, { ...stored, outcome: 'delivered_from_storage', deliveredAt: 1500 }]);
      expect(await store.listDashboardRecords(key, { limit: 10, outcome: 'delivered_from_storage' })).toHaveLength(2);
      const third = record(key, 3000, { id: 'msg-3' });
      await store.saveDashboardRecords([third]);
      expect(await store.markDashboardRecords([{ keyHash: null, id: 'msg-3', from: ['stored'], outcome: 'deleted', deliveredAt: null }])).toEqual([true]);
      expect((await store.listDashboardRecords(key, { limit: 1 }))[0]).toEqual({ ...third, outcome: 'deleted' });
      // RFC 8030 §5.4: found by subscription and Topic (the replacing push does not know the old id), unexpired only.
      const expired = record(key, 4000, { id: 'msg-4', topic: 'news', ttl: 1 });
      const waiting = record(key, 5000, { id: 'msg-5', topic: 'news', ttl: 60 });
      const otherSub = record(key, 5001, { id: 'msg-6', topic: 'news', subscription: 'xyz' });
      await store.saveDashboardRecords([expired, waiting, otherSub]);
      const replaced = { subscription: 'abc', topic: 'news', before: 6000 };
      expect(await store.markDashboardRecords([{ keyHash: key, id: null, replaced, from: ['stored'], outcome: 'replaced', deliveredAt: null }])).toEqual([
        true,
      ]);
      expect((await store.listDashboardRecords(key, { limit: 10, outcome: 'replaced' })).map((r) => r.id)).toEqual(['msg-5']);
      await store.removeDashboardKey(key);
      await store.removeDashboardKey(other);
      await store.close();
    });

    /**
     * The message table against a model (fast-check): generated sequences of saves (new messages and repeats of
     * earlier ones, some in one turn so that a backend batches them; some new ones stamped with an earlier message's
     * seq, as two processes of a fleet may stamp them), acks by key, topic removals and sweeps, two uaids, two
     * channels, two topics. After every step each uaid's pending messages must be the model's, by version, in seq
     * order. The model is Store's documented contract: a repeat leaves one copy; a message stamped with a seq another
     * message holds is kept beside it; a topic message replaces the pending message of its topic on its channel, but
     * never a newer one (a repeat of a message its topic has since replaced, as an endpoint saves again what a holder
     * already saved, README "Durability").
     */
    it('keeps the message table as the model says, through any sequence of saves, repeats, acks and sweeps', async () => {
      const store = await open();
      const now = Date.now();
      const op = fc.oneof(
        fc.record({ kind: fc.constant('save' as const), u: fc.nat(1), c: fc.nat(1), topic: fc.constantFrom(null, 't1', 't2'), expired: fc.boolean() }),
        fc.record({ kind: fc.constant('collide' as const), pick: fc.nat(), c: fc.nat(1) }),
        fc.record({ kind: fc.constant('repeat' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('turn' as const), picks: fc.array(fc.option(fc.nat(), { nil: null }), { minLength: 2, maxLength: 4 }) }),
        fc.record({ kind: fc.constant('forget' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('removeTopic' as const), u: fc.nat(1), c: fc.nat(1), topic: fc.constantFrom('t1', 't2') }),
        fc.record({ kind: fc.constant('sweep' as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 25, size: 'max' }), async (ops) => {
          const uaids = [newUaid(), newUaid()];
          const chids = [channelId(), channelId()];
          const made: Notification[] = [];
          /** Pending messages by version. */
          const model = new Map<string, Notification>();
          // Seqs far apart, so that a message a backend moved past a seq another holds never reaches the next one.
          let nextSeq = now * 1000;
          const fresh = (u: number, c: number, topic: string | null, expired: boolean, seq = (nextSeq += 10_000)) => {
            const m = message(uaids[u]!, chids[c]!, { seq, topic, expiry: expired ? now - 60_000 : now + 600_000 });
            made.push(m);
            return m;
          };
          const pick = (i: number) => (made.length ? made[i % made.length]! : null);
          const modelSave = (m: Notification) => {
            const rivals = [...model.values()].filter((o) => m.topic !== null && o.uaid === m.uaid && o.channelID === m.channelID && o.topic === m.topic);
            if (rivals.some((o) => o.seq > m.seq)) return;
            for (const o of rivals) model.delete(o.version);
            model.set(m.version, m);
          };
          /** A message as the model compares it: all but the seq, which a backend may have moved. */
          const bySeq = (ms: Notification[]) => ms.map(({ seq: _, ...rest }) => rest);
          const check = async () => {
            for (const uaid of uaids) {
              const expected = [...model.values()].filter((m) => m.uaid === uaid).sort((a, b) => a.seq - b.seq || a.version.localeCompare(b.version));
              // now = 0: expired messages too, which only a sweep removes.
              const all = await store.fetchMessages(uaid, 0, 100, 0);
              expect(all.every((m, i) => i === 0 || m.seq >= all[i - 1]!.seq)).toBe(true);
              const order = (ms: Notification[]) =>
                [...ms].sort((a, b) => Math.round(a.seq / 10_000) - Math.round(b.seq / 10_000) || a.version.localeCompare(b.version));
              expect(bySeq(order(all))).toEqual(bySeq(expected));
              const live = await store.fetchMessages(uaid, 0, 100, Date.now());
              expect(bySeq(order(live))).toEqual(bySeq(expected.filter((m) => m.expiry > now)));
            }
          };
          for (const o of ops) {
            if (o.kind === 'save' || o.kind === 'repeat' || o.kind === 'collide') {
              const earlier = o.kind === 'collide' ? pick(o.pick) : null;
              const m =
                o.kind === 'save'
                  ? fresh(o.u, o.c, o.topic, o.expired)
                  : o.kind === 'repeat'
                    ? pick(o.pick)
                    : earlier && fresh(uaids.indexOf(earlier.uaid), o.c, null, false, earlier.seq);
              if (!m) continue;
              await store.saveMessage(m);
              modelSave(m);
            } else if (o.kind === 'turn') {
              // In one turn: a new message for null, a repeat otherwise; they apply in the order they were made.
              const batch = o.picks
                .map((p, i) => (p === null ? fresh(i % 2, (i >> 1) % 2, i % 3 === 0 ? null : 't1', false) : pick(p)))
                .filter((m) => m !== null);
              await Promise.all(batch.map((m) => store.saveMessage(m)));
              for (const m of batch) modelSave(m);
            } else if (o.kind === 'forget' || o.kind === 'remove') {
              const m = pick(o.pick);
              if (!m) continue;
              if (o.kind === 'forget') await store.forgetMessage(m);
              else expect(await store.removeMessage(m.uaid, m.seq, m.version)).toBe(model.has(m.version));
              model.delete(m.version);
            } else if (o.kind === 'removeTopic') {
              const [uaid, chid] = [uaids[o.u]!, chids[o.c]!];
              const held = [...model.values()].filter((m) => m.uaid === uaid && m.channelID === chid && m.topic === o.topic);
              expect(await store.removeTopicMessage(uaid, chid, o.topic)).toBe(held.length > 0);
              for (const m of held) model.delete(m.version);
            } else {
              const expired = [...model.values()].filter((m) => m.expiry <= Date.now());
              // Other runs' expired messages may be swept too: at least this run's.
              expect(await store.sweepExpired(Date.now())).toBeGreaterThanOrEqual(expired.length);
              for (const m of expired) model.delete(m.version);
            }
            await check();
          }
        }),
        { numRuns: propertyRuns },
      );
      await store.close();
    });
  });
}
