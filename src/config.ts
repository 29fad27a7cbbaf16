import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { bridgeSettings } from './bridge/settings.js';
import { dashboardSettings } from './dashboard/settings.js';
import { gatewaySettings } from './settings.js';
import { redactStoreUrl } from './store/index.js';
import { storeSettings } from './store/settings.js';
import { ConfigError, type Setting } from './util/settings.js';
import { connectionSettings } from './webpush/connection/settings.js';
import { endpointSettings } from './webpush/endpoint/settings.js';
import { generateVapidKeys } from './webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from './webpush/protocol/fernet.js';
import { cryptoKeys, protocolSettings } from './webpush/protocol/settings.js';
import { xmppSettings } from './xmpp/settings.js';

export { ConfigError } from './util/settings.js';

/**
 * Configuration: a JSON file (config/pushgate.json, or the file PUSHGATE_CONFIG names) overlaid by
 * PUSHGATE_* environment variables. Each concern declares its settings beside its code; this merges the
 * tables (in the order the help text lists them) and checks the settings that depend on each other. An
 * invalid value stops the start with a message naming the setting and what it should be.
 */
const SETTINGS = {
  ...gatewaySettings,
  ...storeSettings,
  ...protocolSettings,
  ...connectionSettings,
  ...endpointSettings,
  ...bridgeSettings,
  ...xmppSettings,
  ...dashboardSettings,
};

type Settings = typeof SETTINGS;
export type ConfigValues = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

export interface Config extends ConfigValues {
  fernet: MultiFernet;
  /** The XMPP servers to attach to as a component (empty: no XMPP door). */
  xmppServers: { service: string; domain: string; password: string }[];
  /** PUSHGATE_AUTH_KEYS as a list: the first signs registration secrets, all verify. */
  authKeyList: string[];
  /** True when the crypto key was generated and kept in the data directory. */
  generatedCryptoKey: boolean;
}

export function settingsHelp(): string {
  return Object.values(SETTINGS as Record<string, Setting<unknown>>)
    .map((s) => {
      const d = typeof s.default === 'function' ? '(derived)' : JSON.stringify(s.default);
      return `  ${s.env.padEnd(28)} ${s.help} [default ${d}]`;
    })
    .join('\n');
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of the JSON configuration file; PUSHGATE_CONFIG or config/pushgate.json when absent. */
  file?: string;
  /** Values that take precedence over file and environment (tests, embedding). */
  overrides?: Partial<ConfigValues>;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const filePath = options.file ?? env['PUSHGATE_CONFIG'] ?? 'config/pushgate.json';
  let fileValues: Record<string, unknown> = {};
  if (existsSync(filePath)) {
    try {
      fileValues = JSON.parse(readFileSync(filePath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`configuration file ${filePath} is not valid JSON: ${(err as Error).message}`);
    }
  } else if (options.file ?? env['PUSHGATE_CONFIG']) {
    throw new ConfigError(`PUSHGATE_CONFIG names ${filePath}, which does not exist`);
  }
  const known = new Set(Object.values(SETTINGS).map((s) => s.key));
  for (const k of Object.keys(fileValues)) {
    if (!known.has(k) && !k.startsWith('$') && !k.startsWith('_')) {
      throw new ConfigError(`unknown setting "${k}" in ${filePath}; known settings: ${[...known].join(', ')}`);
    }
  }

  const values: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const override = (options.overrides as Record<string, unknown> | undefined)?.[name];
    if (override !== undefined) {
      values[name] = override;
      continue;
    }
    const raw = env[s.env] ?? (fileValues[s.key] !== undefined && fileValues[s.key] !== null ? String(fileValues[s.key]) : undefined);
    if (raw === undefined) {
      values[name] = typeof s.default === 'function' ? (s.default as (p: Record<string, unknown>) => unknown)(values) : s.default;
      continue;
    }
    const parsed = s.parse(raw);
    if (parsed === undefined) {
      const shown = s.secret ? '(not shown)' : JSON.stringify(s.env === 'PUSHGATE_STORE' ? redactStoreUrl(raw) : raw);
      throw new ConfigError(`${s.env} (${s.key}) is invalid: got ${shown}, expected ${s.expect}`);
    }
    values[name] = parsed;
  }
  const v = values as ConfigValues;
  if ((v.tlsCert === null) !== (v.tlsKey === null)) {
    throw new ConfigError('PUSHGATE_TLS_CERT and PUSHGATE_TLS_KEY must be set together');
  }
  if (v.routerPort !== null && v.routerPort === v.port) {
    throw new ConfigError('PUSHGATE_ROUTER_PORT is invalid: the internal port must not be the public PUSHGATE_PORT');
  }
  if (v.role === 'connection' && v.routerPort === null) {
    throw new ConfigError('PUSHGATE_ROUTER_PORT is required with PUSHGATE_ROLE=connection: endpoint nodes deliver through it');
  }
  if (v.role !== 'all' && v.store.startsWith('sqlite:')) {
    throw new ConfigError(`PUSHGATE_ROLE=${v.role} needs a shared store: set PUSHGATE_STORE to a mongodb:// URL`);
  }
  for (const [setting, path, what] of [['PUSHGATE_TLS_CERT', v.tlsCert, 'PEM file'], ['PUSHGATE_TLS_KEY', v.tlsKey, 'PEM file'], ['PUSHGATE_BRIDGES', v.bridges, 'JSON file']] as const) {
    if (path !== null && !existsSync(path)) throw new ConfigError(`${setting} is invalid: ${path} does not exist, expected a readable ${what}`);
  }

  let generatedCryptoKey = false;
  if (!v.cryptoKey) {
    v.cryptoKey = keptSecret(v.dataDir, 'crypto_key', () => FernetKey.generate(), cryptoKeys, 'PUSHGATE_CRYPTO_KEY');
    generatedCryptoKey = true;
  }
  const servers = xmppServers(v);
  if (Boolean(v.vapidPublicKey) !== Boolean(v.vapidPrivateKey)) throw new ConfigError('PUSHGATE_VAPID_PUBLIC_KEY and PUSHGATE_VAPID_PRIVATE_KEY must be set together');
  if (!v.vapidPublicKey) {
    const pair = keptSecret(v.dataDir, 'vapid_key', () => {
      const { publicKey, privateKey } = generateVapidKeys();
      return `${publicKey}.${privateKey}`;
    }, (k) => (/^[A-Za-z0-9_-]{87}\.[A-Za-z0-9_-]{43}$/.test(k) ? k : undefined), 'PUSHGATE_VAPID_PUBLIC_KEY');
    [v.vapidPublicKey, v.vapidPrivateKey] = pair.split('.') as [string, string];
  }
  if (!v.authKeys) {
    v.authKeys = keptSecret(v.dataDir, 'auth_key', () => randomBytes(32).toString('base64url'), (k) => (k.length >= 16 ? k : undefined), 'PUSHGATE_AUTH_KEYS');
  }
  return {
    ...v,
    fernet: MultiFernet.parseList(v.cryptoKey),
    authKeyList: v.authKeys.split(',').map((k) => k.trim()).filter(Boolean),
    xmppServers: servers,
    generatedCryptoKey,
  };
}

/** One entry per PUSHGATE_XMPP_SERVICE; domain and password lists give one value for all or one per service. */
function xmppServers(v: ConfigValues): Config['xmppServers'] {
  if (!v.xmppService) return [];
  const services = v.xmppService.split(',').map((s) => s.trim());
  const perService = (setting: string, list: string | null): string[] => {
    if (!list) throw new ConfigError(`${setting} is required with PUSHGATE_XMPP_SERVICE`);
    const items = list.split(',').map((s) => s.trim());
    if (items.length === 1) return services.map(() => items[0]!);
    if (items.length !== services.length) {
      throw new ConfigError(`${setting} has ${items.length} values for ${services.length} services in PUSHGATE_XMPP_SERVICE: give one, or one per service`);
    }
    return items;
  };
  const domains = perService('PUSHGATE_XMPP_DOMAIN', v.xmppDomain);
  const passwords = perService('PUSHGATE_XMPP_PASSWORD', v.xmppPassword);
  return services.map((service, i) => ({ service, domain: domains[i]!, password: passwords[i]! }));
}

/** A secret generated once and kept in the data directory (mode 0600), when the operator set none. */
function keptSecret(dataDir: string, name: string, make: () => string, check: (v: string) => unknown, setting: string): string {
  const file = join(resolve(dataDir), name);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (!check(value)) throw new ConfigError(`${file} does not hold a valid value; fix it or set ${setting}`);
    return value;
  }
  const value = make();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return value;
}
