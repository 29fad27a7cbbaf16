import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../lib/context.js';
import { cpuFigures, withWorkers } from '../lib/load.js';
import { startGateway } from '../lib/procs.js';
import { latency, round } from '../lib/stats.js';

/** XEP-0357 publishes from a fake XMPP server, bridged to the FCM fake. */
export async function xmpp(ctx: BenchContext): Promise<void> {
  await withWorkers(2, 'xmpp', async ([fakesW, serverW]) => {
    const f = await fakesW!.call<{ origin: string; caFile: string; serviceAccountFile: string; dir: string }>('startFakes');
    const bridgesFile = join(f.dir, 'bridges.json');
    writeFileSync(
      bridgesFile,
      JSON.stringify({ fcm: { bench: { serviceAccount: f.serviceAccountFile, baseUrl: f.origin, tokenUrl: `${f.origin}/token`, ca: f.caFile } } }),
    );
    const domain = 'push.bench.example';
    const { port: xport } = await serverW!.call<{ port: number }>('startXmppServer', { domain, secret: 'bench-secret' });
    const port = await ctx.port();
    const gw = await startGateway(
      {
        ...ctx.baseEnv(port),
        PUSHGATE_BRIDGES: bridgesFile,
        PUSHGATE_XMPP_SERVICE: `xmpp://127.0.0.1:${xport}`,
        PUSHGATE_XMPP_DOMAIN: domain,
        PUSHGATE_XMPP_PASSWORD: 'bench-secret',
        PUSHGATE_XMPP_RATE_LIMIT: '0',
      },
      port,
      ctx.gatewayArgs,
    );
    try {
      await serverW!.call('xmppConnected');
      const nodes = await serverW!.call<{ node: string; secret: string }[]>('xmppRegister', { count: ctx.quick ? 100 : 500, domain });
      await fakesW!.call('fakesCount');
      const c0 = gw.cpuSeconds();
      const r = await serverW!.call<{ elapsedMs: number; latencies: number[]; results: Record<string, number> }>('xmppPublish', {
        nodes,
        domain,
        concurrency: 64,
        durationMs: ctx.phaseMs,
      });
      const received = await fakesW!.call<number>('fakesCount');
      ctx.rows.push({
        scenario: 'xmpp-fcm',
        case: 'saturation',
        throughput: round(received / (r.elapsedMs / 1000), 0),
        unit: 'publish→FCM/s',
        latency: latency(r.latencies),
        extra: { results: JSON.stringify(r.results), atFake: received, ...cpuFigures(gw.cpuSeconds() - c0, r.elapsedMs, received) },
      });
    } finally {
      await gw.stop();
    }
  });
}
