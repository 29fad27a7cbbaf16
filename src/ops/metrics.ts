import { Counter, type CounterConfiguration, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/types.js';

type Labels<T extends string> = Partial<Record<T, string | number>>;

/**
 * A labelled counter on the message path: each label set is tallied in a plain number and handed to prom-client
 * when the counter is read (its `collect`, which every `get()`, `/metrics` and the workers' aggregation runs first).
 * prom-client's own `inc(labels)` sorts and hashes the label object and checks each name on every call, about
 * 200 ns; a direct message counts five of them. Here a call costs a key of the values and one map lookup; the
 * first call for a label set goes through prom-client, so an unknown label name still throws there.
 */
class TalliedCounter<T extends string> extends Counter<T> {
  /** Label value → (next label's value → …) → the tally: constant strings hash once, a key built per call would not. */
  private readonly tallies = new Map<unknown, unknown>();
  private readonly all: { labels: Labels<T>; n: number }[] = [];
  /** prom-client's own `inc`, which it sets on the instance (so it is replaced below rather than overridden). */
  private readonly add = this.inc.bind(this) as (labels: Labels<T>, value: number) => void;

  constructor(config: CounterConfiguration<T> & { labelNames: readonly T[] }) {
    super({
      ...config,
      collect(this: Counter<T>) {
        (this as TalliedCounter<T>).flush();
      },
    });
    const names = config.labelNames;
    const last = names.length - 1;
    this.inc = ((labels: Labels<T> | number | undefined, value?: number): void => {
      const n = value ?? 1;
      if (typeof labels !== 'object' || last < 0 || !(n >= 0)) return this.add(labels as Labels<T>, value as number);
      let level = this.tallies;
      for (let i = 0; i < last; i++) {
        const v = labels[names[i]!];
        let next = level.get(v) as Map<unknown, unknown> | undefined;
        if (!next) level.set(v, (next = new Map()));
        level = next;
      }
      let tally = level.get(labels[names[last]!]) as { labels: Labels<T>; n: number } | undefined;
      if (!tally) {
        this.add(labels, 0);
        tally = { labels: { ...labels }, n: 0 };
        level.set(labels[names[last]!], tally);
        this.all.push(tally);
      }
      tally.n += n;
    }) as Counter<T>['inc'];
  }

  /** Hands the tallies to prom-client. */
  private flush(): void {
    for (const tally of this.all) {
      if (tally.n === 0) continue;
      this.add(tally.labels, tally.n);
      tally.n = 0;
    }
  }

  override reset(): void {
    // prom-client's constructor resets too, before this class's fields exist.
    this.tallies?.clear();
    this.all?.splice(0);
    super.reset();
  }
}

/**
 * Prometheus metrics of one gateway instance. Each gateway owns its registry (no global state), so several
 * gateways in one process (the tests) keep separate counts.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: 'pushgate_connections', help: 'Open websocket connections (identified or not)', registers: [this.registry] });
  readonly clientMessages = new TalliedCounter({ name: 'pushgate_ws_messages_total', help: 'Websocket messages received from clients, by messageType', labelNames: ['type'] as const, registers: [this.registry] });
  readonly closes = new Counter({ name: 'pushgate_ws_closes_total', help: 'Websocket connections closed by the server, by close code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly notifications = new TalliedCounter({
    name: 'pushgate_notifications_total',
    help: 'Push messages by outcome (accepted, delivered, stored, dropped, acked, nacked, expired) and path (direct, stored)',
    labelNames: ['outcome', 'path'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new TalliedCounter({ name: 'pushgate_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  readonly postDuration = new Histogram({
    name: 'pushgate_push_request_duration_seconds',
    help: 'Time to answer a push POST',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly deliveryLatency = new Histogram({
    name: 'pushgate_delivery_latency_seconds',
    help: 'From accepting a push message to the client acking it, by path',
    labelNames: ['path'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600, 86400],
    registers: [this.registry],
  });

  readonly bridgeSent = new Counter({ name: 'pushgate_bridge_sent_total', help: 'Messages a provider accepted, by bridge and app', labelNames: ['type', 'app'] as const, registers: [this.registry] });
  readonly bridgeFailed = new Counter({ name: 'pushgate_bridge_failed_total', help: 'Messages a provider did not accept, by bridge, app and reason', labelNames: ['type', 'app', 'reason'] as const, registers: [this.registry] });
  readonly bridgeRetries = new Counter({ name: 'pushgate_bridge_retries_total', help: 'Retries after a transient provider failure', labelNames: ['type', 'app'] as const, registers: [this.registry] });
  readonly bridgeLatency = new Histogram({
    name: 'pushgate_bridge_request_duration_seconds',
    help: 'Time for one provider request',
    labelNames: ['type'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** Public HTTP connections the listener guard closed, by reason (ListenerGuard: headersTimeout, requestTimeout, evicted, refused). */
  readonly httpConnectionsClosed = new Counter({
    name: 'pushgate_http_connections_closed_total',
    help: 'Public HTTP connections closed by the listener limits, by reason (headersTimeout, requestTimeout, evicted, refused)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Errors of a listener's accept other than running out of descriptors (README Operations, "Descriptors"). */
  readonly acceptErrors = new Counter({
    name: 'pushgate_accept_errors_total',
    help: 'Errors accepting a connection, by listener (public, router, mongoosepush, metrics); the listener keeps accepting',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  /** Every refused credential, by door (vapid, bridge, router, xmpp, mongoosepush, dashboard…) and reason. */
  readonly authFailures = new Counter({ name: 'pushgate_auth_failures_total', help: 'Failed authentications by door and reason', labelNames: ['door', 'reason'] as const, registers: [this.registry] });

  // Push endpoint leniency (autopush-rs counts these instead of refusing the message).
  readonly unknownUrgency = new Counter({ name: 'pushgate_endpoint_unknown_urgency_total', help: "Push messages whose Urgency was not one of RFC 8030 §5.3's values (treated as normal)", registers: [this.registry] });
  readonly vapidSubProblems = new Counter({ name: 'pushgate_vapid_sub_problems_total', help: 'Accepted VAPID tokens whose sub was missing, empty or neither mailto: nor https:', labelNames: ['problem'] as const, registers: [this.registry] });
  // Megaphone broadcasts: version refreshes from the Megaphone service or the store.
  readonly megaphoneRefreshes = new Counter({ name: 'pushgate_megaphone_refreshes_total', help: 'Broadcast version refreshes, by source and outcome', labelNames: ['source', 'outcome'] as const, registers: [this.registry] });
  /** Store calls by operation (issue 13: the bench reports store round trips per message from it). */
  readonly storeOperations = new Counter({ name: 'pushgate_store_operations_total', help: 'Store calls by operation', labelNames: ['op'] as const, registers: [this.registry] });
  /** Direct messages whose store write the client's ack made unnecessary (README "Durability", PUSHGATE_ACK_WAIT_MS). */
  readonly directWritesSkipped = new Counter({
    name: 'pushgate_direct_writes_skipped_total',
    help: 'Direct TTL > 0 messages acked before their save began, so never written to storage',
    registers: [this.registry],
  });
  // A fleet's peer links (src/webpush/protocol/peer-link.ts), as the endpoint node that opens them sees them.
  readonly peerLinks = new Counter({
    name: 'pushgate_peer_links_total',
    help: 'Peer links to connection nodes opened (open) or not: refused (the node answered without the upgrade: 401 wrong secret, 503 shutting down) or unreachable (connection, TLS, timeout)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  // The connection node's side: a push over a worker's own link finds its client here; one over a link that landed
  // on another worker (`GET /link`, or a link that could not be handed over) crosses the workers' mesh.
  readonly peerLinkPushes = new Counter({
    name: 'pushgate_peer_link_pushes_total',
    help: 'Pushes received over peer links, by where the client was: here (the worker that read the link), sibling (another worker of this node, reached over the mesh) or elsewhere (not on this node)',
    labelNames: ['client'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'pushgate_' });
  }
}

/** What a failed authentication leaves behind: one counter and one log line, never the secret itself. */
export function authFailed(metrics: Metrics, log: { warn(obj: object, msg: string): void }, door: string, reason: string, detail: Record<string, unknown> = {}): void {
  metrics.authFailures.inc({ door, reason });
  log.warn({ door, reason, ...detail }, 'authentication failed');
}

/** The store operations counted: the contract's data calls (a backend's private helpers are not round trips). */
const STORE_OPERATIONS = ['addUser', 'getUser', 'updateUser', 'clearNodeId', 'removeUser', 'addChannel', 'getChannel', 'getChannels', 'removeChannel', 'saveMessage', 'fetchMessages', 'countMessages', 'removeMessage', 'removeTopicMessage', 'sweepExpired', 'savePushRegistration', 'getPushRegistration', 'removePushRegistration', 'forgetMessage'] as const satisfies readonly (keyof Store)[];

/**
 * Counts every call of the store's operations in `storeOperations` by wrapping them on the instance (the store
 * contract stays untouched). One counter increment per call; the label children are resolved once.
 */
export function countStoreOperations(store: Store, metrics: Metrics): Store {
  for (const name of STORE_OPERATIONS) {
    const original = Reflect.get(store, name) as (...a: unknown[]) => unknown;
    const counter = metrics.storeOperations.labels({ op: name });
    Object.defineProperty(store, name, {
      configurable: true,
      writable: true,
      value: function (this: unknown, ...args: unknown[]) {
        counter.inc();
        return original.apply(this, args);
      },
    });
  }
  return store;
}
