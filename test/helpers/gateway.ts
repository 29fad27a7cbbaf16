import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigValues, ensureGeneratedKeys, loadConfig } from '../../src/config.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { buildDist, startNode, type NodeProcess } from './node-process.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
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

/** `pushgate serve` with PUSHGATE_WORKERS=2 on a fresh SQLite file, as the cluster suites run it: its process and URLs. */
export async function startTwoWorkers(prefix: string): Promise<{ node: NodeProcess; base: string; ws: string }> {
  buildDist();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const base = `http://127.0.0.1:${port}`;
  const node = await startNode(
    {
      PUSHGATE_WORKERS: '2',
      PUSHGATE_PORT: String(port),
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_PUBLIC_URL: base,
      PUSHGATE_DATA_DIR: dataDir,
      PUSHGATE_STORE: `sqlite:${dataDir}/db`,
      PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
    },
    'pushgate cluster listening',
  );
  return { node, base, ws: `ws://127.0.0.1:${port}/` };
}
