import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, type ConfigValues, ensureGeneratedKeys, envOf, loadConfig } from '../../src/config.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { openStore, type Store } from '../../src/store/index.js';
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
 * `pushgate serve` with PUSHGATE_WORKERS=2 (or `workers`) on a fresh SQLite file, as the cluster suites run it, `env`
 * added: its process, URLs and store URL.
 */
export async function startWorkers(
  prefix: string,
  workers = 2,
  env: Record<string, string> = {},
): Promise<{ node: NodeProcess; base: string; ws: string; store: string; env: Record<string, string> }> {
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
  const node = await startNode(full, 'pushgate cluster listening');
  return { node, base, ws: `ws://127.0.0.1:${port}/`, store: full.PUSHGATE_STORE, env: full };
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

/**
 * A gateway as the protocol suites see it from outside: its URLs, what `/metrics` counts, and its store opened by the
 * test too. One suite runs against each of GATEWAY_KINDS (issue 13: the protocol against a 2-worker gateway).
 */
export interface GatewayUnderTest {
  url: string;
  wsUrl: string;
  /** The settings it runs with (defaults included), as it read them. */
  config: Config;
  /** The gateway's store as this process reads it: the same object in process, the same SQLite file for workers. */
  store: Store;
  /** metricOf on this gateway. */
  metric(name: string, labels?: string): Promise<number>;
  /** Resolves once the gateway holds no open websocket (every session gone from its registry or worker registry). */
  quiet(): Promise<void>;
  /**
   * Resolves once each worker knows where every connected client is (directoryInSync): until then a push that lands on
   * a worker not holding its client is stored and read from storage, not sent directly. At once for one process.
   */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayKind {
  name: string;
  start(values?: Partial<ConfigValues>): Promise<GatewayUnderTest>;
}

async function noOpenConnections(origin: string): Promise<void> {
  const until = Date.now() + 10_000;
  while ((await metricOf(origin, 'pushgate_connections')) !== 0) {
    if (Date.now() > until) throw new Error('websocket connections were still open after 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A gateway started in this process (startGateway) as the protocol suites see it. */
export function underTest(gw: TestGateway): GatewayUnderTest {
  return {
    url: gw.url,
    wsUrl: gw.wsUrl,
    config: gw.config,
    store: gw.store,
    metric: (name, labels) => metricOf(gw.url, name, labels),
    quiet: () => noOpenConnections(gw.url),
    settled: async () => {},
    close: () => gw.close(),
  };
}

/** One process, in this one (startGateway), on an in-memory store unless told otherwise. */
export const ONE_PROCESS: GatewayKind = {
  name: 'one process',
  start: async (values = {}) => underTest(await startGateway(values)),
};

/** `pushgate serve` with PUSHGATE_WORKERS=2 on a fresh SQLite file (startWorkers), the store opened here as well. */
export const TWO_WORKERS: GatewayKind = {
  name: 'PUSHGATE_WORKERS=2',
  async start(values = {}) {
    const { node, base, ws, store: storeUrl, env: started } = await startWorkers('pushgate-protocol-', 2, envOf(values));
    // Its settings as the workers read them: the same environment, and the keys the primary kept in the data directory.
    const config = loadConfig({ env: started, file: 'config/pushgate.json' });
    const store = await openStore(storeUrl);
    return {
      url: base,
      wsUrl: ws,
      config,
      store,
      metric: (name, labels) => metricOf(base, name, labels),
      quiet: () => noOpenConnections(base),
      settled: () => directoryInSync(base),
      async close() {
        await node.kill('SIGTERM');
        await store.close();
      },
    };
  },
};

export const GATEWAY_KINDS: GatewayKind[] = [ONE_PROCESS, TWO_WORKERS];
