import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { SqliteStore } from '../../src/store/sqlite.js';
import { type BenchContext, countOption } from '../lib/context.js';
import { connectClients, cpuFigures, withWorkers } from '../lib/load.js';
import { type GatewayProcess, metricValue, startFloor, startGateway, type Worker } from '../lib/procs.js';
import { round } from '../lib/stats.js';

/** Waits (bounded) until the gateway reports `open` connections, so a close's server-side work stays out of the next window. */
async function waitOpen(gw: GatewayProcess, open: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (metricValue(await gw.metrics(), 'pushgate_connections') !== open && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

/** Connects `size` clients (hello + register) and records the gateway's CPU and memory for them as one row. */
async function measure(ctx: BenchContext, gw: GatewayProcess, clientsW: Worker[], port: number, size: number, label: string): Promise<void> {
  const before = gw.rssBytes();
  const heapBefore = metricValue(await gw.metrics(), 'pushgate_nodejs_heap_size_used_bytes');
  const c0 = gw.cpuSeconds();
  const s0 = gw.systemSeconds();
  const r = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, size, { register: true, key: ctx.vapid.publicKey });
  const connectCpu = gw.cpuSeconds() - c0;
  const connectSys = gw.systemSeconds() - s0;
  await new Promise((res) => setTimeout(res, 2000));
  const m = await gw.metrics();
  const after = gw.rssBytes();
  const heapAfter = metricValue(m, 'pushgate_nodejs_heap_size_used_bytes');
  const open = metricValue(m, 'pushgate_connections');
  ctx.rows.push({
    scenario: 'connections',
    case: label,
    throughput: round((size - r.failures) / (r.elapsedMs / 1000), 0),
    unit: 'connect+hello+register/s',
    extra: {
      open,
      failures: r.failures,
      rssPerConnKiB: round((after - before) / Math.max(1, open) / 1024, 2),
      heapPerConnKiB: round((heapAfter - heapBefore) / Math.max(1, open) / 1024, 2),
      rssMiB: round(after / 2 ** 20, 0),
      eventLoopLagP99ms: round(metricValue(m, 'pushgate_nodejs_eventloop_lag_p99_seconds') * 1000, 1),
      ...cpuFigures(connectCpu, r.elapsedMs, size - r.failures, connectSys),
    },
  });
}

/** Users already stored in the `onto a populated store` row. */
const POPULATION = 300_000;

/**
 * Fills the SQLite file at `path` with `users` users of one channel each, under random (version 4) uaids: a store
 * that grew before time-ordered uaids, or was carried over from autopush. Group commits of 2,000 rows.
 */
async function populate(path: string, users: number): Promise<void> {
  const store = new SqliteStore(path);
  const keyHash = Buffer.alloc(32, 7);
  for (let done = 0; done < users; done += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, users - done) }, () => {
        const uaid = randomUUID().replaceAll('-', '');
        return Promise.all([
          store.addUser({ uaid, routerType: 'webpush', routerData: null, connectedAt: Date.now(), peerId: null }),
          store.addChannel(uaid, { channelID: randomUUID(), keyHash }),
        ]);
      }),
    );
  }
  await store.close();
}

/** Connect+hello+register rate and memory per connection of one gateway process. */
export async function connections(ctx: BenchContext): Promise<void> {
  // RLIMIT_NOFILE caps one process at this many descriptors here; a socket is one.
  const fdLimit = Number(execSync('sh -c "ulimit -n"').toString().trim());
  // `--connections-clients=N` measures one population of N (for back-to-back A/B runs of two builds); otherwise
  // 2,000 with --quick, or 10,000 and as many as the descriptor limit allows.
  const asked = countOption('connections-clients');
  const sizes = asked !== undefined ? [Math.min(asked, fdLimit - 1000)] : ctx.quick ? [2000] : [10_000, Math.min(100_000, fdLimit - 1000)];
  // Then, at the first size, the same clients onto a store that already holds POPULATION users (so the new rows'
  // pages are not the few a near-empty store has), and last the floor (bench/floor.ts): bare node:http and ws doing
  // the same upgrade, hello and register answers with nothing else, so the gateway's figure can be read against what
  // Node itself costs.
  const runs = [
    ...sizes.map((n) => ({ size: n, kind: 'plain' as const })),
    { size: sizes[0]!, kind: 'populated' as const },
    { size: sizes[0]!, kind: 'floor' as const },
  ];
  for (const { size, kind } of runs) {
    const port = await ctx.port();
    const env = ctx.baseEnv(port);
    if (kind === 'populated') await populate(env['PUSHGATE_STORE']!.slice('sqlite:'.length), POPULATION);
    const gw = kind === 'floor' ? await startFloor(port, ctx.gatewayArgs) : await startGateway(env, port, ctx.gatewayArgs);
    const suffix = { plain: '', populated: `, onto a store of ${POPULATION.toLocaleString('en')} users`, floor: ', floor (bare node:http + ws)' }[kind];
    try {
      await withWorkers(Math.ceil(size / 12_000), 'clients', async (clientsW) => {
        // A warm-up first, as the direct scenario does: 1,000 clients connect, hello, register and leave, so the
        // measured row pays neither for JIT compilation of the hello/register path nor for the SQLite file's first
        // page growth (their user and channel rows stay, as a returning population's would). It is recorded as
        // its own "cold" row so the difference stays visible.
        await measure(ctx, gw, clientsW, port, 1000, `1000 clients, cold process (warm-up)${suffix}`);
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
        await waitOpen(gw, 0);
        await measure(ctx, gw, clientsW, port, size, `${size} clients${suffix}`);
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
      });
    } finally {
      await gw.stop();
    }
  }
  if (!ctx.quick)
    ctx.notes.push(
      `connections: one process may hold at most ${fdLimit} descriptors on this machine (RLIMIT_NOFILE, not raisable here); the idle scenario spreads 100k connections over workers.`,
    );
}
