import { randomBytes } from 'node:crypto';
import { type BenchContext, countOption } from '../lib/context.js';
import { connectClients, cpuFigures, e2e, errorsOf, receivedTimes, send, senderMaterial, withWorkers } from '../lib/load.js';
import { type GatewayProcess, startFloor, startGateway } from '../lib/procs.js';
import { latency, round } from '../lib/stats.js';

/** Every gateway process's /metrics text, read once for the figures a row needs. */
function scrape(gw: GatewayProcess[]): Promise<string[]> {
  return Promise.all(gw.map((g) => g.metrics()));
}

/**
 * The sum over those texts of a metric's samples whose line starts with `name{labels` (every label set when `labels`
 * is empty); null when no process exports the metric (a build from before it).
 */
function sumOf(texts: string[], name: string, labels = ''): number | null {
  let total: number | null = null;
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line.startsWith(`# TYPE ${name} `)) total ??= 0;
      if (line.startsWith(`${name}{${labels}`)) total = (total ?? 0) + Number(line.split(' ').pop());
    }
  }
  return total;
}

/** Store calls (all operations) counted by pushgate_store_operations_total. */
const storeOps = (texts: string[]) => sumOf(texts, 'pushgate_store_operations_total') ?? 0;
/** Pushes a connection node took over a peer link for a client another of its workers held; null before 2026-11-24. */
const siblingPushes = (texts: string[]) => sumOf(texts, 'pushgate_peer_link_pushes_total', 'client="sibling"');

/** The slow clients' ack delay: over half the default ack wait, so the holder writes every TTL > 0 message. */
const SLOW_ACK_MS = 200;

/** Connection nodes in the `fleet` shape, besides its endpoint node. */
const FLEET_CONNECTION_NODES = 1;

/**
 * Direct delivery to connected clients: saturation (CPU per message) and fixed rates (latency). Three shapes:
 * `direct` (one process), `workers` (PUSHGATE_WORKERS=2 on one SQLite file: a push that lands on the worker not
 * holding its client crosses to the holder over the workers' own unix sockets, the primary not involved),
 * `fleet` (an endpoint node and a connection node on the MongoDB-wire store, over the peer hop). And `floor`:
 * bench/floor.ts, bare node:http and ws doing the same socket work with nothing else, the yardstick for `direct`.
 */
export async function direct(
  ctx: BenchContext,
  shape: 'direct' | 'floor' | 'workers' | 'fleet' | 'fleet-single' = 'direct',
  onPostgres = false,
  /**
   * With `workers`: how many (2 by default) and the directory's layout (PUSHGATE_WORKER_DIRECTORY); rows under
   * `workers-<n>-<layout>`. With `fleet`: the connection node runs that many workers; rows under `fleet-w<n>`.
   */
  cluster?: { workers: number; directory: 'replicated' | 'partitioned' },
): Promise<void> {
  // `fleet-single` is the fleet's yardstick: one `all` node on the same kind of MongoDB-wire store, rows under `fleet`.
  // With onPostgres the store is FerretDB on PostgreSQL (the faster stand-in), rows under `fleet-pg`.
  const fleetName = (onPostgres ? 'fleet-pg' : 'fleet') + (shape === 'fleet' && cluster ? `-w${cluster.workers}` : '');
  const name = shape === 'fleet-single' || shape === 'fleet' ? fleetName : cluster ? `workers-${cluster.workers}-${cluster.directory}` : shape;
  const storeServer = () => (onPostgres ? ctx.mongoOnPostgres() : ctx.mongo());
  // `--direct-clients=N` sets the population (a quick run at the full run's 2,000, for A/B runs of two builds).
  const clientsN = countOption('direct-clients') ?? (ctx.quick ? 300 : 2000);
  const gw: GatewayProcess[] = [];
  const wsUrls: string[] = [];
  let endpointOrigin: string;
  let mongo: Awaited<ReturnType<BenchContext['mongo']>> = null;
  if (shape === 'fleet-single') {
    mongo = await storeServer();
    if (!mongo) return void ctx.notes.push(`${fleetName}: skipped, no MongoDB-wire server (npm test builds FerretDB; fleet-pg also needs Debian's postgresql)`);
    const port = await ctx.port();
    gw.push(await startGateway({ ...ctx.baseEnv(port), PUSHGATE_STORE: mongo.url }, port, ctx.gatewayArgs));
    wsUrls.push(`ws://127.0.0.1:${port}/`);
    endpointOrigin = `http://127.0.0.1:${port}`;
  } else if (shape === 'fleet') {
    mongo = await storeServer();
    if (!mongo) return void ctx.notes.push(`${fleetName}: skipped, no MongoDB-wire server (npm test builds FerretDB; fleet-pg also needs Debian's postgresql)`);
    const ePort = await ctx.port();
    endpointOrigin = `http://127.0.0.1:${ePort}`;
    // Every peer of a fleet presents the same router secret (required with PUSHGATE_ROUTER_PORT and on endpoint nodes).
    const common = { PUSHGATE_STORE: mongo.url, PUSHGATE_PUBLIC_URL: endpointOrigin, PUSHGATE_ROUTER_SECRET: randomBytes(24).toString('base64url') };
    gw.push(await startGateway({ ...ctx.baseEnv(ePort), ...common, PUSHGATE_ROLE: 'endpoint' }, ePort, ctx.gatewayArgs));
    // One endpoint node and one connection node: the pair issue 13's target compares with one `all` node. With two
    // connection nodes (until 2026-11-23 17:05) each one's group commits carried half the writes, and the ratio read
    // 2.1–2.2× where this pair reads 1.4–1.55× (docs/benchmarks.md "Scale-out runs").
    for (let i = 0; i < FLEET_CONNECTION_NODES; i++) {
      const p = await ctx.port();
      const r = await ctx.port();
      const connectionEnv = { ...common, PUSHGATE_ROLE: 'connection', PUSHGATE_ROUTER_PORT: String(r), PUSHGATE_WORKERS: String(cluster?.workers ?? 1) };
      gw.push(await startGateway({ ...ctx.baseEnv(p), ...connectionEnv }, p, ctx.gatewayArgs));
      wsUrls.push(`ws://127.0.0.1:${p}/`);
    }
  } else if (shape === 'floor') {
    const port = await ctx.port();
    gw.push(await startFloor(port, ctx.gatewayArgs));
    wsUrls.push(`ws://127.0.0.1:${port}/`);
    endpointOrigin = `http://127.0.0.1:${port}`;
  } else {
    const port = await ctx.port();
    const workersEnv = { PUSHGATE_WORKERS: String(cluster?.workers ?? 2), ...(cluster ? { PUSHGATE_WORKER_DIRECTORY: cluster.directory } : {}) };
    gw.push(await startGateway(ctx.baseEnv(port, shape === 'workers' ? workersEnv : {}), port, ctx.gatewayArgs));
    wsUrls.push(`ws://127.0.0.1:${port}/`);
    endpointOrigin = `http://127.0.0.1:${port}`;
  }
  try {
    await withWorkers(wsUrls.length, `${name}-clients`, (clientsW) =>
      withWorkers(2, `${name}-senders`, async (senders) => {
        const endpoints: string[] = [];
        for (let i = 0; i < clientsW.length; i++) {
          const r = await connectClients([clientsW[i]!], wsUrls[i]!, clientsN / wsUrls.length, { register: true, key: ctx.vapid.publicKey, keepTimes: true });
          endpoints.push(...r.endpoints);
        }
        const material = senderMaterial(endpointOrigin, ctx.vapid);
        // Saturation: as fast as the senders can go. The gateways' CPU per message shows what one core can do
        // when the load generators, which share these cores, are the limit.
        // An unmeasured warm-up first, so the saturation row does not pay for JIT compilation and the SQLite page
        // cache that the rows after it get for free (the TTL=0 row below is compared with it).
        // Both rows' paths (TTL 3600 and TTL 0) are warmed, so neither pays the other's JIT: measured with one warm-up
        // only, the row run second read up to 10 % cheaper whichever TTL it had. The floor stores nothing: one row.
        // Before it, one push to every client: a client's first push pays costs its later ones do not (in a fleet, the
        // endpoint node's read of its router record, cached after; and until 2026-11-24 07:30, in every shape, a save
        // at once, since its session had no ack delay yet to wait on, README "Durability"). A timed warm-up alone left
        // them to the measured row wherever it did not reach every client: the fleet on FerretDB/SQLite reached 1,300
        // of 2,000 in its 2 s, and its saturation row paid the other 700 first pushes (0.11 store calls per message,
        // 1.85× one node).
        // An unmeasured send: waits until its pushes have reached their clients, and forgets their receive times.
        const warmUp = async (warmMaterial: typeof material, opts: { durationMs: number; once?: boolean }, timeoutMs: number) => {
          const warm = await send(senders, endpoints, warmMaterial, { mode: 'saturate', concurrency: 64, ...opts });
          await Promise.all(clientsW.map((w) => w.call('waitReceived', { count: warm.ok / clientsW.length, timeoutMs })));
          await receivedTimes(clientsW);
          return warm;
        };
        // The first pushes' store calls are a row of their own (a connection's first message was saved at once until
        // 2026-11-24 07:30: 2 calls per message). Their CPU is not: the process is still cold.
        const firstOps = storeOps(await scrape(gw));
        const first = await warmUp(material, { durationMs: 60_000, once: true }, 10_000);
        if (shape !== 'floor') {
          ctx.rows.push({
            scenario: name,
            case: shape === 'fleet-single' ? 'first push to each client, one all node' : 'first push to each client',
            throughput: null,
            unit: 'store calls',
            extra: {
              posted: first.sent,
              accepted: first.ok,
              ...errorsOf(first),
              storeOpsPerMsg: round((storeOps(await scrape(gw)) - firstOps) / Math.max(1, first.ok), 2),
            },
          });
        }
        for (const warmTtl of shape !== 'floor' ? [undefined, 0] : [undefined]) {
          const warmMaterial = warmTtl === undefined ? material : senderMaterial(endpointOrigin, ctx.vapid, warmTtl);
          await warmUp(warmMaterial, { durationMs: Math.min(2000, ctx.phaseMs / 2) }, 5000);
        }
        // The gateways' CPU figures (all processes, the kernel's part too) from now to the end of a row.
        const cpuSince = () => {
          const total = () => gw.reduce((a, g) => a + g.cpuSeconds(), 0);
          const system = () => gw.reduce((a, g) => a + g.systemSeconds(), 0);
          const [cpu0, sys0] = [total(), system()];
          return (elapsedMs: number, messages: number) => cpuFigures(total() - cpu0, elapsedMs, messages, system() - sys0);
        };
        // One saturation row: as fast as the senders go for a phase, with the gateways' CPU and store calls per message.
        const saturation = async (label: string, rowMaterial: typeof material): Promise<void> => {
          const since = cpuSince();
          const primary0 = gw[0]!.ownCpuSeconds();
          const before = await scrape(gw);
          const [ops0, crossed0] = [storeOps(before), siblingPushes(before)];
          const sat = await send(senders, endpoints, rowMaterial, { mode: 'saturate', concurrency: 64, durationMs: ctx.phaseMs });
          await Promise.all(clientsW.map((w) => w.call('waitReceived', { count: sat.ok / clientsW.length, timeoutMs: 5000 })));
          const got = await receivedTimes(clientsW);
          const after = await scrape(gw);
          ctx.rows.push({
            scenario: name,
            case: shape === 'fleet-single' ? `${label}, one all node` : label,
            throughput: round(got.count / (sat.elapsedMs / 1000), 0),
            unit: 'delivered msg/s',
            latency: latency(sat.latencies),
            e2e: e2e(sat.ids, got.times),
            extra: {
              posted: sat.sent,
              accepted: sat.ok,
              ...errorsOf(sat),
              storeOpsPerMsg: round((storeOps(after) - ops0) / Math.max(1, got.count), 2),
              // A fleet's pushes that reached a worker other than the holder's and crossed its mesh (0 with one worker).
              ...(shape === 'fleet' && crossed0 !== null
                ? { linkPushesCrossedPct: round((100 * (siblingPushes(after)! - crossed0)) / Math.max(1, got.count), 1) }
                : {}),
              ...since(sat.elapsedMs, got.count),
              // With workers, the primary's share of cpuUsPerMsg: what remains of it on the message path.
              ...(shape === 'workers' ? { primaryCpuUsPerMsg: round(((gw[0]!.ownCpuSeconds() - primary0) * 1e6) / Math.max(1, got.count), 0) } : {}),
            },
          });
        };
        await saturation('saturation', material);
        // The same saturation with TTL 0: never stored (README "Durability"). The bench's clients ack at once, so the
        // TTL 3600 row above writes almost nothing either (the ack wait); the last row, with slow acks, writes every one.
        if (shape !== 'floor') await saturation('saturation TTL=0', senderMaterial(endpointOrigin, ctx.vapid, 0));
        // The fleet's shared store here is FerretDB (a scan per non-_id query), so its fixed rates stay lower.
        // A quick fleet run keeps to the saturation rows: its 1000/s row ran ten times over FerretDB/SQLite's durable
        // rate and only measured the queue (runs of 18–22 minutes).
        // The floor runs the direct rows' rates too: at one rate both do the same socket work per second, so their CPU
        // per message compares like with like (at saturation the floor runs faster, and a busier process pays less
        // per message for its wake-ups and system calls).
        const rates =
          shape === 'fleet-single' || (shape === 'fleet' && ctx.quick)
            ? []
            : ctx.quick
              ? shape === 'direct' || shape === 'floor'
                ? [1000, 5000]
                : [1000]
              : shape === 'fleet'
                ? [500, 1000]
                : [2000, 5000, 10_000];
        for (const rps of rates) {
          const since = cpuSince();
          const ops0 = storeOps(await scrape(gw));
          const r = await send(senders, endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: ctx.phaseMs });
          await Promise.all(clientsW.map((w) => w.call('waitReceived', { count: r.ok / clientsW.length, timeoutMs: 5000 })));
          const g = await receivedTimes(clientsW);
          const cpu = since(r.elapsedMs, g.count);
          ctx.rows.push({
            scenario: name,
            case: `${rps}/s`,
            throughput: round(g.count / (r.elapsedMs / 1000), 0),
            unit: 'delivered msg/s',
            latency: latency(r.latencies),
            e2e: e2e(r.ids, g.times),
            extra: {
              accepted: r.ok,
              ...errorsOf(r),
              storeOpsPerMsg: round((storeOps(await scrape(gw)) - ops0) / Math.max(1, g.count), 2),
              gatewayCpuPct: cpu['gatewayCpuPct']!,
              cpuUsPerMsg: cpu['cpuUsPerMsg']!,
              kernelUsPerMsg: cpu['kernelUsPerMsg']!,
            },
          });
        }
        // Clients far away: acks 200 ms after each notification, over half of PUSHGATE_ACK_WAIT_MS (100 ms), so every
        // TTL > 0 message is written at once in parallel with the send and deleted on its ack (README "Durability"):
        // the durable path's cost. Last, because the sessions' ack-delay estimates carry over to later rows.
        if (shape !== 'floor') {
          await Promise.all(clientsW.map((w) => w.call('setAckDelay', { ms: SLOW_ACK_MS })));
          await saturation(`saturation, acks after ${SLOW_ACK_MS} ms`, material);
        }
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
      }),
    );
  } finally {
    for (const g of gw) await g.stop();
    await mongo?.stop();
  }
}
