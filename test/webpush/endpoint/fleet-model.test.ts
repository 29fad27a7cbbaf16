/**
 * The fleet's delivery against a model (fast-check): an endpoint node's real router (route cache, user record,
 * stale routes, notify) in front of two connection nodes' real sessions and registries, all on one SQLite store, with
 * the peer link played in process. Generated runs of pushes, acks, disconnects, connects and takeovers between the
 * nodes, route caches running out, and hops that fail: lost before the holder saw the push (`absent`), or taken by
 * the holder with the answer lost (`unanswered`). What README "Durability" and "A fleet of machines" promise:
 * - every push is answered, and every accepted TTL > 0 message reaches the client (a last session that acks all
 *   it gets receives every one not acked before);
 * - a session never sends a message twice, and an acked message never comes back, except a message whose answer
 *   was lost: the endpoint saved its own copy, which can arrive again, with the same version.
 */
import fc from 'fast-check';
import { afterEach, describe, it, onTestFinished, vi } from 'vitest';
import { Metrics } from '../../../src/ops/metrics.js';
import { SqliteStore } from '../../../src/store/sqlite.js';
import { ClientRegistry, offerToClient } from '../../../src/webpush/connection/clients.js';
import { Session } from '../../../src/webpush/connection/session.js';
import type { PeerClient } from '../../../src/webpush/endpoint/peer-client.js';
import { WebPushRouter } from '../../../src/webpush/endpoint/router.js';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { pushOutcome } from '../../../src/webpush/protocol/peer-link.js';
import { CloseCode } from '../../../src/webpush/protocol/websocket.js';
import { channelId, payload } from '../../helpers/push.js';
import { ModelClient, RecordingPort, helloOn, modelContext, settle } from '../../helpers/session.js';

/** One for every run: each Metrics starts prom-client's default collectors (a GC observer among them), which add up. */
const metrics = new Metrics();
const NODES = ['http://a.internal:9000', 'http://b.internal:9000'] as const;
const ENDPOINT = 'http://endpoint.internal:9000';

const stores: SqliteStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const op = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('push' as const), ttl0: fc.boolean(), fault: fc.constantFrom('none', 'none', 'none', 'lost', 'silent') }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ackAll' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('disconnect' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('connect' as const), node: fc.nat(1) }) },
  // Past the router's route cache (30 s) and every ack wait.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('later' as const) }) },
);

describe('fleet delivery, for generated runs of pushes, acks, moves between nodes and failed hops', () => {
  it('answers every push, loses no accepted message, and repeats only what a lost answer made the endpoint save', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40, size: 'max' }), fc.constantFrom(0, 100), async (ops, ackWaitMs) => {
        const store = new SqliteStore(':memory:');
        stores.push(store);
        let clock = Date.now();
        let seq = 0;
        const fernet = new MultiFernet([FernetKey.generate()]);
        const registries = NODES.map(() => Object.assign(new ClientRegistry(), { store }));
        const registryOf = (peer: string) => registries[NODES.indexOf(peer as (typeof NODES)[number])];
        /**
         * What a push's first hop does, by the push's body: fail before the holder sees it (`lost`), or reach the
         * holder and lose its answer (`silent`). Later hops of the same push, and other pushes, go through.
         */
        const faults = new Map<string, 'lost' | 'silent'>();
        const background: Promise<unknown>[] = [];
        const peers = {
          push: async (peer: string, n: Parameters<PeerClient['push']>[1]) => {
            const registry = registryOf(peer);
            const fault = faults.get(n.data!);
            faults.delete(n.data!);
            if (!registry || fault === 'lost') return 'absent';
            const offered = offerToClient(registry, n);
            if (fault === 'silent') {
              background.push(offered);
              return 'unanswered';
            }
            return pushOutcome(await offered);
          },
          notify: async (peer: string, uaid: string) => {
            const client = registryOf(peer)?.get(uaid);
            client?.storageChanged();
            return client !== undefined;
          },
          dropOlder: async (peer: string, uaid: string, connectedAt: number) => {
            const client = registryOf(peer)?.get(uaid);
            if (client && client.connectedAt < connectedAt) client.close(CloseCode.normal, 'a newer connection of this uaid took over');
            return true;
          },
        } as unknown as PeerClient;
        const nextSeq = () => (seq = Math.max(seq + 1, clock * 1000));
        const contexts = NODES.map((peerId, i) =>
          modelContext({ store, clients: registries[i]!, fernet, metrics, peerId, peers, ackWaitMs, nextSeq, now: () => clock }),
        );
        const router = new WebPushRouter(store, new ClientRegistry(), fernet, metrics, 1000, ENDPOINT, peers, null, null, {
          userMaxIdleMs: 60 * 86_400_000,
          storageBatch: 2,
          now: () => clock,
        });

        type Connection = { port: RecordingPort; session: Session };
        let current = null as Connection | null;
        let uaid: string | undefined;
        const chid = channelId();
        const accepted = new Set<string>();
        const client = new ModelClient();
        const pushes: Promise<unknown>[] = [];
        let text = 0;
        /**
         * A hop failed, or its answer was lost (README "A fleet of machines"): the endpoint stored the message and
         * cleared the route (as autopush does) or left it, telling no one, and the client may read that message (and
         * any stored after a cleared route) only at its next hello.
         */
        let hopFailedSinceConnect = false;

        const collect = () => {
          if (current) client.take(current.port.take());
        };
        const connect = async (node: number) => {
          clock += 1;
          const port = new RecordingPort();
          const c: Connection = { port, session: new Session(port, contexts[node]!) };
          const previous = current;
          current = c;
          client.connected();
          hopFailedSinceConnect = false;
          uaid = await helloOn(c.session, port, uaid, chid);
          // A client that moved: its older connection is closed by the newer hello (on this node, or on the other one
          // that the user record names), or else by the client (a failed hop may have cleared the record, as autopush's
          // does); either way it stores what it held unacked.
          if (previous) {
            await settle();
            await previous.session.closed();
          }
        };

        await connect(0);
        for (const o of ops) {
          if (o.kind === 'push') {
            const body = payload(`m${++text}`);
            if (o.fault !== 'none') {
              faults.set(body, o.fault);
              hopFailedSinceConnect = true;
            }
            const pushed = router
              .route({ uaid: uaid!, channelID: chid, ttl: o.ttl0 ? 0 : 600, topic: null, urgency: 'normal', data: body, headers: null })
              .then((r) => {
                if (o.ttl0) return;
                accepted.add(r.messageId);
                if (o.fault === 'silent') client.mayRepeat.add(r.messageId);
              });
            pushes.push(pushed);
          } else if (o.kind === 'disconnect') {
            if (current) await current.session.onClosed();
            collect();
            current = null;
          } else if (o.kind === 'connect') {
            collect();
            await connect(o.node);
          } else if (o.kind === 'later') {
            clock += 31_000;
            vi.advanceTimersByTime(Math.max(ackWaitMs, 1));
          } else if (current) {
            if (o.kind === 'ackAll') await client.ackAll(current.session);
            else await client.ackOne(current.session, o.pick);
          }
          await settle();
          collect();
        }
        // The current connection, acking all it gets, receives every accepted message not acked before, without
        // reconnecting: a message stored while it was open (by its node, by the endpoint, or by an older connection
        // of the uaid that closed on the other node) is announced to it, unless a hop failed or lost its answer.
        const drain = async () => {
          for (;;) {
            vi.advanceTimersByTime(Math.max(ackWaitMs, 1));
            await settle();
            collect();
            if ((await client.ackAll(current!.session)) === 0) return;
          }
        };
        if (current) {
          await drain();
          await settle();
          await drain();
          if (!hopFailedSinceConnect) client.expectNoneLost(accepted);
        }
        // Every push settles once its message is acked or safe; a last session on node A acks all it gets.
        if (current) await current.session.onClosed();
        current = null;
        await settle();
        await connect(0);
        await drain();
        await Promise.all([...pushes, ...background]);
        client.expectNoneLost(accepted);
        await current!.session.onClosed();
      }),
      { numRuns: 200 },
    );
  });
});
