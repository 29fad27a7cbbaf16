import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../lib/context.js';
import { cpuFigures, errorsOf, send, senderMaterial, withWorkers } from '../lib/load.js';
import { startGateway } from '../lib/procs.js';
import { latency, round } from '../lib/stats.js';

/** Web Push to bridged (FCM) registrations, delivered to the FCM fake. */
export async function bridge(ctx: BenchContext): Promise<void> {
  await withWorkers(1, 'fakes', async ([fakesW]) => {
    const f = await fakesW!.call<{ origin: string; caFile: string; serviceAccountFile: string; dir: string }>('startFakes');
    const bridgesFile = join(f.dir, 'bridges.json');
    writeFileSync(
      bridgesFile,
      JSON.stringify({ fcm: { bench: { serviceAccount: f.serviceAccountFile, baseUrl: f.origin, tokenUrl: `${f.origin}/token`, ca: f.caFile } } }),
    );
    const port = await ctx.port();
    const gw = await startGateway({ ...ctx.baseEnv(port), PUSHGATE_BRIDGES: bridgesFile }, port, ctx.gatewayArgs);
    try {
      const endpoints: string[] = [];
      for (let i = 0; i < (ctx.quick ? 100 : 500); i++) {
        const res = await fetch(`http://127.0.0.1:${port}/v1/fcm/bench/registration`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token: `fcm-bench-token-${i}` }),
        });
        endpoints.push(((await res.json()) as { endpoint: string }).endpoint);
      }
      await withWorkers(2, 'bridge-senders', async (senders) => {
        const material = senderMaterial(`http://127.0.0.1:${port}`, ctx.vapid);
        material.headers = Object.fromEntries(Object.entries(material.headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
        const body = Buffer.alloc(2048, 0x62).toString('base64');
        const c0 = gw.cpuSeconds();
        const s = await send(senders, endpoints, { ...material, body }, { mode: 'saturate', concurrency: 64, durationMs: ctx.phaseMs });
        const received = await fakesW!.call<number>('fakesCount');
        ctx.rows.push({
          scenario: 'bridge-fcm',
          case: 'saturation',
          throughput: round(received / (s.elapsedMs / 1000), 0),
          unit: 'FCM msg/s',
          latency: latency(s.latencies),
          extra: { accepted: s.ok, ...errorsOf(s), atFake: received, ...cpuFigures(gw.cpuSeconds() - c0, s.elapsedMs, received) },
        });
      });
    } finally {
      await gw.stop();
    }
  });
}
