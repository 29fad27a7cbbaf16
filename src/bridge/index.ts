import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Metrics } from '../ops/metrics.js';
import { AdmBridge } from './adm.js';
import { ApnsBridge } from './apns.js';
import { FcmBridge, type ServiceAccount } from './fcm.js';
import { DEFAULT_RETRY, ReliableBridge, type RetryPolicy } from './reliable.js';
import { type Bridge, BridgeConfigError, ROUTER_TYPES, type RouterType } from './types.js';

export { BridgeConfigError } from './types.js';
export type { Bridge, BridgeAlert, BridgeMessage, BridgeResult, RouterType } from './types.js';

/**
 * The bridges file (PUSHGATE_BRIDGES): apps per provider, keyed by app id, plus which app serves each
 * MongoosePush service. Every credential is read and checked at start-up; a bad one stops the start with a
 * message that names the app and the fault.
 */

export interface MongoosePushApps {
  fcm?: string;
  'apns-prod'?: string;
  'apns-dev'?: string;
}

export class Bridges {
  constructor(
    private readonly apps: Map<string, Bridge>,
    readonly mongoosepush: MongoosePushApps,
  ) {}

  static empty(): Bridges {
    return new Bridges(new Map(), {});
  }

  get(type: string, appId: string): Bridge | undefined {
    return this.apps.get(`${type}:${appId}`);
  }

  /** The only configured app of a provider, when there is exactly one. */
  only(type: RouterType): Bridge | undefined {
    const found = [...this.apps.values()].filter((b) => b.type === type);
    return found.length === 1 ? found[0] : undefined;
  }

  list(): Bridge[] {
    return [...this.apps.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.apps.values()].map((b) => b.close()));
  }
}

const DEFAULTS = {
  fcm: { baseUrl: 'https://fcm.googleapis.com', tokenUrl: 'https://oauth2.googleapis.com/token' },
  adm: { baseUrl: 'https://api.amazon.com', tokenUrl: 'https://api.amazon.com/auth/o2/token' },
};
const TIMEOUT_MS = 10_000;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function loadBridges(file: string, metrics: Metrics, policy: RetryPolicy = DEFAULT_RETRY): Bridges {
  const base = dirname(resolve(file));
  const where = (app: string) => `${file}: ${app}`;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BridgeConfigError(`PUSHGATE_BRIDGES: cannot read ${file} as JSON (${(err as Error).message})`);
  }
  if (!isObj(doc)) throw new BridgeConfigError(`${file}: expected a JSON object with "fcm", "apns", "adm", "mongoosepush"`);
  for (const k of Object.keys(doc)) {
    if (!(ROUTER_TYPES as readonly string[]).includes(k) && k !== 'mongoosepush' && !k.startsWith('$')) {
      throw new BridgeConfigError(`${file}: unknown key "${k}"; expected fcm, apns, adm, mongoosepush`);
    }
  }
  const readFile = (app: string, field: string, path: unknown): Buffer => {
    if (typeof path !== 'string' || !path) throw new BridgeConfigError(`${where(app)}: "${field}" must name a file`);
    try {
      return readFileSync(resolve(base, path));
    } catch (err) {
      throw new BridgeConfigError(`${where(app)}: cannot read ${field} ${path} (${(err as Error).message})`);
    }
  };
  const url = (app: string, field: string, value: unknown, fallback: string | null): string | null => {
    if (value === undefined) return fallback;
    if (typeof value !== 'string') throw new BridgeConfigError(`${where(app)}: "${field}" must be a URL`);
    try {
      const u = new URL(value);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
      return value.replace(/\/$/, '');
    } catch {
      throw new BridgeConfigError(`${where(app)}: "${field}" must be an http(s) URL, got ${JSON.stringify(value)}`);
    }
  };
  const ca = (app: string, cfg: Obj): Buffer | null => (cfg['ca'] === undefined ? null : readFile(app, 'ca', cfg['ca']));
  const privateKey = (app: string, field: string, pem: Buffer | string) => {
    try {
      return createPrivateKey(pem);
    } catch (err) {
      throw new BridgeConfigError(`${where(app)}: ${field} is not a usable private key (${(err as Error).message})`);
    }
  };

  const apps = new Map<string, Bridge>();
  const add = (bridge: Bridge) => apps.set(`${bridge.type}:${bridge.appId}`, new ReliableBridge(bridge, policy, metrics));
  const section = (type: RouterType): [string, Obj][] => {
    const s = doc[type];
    if (s === undefined) return [];
    if (!isObj(s)) throw new BridgeConfigError(`${file}: "${type}" must map app ids to settings`);
    return Object.entries(s).map(([id, cfg]) => {
      if (!isObj(cfg)) throw new BridgeConfigError(`${where(`${type} app "${id}"`)}: settings must be an object`);
      if (!/^[A-Za-z0-9_.-]{1,128}$/.test(id)) throw new BridgeConfigError(`${file}: ${type} app id "${id}" must be letters, digits, . _ -`);
      return [id, cfg];
    });
  };

  for (const [appId, cfg] of section('fcm')) {
    const app = `fcm app "${appId}"`;
    let sa: ServiceAccount;
    try {
      sa = JSON.parse(readFile(app, 'serviceAccount', cfg['serviceAccount']).toString('utf8')) as ServiceAccount;
    } catch (err) {
      if (err instanceof BridgeConfigError) throw err;
      throw new BridgeConfigError(`${where(app)}: serviceAccount is not JSON`);
    }
    for (const f of ['project_id', 'client_email', 'private_key'] as const) {
      if (typeof sa[f] !== 'string' || !sa[f]) throw new BridgeConfigError(`${where(app)}: the service account lacks "${f}"`);
    }
    privateKey(app, 'the service account private_key', sa.private_key);
    add(
      new FcmBridge({
        appId,
        serviceAccount: sa,
        baseUrl: url(app, 'baseUrl', cfg['baseUrl'], DEFAULTS.fcm.baseUrl)!,
        tokenUrl: url(app, 'tokenUrl', cfg['tokenUrl'], sa.token_uri ?? DEFAULTS.fcm.tokenUrl)!,
        ca: ca(app, cfg),
        timeoutMs: TIMEOUT_MS,
      }),
    );
  }

  for (const [appId, cfg] of section('apns')) {
    const app = `apns app "${appId}"`;
    if (typeof cfg['topic'] !== 'string' || !cfg['topic']) throw new BridgeConfigError(`${where(app)}: "topic" (the bundle id) is required`);
    if (cfg['sandbox'] !== undefined && typeof cfg['sandbox'] !== 'boolean') throw new BridgeConfigError(`${where(app)}: "sandbox" must be true or false`);
    let auth: ConstructorParameters<typeof ApnsBridge>[0]['auth'];
    if (isObj(cfg['token'])) {
      const t = cfg['token'];
      const key = readFile(app, 'token.keyFile', t['keyFile']);
      const k = privateKey(app, 'token.keyFile', key);
      if (k.asymmetricKeyType !== 'ec') throw new BridgeConfigError(`${where(app)}: token.keyFile must be the .p8 EC key Apple issued`);
      if (typeof t['keyId'] !== 'string' || !/^[A-Z0-9]{10}$/.test(t['keyId'])) throw new BridgeConfigError(`${where(app)}: token.keyId must be Apple's 10-character key id`);
      if (typeof t['teamId'] !== 'string' || !/^[A-Z0-9]{10}$/.test(t['teamId'])) throw new BridgeConfigError(`${where(app)}: token.teamId must be Apple's 10-character team id`);
      auth = { token: { key, keyId: t['keyId'], teamId: t['teamId'] } };
    } else if (isObj(cfg['cert'])) {
      const c = cfg['cert'];
      const cert = readFile(app, 'cert.certFile', c['certFile']);
      const key = readFile(app, 'cert.keyFile', c['keyFile']);
      try {
        const x = new X509Certificate(cert);
        if (!x.checkPrivateKey(privateKey(app, 'cert.keyFile', key))) throw new BridgeConfigError(`${where(app)}: cert.keyFile does not match cert.certFile`);
        if (new Date(x.validTo).getTime() < Date.now()) throw new BridgeConfigError(`${where(app)}: the certificate expired on ${x.validTo}`);
      } catch (err) {
        if (err instanceof BridgeConfigError) throw err;
        throw new BridgeConfigError(`${where(app)}: cert.certFile is not a PEM certificate`);
      }
      auth = { cert: { cert, key } };
    } else {
      throw new BridgeConfigError(`${where(app)}: give "token": {keyFile, keyId, teamId} or "cert": {certFile, keyFile}`);
    }
    add(
      new ApnsBridge({
        appId,
        topic: cfg['topic'],
        sandbox: cfg['sandbox'] === true,
        auth,
        baseUrl: url(app, 'baseUrl', cfg['baseUrl'], null),
        ca: ca(app, cfg),
        timeoutMs: TIMEOUT_MS,
      }),
    );
  }

  for (const [appId, cfg] of section('adm')) {
    const app = `adm app "${appId}"`;
    for (const f of ['clientId', 'clientSecret']) {
      if (typeof cfg[f] !== 'string' || !cfg[f]) throw new BridgeConfigError(`${where(app)}: "${f}" is required`);
    }
    add(
      new AdmBridge({
        appId,
        clientId: cfg['clientId'] as string,
        clientSecret: cfg['clientSecret'] as string,
        baseUrl: url(app, 'baseUrl', cfg['baseUrl'], DEFAULTS.adm.baseUrl)!,
        tokenUrl: url(app, 'tokenUrl', cfg['tokenUrl'], DEFAULTS.adm.tokenUrl)!,
        ca: ca(app, cfg),
        timeoutMs: TIMEOUT_MS,
        maxConcurrent: policy.maxConcurrent,
      }),
    );
  }

  const mp: MongoosePushApps = {};
  if (doc['mongoosepush'] !== undefined) {
    const m = doc['mongoosepush'];
    if (!isObj(m)) throw new BridgeConfigError(`${file}: "mongoosepush" must map fcm, apns-prod, apns-dev to app ids`);
    for (const [service, appId] of Object.entries(m)) {
      const type = service === 'fcm' ? 'fcm' : service === 'apns-prod' || service === 'apns-dev' ? 'apns' : null;
      if (!type) throw new BridgeConfigError(`${file}: mongoosepush service "${service}" must be fcm, apns-prod or apns-dev`);
      if (typeof appId !== 'string' || !apps.has(`${type}:${appId}`)) {
        throw new BridgeConfigError(`${file}: mongoosepush "${service}" names ${JSON.stringify(appId)}, which is not a configured ${type} app`);
      }
      mp[service as keyof MongoosePushApps] = appId;
    }
  }
  return new Bridges(apps, mp);
}
