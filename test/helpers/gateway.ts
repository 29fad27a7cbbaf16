import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigValues, ensureGeneratedKeys, loadConfig } from '../../src/config.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { buildDist, startNode, type NodeProcess } from './node-process.js';

/** Ports this process has handed out: a port closed after probing can come back at once from the kernel. */
const given = new Set<number>();

/**
 * A port free now, and never one this process handed out before: two calls in a row (a node's public and internal
 * ports) otherwise got the same port once in CI, and the node refused to start.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (!given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

export interface TestGateway extends Gateway {
  url: string;
  wsUrl: string;
}

/** A gateway on a free loopback port with an in-memory store unless told otherwise. */
export async function startGateway(overrides: Partial<ConfigValues> = {}, options: GatewayOptions = {}): Promise<TestGateway> {
  const port = overrides.port ?? (await freePort());
  const scheme = overrides.tlsCert ? 'https' : 'http';
  const config = loadConfig({
    env: {},
    file: 'config/pushgate.json',
    overrides: {
      host: '127.0.0.1',
      port,
      publicUrl: `${scheme}://127.0.0.1:${port}`,
      cryptoKey: FernetKey.generate(),
      store: 'sqlite::memory:',
      dataDir: mkdtempSync(join(tmpdir(), 'pushgate-test-')),
      logLevel: 'silent',
      ...overrides,
    },
  });
  ensureGeneratedKeys(config);
  const gateway = await createGateway(config, options);
  const url = await gateway.listen();
  return Object.assign(gateway, { url, wsUrl: url.replace(/^http/, 'ws') + '/' });
}

/** A log stream for startGateway's options that keeps the parsed JSON lines (set logLevel to see them). */
export function logCapture(): { lines: Record<string, unknown>[]; write(line: string): void } {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    write(line: string) {
      for (const l of line.split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  };
}

/**
 * `pushgate serve` with PUSHGATE_WORKERS=2 (or `workers`, 1 for a single process) on a fresh SQLite file, as the
 * cluster suites run it, `env` added, Node run under `launcher` if given (startNode): its process, URLs and the whole
 * environment it was started with.
 */
export async function startWorkers(
  prefix: string,
  workers = 2,
  env: Record<string, string> = {},
  launcher: string[] = [],
): Promise<{ node: NodeProcess; base: string; ws: string; env: Record<string, string> }> {
  buildDist();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const base = `http://127.0.0.1:${port}`;
  const full = {
    PUSHGATE_WORKERS: String(workers),
    PUSHGATE_PORT: String(port),
    PUSHGATE_HOST: '127.0.0.1',
    PUSHGATE_PUBLIC_URL: base,
    PUSHGATE_DATA_DIR: dataDir,
    PUSHGATE_STORE: `sqlite:${dataDir}/db`,
    PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
    ...env,
  };
  const node = await startNode(full, workers > 1 ? 'pushgate cluster listening' : 'pushgate listening', [], launcher);
  return { node, base, ws: `ws://127.0.0.1:${port}/`, env: full };
}

/**
 * With several workers each connected client is an entry in the directory of the workers that keep it (every other
 * worker when replicated, the uaid's owner when partitioned), learned by a frame from its own worker (all of them at
 * once when a link between two comes up, just after start). Until then, or while a worker's link to a sibling is not
 * up yet, a push that lands on another worker is stored and read at once rather than sent directly. Waits until every
 * link is up and the directory holds every entry the workers announced, so a test that counts direct pushes does not
 * race those frames.
 */
export async function directoryInSync(origin: string): Promise<void> {
  // A bounded wait for a condition (this helper is also imported by the bench, outside vitest).
  const until = Date.now() + 10_000;
  const whole = async () =>
    (await metricOf(origin, 'pushgate_cluster_links_down')) === 0 &&
    (await metricOf(origin, 'pushgate_cluster_directory_entries')) === (await metricOf(origin, 'pushgate_cluster_directory_announced'));
  while (!(await whole())) {
    if (Date.now() > until) throw new Error("the workers' mesh and directory were not whole within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The sum of one metric's samples whose line includes `labels`, as /metrics at `origin` reports it (every worker's). */
export async function metricOf(origin: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
