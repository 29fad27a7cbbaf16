/**
 * Pushgate's own Megaphone-compatible API, served on the public port when no Megaphone URL is set and a
 * token is (mozilla-services/megaphone http.rs): `PUT /v1/broadcasts/{broadcaster}/{channel}` with the new
 * version as the body (201 created, 200 updated) and `GET /v1/broadcasts` (`{"code":200,"broadcasts":{…}}`),
 * both behind `Authorization: Bearer <PUSHGATE_MEGAPHONE_TOKEN>`. Errors use Megaphone's body
 * `{code, errno, error}` and errnos (100/101 bad ids, 102/103 missing/invalid version, 120/121 missing/invalid
 * auth). Unlike Megaphone, the token is checked before anything else is looked at.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authFailed, type Metrics } from '../../ops/metrics.js';
import { TAGS } from '../../ops/openapi.js';
import { BCHANNEL_ID, BROADCASTER_ID, type Broadcasts, isVersion, MAX_VERSION_LENGTH } from './megaphone.js';

export interface BroadcastRouteOptions {
  broadcasts: Broadcasts;
  token: string;
  metrics: Metrics;
}

class MegaphoneError extends Error {
  constructor(
    readonly status: number,
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

function send(reply: FastifyReply, err: MegaphoneError): void {
  // RFC 6750 §3: a 401 names the scheme the client must use.
  if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="pushgate"');
  reply.code(err.status).type('application/json').send({ code: err.status, errno: err.errno, error: err.message });
}

/** Megaphone's error body (its `HandlerError` rendering). */
const errorBody = {
  type: 'object',
  properties: { code: { type: 'integer' }, errno: { type: 'integer' }, error: { type: 'string' } },
  required: ['code', 'errno', 'error'],
} as const;
const errors = { '4xx': errorBody, '5xx': errorBody } as const;
const api = { tags: [TAGS.broadcast], security: [{ megaphoneToken: [] }] } as const;
const created = { type: 'object', properties: { code: { type: 'integer' } }, required: ['code'] } as const;

const putSchema = {
  ...api,
  summary: "Set a broadcast's version (Megaphone's PUT /v1/broadcasts/{broadcaster}/{channel})",
  consumes: ['text/plain'],
  params: {
    type: 'object',
    properties: {
      broadcaster: { type: 'string', description: 'letters, digits, - and _ (errno 100 otherwise)' },
      channel: { type: 'string', description: 'letters, digits, - and _ (errno 101 otherwise)' },
    },
    required: ['broadcaster', 'channel'],
  },
  body: { type: 'string', description: `the new version: at most ${MAX_VERSION_LENGTH} characters (errno 102 missing, 103 invalid)` },
  response: { 200: { ...created, description: 'Updated' }, 201: { ...created, description: 'Created' }, ...errors },
} as const;

const getSchema = {
  ...api,
  summary: "Every broadcast and its version (Megaphone's GET /v1/broadcasts)",
  response: {
    200: {
      type: 'object',
      properties: { code: { type: 'integer' }, broadcasts: { type: 'object', additionalProperties: { type: 'string' } } },
      required: ['code', 'broadcasts'],
    },
    ...errors,
  },
} as const;

/**
 * The schemas document and type; they do not validate: the handler checks in Megaphone's order with Megaphone's
 * errnos (the token first, then the ids, then the version), which fastify's validator would pre-empt.
 */
const noValidation = () => () => true;

export async function broadcastRoutes(app: FastifyInstance, opts: BroadcastRouteOptions): Promise<void> {
  const { broadcasts, metrics } = opts;
  const expected = createHash('sha256').update(opts.token).digest();

  /** Constant-time comparison of the Bearer token (both sides hashed, so their lengths cannot leak). */
  function authorize(request: FastifyRequest): void {
    const header = request.headers.authorization;
    if (header === undefined) {
      authFailed(metrics, request.log, 'megaphone', 'missing');
      throw new MegaphoneError(401, 120, 'Missing authorization header');
    }
    const parts = header.split(' ');
    const given = parts.length === 2 && parts[0]!.toLowerCase() === 'bearer' ? parts[1]! : '';
    if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
      authFailed(metrics, request.log, 'megaphone', 'invalid');
      throw new MegaphoneError(401, 121, 'Invalid authorization');
    }
  }

  // The version is the raw body, whatever Content-Type the broadcaster sends.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 4 * MAX_VERSION_LENGTH }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof MegaphoneError) return send(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, new MegaphoneError(400, 103, 'Invalid version data'));
    request.log.error({ err: err.message }, 'broadcast API error');
    return send(reply, new MegaphoneError(500, 201, 'Internal error'));
  });

  // Typed from the schemas (one declaration types and documents).
  const typed = app.withTypeProvider<JsonSchemaToTsProvider>();
  typed.put(
    '/v1/broadcasts/:broadcaster/:channel',
    { schema: putSchema, validatorCompiler: noValidation, preParsing: async (request, _reply, payload) => (authorize(request), payload) },
    async (request, reply) => {
      const { broadcaster, channel } = request.params;
      if (!BROADCASTER_ID.test(broadcaster)) throw new MegaphoneError(400, 100, 'Invalid broadcaster id');
      if (!BCHANNEL_ID.test(channel)) throw new MegaphoneError(400, 101, 'Invalid bchannel id');
      const version = typeof request.body === 'string' ? request.body : '';
      if (version === '') throw new MegaphoneError(400, 102, 'Missing version data');
      if (!isVersion(version)) throw new MegaphoneError(400, 103, 'Invalid version data');
      let created: boolean;
      try {
        created = await broadcasts.put(`${broadcaster}/${channel}`, version);
      } catch {
        throw new MegaphoneError(503, 202, 'Storage temporarily unavailable');
      }
      const status = created ? 201 : 200;
      reply.code(status).send({ code: status });
    },
  );

  typed.get('/v1/broadcasts', { schema: getSchema, preHandler: async (request) => authorize(request) }, async () => {
    try {
      return { code: 200, broadcasts: await broadcasts.storedVersions() };
    } catch {
      throw new MegaphoneError(503, 202, 'Storage temporarily unavailable');
    }
  });
}
