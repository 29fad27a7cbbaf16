import type { BenchContext } from '../lib/context.js';
import { connectClients, errorsOf, send, senderMaterial, withWorkers } from '../lib/load.js';
import { metricValue, startGateway } from '../lib/procs.js';
import { latency, round } from '../lib/stats.js';

/** Half the direct saturation rate for `minutes`, with RSS and heap sampled every 30 s. */
export async function soak(ctx: BenchContext, minutes: number): Promise<void> {
  const port = await ctx.port();
  const gw = await startGateway(ctx.baseEnv(port), port, ctx.gatewayArgs);
  try {
    await withWorkers(1, 'soak-clients', (clientsW) =>
      withWorkers(2, 'soak-senders', async (senders) => {
        const reg = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, 1000, { register: true, key: ctx.vapid.publicKey });
        const material = senderMaterial(`http://127.0.0.1:${port}`, ctx.vapid);
        const direct = ctx.rows.find((r) => r.scenario === 'direct' && r.case === 'saturation')?.throughput ?? 4000;
        const rps = Math.round(direct / 2);
        // Warm up one minute, then compare RSS at the start and the end of the soak.
        await send(senders, reg.endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: 60_000 });
        const start = gw.rssBytes();
        // RSS and V8 heap every 30 s: a plateau is warm-up, a steady climb is a leak.
        const series: string[] = [];
        const sampler = setInterval(() => {
          void gw
            .metrics()
            .then((m) => series.push(`${round(gw.rssBytes() / 2 ** 20, 0)}/${round(metricValue(m, 'pushgate_nodejs_heap_size_used_bytes') / 2 ** 20, 0)}`));
        }, 30_000);
        const r = await send(senders, reg.endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: minutes * 60_000 });
        clearInterval(sampler);
        const end = gw.rssBytes();
        // Connections the listener guard closed since this gateway started (warm-up included), by reason.
        const closedByGuard = (await gw.metrics())
          .split('\n')
          .filter((l) => l.startsWith('pushgate_http_connections_closed_total{'))
          .map((l) => `${/reason="([^"]*)"/.exec(l)?.[1]}: ${l.split(' ').pop()}`)
          .join(', ');
        await clientsW[0]!.call('received', { withTimes: false });
        // RSS swings by ±10 % with garbage collection, so growth compares the mean of the first and last thirds.
        const rss = series.map((x) => Number(x.split('/')[0]));
        const third = Math.max(1, Math.floor(rss.length / 3));
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
        const trendPct = round(((mean(rss.slice(-third)) - mean(rss.slice(0, third))) / mean(rss.slice(0, third))) * 100, 1);
        ctx.rows.push({
          scenario: 'soak',
          case: `${minutes} min at ${rps}/s`,
          throughput: round(r.ok / (r.elapsedMs / 1000), 0),
          unit: 'accepted msg/s',
          latency: latency(r.latencies),
          extra: {
            rssStartMiB: round(start / 2 ** 20, 1),
            rssEndMiB: round(end / 2 ** 20, 1),
            rssGrowthPct: round(((end - start) / start) * 100, 1),
            rssTrendPct: trendPct,
            ...errorsOf(r),
            ...(closedByGuard ? { closedByGuard } : {}),
            rssHeapMiBEvery30s: series.join(' '),
          },
        });
      }),
    );
  } finally {
    await gw.stop();
  }
}
