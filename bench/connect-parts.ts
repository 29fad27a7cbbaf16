/**
 * The parts of one connect+hello+register alone, in one process (`npx tsc -p tsconfig.bench.json && node
 * .bench-build/bench/connect-parts.js`): the CPU (user + system, process.cpuUsage) each part costs per connection,
 * so a change to one part can be measured without the end-to-end scenario's noise on a shared machine. Parts:
 * - `newUaid`: a fresh uaid (hello without one);
 * - `makeEndpoint`: a v2 endpoint (the Fernet token of register's answer);
 * - `session`: the Session state machine's hello and register with their frames parsed (messages.ts) and answers
 *   serialised as the socket adapter does, against a store whose writes resolve at once (no socket, no SQLite);
 * - `store, 1 per commit` / `store, 8 per commit`: SqliteStore.addUser + addChannel of a new uaid on a file database
 *   (WAL, synchronous NORMAL, as the gateway runs it), one register per group commit or eight.
 * Rounds alternate between the parts, so a change in the machine's load shows as a spread; the figure is the median
 * round. It also reports the heap one Session holds right after construction (what every open connection keeps
 * before anything is sent). Writes bench/results/connect-parts-<time>.json.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyBaseLogger } from 'fastify';
import { Metrics } from '../src/ops/metrics.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/index.js';
import { BroadcastVersions } from '../src/webpush/broadcast/source.js';
import { ClientRegistry } from '../src/webpush/connection/clients.js';
import { parseClientMessage } from '../src/webpush/connection/messages.js';
import { type ConnectionContext, Session, type SessionPort } from '../src/webpush/connection/session.js';
import { makeEndpoint, vapidKeyHashOf } from '../src/webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from '../src/webpush/protocol/fernet.js';
import { newUaid } from '../src/webpush/protocol/ids.js';

const ROUNDS = 7;
const VAPID_KEY = 'BNNL5ZaTfK81qhXOx23-wewhigUeFb632jN6LvRWCFH1ubQr77FE_9qV1FuojuRmHP42zmf34rXgW80OvUVDgTk';
const keyHash = vapidKeyHashOf(VAPID_KEY)!;
const fernet = new MultiFernet([FernetKey.generate()]);
const silent = { warn() {}, error() {}, info() {}, debug() {} } as unknown as FastifyBaseLogger;

/** CPU µs per call of `run(i)` over `n` calls (awaited one after another when it returns a promise). */
async function cpuPer(n: number, run: (i: number) => unknown): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const r = run(i);
    if (r instanceof Promise) await r;
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

function sessionPart(): (i: number) => Promise<void> {
  const store = { addUser: () => Promise.resolve(true), addChannel: () => Promise.resolve() } as unknown as Store;
  const ctx: ConnectionContext = {
    store,
    clients: new ClientRegistry(),
    fernet,
    metrics: new Metrics(),
    log: silent,
    publicUrl: 'http://127.0.0.1:8080',
    peerId: null,
    peers: null,
    msgLimit: 100,
    storageBatch: 10,
    helloTimeoutMs: 10_000,
    minPingIntervalMs: 0,
    maxUnacked: 100,
    wsHighWater: 1 << 20,
    ackWaitMs: 100,
    maxChannels: 1000,
    userMaxIdleMs: 60 * 86_400_000,
    broadcasts: new BroadcastVersions(),
    nextSeq: () => 1,
    now: () => Date.now(),
    dashboard: null,
  };
  const port: SessionPort = {
    send: (frames) => frames.forEach((f) => JSON.stringify(f)),
    close: () => {},
    bufferedAmount: () => 0,
  };
  const hello = JSON.stringify({ messageType: 'hello', use_webpush: true });
  return async () => {
    const s = new Session(port, ctx);
    const h = parseClientMessage(hello);
    if (h.ok) await s.onMessage(h.message);
    const r = parseClientMessage(JSON.stringify({ messageType: 'register', channelID: randomUUID(), key: VAPID_KEY }));
    if (r.ok) await s.onMessage(r.message);
    await s.onClosed();
  };
}

/** `perCommit` registers of new uaids issued in one turn (one group commit), awaited together. */
function storePart(store: SqliteStore, perCommit: number): () => Promise<unknown> {
  const hash = createHash('sha256').update('bench').digest();
  const one = (): Promise<unknown> => {
    const uaid = newUaid();
    return Promise.all([
      store.addUser({ uaid, routerType: 'webpush', routerData: null, connectedAt: Date.now(), peerId: null }),
      store.addChannel(uaid, { channelID: randomUUID(), keyHash: hash }),
    ]);
  };
  return () => Promise.all(Array.from({ length: perCommit }, one));
}

/** Retained heap bytes per Session just constructed (100,000 of them held, a full GC before and after). */
function sessionHeapBytes(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const ctx = { metrics: new Metrics() } as unknown as ConnectionContext;
  const port = {} as SessionPort;
  const held: Session[] = [];
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 100_000; i++) held.push(new Session(port, ctx));
  gc();
  return (process.memoryUsage().heapUsed - before) / held.length;
}

async function main(): Promise<void> {
  const heapPerSession = Math.round(sessionHeapBytes());
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-parts-'));
  const stores = [1, 8].map((k) => ({ k, store: new SqliteStore(join(dir, `db${k}.sqlite`)) }));
  // The same starting size as the connections scenario's measured row (its warm-up leaves 1,000 users).
  for (const { store } of stores) await cpuPer(125, storePart(store, 8));
  const parts: [string, number, (i: number) => unknown, number][] = [
    ['newUaid', 50_000, () => newUaid(), 1],
    ['makeEndpoint (v2)', 20_000, () => makeEndpoint('http://127.0.0.1:8080', fernet, newUaid(), randomUUID(), keyHash), 1],
    ['session hello + register (store stubbed)', 10_000, sessionPart(), 1],
    ...stores.map(
      ({ k, store }) => [`store addUser + addChannel, ${k} per commit`, 1500 / k, storePart(store, k), k] as [string, number, () => Promise<unknown>, number],
    ),
  ];
  const figures = new Map<string, number[]>(parts.map(([name]) => [name, []]));
  const loadStart = loadavg()[0]!;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, n, run, per] of parts) figures.get(name)!.push((await cpuPer(n, run)) / per);
  }
  const loadEnd = loadavg()[0]!;
  for (const { store } of stores) await store.close();
  rmSync(dir, { recursive: true, force: true });
  // The first round warms the JIT and is left out.
  const rows = [...figures].map(([part, xs]) => {
    const kept = xs.slice(1).sort((a, b) => a - b);
    return {
      part,
      cpuUsMedian: Number(kept[Math.floor(kept.length / 2)]!.toFixed(2)),
      cpuUsMin: Number(kept[0]!.toFixed(2)),
      rounds: xs.map((x) => Number(x.toFixed(2))),
    };
  });
  for (const r of rows) console.log(`${r.part.padEnd(44)} ${String(r.cpuUsMedian).padStart(7)} µs (min ${r.cpuUsMin})`);
  console.log(`Session object just constructed: ${heapPerSession} bytes of heap`);
  console.log(`load average ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)}`);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/connect-parts-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ node: process.version, load: [loadStart, loadEnd], rows, heapPerSessionBytes: heapPerSession }, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

await main();
