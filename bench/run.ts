import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { drawChart } from './lib/chart.js';
import { type BenchContext, createContext, option } from './lib/context.js';
import { type Latency, round } from './lib/stats.js';
import { bridge } from './scenarios/bridge.js';
import { connections } from './scenarios/connections.js';
import { direct } from './scenarios/direct.js';
import { idle } from './scenarios/idle.js';
import { soak } from './scenarios/soak.js';
import { stored } from './scenarios/stored.js';
import { directoryLayouts, workers } from './scenarios/workers.js';
import { xmpp } from './scenarios/xmpp.js';

/**
 * `npm run bench [-- --quick] [-- --only=a,b] [-- --profile] [-- --soak-minutes=N] [-- --phase-seconds=N]` (and the
 * scenario's own `--connections-clients=N`, `--direct-clients=N`; BENCH_GATEWAY_NODE_ARGS for the gateway's Node): runs each scenario
 * (bench/scenarios/, one per file) against the gateway started as its own process, with load from separate
 * processes on this machine, then prints a table and writes the figures (JSON) and a chart (PNG) under
 * bench/results/.
 */

const SCENARIOS: [string, (ctx: BenchContext) => Promise<void>][] = [
  ['connections', connections],
  ['direct', (ctx) => direct(ctx)],
  ['floor', (ctx) => direct(ctx, 'floor')],
  ['workers', workers],
  ['directory', directoryLayouts],
  [
    'stored',
    async (ctx) => {
      await stored(ctx, 'sqlite');
      await stored(ctx, 'mongodb');
    },
  ],
  ['bridge', bridge],
  ['xmpp', xmpp],
  [
    'fleet',
    async (ctx) => {
      await direct(ctx, 'fleet');
      await direct(ctx, 'fleet-single');
      await direct(ctx, 'fleet', true);
      await direct(ctx, 'fleet-single', true);
    },
  ],
  // The fleet's connection node with two workers: the endpoint node's link for each worker reaches it directly.
  ['fleet-workers', (ctx) => direct(ctx, 'fleet', false, { workers: 2, directory: 'replicated' })],
  ['idle', idle],
];

function fmt(l?: Latency): string {
  return l && l.count ? `${round(l.p50, 2)} / ${round(l.p99, 2)} / ${round(l.p999, 2)}` : '';
}

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const only = option('only', argv)?.split(',');
  const soakMinutes = Number(option('soak-minutes', argv) ?? (quick ? 0 : 10));
  // Each measured phase's length (2 s with --quick, 10 s otherwise): longer phases steady a quick run's CPU figures.
  const phase = option('phase-seconds', argv);
  const ctx = createContext({ quick, profile: argv.includes('--profile'), ...(phase !== undefined ? { phaseSeconds: Number(phase) } : {}) });
  const started = Date.now();
  execSync('npx tsc -p tsconfig.build.json', { stdio: 'inherit' });
  for (const [name, run] of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    try {
      await run(ctx);
    } catch (err) {
      ctx.notes.push(`${name}: failed: ${(err as Error).message}`);
    }
  }
  if (soakMinutes > 0 && (!only || only.includes('soak'))) {
    process.stderr.write(`bench: soak ${soakMinutes} min…\n`);
    await soak(ctx, soakMinutes).catch((err: Error) => ctx.notes.push(`soak: failed: ${err.message}`));
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
    only: only ?? null,
    durationSeconds: round((Date.now() - started) / 1000, 0),
    machine,
    gateway: { store: 'sqlite (WAL) unless named', logLevel: 'info', msgLimit: 100000, vapid: 'ES256, one reused token per sender', payload: '1 kB aes128gcm' },
    rows: ctx.rows,
    notes: ctx.notes,
  };
  const table = [
    ['scenario', 'case', 'throughput', 'unit', 'POST ms p50/p99/p99.9', 'POST→receive ms p50/p99/p99.9', 'other'],
    ...ctx.rows.map((r) => [
      r.scenario,
      r.case,
      String(r.throughput ?? ''),
      r.unit,
      fmt(r.latency),
      fmt(r.e2e),
      r.extra
        ? Object.entries(r.extra)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')
        : '',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(`\nPushgate benchmark (${result.mode}), ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${result.durationSeconds} s\n`);
  console.log(lines.join('\n'));
  for (const n of ctx.notes) console.log(`note: ${n}`);
  mkdirSync('bench/results', { recursive: true });
  const stem = `bench/results/${quick ? 'quick' : 'full'}-${result.date.replace(/[:.]/g, '-')}`;
  writeFileSync(`${stem}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${stem}.png`, drawChart(ctx.rows, `Pushgate ${result.mode} benchmark, ${machine.cores} cores, Node ${machine.node}`));
  console.log(`\nwrote ${stem}.json and ${stem}.png`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
