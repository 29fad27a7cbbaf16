import type { BenchContext } from '../lib/context.js';
import { connectClients, cpuFigures, errorsOf, send, senderMaterial, withWorkers } from '../lib/load.js';
import { startGateway } from '../lib/procs.js';
import { latency, round } from '../lib/stats.js';

/** Messages for offline clients: the store rate, then the drain rate when the clients come back. */
export async function stored(ctx: BenchContext, backend: 'sqlite' | 'mongodb'): Promise<void> {
  let storeUrl: string | undefined;
  let mongo: Awaited<ReturnType<BenchContext['mongo']>> = null;
  if (backend === 'mongodb') {
    mongo = await ctx.mongo();
    if (!mongo) return void ctx.notes.push('stored/mongodb: skipped, no MongoDB-wire server (npm test builds FerretDB)');
    storeUrl = mongo.url;
  }
  const port = await ctx.port();
  const gw = await startGateway({ ...ctx.baseEnv(port), ...(storeUrl ? { PUSHGATE_STORE: storeUrl } : {}) }, port, ctx.gatewayArgs);
  // FerretDB (the MongoDB-wire server available here) scans collections for non-_id queries, so its run is kept
  // small; the figure shows the protocol path, not what a real MongoDB does.
  const users = backend === 'mongodb' ? (ctx.quick ? 20 : 200) : ctx.quick ? 200 : 1000;
  const perUser = backend === 'mongodb' ? 5 : ctx.quick ? 10 : 20;
  try {
    await withWorkers(1, 'stored-clients', (clientsW) =>
      withWorkers(2, 'stored-senders', async (senders) => {
        const reg = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, users, { register: true, key: ctx.vapid.publicKey });
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
        const material = senderMaterial(`http://127.0.0.1:${port}`, ctx.vapid);
        const targets = Array.from({ length: perUser }, () => reg.endpoints).flat();
        const c0 = gw.cpuSeconds();
        const s = await send(senders, targets, material, { mode: 'saturate', concurrency: 32, durationMs: 600_000, once: true });
        ctx.rows.push({
          scenario: `stored-${backend}`,
          case: 'store',
          throughput: round(s.ok / (s.elapsedMs / 1000), 0),
          unit: 'stored msg/s',
          latency: latency(s.latencies),
          extra: { accepted: s.ok, ...errorsOf(s), ...cpuFigures(gw.cpuSeconds() - c0, s.elapsedMs, s.ok) },
        });
        const drainStart = Date.now();
        const c1 = gw.cpuSeconds();
        await connectClients(clientsW, `ws://127.0.0.1:${port}/`, users, { register: false, uaids: reg.uaids });
        const w = await clientsW[0]!.call<{ count: number; elapsedMs: number }>('waitReceived', { count: s.ok, timeoutMs: 300_000 });
        ctx.rows.push({
          scenario: `stored-${backend}`,
          case: 'drain',
          throughput: round(w.count / ((Date.now() - drainStart) / 1000), 0),
          unit: 'drained msg/s',
          extra: { drained: w.count, expected: s.ok, ...cpuFigures(gw.cpuSeconds() - c1, Date.now() - drainStart, w.count) },
        });
        await clientsW[0]!.call('closeClients');
      }),
    );
  } finally {
    await gw.stop();
    await mongo?.stop();
  }
}
