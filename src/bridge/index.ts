import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import type { Metrics } from '../ops/metrics.js';
import { AdmBridge } from './adm/client.js';
import { type AdmAppConfig, admAppSchema } from './adm/schema.js';
import { admSettings } from './adm/settings.js';
import { ApnsBridge } from './apns/client.js';
import { type ApnsAppConfig, apnsAppSchema } from './apns/schema.js';
import { apnsSettings } from './apns/settings.js';
import { FcmBridge } from './fcm/client.js';
import { type FcmAppConfig, fcmAppSchema } from './fcm/schema.js';
import { fcmSettings } from './fcm/settings.js';
import { AppFiles } from './files.js';
import { DEFAULT_RETRY, ReliableBridge, type RetryPolicy } from './reliable.js';
import { type Bridge, BridgeConfigError, type RouterType } from './types.js';

export { BridgeConfigError } from './types.js';
export type { Bridge, BridgeAlert, BridgeMessage, BridgeResult, RouterType } from './types.js';

/**
 * The bridges file (PUSHGATE_BRIDGES): apps per provider, keyed by app id, plus which app serves each
 * MongoosePush service. The file is checked against one JSON schema per provider (kept beside each client:
 * fcm/schema.ts, apns/schema.ts, adm/schema.ts) with ajv; then every credential is read and checked. A bad
 * entry stops the start with a message that names the app and the field.
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

/** App ids appear in registration URLs (/v1/{type}/{app_id}/registration). */
const APP_ID = '^[A-Za-z0-9_.\\-]{1,128}$';
const MONGOOSEPUSH_SERVICES = { fcm: 'fcm', 'apns-prod': 'apns', 'apns-dev': 'apns' } as const;

const appsOf = (schema: object) => ({ type: 'object', propertyNames: { pattern: APP_ID }, additionalProperties: schema });

/** The whole file: one schema per provider section, the MongoosePush section, `$`-keys (e.g. `$comment`) ignored. */
const fileSchema = {
  type: 'object',
  properties: {
    fcm: appsOf(fcmAppSchema),
    apns: appsOf(apnsAppSchema),
    adm: appsOf(admAppSchema),
    mongoosepush: {
      type: 'object',
      properties: Object.fromEntries(Object.keys(MONGOOSEPUSH_SERVICES).map((k) => [k, { type: 'string', description: 'an app id' }])),
      additionalProperties: false,
    },
  },
  patternProperties: { '^\\$': {} },
  additionalProperties: false,
} as const;

interface BridgesFile {
  fcm?: Record<string, FcmAppConfig>;
  apns?: Record<string, ApnsAppConfig>;
  adm?: Record<string, AdmAppConfig>;
  mongoosepush?: MongoosePushApps;
}

const validateFile = new Ajv({ allErrors: false, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile<BridgesFile>(fileSchema);

/** An ajv error as a sentence naming the app and the field, e.g. `apns app "x": "token.keyId" must be Apple's 10-character key id`. */
function explain(file: string, e: ErrorObject): string {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const [section, appId, ...field] = path;
  if (section === undefined) {
    if (e.keyword === 'additionalProperties') return `${file}: unknown key "${String(e.params['additionalProperty'])}"; expected fcm, apns, adm, mongoosepush`;
    return `${file}: expected a JSON object with "fcm", "apns", "adm", "mongoosepush"`;
  }
  if (section === 'mongoosepush') {
    if (e.keyword === 'additionalProperties')
      return `${file}: mongoosepush service "${String(e.params['additionalProperty'])}" must be fcm, apns-prod or apns-dev`;
    return `${file}: "mongoosepush" must map fcm, apns-prod, apns-dev to app ids`;
  }
  if (appId === undefined) {
    if (e.keyword === 'propertyNames' || e.propertyName !== undefined)
      return `${file}: ${section} app id "${String(e.propertyName ?? e.params['propertyName'])}" must be letters, digits, . _ -`;
    return `${file}: "${section}" must map app ids to settings`;
  }
  const where = `${file}: ${section} app "${appId}"`;
  const prefix = field.length > 0 ? `${field.join('.')}.` : '';
  const parent = (e.parentSchema ?? {}) as { description?: string; writeOnly?: boolean; properties?: Record<string, { description?: string }> };
  switch (e.keyword) {
    case 'required': {
      const missing = String(e.params['missingProperty']);
      const what = parent.properties?.[missing]?.description;
      return `${where}: "${prefix}${missing}" is required${what ? ` (${what})` : ''}`;
    }
    case 'additionalProperties':
      return `${where}: unknown field "${prefix}${String(e.params['additionalProperty'])}"`;
    case 'oneOf':
      return `${where}: give either "token": {keyFile, keyId, teamId} or "cert": {certFile, keyFile}, not both`;
    default: {
      if (field.length === 0) return `${where}: settings must be an object`;
      // Secrets are never echoed.
      const got = parent.writeOnly ? '' : `, got ${JSON.stringify(e.data)}`;
      return `${where}: "${field.join('.')}" must be ${parent.description ?? e.message ?? 'valid'}${got}`;
    }
  }
}

export interface BridgeLimits {
  /** Each request toward a provider ends by this many milliseconds (errno 903 / timeout). */
  timeoutMs: number;
}

export const DEFAULT_LIMITS: BridgeLimits = { timeoutMs: 10_000 };

export function loadBridges(file: string, metrics: Metrics, policy: RetryPolicy = DEFAULT_RETRY, limits: BridgeLimits = DEFAULT_LIMITS): Bridges {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BridgeConfigError(`PUSHGATE_BRIDGES: cannot read ${file} as JSON (${(err as Error).message})`);
  }
  if (!validateFile(doc)) {
    // A missing token/cert pair is reported by oneOf after the branch errors; the first error is the most telling otherwise.
    const errors = validateFile.errors ?? [];
    const oneOf = errors.find((e) => e.keyword === 'oneOf');
    throw new BridgeConfigError(explain(file, oneOf && errors.every((e) => e.keyword === 'required' || e === oneOf) ? oneOf : errors[0]!));
  }
  const apps = new Map<string, Bridge>();
  const add = (bridge: Bridge) => apps.set(`${bridge.type}:${bridge.appId}`, new ReliableBridge(bridge, policy, metrics));
  const files = (type: RouterType, appId: string) => new AppFiles(file, `${type} app "${appId}"`);
  try {
    for (const [appId, cfg] of Object.entries(doc.fcm ?? {})) add(new FcmBridge(fcmSettings(appId, cfg, files('fcm', appId), limits.timeoutMs)));
    for (const [appId, cfg] of Object.entries(doc.apns ?? {})) add(new ApnsBridge(apnsSettings(appId, cfg, files('apns', appId), limits.timeoutMs)));
    for (const [appId, cfg] of Object.entries(doc.adm ?? {}))
      add(new AdmBridge(admSettings(appId, cfg, files('adm', appId), limits.timeoutMs, policy.maxConcurrent)));
  } catch (err) {
    // The apps opened so far hold sockets and timers.
    for (const b of apps.values()) void b.close();
    throw err;
  }
  const mp: MongoosePushApps = {};
  for (const [service, appId] of Object.entries(doc.mongoosepush ?? {}) as [keyof MongoosePushApps, string][]) {
    const type = MONGOOSEPUSH_SERVICES[service];
    if (!apps.has(`${type}:${appId}`)) {
      for (const b of apps.values()) void b.close();
      throw new BridgeConfigError(`${file}: mongoosepush "${service}" names ${JSON.stringify(appId)}, which is not a configured ${type} app`);
    }
    mp[service] = appId;
  }
  return new Bridges(apps, mp);
}
