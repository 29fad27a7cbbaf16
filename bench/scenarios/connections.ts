import { execSync } from 'node:child_process';
import type { BenchContext } from '../lib/context.js';
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

/** Connect+hello+register rate and memory per connection of one gateway process. */
export async function connections(ctx: BenchContext): Promise<void> {
  // RLIMIT_NOFILE caps one process at this many descriptors here; a socket is one.
  const fdLimit = Number(execSync('sh -c "ulimit -n"').toString().trim());
  // `--connections-clients=N` measures one population of N (for back-to-back A/B runs of two builds); otherwise
  // 2,000 with --quick, or 10,000 and as many as the descriptor limit allows.
  const asked = Number(process.argv.find((a) => a.startsWith('--connections-clients='))?.slice(22) ?? NaN);
  const sizes = Number.isInteger(asked) && asked > 0 ? [Math.min(asked, fdLimit - 1000)] : ctx.quick ? [2000] : [10_000, Math.min(100_000, fdLimit - 1000)];
  // The floor (bench/floor.ts) last, at the first size: bare node:http and ws doing the same upgrade, hello and
  // register answers with nothing else, so the gateway's figure can be read against what Node itself costs.
  for (const [size, floor] of [...sizes.map((n) => [n, false] as const), [sizes[0]!, true] as const]) {
    const port = await ctx.port();
    const gw = floor ? await startFloor(port, ctx.gatewayArgs) : await startGateway(ctx.baseEnv(port), port, ctx.gatewayArgs);
    const suffix = floor ? ', floor (bare node:http + ws)' : '';
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
