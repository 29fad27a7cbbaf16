#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, settingsHelp } from './config.js';
import { createGateway } from './gateway.js';
import { endpointDiagnostic } from './ops/diagnostic.js';
import { openStore } from './store/index.js';
import { BridgeConfigError } from './bridge/index.js';
import { versionInfo } from './ops/version.js';
import { FernetKey } from './webpush/protocol/fernet.js';
import { generateVapidKeys } from './webpush/protocol/endpoint-token.js';
import { readFileSync } from 'node:fs';
import { dashboardToken, readVapidKey, TOKEN_HOURS } from './dashboard/token.js';

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
      'Configuration comes from config/pushgate.json (or the file PUSHGATE_CONFIG names), overridden by\nthese environment variables:\n' +
      settingsHelp(),
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
      const store = await openStore(config.store);
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

async function serve(): Promise<number> {
  const config = configOrExit();
  if (!config) return 2;
  let gateway;
  try {
    gateway = await createGateway(config);
  } catch (err) {
    if (err instanceof BridgeConfigError) {
      process.stderr.write(`pushgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (config.generatedCryptoKey) {
    gateway.app.log.warn(
      { dataDir: config.dataDir },
      'PUSHGATE_CRYPTO_KEY is not set: using the key kept in the data directory; set it explicitly in production and back it up, or every endpoint becomes invalid',
    );
  }
  const url = await gateway.listen();
  gateway.app.log.info({ url, publicUrl: config.publicUrl, version: versionInfo().version }, 'pushgate listening');
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

async function main(argv: string[]): Promise<number> {
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pushgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
