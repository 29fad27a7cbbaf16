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
        // The same after glibc has handed back the free memory it keeps (malloc_trim): what is in use. RSS alone rose
        // 14–25 % in some runs, in one step with the heap flat, and a trim then brought it below where it started
        // (README "Benchmarks", the soak row): memory freed after a burst that the allocator kept for reuse.
        const inUseStart = gw.trimFreeMemory() ? gw.rssBytes() : null;
        // RSS and the V8 heap (reserved, used) every 30 s: a plateau is warm-up, a steady climb is a leak. RSS outside
        // the heap V8 reserved is native memory (sockets' buffers, SQLite's cache, the allocator's free lists): a
        // climb there with the heap flat is a native leak or fragmentation, a step with the reserved heap is V8's sizing.
        const samples: { rss: number; total: number; used: number }[] = [];
        const sampler = setInterval(() => {
          void gw.metrics().then((m) =>
            samples.push({
              rss: gw.rssBytes() / 2 ** 20,
              total: metricValue(m, 'pushgate_nodejs_heap_size_total_bytes') / 2 ** 20,
              used: metricValue(m, 'pushgate_nodejs_heap_size_used_bytes') / 2 ** 20,
            }),
          );
        }, 30_000);
        const r = await send(senders, reg.endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: minutes * 60_000 });
        clearInterval(sampler);
        const end = gw.rssBytes();
        const inUseEnd = inUseStart !== null && gw.trimFreeMemory() ? gw.rssBytes() : null;
        // Connections the listener guard closed since this gateway started (warm-up included), by reason.
        const closedByGuard = (await gw.metrics())
          .split('\n')
          .filter((l) => l.startsWith('pushgate_http_connections_closed_total{'))
          .map((l) => `${/reason="([^"]*)"/.exec(l)?.[1]}: ${l.split(' ').pop()}`)
          .join(', ');
        await clientsW[0]!.call('received', { withTimes: false });
        // RSS swings by ±10 % with garbage collection, so growth compares the mean of the first and last thirds.
        const third = Math.max(1, Math.floor(samples.length / 3));
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
        const trend = (xs: number[]) => round(((mean(xs.slice(-third)) - mean(xs.slice(0, third))) / mean(xs.slice(0, third))) * 100, 1);
        const trendPct = trend(samples.map((x) => x.rss));
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
            // Without gdb, not measured (no field).
            ...(inUseStart !== null && inUseEnd !== null
              ? {
                  rssTrimmedStartMiB: round(inUseStart / 2 ** 20, 1),
                  rssTrimmedEndMiB: round(inUseEnd / 2 ** 20, 1),
                  rssTrimmedGrowthPct: round(((inUseEnd - inUseStart) / inUseStart) * 100, 1),
                }
              : {}),
            ...errorsOf(r),
            ...(closedByGuard ? { closedByGuard } : {}),
            // The same between thirds for RSS outside the reserved V8 heap.
            outsideHeapTrendPct: trend(samples.map((x) => x.rss - x.total)),
            rssHeapTotalUsedMiBEvery30s: samples.map((x) => [x.rss, x.total, x.used].map((v) => round(v, 0)).join('/')).join(' '),
          },
        });
      }),
    );
  } finally {
    await gw.stop();
  }
}
