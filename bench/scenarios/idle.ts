import type { BenchContext } from '../lib/context.js';
import { connectClients, withWorkers } from '../lib/load.js';
import { metricValue, startGateway } from '../lib/procs.js';
import { round } from '../lib/stats.js';

/**
 * Idle connections across workers: `size` websocket clients that said hello, spread by node:cluster over
 * enough PUSHGATE_WORKERS that no process passes its descriptor limit (RLIMIT_NOFILE is 20,000 here and cannot
 * be raised), from load processes that each hold at most PER_PROCESS sockets and bind their own 127.0.x.y
 * source addresses (so no address runs out of ephemeral ports). Memory per connection is the growth of the
 * gateway's whole process tree (primary + workers) divided by the open connections.
 *
 * It runs once per node:cluster scheduling policy: `rr` (Node's default on Linux: the primary accepts every
 * connection and passes it to a worker over IPC) and `none` (the workers accept from the shared socket themselves,
 * the kernel choosing which), so the default Pushgate keeps is chosen by measurement (docs/benchmarks.md "Scale-out runs").
 * Then under `none` with the directory partitioned (PUSHGATE_WORKER_DIRECTORY), and with 16 workers each way: what
 * the directory costs per connection as the worker count grows (replicated, each connect is an entry and a frame on
 * every other worker; partitioned, on one).
 */
const PER_PROCESS = 17_000;

export async function idle(ctx: BenchContext): Promise<void> {
  const size = ctx.quick ? 20_000 : 100_000;
  const procs = Math.ceil(size / PER_PROCESS);
  // node:cluster's round robin spreads evenly; one worker more than strictly needed leaves headroom per worker.
  const gatewayWorkers = procs + 1;
  for (const policy of ['rr', 'none'] as const) await idleRun(ctx, size, procs, gatewayWorkers, policy, 'auto');
  await idleRun(ctx, size, procs, gatewayWorkers, 'none', 'partitioned');
  for (const directory of ['replicated', 'partitioned'] as const) await idleRun(ctx, size, procs, 16, 'none', directory);
}

async function idleRun(
  ctx: BenchContext,
  size: number,
  procs: number,
  gatewayWorkers: number,
  policy: 'rr' | 'none',
  directory: 'auto' | 'replicated' | 'partitioned',
): Promise<void> {
  const port = await ctx.port();
  // Node reads NODE_CLUSTER_SCHED_POLICY in the primary; it overrides Pushgate's own default.
  const env = { PUSHGATE_WORKERS: String(gatewayWorkers), NODE_CLUSTER_SCHED_POLICY: policy, PUSHGATE_WORKER_DIRECTORY: directory };
  const gw = await startGateway(ctx.baseEnv(port, env), port, ctx.gatewayArgs);
  try {
    await withWorkers(procs, 'idle-clients', async (clientsW) => {
      const before = gw.rssBytes();
      const c0 = gw.cpuSeconds();
      const r = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, size, {
        register: false,
        concurrency: 128,
        localAddresses: (i) => Array.from({ length: 16 }, (_, j) => `127.0.${i + 1}.${j + 1}`),
      });
      const cpu = gw.cpuSeconds() - c0;
      // Let allocation settle before reading memory.
      await new Promise((res) => setTimeout(res, 3000));
      const m = await gw.metrics();
      // How evenly the connections spread: each worker's open descriptors (its connections plus a few dozen of its own).
      const perWorker = gw.childDescriptors();
      const open = metricValue(m, 'pushgate_connections');
      const after = gw.rssBytes();
      ctx.rows.push({
        scenario: 'idle',
        case: `${size} clients, ${gatewayWorkers} workers, sched ${policy}${directory === 'auto' ? '' : `, directory ${directory}`}`,
        throughput: round((size - r.failures) / (r.elapsedMs / 1000), 0),
        unit: 'connect+hello/s',
        extra: {
          open,
          // The directory's entries for siblings' clients, summed over the workers (replicated: each client on every
          // other worker; partitioned: on its uaid's owner unless that is its own worker).
          directoryEntries: metricValue(m, 'pushgate_cluster_directory_entries'),
          failures: r.failures,
          rssPerConnKiB: round((after - before) / open / 1024, 2),
          rssMiB: round(after / 2 ** 20, 0),
          cpuUsPerConnect: round((cpu * 1e6) / Math.max(1, size - r.failures), 0),
          loadProcesses: procs,
          workerDescriptorsMin: Math.min(...perWorker),
          workerDescriptorsMax: Math.max(...perWorker),
        },
      });
      await Promise.all(clientsW.map((w) => w.call('closeClients')));
    });
  } finally {
    await gw.stop();
  }
}
