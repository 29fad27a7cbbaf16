import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, homedir, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { FernetKey } from '../src/webpush/protocol/fernet.js';
import { type ChartRow, drawChart } from './lib/chart.js';
import { type GatewayProcess, metricValue, startGateway, waitForPort, Worker } from './lib/procs.js';
import { latency, type Latency, round } from './lib/stats.js';

/**
 * `npm run bench [-- --quick] [-- --only=a,b]`: runs each scenario against the gateway started as its own
 * process, with load from separate processes on this machine, then prints a table and writes the figures
 * (JSON) and a chart (PNG) under bench/results/.
 */

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const soakMinutes = Number(args.find((a) => a.startsWith('--soak-minutes='))?.slice(15) ?? (quick ? 0 : 10));
/** With --profile the gateway writes a V8 CPU profile (.cpuprofile) per scenario to bench/results/profiles. */
const profile = args.includes('--profile');
const gatewayArgs = profile ? ['--cpu-prof', '--cpu-prof-dir=bench/results/profiles'] : [];
/** How long each measured phase runs. */
const PHASE_MS = quick ? 2000 : 10_000;

interface Row extends ChartRow {
  extra?: Record<string, number | string>;
}
const rows: Row[] = [];
const notes: string[] = [];

let portSeq = 20000 + Math.floor(Math.random() * 20000);
const nextPort = () => portSeq++;
const ferretdb = process.env['FERRETDB_BIN'] ?? join(homedir(), '.cache', 'pushgate-test', 'ferretdb-v1.24.2');

function baseEnv(port: number, extra: Record<string, string> = {}): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-bench-'));
  return {
    PUSHGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    PUSHGATE_CRYPTO_KEY: cryptoKey,
    PUSHGATE_STORE: `sqlite:${dir}/db.sqlite`,
    PUSHGATE_DATA_DIR: dir,
    PUSHGATE_MSG_LIMIT: '100000',
    PUSHGATE_HELLO_TIMEOUT: '60',
    ...extra,
  };
}
const cryptoKey = FernetKey.generate();
const vapid = webpush.generateVAPIDKeys();

/** 1 kB encrypted for a throw-away subscription key, with a VAPID header reused for every request. */
function senderMaterial(origin: string): { body: string; headers: Record<string, string> } {
  const ua = webpush.generateVAPIDKeys();
  const sub = { endpoint: `${origin}/wpush/v2/x`, keys: { p256dh: ua.publicKey, auth: Buffer.alloc(16, 7).toString('base64url') } };
  const d = webpush.generateRequestDetails(sub, Buffer.alloc(1024, 0x61), { TTL: 3600, vapidDetails: { subject: 'mailto:bench@example.com', ...vapid } });
  const headers = Object.fromEntries(Object.entries(d.headers as Record<string, string>).filter(([k]) => k.toLowerCase() !== 'content-length'));
  return { body: (d.body as Buffer).toString('base64'), headers };
}

const addresses = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);

async function withWorkers<T>(n: number, name: string, fn: (ws: Worker[]) => Promise<T>): Promise<T> {
  const ws = Array.from({ length: n }, (_, i) => new Worker(`${name}-${i}`));
  try {
    return await fn(ws);
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
  }
}

interface ConnectResult {
  elapsedMs: number;
  failures: number;
  uaids: string[];
  endpoints: (string | null)[];
}
interface SendResult {
  elapsedMs: number;
  sent: number;
  statuses: Record<string, number>;
  latencies: number[];
  ids: [string, number][];
}

/** Splits `total` clients over workers and connects them (each worker keeps its sockets). */
async function connectClients(workers: Worker[], url: string, total: number, opts: { register: boolean; key?: string; uaids?: string[]; keepTimes?: boolean }) {
  const per = Math.ceil(total / workers.length);
  const started = Date.now();
  const parts = await Promise.all(
    workers.map((w, i) =>
      w.call<ConnectResult>('connect', {
        url,
        count: Math.max(0, Math.min(per, total - i * per)),
        localAddresses: addresses(32).slice((i * 16) % 32, ((i * 16) % 32) + 16),
        register: opts.register,
        key: opts.key,
        concurrency: 256,
        uaids: opts.uaids?.slice(i * per, (i + 1) * per),
        keepTimes: opts.keepTimes ?? false,
      }),
    ),
  );
  return {
    elapsedMs: Date.now() - started,
    failures: parts.reduce((a, p) => a + p.failures, 0),
    uaids: parts.flatMap((p) => p.uaids),
    endpoints: parts.flatMap((p) => p.endpoints).filter((e): e is string => e !== null),
  };
}

async function send(senders: Worker[], endpoints: string[], material: { body: string; headers: Record<string, string> }, opts: { mode: 'saturate' | 'rate'; concurrency: number; rps?: number; durationMs: number; once?: boolean }) {
  const per = Math.ceil(endpoints.length / senders.length);
  const results = await Promise.all(
    senders.map((w, i) =>
      w.call<SendResult>('send', {
        targets: endpoints.slice(i * per, (i + 1) * per).map((endpoint) => ({ endpoint, body: material.body })),
        headers: material.headers,
        mode: opts.mode,
        concurrency: opts.concurrency,
        rps: opts.rps ? opts.rps / senders.length : undefined,
        durationMs: opts.durationMs,
        // Each endpoint exactly once (stored scenario) instead of until time is up.
        count: opts.once ? endpoints.slice(i * per, (i + 1) * per).length : undefined,
      }),
    ),
  );
  const statuses: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
    sent: results.reduce((a, r) => a + r.sent, 0),
    ok: (statuses['201'] ?? 0),
    statuses,
    latencies: results.flatMap((r) => r.latencies),
    ids: results.flatMap((r) => r.ids),
  };
}

async function receivedTimes(clientsW: Worker[]) {
  const parts = await Promise.all(clientsW.map((w) => w.call<{ count: number; times: [string, number][] }>('received', { withTimes: true })));
  return { count: parts.reduce((a, p) => a + p.count, 0), times: new Map(parts.flatMap((p) => p.times)) };
}

function e2e(ids: [string, number][], times: Map<string, number>): Latency {
  const samples: number[] = [];
  for (const [id, t0] of ids) {
    const t1 = times.get(id);
    if (t1 !== undefined) samples.push(t1 - t0);
  }
  return latency(samples);
}

/** FerretDB on its SQLite backend (the MongoDB-wire server available here), or null when it is not built. */
async function startFerret(): Promise<{ url: string; stop(): void } | null> {
  if (!existsSync(ferretdb)) return null;
  const dbPort = nextPort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-ferret-'));
  const { spawn } = await import('node:child_process');
  const child = spawn(ferretdb, ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${dbPort}`, `--state-dir=${dir}`, '--telemetry=disable', '--log-level=error', '--debug-addr=-'], { stdio: 'ignore' });
  await waitForPort(dbPort);
  return { url: `mongodb://127.0.0.1:${dbPort}/bench`, stop: () => child.kill('SIGTERM') };
}

/** Gateway CPU use during a phase: percent of one core, µs per message, and the messages one core could carry. */
function cpuFigures(cpuSeconds: number, elapsedMs: number, messages: number): Record<string, number> {
  const perMsgUs = (cpuSeconds * 1e6) / Math.max(1, messages);
  return { gatewayCpuPct: round((cpuSeconds / (elapsedMs / 1000)) * 100, 0), cpuUsPerMsg: round(perMsgUs, 0), perCoreMsgPerS: round(1e6 / perMsgUs, 0) };
}

// --- scenarios -----------------------------------------------------------------------------------

async function connections(): Promise<void> {
  // RLIMIT_NOFILE caps one process at this many descriptors here; a socket is one.
  const fdLimit = Number(execSync('sh -c "ulimit -n"').toString().trim());
  const sizes = quick ? [2000] : [10_000, Math.min(100_000, fdLimit - 1000)];
  for (const size of sizes) {
    const port = nextPort();
    const gw = await startGateway(baseEnv(port), port, gatewayArgs);
    try {
      await withWorkers(Math.ceil(size / 12_000), 'clients', async (clientsW) => {
        const before = gw.rssBytes();
        const heapBefore = metricValue(await gw.metrics(), 'pushgate_nodejs_heap_size_used_bytes');
        const c0 = gw.cpuSeconds();
        const r = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, size, { register: true, key: vapid.publicKey });
        const connectCpu = gw.cpuSeconds() - c0;
        await new Promise((res) => setTimeout(res, 2000));
        const m = await gw.metrics();
        const after = gw.rssBytes();
        const heapAfter = metricValue(m, 'pushgate_nodejs_heap_size_used_bytes');
        const open = metricValue(m, 'pushgate_connections');
        rows.push({
          scenario: 'connections',
          case: `${size} clients`,
          throughput: round((size - r.failures) / (r.elapsedMs / 1000), 0),
          unit: 'connect+hello+register/s',
          extra: {
            open,
            failures: r.failures,
            rssPerConnKiB: round((after - before) / open / 1024, 2),
            heapPerConnKiB: round((heapAfter - heapBefore) / open / 1024, 2),
            rssMiB: round(after / 2 ** 20, 0),
            eventLoopLagP99ms: round(metricValue(m, 'pushgate_nodejs_eventloop_lag_p99_seconds') * 1000, 1),
            ...cpuFigures(connectCpu, r.elapsedMs, size - r.failures),
          },
        });
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
      });
    } finally {
      await gw.stop();
    }
  }
  if (!quick) notes.push(`connections: one process may hold at most ${fdLimit} descriptors on this machine (RLIMIT_NOFILE, not raisable here), so 50k and 100k connections cannot be opened; the largest measured size is reported and per-connection memory is what scales.`);
}

async function direct(opts: { fleet?: boolean } = {}): Promise<void> {
  const name = opts.fleet ? 'fleet' : 'direct';
  const clientsN = quick ? 300 : 2000;
  let gw: GatewayProcess[] = [];
  let wsUrls: string[];
  let endpointOrigin: string;
  let ferret: Awaited<ReturnType<typeof startFerret>> = null;
  if (opts.fleet) {
    ferret = await startFerret();
    if (!ferret) return void notes.push('fleet: skipped, FerretDB is not built (npm test builds it)');
    const store = ferret.url;
    const ePort = nextPort();
    endpointOrigin = `http://127.0.0.1:${ePort}`;
    const common = { PUSHGATE_STORE: store, PUSHGATE_PUBLIC_URL: endpointOrigin, PUSHGATE_ROUTER_SECRET: 'bench-router-secret-0123456789' };
    gw.push(await startGateway({ ...baseEnv(ePort), ...common, PUSHGATE_ROLE: 'endpoint' }, ePort));
    wsUrls = [];
    for (let i = 0; i < 2; i++) {
      const p = nextPort();
      const r = nextPort();
      gw.push(await startGateway({ ...baseEnv(p), ...common, PUSHGATE_ROLE: 'connection', PUSHGATE_ROUTER_PORT: String(r) }, p));
      wsUrls.push(`ws://127.0.0.1:${p}/`);
    }
  } else {
    const port = nextPort();
    gw = [await startGateway(baseEnv(port), port, gatewayArgs)];
    wsUrls = [`ws://127.0.0.1:${port}/`];
    endpointOrigin = `http://127.0.0.1:${port}`;
  }
  try {
    await withWorkers(wsUrls.length, `${name}-clients`, (clientsW) =>
      withWorkers(2, `${name}-senders`, async (senders) => {
        const endpoints: string[] = [];
        for (let i = 0; i < clientsW.length; i++) {
          const r = await connectClients([clientsW[i]!], wsUrls[i]!, clientsN / wsUrls.length, { register: true, key: vapid.publicKey, keepTimes: true });
          endpoints.push(...r.endpoints);
        }
        const material = senderMaterial(endpointOrigin);
        // Saturation: as fast as the senders can go. The gateways' CPU per message shows what one core can do
        // when the load generators, which share these cores, are the limit.
        const cpu0 = gw.reduce((a, g) => a + g.cpuSeconds(), 0);
        const sat = await send(senders, endpoints, material, { mode: 'saturate', concurrency: 64, durationMs: PHASE_MS });
        await Promise.all(clientsW.map((w) => w.call('waitReceived', { count: sat.ok / clientsW.length, timeoutMs: 5000 })));
        const got = await receivedTimes(clientsW);
        rows.push({
          scenario: name,
          case: 'saturation',
          throughput: round(got.count / (sat.elapsedMs / 1000), 0),
          unit: 'delivered msg/s',
          latency: latency(sat.latencies),
          e2e: e2e(sat.ids, got.times),
          extra: { posted: sat.sent, accepted: sat.ok, errors: sat.sent - sat.ok, ...cpuFigures(gw.reduce((a, g) => a + g.cpuSeconds(), 0) - cpu0, sat.elapsedMs, got.count) },
        });
        // The fleet's shared store here is FerretDB (a scan per non-_id query), so its fixed rates stay lower.
        const rates = quick ? [1000] : opts.fleet ? [500, 1000] : [2000, 5000, 10_000];
        for (const rps of rates) {
          const r = await send(senders, endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: PHASE_MS });
          await Promise.all(clientsW.map((w) => w.call('waitReceived', { count: r.ok / clientsW.length, timeoutMs: 5000 })));
          const g = await receivedTimes(clientsW);
          rows.push({ scenario: name, case: `${rps}/s`, throughput: round(g.count / (r.elapsedMs / 1000), 0), unit: 'delivered msg/s', latency: latency(r.latencies), e2e: e2e(r.ids, g.times), extra: { accepted: r.ok, errors: r.sent - r.ok } });
        }
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
      }),
    );
  } finally {
    for (const g of gw) await g.stop();
    ferret?.stop();
  }
}

async function stored(backend: 'sqlite' | 'mongodb'): Promise<void> {
  let store: string | undefined;
  let ferret: Awaited<ReturnType<typeof startFerret>> = null;
  if (backend === 'mongodb') {
    ferret = await startFerret();
    if (!ferret) return void notes.push('stored/mongodb: skipped, FerretDB is not built (npm test builds it)');
    store = ferret.url;
  }
  const port = nextPort();
  const gw = await startGateway({ ...baseEnv(port), ...(store ? { PUSHGATE_STORE: store } : {}) }, port, gatewayArgs);
  // FerretDB (the MongoDB-wire server available here) scans collections for non-_id queries, so its run is kept
  // small; the figure shows the protocol path, not what a real MongoDB does.
  const users = backend === 'mongodb' ? (quick ? 20 : 200) : quick ? 200 : 1000;
  const perUser = backend === 'mongodb' ? 5 : quick ? 10 : 20;
  try {
    await withWorkers(1, 'stored-clients', (clientsW) =>
      withWorkers(2, 'stored-senders', async (senders) => {
        const reg = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, users, { register: true, key: vapid.publicKey });
        await Promise.all(clientsW.map((w) => w.call('closeClients')));
        const material = senderMaterial(`http://127.0.0.1:${port}`);
        const targets = Array.from({ length: perUser }, () => reg.endpoints).flat();
        const c0 = gw.cpuSeconds();
        const s = await send(senders, targets, material, { mode: 'saturate', concurrency: 32, durationMs: 600_000, once: true });
        rows.push({ scenario: `stored-${backend}`, case: 'store', throughput: round(s.ok / (s.elapsedMs / 1000), 0), unit: 'stored msg/s', latency: latency(s.latencies), extra: { accepted: s.ok, errors: s.sent - s.ok, ...cpuFigures(gw.cpuSeconds() - c0, s.elapsedMs, s.ok) } });
        const drainStart = Date.now();
        const c1 = gw.cpuSeconds();
        await connectClients(clientsW, `ws://127.0.0.1:${port}/`, users, { register: false, uaids: reg.uaids });
        const w = await clientsW[0]!.call<{ count: number; elapsedMs: number }>('waitReceived', { count: s.ok, timeoutMs: 300_000 });
        rows.push({ scenario: `stored-${backend}`, case: 'drain', throughput: round(w.count / ((Date.now() - drainStart) / 1000), 0), unit: 'drained msg/s', extra: { drained: w.count, expected: s.ok, ...cpuFigures(gw.cpuSeconds() - c1, Date.now() - drainStart, w.count) } });
        await clientsW[0]!.call('closeClients');
      }),
    );
  } finally {
    await gw.stop();
    ferret?.stop();
  }
}

async function bridge(): Promise<void> {
  await withWorkers(1, 'fakes', async ([fakesW]) => {
    const f = await fakesW!.call<{ origin: string; caFile: string; serviceAccountFile: string; dir: string }>('startFakes');
    const bridgesFile = join(f.dir, 'bridges.json');
    writeFileSync(bridgesFile, JSON.stringify({ fcm: { bench: { serviceAccount: f.serviceAccountFile, baseUrl: f.origin, tokenUrl: `${f.origin}/token`, ca: f.caFile } } }));
    const port = nextPort();
    const gw = await startGateway({ ...baseEnv(port), PUSHGATE_BRIDGES: bridgesFile }, port, gatewayArgs);
    try {
      const endpoints: string[] = [];
      for (let i = 0; i < (quick ? 100 : 500); i++) {
        const res = await fetch(`http://127.0.0.1:${port}/v1/fcm/bench/registration`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: `fcm-bench-token-${i}` }) });
        endpoints.push(((await res.json()) as { endpoint: string }).endpoint);
      }
      await withWorkers(2, 'bridge-senders', async (senders) => {
        const material = senderMaterial(`http://127.0.0.1:${port}`);
        material.headers = Object.fromEntries(Object.entries(material.headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
        const body = Buffer.alloc(2048, 0x62).toString('base64');
        const c0 = gw.cpuSeconds();
        const s = await send(senders, endpoints, { ...material, body }, { mode: 'saturate', concurrency: 64, durationMs: PHASE_MS });
        const received = await fakesW!.call<number>('fakesCount');
        rows.push({ scenario: 'bridge-fcm', case: 'saturation', throughput: round(received / (s.elapsedMs / 1000), 0), unit: 'FCM msg/s', latency: latency(s.latencies), extra: { accepted: s.ok, errors: s.sent - s.ok, atFake: received, ...cpuFigures(gw.cpuSeconds() - c0, s.elapsedMs, received) } });
      });
    } finally {
      await gw.stop();
    }
  });
}

async function xmpp(): Promise<void> {
  await withWorkers(2, 'xmpp', async ([fakesW, serverW]) => {
    const f = await fakesW!.call<{ origin: string; caFile: string; serviceAccountFile: string; dir: string }>('startFakes');
    const bridgesFile = join(f.dir, 'bridges.json');
    writeFileSync(bridgesFile, JSON.stringify({ fcm: { bench: { serviceAccount: f.serviceAccountFile, baseUrl: f.origin, tokenUrl: `${f.origin}/token`, ca: f.caFile } } }));
    const domain = 'push.bench.example';
    const { port: xport } = await serverW!.call<{ port: number }>('startXmppServer', { domain, secret: 'bench-secret' });
    const port = nextPort();
    const gw = await startGateway(
      { ...baseEnv(port), PUSHGATE_BRIDGES: bridgesFile, PUSHGATE_XMPP_SERVICE: `xmpp://127.0.0.1:${xport}`, PUSHGATE_XMPP_DOMAIN: domain, PUSHGATE_XMPP_PASSWORD: 'bench-secret', PUSHGATE_XMPP_RATE_LIMIT: '0' },
      port,
      gatewayArgs,
    );
    try {
      await serverW!.call('xmppConnected');
      const nodes = await serverW!.call<{ node: string; secret: string }[]>('xmppRegister', { count: quick ? 100 : 500, domain });
      await fakesW!.call('fakesCount');
      const c0 = gw.cpuSeconds();
      const r = await serverW!.call<{ elapsedMs: number; latencies: number[]; results: Record<string, number> }>('xmppPublish', { nodes, domain, concurrency: 64, durationMs: PHASE_MS });
      const received = await fakesW!.call<number>('fakesCount');
      rows.push({ scenario: 'xmpp-fcm', case: 'saturation', throughput: round(received / (r.elapsedMs / 1000), 0), unit: 'publish→FCM/s', latency: latency(r.latencies), extra: { results: JSON.stringify(r.results), atFake: received, ...cpuFigures(gw.cpuSeconds() - c0, r.elapsedMs, received) } });
    } finally {
      await gw.stop();
    }
  });
}

async function soak(minutes: number): Promise<void> {
  const port = nextPort();
  const gw = await startGateway(baseEnv(port), port, gatewayArgs);
  try {
    await withWorkers(1, 'soak-clients', (clientsW) =>
      withWorkers(2, 'soak-senders', async (senders) => {
        const reg = await connectClients(clientsW, `ws://127.0.0.1:${port}/`, 1000, { register: true, key: vapid.publicKey });
        const material = senderMaterial(`http://127.0.0.1:${port}`);
        const direct = rows.find((r) => r.scenario === 'direct' && r.case === 'saturation')?.throughput ?? 4000;
        const rps = Math.round(direct / 2);
        // Warm up one minute, then compare RSS at the start and the end of the soak.
        await send(senders, reg.endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: 60_000 });
        const start = gw.rssBytes();
        // RSS and V8 heap every 30 s: a plateau is warm-up, a steady climb is a leak.
        const series: string[] = [];
        const sampler = setInterval(() => {
          void gw.metrics().then((m) => series.push(`${round(gw.rssBytes() / 2 ** 20, 0)}/${round(metricValue(m, 'pushgate_nodejs_heap_size_used_bytes') / 2 ** 20, 0)}`));
        }, 30_000);
        const r = await send(senders, reg.endpoints, material, { mode: 'rate', concurrency: 256, rps, durationMs: minutes * 60_000 });
        clearInterval(sampler);
        const end = gw.rssBytes();
        await clientsW[0]!.call('received', { withTimes: false });
        // RSS swings by ±10 % with garbage collection, so growth compares the mean of the first and last thirds.
        const rss = series.map((x) => Number(x.split('/')[0]));
        const third = Math.max(1, Math.floor(rss.length / 3));
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
        const trendPct = round(((mean(rss.slice(-third)) - mean(rss.slice(0, third))) / mean(rss.slice(0, third))) * 100, 1);
        rows.push({ scenario: 'soak', case: `${minutes} min at ${rps}/s`, throughput: round(r.ok / (r.elapsedMs / 1000), 0), unit: 'accepted msg/s', latency: latency(r.latencies), extra: { rssStartMiB: round(start / 2 ** 20, 1), rssEndMiB: round(end / 2 ** 20, 1), rssGrowthPct: round(((end - start) / start) * 100, 1), rssTrendPct: trendPct, errors: r.sent - r.ok, rssHeapMiBEvery30s: series.join(' ') } });
      }),
    );
  } finally {
    await gw.stop();
  }
}

// --- run -----------------------------------------------------------------------------------------

const SCENARIOS: [string, () => Promise<void>][] = [
  ['connections', connections],
  ['direct', () => direct()],
  ['stored', async () => {
    await stored('sqlite');
    await stored('mongodb');
  }],
  ['bridge', bridge],
  ['xmpp', xmpp],
  ['fleet', () => direct({ fleet: true })],
];

function fmt(l?: Latency): string {
  return l && l.count ? `${round(l.p50, 2)} / ${round(l.p99, 2)} / ${round(l.p999, 2)}` : '';
}

async function main(): Promise<void> {
  const started = Date.now();
  execSync('npx tsc -p tsconfig.build.json', { stdio: 'inherit' });
  for (const [name, run] of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    try {
      await run();
    } catch (err) {
      notes.push(`${name}: failed: ${(err as Error).message}`);
    }
  }
  if (soakMinutes > 0 && (!only || only.includes('soak'))) {
    process.stderr.write(`bench: soak ${soakMinutes} min…\n`);
    await soak(soakMinutes).catch((err: Error) => notes.push(`soak: failed: ${err.message}`));
  }
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    fdLimit: Number(execSync('sh -c "ulimit -n"').toString().trim()),
  };
  const result = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSeconds: round((Date.now() - started) / 1000, 0),
    machine,
    gateway: { store: 'sqlite (WAL) unless named', logLevel: 'error', msgLimit: 100000, vapid: 'ES256, one reused token per sender', payload: '1 kB aes128gcm' },
    rows,
    notes,
  };
  const table = [
    ['scenario', 'case', 'throughput', 'unit', 'POST ms p50/p99/p99.9', 'POST→receive ms p50/p99/p99.9', 'other'],
    ...rows.map((r) => [r.scenario, r.case, String(r.throughput ?? ''), r.unit, fmt(r.latency), fmt(r.e2e), r.extra ? Object.entries(r.extra).map(([k, v]) => `${k}=${v}`).join(' ') : '']),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(`\nPushgate benchmark (${result.mode}), ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${result.durationSeconds} s\n`);
  console.log(lines.join('\n'));
  for (const n of notes) console.log(`note: ${n}`);
  mkdirSync('bench/results', { recursive: true });
  const stem = `bench/results/${quick ? 'quick' : 'full'}-${result.date.replace(/[:.]/g, '-')}`;
  writeFileSync(`${stem}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${stem}.png`, drawChart(rows, `Pushgate ${result.mode} benchmark, ${machine.cores} cores, Node ${machine.node}`));
  console.log(`\nwrote ${stem}.json and ${stem}.png`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
