import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import type { IncomingHttpHeaders } from 'node:http';
import { TAGS } from '../../ops/openapi.js';
import type { Bridge, Bridges } from '../../bridge/index.js';
import { authFailed, type Metrics } from '../../ops/metrics.js';
import type { Store } from '../../store/index.js';
import { makeEndpoint, vapidKeyHashOf } from '../protocol/endpoint-token.js';
import { ApiError, errorBodySchema, StorageOutageLog, storageCall } from '../protocol/errors.js';
import type { MultiFernet } from '../protocol/fernet.js';
import { isChannelId, newUaid } from '../protocol/ids.js';
import { KeyedLock } from '../../util/keyed-lock.js';
import { sendError, toApiError } from './routes.js';

/**
 * autopush's bridge registration API ("autopush Documentation" §1.3), for mobile apps whose pushes travel
 * through FCM, APNs or ADM:
 *   POST   /v1/{type}/{app_id}/registration                          → {uaid, channelID, endpoint, secret}
 *   PUT    /v1/{type}/{app_id}/registration/{uaid}                   new token
 *   GET    /v1/{type}/{app_id}/registration/{uaid}                   → {uaid, channelIDs}
 *   DELETE /v1/{type}/{app_id}/registration/{uaid}
 *   POST   /v1/{type}/{app_id}/registration/{uaid}/subscription      → {channelID, endpoint}
 *   DELETE /v1/{type}/{app_id}/registration/{uaid}/subscription/{chid}
 * Calls on a uaid carry `Authorization: Bearer {secret}`: the HMAC-SHA256 of the uaid under the first
 * PUSHGATE_AUTH_KEYS key (hex), checked in constant time against every key, as autopush does. A refused
 * secret is logged (never the secret) and counted under door "bridge".
 *
 * Bounded, so one client cannot grow the store without end (hardening issue, finding 5): a registration
 * holds at most PUSHGATE_BRIDGE_MAX_CHANNELS channels, its token at most 4 KB and its whole router data
 * (token, app id, `aps`) at most 8 KB.
 */

export interface RegistrationOptions {
  store: Store;
  bridges: Bridges;
  fernet: MultiFernet;
  authKeys: string[];
  publicUrl: string;
  /** Channels one uaid may hold (PUSHGATE_BRIDGE_MAX_CHANNELS). */
  maxChannels: number;
  metrics: Metrics;
}

/** A device token longer than any provider issues (FCM ~160 bytes, APNs 32–100 bytes, ADM ~1 KB) is refused. */
export const MAX_TOKEN_BYTES = 4096;
/** The stored router data of one registration (token, app id, aps) as JSON. */
export const MAX_ROUTER_DATA_BYTES = 8192;

export function registrationSecret(authKey: string, uaid: string): string {
  return createHmac('sha256', authKey).update(uaid).digest('hex');
}

const typeSchema = { type: 'string', maxLength: 16, description: 'router type: fcm, apns or adm' } as const;
const appIdSchema = { type: 'string', maxLength: 128, description: "the app's id in the bridges file" } as const;
const uaidSchema = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const appParams = { type: 'object', properties: { type: typeSchema, appId: appIdSchema }, required: ['type', 'appId'] } as const;
const uaidParams = { type: 'object', properties: { type: typeSchema, appId: appIdSchema, uaid: uaidSchema }, required: ['type', 'appId', 'uaid'] } as const;
const chidParams = {
  type: 'object',
  properties: { type: typeSchema, appId: appIdSchema, uaid: uaidSchema, chid: { type: 'string', maxLength: 64 } },
  required: ['type', 'appId', 'uaid', 'chid'],
} as const;

const registerBody = {
  type: 'object',
  properties: {
    token: { type: 'string', minLength: 1 },
    channelID: { type: 'string' },
    key: { type: 'string', maxLength: 256 },
    aps: { type: ['object', 'string'] },
  },
  required: ['token'],
} as const;

const subscriptionBody = {
  type: ['object', 'null'],
  properties: { channelID: { type: 'string' }, key: { type: 'string', maxLength: 256 } },
} as const;

const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;
const endpoint = { type: 'string', description: 'the push endpoint URL to give the application server' } as const;
const empty = { 200: { type: 'object', additionalProperties: false }, ...errors } as const;
const tags = [TAGS.registration];
const security = [{ registrationSecret: [] }];

type Params = FromSchema<typeof appParams>;
type RegisterBody = FromSchema<typeof registerBody>;

export async function registrationRoutes(app: FastifyInstance, opts: RegistrationOptions): Promise<void> {
  const { store, bridges, fernet, authKeys, publicUrl, maxChannels, metrics } = opts;
  // Params and bodies are typed from their JSON schemas (one declaration validates, types and documents).
  const typed = app.withTypeProvider<JsonSchemaToTsProvider>();
  // The channel cap's count and the insert run under the uaid's lock: pipelined subscriptions cannot slip past it.
  const uaidLock = new KeyedLock();
  const expected = (uaid: string) => authKeys.map((k) => Buffer.from(registrationSecret(k, uaid)));

  const outages = new StorageOutageLog(app.log);
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) return sendError(reply, new ApiError('invalidRequest', err.message));
    return sendError(reply, toApiError(err, request.log, outages));
  });

  function bridgeFor(params: Params): Bridge {
    const bridge = bridges.get(params.type, params.appId);
    if (!bridge) throw new ApiError('invalidRouterType', `Unknown router type or app id: ${params.type}/${params.appId}`);
    return bridge;
  }

  /** The Bearer (or, for an old Android client, WebPush) secret of the uaid in the path. */
  function authorize(request: { params: { uaid: string }; headers: IncomingHttpHeaders; log: FastifyBaseLogger }): string {
    const uaid = request.params.uaid;
    const header = request.headers.authorization ?? '';
    const [scheme, token] = header.split(' ', 2);
    if (!token || !['bearer', 'webpush'].includes((scheme ?? '').toLowerCase())) {
      authFailed(metrics, request.log, 'bridge', header ? 'malformed' : 'missing', { uaid });
      throw new ApiError('invalidAuthentication', 'Missing registration secret');
    }
    const given = Buffer.from(token);
    let ok = false;
    for (const e of expected(uaid)) ok = (e.length === given.length && timingSafeEqual(e, given)) || ok;
    if (!ok) {
      authFailed(metrics, request.log, 'bridge', 'wrong_secret', { uaid });
      throw new ApiError('invalidAuthentication', 'Invalid registration secret');
    }
    return uaid;
  }

  function channelData(body: { channelID?: string; key?: string } | null | undefined): { channelID: string; keyHash: Buffer | null } {
    const channelID = body?.channelID?.toLowerCase() ?? randomUUID();
    if (!isChannelId(channelID)) throw new ApiError('invalidRequest', 'channelID must be a UUID');
    let keyHash: Buffer | null = null;
    if (body?.key !== undefined) {
      keyHash = vapidKeyHashOf(body.key);
      if (!keyHash) throw new ApiError('invalidCryptoKeys', 'key must be a P-256 public key in base64url');
    }
    return { channelID, keyHash };
  }

  function routerData(bridge: Bridge, params: Params, body: RegisterBody): Record<string, unknown> {
    if (Buffer.byteLength(body.token) > MAX_TOKEN_BYTES || !bridge.validateToken(body.token))
      throw new ApiError('invalidRouterToken', `Invalid ${params.type} token`);
    const data: Record<string, unknown> = { token: body.token, app_id: params.appId };
    if (body.aps !== undefined) {
      try {
        data['aps'] = typeof body.aps === 'string' ? (JSON.parse(body.aps) as unknown) : body.aps;
      } catch {
        throw new ApiError('invalidRequest', 'aps must be a JSON object');
      }
    }
    if (Buffer.byteLength(JSON.stringify(data)) > MAX_ROUTER_DATA_BYTES)
      throw new ApiError('invalidRequest', `router data (token and aps) must stay within ${MAX_ROUTER_DATA_BYTES} bytes`);
    return data;
  }

  /**
   * The registration in the path, for the routes on an existing uaid: its secret checked, its router type and app
   * known, and its user registered with that type and app, in that order (each failure answers with its own errno).
   */
  async function ownRegistration(request: { params: Params & { uaid: string }; headers: IncomingHttpHeaders; log: FastifyBaseLogger }) {
    const uaid = authorize(request);
    const bridge = bridgeFor(request.params);
    const { type, appId } = request.params;
    const user = await storageCall(() => store.getUser(uaid));
    if (!user || user.routerType !== type || user.routerData?.['app_id'] !== appId) throw new ApiError('expiredEndpoint', 'UAID not found');
    return { uaid, bridge, user };
  }

  const registered = {
    type: 'object',
    properties: {
      uaid: uaidSchema,
      channelID: { type: 'string' },
      endpoint,
      secret: { type: 'string', description: 'the Bearer secret for calls on this uaid' },
    },
    required: ['uaid', 'channelID', 'endpoint', 'secret'],
  } as const;
  const registerSchema = {
    summary: 'Register a device token: a new uaid with one channel',
    tags,
    params: appParams,
    body: registerBody,
    response: { 200: registered, ...errors },
  } as const;
  typed.post('/v1/:type/:appId/registration', { schema: registerSchema }, async (request) => {
    const bridge = bridgeFor(request.params);
    const data = routerData(bridge, request.params, request.body);
    const { channelID, keyHash } = channelData(request.body);
    const uaid = newUaid();
    await storageCall(async () => {
      await store.addUser({ uaid, routerType: bridge.type, routerData: data, connectedAt: Date.now(), peerId: null });
      await store.addChannel(uaid, { channelID, keyHash });
    });
    return { uaid, channelID, endpoint: makeEndpoint(publicUrl, fernet, uaid, channelID, keyHash), secret: registrationSecret(authKeys[0]!, uaid) };
  });

  typed.put(
    '/v1/:type/:appId/registration/:uaid',
    { schema: { summary: 'Replace the device token of a uaid', tags, security, params: uaidParams, body: registerBody, response: empty } },
    async (request) => {
      const { bridge, user } = await ownRegistration(request);
      const data = routerData(bridge, request.params, request.body);
      await storageCall(() => store.updateUser({ ...user, routerData: data, connectedAt: Math.max(Date.now(), user.connectedAt) }));
      return {};
    },
  );

  const channelList = {
    type: 'object',
    properties: { uaid: uaidSchema, channelIDs: { type: 'array', items: { type: 'string' } } },
    required: ['uaid', 'channelIDs'],
  } as const;
  const listSchema = { summary: 'List the channels of a uaid', tags, security, params: uaidParams, response: { 200: channelList, ...errors } } as const;
  typed.get('/v1/:type/:appId/registration/:uaid', { schema: listSchema }, async (request) => {
    const { uaid } = await ownRegistration(request);
    const channels = await storageCall(() => store.getChannels(uaid));
    return { uaid, channelIDs: channels.map((c) => c.channelID) };
  });

  typed.delete(
    '/v1/:type/:appId/registration/:uaid',
    { schema: { summary: 'Unregister a uaid and all its channels', tags, security, params: uaidParams, response: empty } },
    async (request) => {
      const { uaid } = await ownRegistration(request);
      await storageCall(() => store.removeUser(uaid));
      return {};
    },
  );

  const subscribed = { type: 'object', properties: { channelID: { type: 'string' }, endpoint }, required: ['channelID', 'endpoint'] } as const;
  typed.post(
    '/v1/:type/:appId/registration/:uaid/subscription',
    { schema: { summary: 'Add a channel to a uaid', tags, security, params: uaidParams, body: subscriptionBody, response: { 200: subscribed, ...errors } } },
    async (request) => {
      const { uaid } = await ownRegistration(request);
      const { channelID, keyHash } = channelData(request.body);
      await uaidLock.run(uaid, async () => {
        const channels = await storageCall(() => store.getChannels(uaid));
        // Re-registering a channel the uaid already holds is not a new one.
        if (channels.length >= maxChannels && !channels.some((c) => c.channelID === channelID)) {
          throw new ApiError('invalidRequest', `This registration already holds ${channels.length} subscriptions (at most ${maxChannels})`);
        }
        await storageCall(() => store.addChannel(uaid, { channelID, keyHash }));
      });
      return { channelID, endpoint: makeEndpoint(publicUrl, fernet, uaid, channelID, keyHash) };
    },
  );

  typed.delete(
    '/v1/:type/:appId/registration/:uaid/subscription/:chid',
    { schema: { summary: 'Remove a channel', tags, security, params: chidParams, response: empty } },
    async (request) => {
      const { uaid } = await ownRegistration(request);
      const chid = request.params.chid.toLowerCase();
      if (!isChannelId(chid) || !(await storageCall(() => store.removeChannel(uaid, chid)))) throw new ApiError('invalidSubscription', 'No such subscription');
      return {};
    },
  );
}
