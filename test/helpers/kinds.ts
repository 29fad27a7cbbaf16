import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { type Config, type ConfigValues, envOf, loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/store/index.js';
import { FernetKey } from '../../src/webpush/protocol/fernet.js';
import { directoryInSync, freePort, metricOf, startGateway, startWorkers, type TestGateway } from './gateway.js';
import { mongoServer } from './mongo.js';
import { buildDist, startNode } from './node-process.js';
import type { PushClient } from './ws-client.js';

/**
 * A gateway as the protocol suites see it from outside: its URLs, what `/metrics` counts, and its store opened by the
 * test too. One suite runs against each of GATEWAY_KINDS (issue 13: the protocol against a 2-worker gateway, and
 * against a split fleet).
 */
export interface GatewayUnderTest {
  url: string;
  wsUrl: string;
  /** The settings it runs with (defaults included), as it read them. */
  config: Config;
  /**
   * The gateway's store as this process reads it: the same object in process, the same SQLite file for workers, the
   * same database for a fleet.
   */
  store: Store;
  /** metricOf on this gateway. */
  metric(name: string, labels?: string): Promise<number>;
  /**
   * Resolves once the gateway holds `open` websockets (none by default): every other session is gone from its
   * registry, so a push finds its client offline.
   */
  quiet(open?: number): Promise<void>;
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

async function openConnections(origin: string, open = 0): Promise<void> {
  const until = Date.now() + 10_000;
  while ((await metricOf(origin, 'pushgate_connections')) !== open) {
    if (Date.now() > until) throw new Error(`not ${open} open websocket connections after 10 s`);
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
    quiet: (open) => openConnections(gw.url, open),
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
    const { node, base, ws, env } = await startWorkers('pushgate-protocol-', 2, envOf(values));
    // Its settings as the workers read them: the same environment, and the keys the primary kept in the data directory.
    const config = loadConfig({ env, file: 'config/pushgate.json' });
    const store = await openStore(config.store);
    return {
      url: base,
      wsUrl: ws,
      config,
      store,
      metric: (name, labels) => metricOf(base, name, labels),
      quiet: (open) => openConnections(base, open),
      settled: () => directoryInSync(base),
      async close() {
        await node.kill('SIGTERM');
        await store.close();
      },
    };
  },
};

/**
 * A fleet split as autopush splits it (A fleet of machines): an endpoint node, whose origin the endpoints name, and a
 * connection node holding the websockets (on `workers` processes), on a fresh MongoDB-wire store (mongoServer:
 * FerretDB here) and one data directory (the keys both must share). Pushes cross the peer link, and with workers the
 * connection node's mesh too; the router records are the store's.
 */
function splitFleet(workers: number): GatewayKind {
  return {
    name: workers > 1 ? `endpoint node + connection node of ${workers} workers` : 'endpoint node + connection node',
    async start(values = {}) {
      buildDist();
      const db = await mongoServer();
      const [ePort, cPort, rPort] = [await freePort(), await freePort(), await freePort()];
      const endpointBase = `http://127.0.0.1:${ePort}`;
      const connectionBase = `http://127.0.0.1:${cPort}`;
      const common = {
        PUSHGATE_STORE: db.url('protocol'),
        PUSHGATE_CRYPTO_KEY: FernetKey.generate(),
        PUSHGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'pushgate-protocol-fleet-')),
        PUSHGATE_PUBLIC_URL: endpointBase,
        PUSHGATE_ROUTER_SECRET: 'protocol-fleet-secret-0123456789',
        PUSHGATE_HOST: '127.0.0.1',
        ...envOf(values),
      };
      const endpointEnv = { ...common, PUSHGATE_ROLE: 'endpoint', PUSHGATE_PORT: String(ePort) };
      // One after the other: the first creates the kept keys in the shared data directory, the second loads them.
      const endpoint = await startNode(endpointEnv);
      const connection = await startNode(
        { ...common, PUSHGATE_ROLE: 'connection', PUSHGATE_PORT: String(cPort), PUSHGATE_ROUTER_PORT: String(rPort), PUSHGATE_WORKERS: String(workers) },
        workers > 1 ? 'pushgate cluster listening' : 'pushgate listening',
      );
      const store = await openStore(common.PUSHGATE_STORE);
      return {
        url: endpointBase,
        wsUrl: `ws://127.0.0.1:${cPort}/`,
        config: loadConfig({ env: endpointEnv, file: 'config/pushgate.json' }),
        store,
        metric: async (name, labels) => (await metricOf(endpointBase, name, labels)) + (await metricOf(connectionBase, name, labels)),
        quiet: (open) => openConnections(connectionBase, open),
        // A hello writes the router record before it answers, so the endpoint node finds the client from then on; with
        // workers, the worker the peer link reaches must know the worker holding it.
        settled: workers > 1 ? () => directoryInSync(connectionBase) : async () => {},
        async close() {
          await endpoint.kill('SIGTERM');
          await connection.kill('SIGTERM');
          await store.close();
          await db.stop();
        },
      };
    },
  };
}

export const SPLIT_FLEET = splitFleet(1);
/** The fleet with its connection node on two workers: the peer link, then the connection node's mesh. */
export const SPLIT_FLEET_WORKERS = splitFleet(2);

export const GATEWAY_KINDS: GatewayKind[] = [ONE_PROCESS, TWO_WORKERS, SPLIT_FLEET, SPLIT_FLEET_WORKERS];

/**
 * Closes a client and waits until the gateway is done with it: the registry has dropped its session and, in a
 * fleet, its node has cleared the route it held in the user record. That clear and the next hello's update of the
 * same record must not overlap on FerretDB v1, the tests' MongoDB stand-in: it applies an update as a read and a
 * later write of the whole document (FerretDB issue #3040), so the clear could write back the record the hello had
 * just replaced, and a live push would then be stored instead of sent. MongoDB applies each update atomically.
 */
export async function goneOffline(gw: GatewayUnderTest, c: PushClient, uaid: string): Promise<void> {
  c.close();
  await c.closedWith;
  await gw.quiet();
  await vi.waitFor(async () => expect((await gw.store.getUser(uaid))?.peerId ?? null).toBeNull());
}
