#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, ensureGeneratedKeys, type KeptKey, loadConfig, settingsHelp } from './config.js';
import { createGateway } from './gateway.js';
import { endpointDiagnostic } from './ops/diagnostic.js';
import { openStore } from './store/index.js';
import { BridgeConfigError } from './bridge/index.js';
import { versionInfo } from './ops/version.js';
import { FernetKey } from './webpush/protocol/fernet.js';
import { generateVapidKeys } from './webpush/protocol/endpoint-token.js';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { loggerOptions } from './log.js';
import { directoryLayout } from './cluster/directory.js';
import { runPrimary } from './cluster/primary.js';
import { WorkerLink } from './cluster/worker.js';
import { WorkerHandoff } from './cluster/handoff.js';
import { WORKER_COUNT_ENV, WORKER_INDEX_ENV, WORKER_SECRET_BYTES, WORKER_SECRET_ENV, WORKER_SOCKETS_ENV } from './cluster/ipc.js';
import { dashboardToken, readVapidKey, TOKEN_HOURS } from './dashboard/token.js';
import { descriptorReport, descriptorState } from './ops/descriptors.js';

/** The `pushgate` command line. */

interface Command {
  summary: string;
  usage: string;
  details?: () => string;
  run: (args: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the gateway',
    usage: 'pushgate serve',
    details: () =>
      'Configuration comes from config/pushgate.json (or the file PUSHGATE_CONFIG names), overridden by\nthese environment variables:\n' + settingsHelp(),
    run: serve,
  },
  genkey: {
    summary: 'print a new Fernet key for PUSHGATE_CRYPTO_KEY',
    usage: 'pushgate genkey',
    details: () =>
      'Prepend the new key to PUSHGATE_CRYPTO_KEY (comma-separated) to rotate: the first key encrypts new\nendpoints, every listed key still decrypts existing ones.',
    run: async () => {
      process.stdout.write(FernetKey.generate() + '\n');
      return 0;
    },
  },
  'endpoint-diagnostic': {
    summary: 'decode an endpoint URL with the configured keys and show what the store knows of it',
    usage: 'pushgate endpoint-diagnostic <endpoint URL>',
    details: () => 'Uses the same configuration as serve (PUSHGATE_CRYPTO_KEY, PUSHGATE_STORE). Prints JSON.',
    run: async (args) => {
      const endpoint = args.find((a) => !a.startsWith('-'));
      if (!endpoint) {
        process.stderr.write('pushgate endpoint-diagnostic: give an endpoint URL\n');
        return 2;
      }
      const config = configOrExit();
      if (!config) return 2;
      const store = await openStore(config.store, { sqliteSynchronous: config.sqliteSynchronous });
      try {
        const report = await endpointDiagnostic(endpoint, config.fernet, store);
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return report['valid'] ? 0 : 1;
      } finally {
        await store.close();
      }
    },
  },
  genvapid: {
    summary: "print a new VAPID key pair (P-256) for Pushgate's own Web Push sending",
    usage: 'pushgate genvapid',
    run: async () => {
      const { publicKey, privateKey } = generateVapidKeys();
      process.stdout.write(`public key:  ${publicKey}\nprivate key: ${privateKey}\n`);
      return 0;
    },
  },
  'vapid-token': {
    summary: 'print a developer-dashboard token (Authorization value) for a VAPID key file',
    usage: 'pushgate vapid-token <key file> [<server URL>]',
    details: () =>
      `The key file is a PEM private key (PKCS#8 or SEC1), the JSON of \`web-push generate-vapid-keys --json\`, or\n<public>.<private> in base64url. The token is an ES256 JWT (RFC 8292) for the server URL (default:\nPUSHGATE_PUBLIC_URL, else http://localhost:8080), valid ${TOKEN_HOURS} hours. Paste it into the dashboard, or send it as\nthe Authorization header of /dashboard/api/* requests.`,
    run: async (args) => {
      const [file, url] = args.filter((a) => !a.startsWith('-'));
      if (!file) {
        process.stderr.write('pushgate vapid-token: give a key file\n');
        return 2;
      }
      try {
        const key = readVapidKey(readFileSync(file, 'utf8'));
        process.stdout.write((await dashboardToken(key, url ?? process.env['PUSHGATE_PUBLIC_URL'] ?? 'http://localhost:8080')) + '\n');
        return 0;
      } catch (err) {
        process.stderr.write(`pushgate vapid-token: ${(err as Error).message}\n`);
        return 2;
      }
    },
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Pushgate ${versionInfo().version}: push gateway for Web Push, XMPP and mobile apps\n\nUsage: pushgate <command> [--help]\n\nCommands:\n${lines.join('\n')}\n`;
}

/** The configuration, or null after printing why it is invalid. */
function configOrExit() {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pushgate: ${err.message}\n`);
      return null;
    }
    throw err;
  }
}

/**
 * PUSHGATE_WORKERS as a process count: `auto` is one per core, except with an in-memory store, which
 * processes cannot share (then one).
 */
export function workerCount(setting: number | 'auto', store: string, cores = availableParallelism()): number {
  if (setting !== 'auto') return setting;
  return store === 'sqlite::memory:' ? 1 : cores;
}

async function serve(): Promise<number> {
  // The primary loads the configuration first, so keys it generates into the data directory exist before
  // any worker reads them (workers never race to create them).
  const config = configOrExit();
  if (!config) return 2;
  // The one place keys are written: loading the configuration never does. The primary writes them before any
  // worker starts, so workers only ever load them (and the primary alone says what it created).
  let created: KeptKey[];
  try {
    created = ensureGeneratedKeys(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pushgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const workers = workerCount(config.workers, config.store);
  if (cluster.isPrimary && workers > 1) {
    const log = pino(loggerOptions(config.logLevel) as Parameters<typeof pino>[0]);
    reportKeys(log, config, created);
    log.info({ workers }, 'starting workers');
    return runPrimary({ workers, log, port: config.port });
  }
  const index = Number(process.env[WORKER_INDEX_ENV] ?? 0);
  const count = Number(process.env[WORKER_COUNT_ENV] ?? 1);
  const socketDir = process.env[WORKER_SOCKETS_ENV] ?? '';
  const secret = Buffer.from(process.env[WORKER_SECRET_ENV] ?? '', 'hex');
  // Read once; nothing this worker starts later inherits it.
  delete process.env[WORKER_SECRET_ENV];
  const clusterOption =
    cluster.isWorker && index >= 1 && count > 1 && socketDir !== '' && secret.length === WORKER_SECRET_BYTES
      ? {
          link: WorkerLink.start(index, count, socketDir, secret, directoryLayout(config.workerDirectory, count)),
          index,
          count,
          handoff: WorkerHandoff.start(index, count),
        }
      : undefined;
  let gateway;
  try {
    gateway = await createGateway(config, clusterOption ? { cluster: clusterOption } : {});
  } catch (err) {
    if (err instanceof BridgeConfigError || err instanceof ConfigError) {
      process.stderr.write(`pushgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (!cluster.isWorker) reportKeys(gateway.app.log, config, created);
  const url = await gateway.listen();
  gateway.app.log.info({ url, publicUrl: config.publicUrl, version: versionInfo().version, ...(clusterOption ? { worker: index } : {}) }, 'pushgate listening');
  const descriptors = descriptorReport(descriptorState(), config.maxConnections);
  if (descriptors) gateway.app.log[descriptors.level]({ ...descriptors.fields, ...(clusterOption ? { worker: index } : {}) }, descriptors.msg);
  if (gateway.mongoosepush) {
    gateway.app.log.info(
      { host: config.mongoosepushHost, port: config.mongoosepushPort, tls: config.mongoosepushTlsCert !== null, basicAuth: config.mongoosepushUser !== null },
      'MongoosePush API listening',
    );
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      gateway.app.log.info({ signal }, 'shutting down');
      gateway.close().then(resolve, (err: unknown) => {
        gateway.app.log.error({ err: (err as Error).message }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(versionInfo().version + '\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`pushgate: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: { help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true }));
  } catch (err) {
    process.stderr.write(`pushgate ${name}: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n${command.details ? '\n' + command.details() + '\n' : ''}`);
    return 0;
  }
  return command.run(rest);
}

// Runs when this file is the program (also through npm's bin symlink), not when a test imports main().
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`pushgate: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/** Whether keys were created or loaded: a created crypto key invalidates every endpoint issued under another. */
function reportKeys(log: { error(o: object, m: string): void; warn(o: object, m: string): void }, config: Config, created: KeptKey[]): void {
  for (const k of config.keptKeys.filter((k) => k.name === 'crypto_key')) {
    if (created.includes(k)) {
      // Loud: a new crypto key means every endpoint issued before under another key no longer decrypts.
      log.error(
        { file: k.file },
        'PUSHGATE_CRYPTO_KEY is not set: CREATED a new crypto key in the data directory. Every endpoint issued before under any other key is now INVALID. Set PUSHGATE_CRYPTO_KEY explicitly in production and back it up',
      );
    } else {
      log.warn(
        { file: k.file },
        'PUSHGATE_CRYPTO_KEY is not set: LOADED the crypto key kept in the data directory; set it explicitly in production and back it up, or losing the file invalidates every endpoint',
      );
    }
  }
  for (const k of created.filter((k) => k.name !== 'crypto_key'))
    log.warn({ file: k.file }, `${k.setting} is not set: created ${k.name} in the data directory`);
}
