/**
 * The push endpoint's own CPU per push, in process, for A/B comparisons of builds (`npx tsc -p tsconfig.bench.json &&
 * node .bench-build/bench/endpoint.js [distDir …]`, default `dist`; run from the repository root). Each build's
 * gateway is created in this one process (SQLite in memory, no logger), and real 1 kB aes128gcm POSTs with one reused
 * VAPID token (`web-push`'s own headers, a v2 endpoint bound to the key) go through fastify's `inject` to a connected
 * client that takes every message (no socket: the session's frame and the socket writes are not measured). So a
 * figure is routing, hooks, token and VAPID checks, headers, the Fernet message id, the router and metrics, plus
 * `inject`'s own cost, which is the same for every build. Builds alternate in short batches (in a fresh random order every
 * round) and the figure is the median and 25th percentile of the batches: on a machine shared with other work that is
 * steadier than the end-to-end bench, whose CPU per message swings ±15 % between runs of the same code.
 * TTL=3600 in the environment measures the durable path instead (the client's save then goes to SQLite).
 * The figures go to bench/results/endpoint-<date>.json.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import webpush from 'web-push';
import type * as ConfigModule from '../src/config.js';
import type * as GatewayModule from '../src/gateway.js';
import type * as FernetModule from '../src/webpush/protocol/fernet.js';
import type * as TokenModule from '../src/webpush/protocol/endpoint-token.js';

const ORIGIN = 'http://127.0.0.1:18999';
const TTL = process.env['TTL'] ?? '0';
const BATCH = Number(process.env['N'] ?? 500);
const ROUNDS = Number(process.env['ROUNDS'] ?? 40);
const WARM = 3000;

interface Build {
  dir: string;
  push: () => Promise<void>;
  close: () => Promise<void>;
  batches: number[];
}

async function build(dir: string, keys: { publicKey: string; privateKey: string }): Promise<Build> {
  const abs = resolve(dir);
  const { loadConfig, ensureGeneratedKeys } = (await import(`${abs}/config.js`)) as typeof ConfigModule;
  const { createGateway } = (await import(`${abs}/gateway.js`)) as typeof GatewayModule;
  const { FernetKey } = (await import(`${abs}/webpush/protocol/fernet.js`)) as typeof FernetModule;
  const { makeEndpointToken, vapidKeyHashOf } = (await import(`${abs}/webpush/protocol/endpoint-token.js`)) as typeof TokenModule;
  const config = loadConfig({
    env: {},
    file: 'config/pushgate.json',
    overrides: {
      host: '127.0.0.1',
      port: 18999,
      publicUrl: ORIGIN,
      cryptoKey: FernetKey.generate(),
      store: 'sqlite::memory:',
      dataDir: mkdtempSync(join(tmpdir(), 'pushgate-endpoint-bench-')),
      logLevel: 'silent',
    },
  });
  ensureGeneratedKeys(config);
  const gw = await createGateway(config, { logger: false });
  await gw.app.ready();
  const uaid = randomUUID().replaceAll('-', '');
  const channelID = randomUUID();
  gw.clients.add({
    uaid,
    connectedAt: Date.now(),
    channels: new Map([[channelID, null]]),
    deliverDirect: (_n, options) => {
      options?.onWritten?.();
      return true;
    },
    storageChanged: () => {},
    close: () => {},
  });
  const url = `/wpush/v2/${makeEndpointToken(config.fernet, uaid, channelID, vapidKeyHashOf(keys.publicKey))}`;
  const vapid = webpush.getVapidHeaders(ORIGIN, 'mailto:bench@example.com', keys.publicKey, keys.privateKey, 'aes128gcm');
  const headers = { authorization: vapid.Authorization, ttl: TTL, 'content-encoding': 'aes128gcm', 'content-type': 'application/octet-stream' };
  const payload = randomBytes(1024);
  const push = async () => {
    const res = await gw.app.inject({ method: 'POST', url, headers, payload });
    if (res.statusCode !== 201) throw new Error(`${dir}: ${res.statusCode} ${res.body}`);
  };
  return { dir, push, close: () => gw.close(), batches: [] };
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

async function main(): Promise<void> {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) dirs.push('dist');
  const keys = webpush.generateVAPIDKeys();
  const builds: Build[] = [];
  for (const dir of dirs) builds.push(await build(dir, keys));
  for (const b of builds) for (let i = 0; i < WARM; i++) await b.push();
  const load = loadavg()[0]!;
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh random order every round: the old generation (mostly `inject`'s garbage) is collected every few
    // batches, and with a fixed alternation that cost kept landing on the same build.
    for (const b of shuffled(builds)) {
      const t0 = cpuUs();
      for (let i = 0; i < BATCH; i++) await b.push();
      b.batches.push((cpuUs() - t0) / BATCH);
    }
  }
  const rows = builds.map((b) => {
    const s = [...b.batches].sort((x, y) => x - y);
    const q = (f: number) => Math.round(s[Math.floor(f * (s.length - 1))]! * 10) / 10;
    return {
      build: b.dir,
      ttl: Number(TTL),
      batches: s.length,
      pushesPerBatch: BATCH,
      cpuUsPerPushMedian: q(0.5),
      cpuUsPerPushP25: q(0.25),
      cpuUsPerPushMin: q(0),
    };
  });
  for (const r of rows)
    console.log(`${r.build}: ${r.cpuUsPerPushMedian} µs per push (median of ${r.batches} batches), p25 ${r.cpuUsPerPushP25}, min ${r.cpuUsPerPushMin}`);
  const date = new Date().toISOString();
  const file = `bench/results/endpoint-${date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ date, node: process.version, loadBefore: load, loadAfter: loadavg()[0], rows }, null, 2) + '\n');
  console.log(`wrote ${file}`);
  for (const b of builds) await b.close();
}

await main();
process.exit(0);
