/**
 * MongoosePush's send API as MongooseIM's mod_push_service_mongoosepush calls it:
 * `POST /{v1,v2,v3}/notification/{device_id}` (esl/MongoosePush `lib/mongoose_push_web/router.ex`). Bodies are
 * parsed by request.ts, answers encoded by answers.ts; this file only wires them to fastify and to the bridges.
 * The bridges file's `mongoosepush` section names the app (MongoosePush's pool) serving fcm, apns-prod and
 * apns-dev. It is registered only on its own listener (server.ts), never on the public port.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { TAGS } from '../ops/openapi.js';
import type { BridgeAlert, BridgeMessage, Bridges } from '../bridge/index.js';
import { type Answer, answerFor, errorOf, type MongoosePushError } from './answers.js';
import { type ApiVersion, type CastError, parseRequest, type PushRequest } from './request.js';

/** FCM's default lifetime when MongoosePush is given none: four weeks. */
const DEFAULT_TTL = 4 * 7 * 24 * 60 * 60;

function send(res: FastifyReply, answer: Answer, retryAfter?: number | null): FastifyReply {
  if (retryAfter && (answer.status === 429 || answer.status === 503)) res.header('retry-after', String(retryAfter));
  return res.code(answer.status).type('application/json; charset=utf-8').send(JSON.stringify(answer.body));
}

/** OpenApiSpex's validation answer: 422 with the list of what is wrong. */
function invalid(res: FastifyReply, errors: CastError[], status = 422): FastifyReply {
  return res.code(status).type('application/json; charset=utf-8').send(JSON.stringify({ errors }));
}

/** FCM data values are strings; nested values travel as JSON text. */
function stringData(data: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/** The provider-neutral message for a MongoosePush request. */
export function messageFor(token: string, r: PushRequest): BridgeMessage {
  const alert: BridgeAlert | undefined = r.alert
    ? {
        title: r.alert.title,
        body: r.alert.body,
        ...(r.alert.clickAction !== undefined ? { clickAction: r.alert.clickAction } : {}),
        ...(r.alert.tag !== undefined ? { tag: r.alert.tag } : {}),
        ...(r.alert.badge !== undefined ? { badge: r.alert.badge } : {}),
        ...(r.alert.sound !== undefined ? { sound: r.alert.sound } : {}),
      }
    : undefined;
  return {
    token,
    data: stringData(r.data),
    ttl: Math.max(0, r.timeToLive ?? DEFAULT_TTL),
    // MongoosePush's default priority depends on the service: normal for FCM, high for APNs.
    priority: r.priority ?? (r.service === 'apns' ? 'high' : 'normal'),
    collapseKey: null,
    ...(alert ? { alert } : { background: r.service === 'apns' }),
    ...(r.mutableContent ? { mutableContent: true } : {}),
    ...(r.topic && r.service === 'apns' ? { apnsTopic: r.topic } : {}),
    // MongoosePush merges data into the APNs payload as it came; only FCM needs strings.
    ...(r.data && r.service === 'apns' ? { apnsData: r.data } : {}),
  };
}

const alertSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    body: { type: 'string' },
    badge: { type: 'integer' },
    click_action: { type: 'string' },
    tag: { type: 'string' },
    sound: { type: 'string' },
  },
  required: ['title', 'body'],
} as const;

/**
 * The bodies as MongoosePush's OpenApiSpex schemas describe them (v1 flat, v2/v3 deep). Documentation only:
 * request.ts checks them and answers OpenApiSpex's 422 error list, which fastify's validator would not.
 */
const bodySchemas = {
  v1: {
    type: 'object',
    properties: {
      service: { type: 'string', enum: ['fcm', 'apns'] },
      mode: { type: 'string', enum: ['prod', 'dev'] },
      title: { type: 'string' },
      body: { type: 'string' },
      badge: { type: 'integer' },
      click_action: { type: 'string' },
      tag: { type: 'string' },
      topic: { type: 'string' },
      data: { type: 'object' },
    },
    required: ['service', 'title', 'body'],
  },
  deep: {
    type: 'object',
    properties: {
      service: { type: 'string', enum: ['fcm', 'apns'] },
      mode: { type: 'string', enum: ['prod', 'dev'] },
      priority: { type: 'string', enum: ['normal', 'high'] },
      time_to_live: { type: 'integer' },
      mutable_content: { type: 'boolean' },
      tags: { type: 'array', items: { type: 'string' } },
      topic: { type: 'string' },
      alert: alertSchema,
      data: { type: 'object' },
    },
    required: ['service'],
  },
} as const;

const castErrors = {
  description: "OpenApiSpex's validation answer",
  type: 'object',
  properties: {
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { title: { type: 'string' }, source: { type: 'object', properties: { pointer: { type: 'string' } } }, message: { type: 'string' } },
      },
    },
  },
  required: ['errors'],
} as const;
/**
 * v3 errors are `{reason}`, v1/v2 errors `{details}` (answers.ts); required, so that the bare `null` of a crash
 * (the error handler's 500) breaks the document and schemathesis reports it.
 */
const errorAnswer = {
  v3: { type: 'object', properties: { reason: { type: 'string' } }, required: ['reason'] },
  v2: { type: 'object', properties: { details: { type: 'string' } }, required: ['details'] },
} as const;

function routeSchema(version: ApiVersion) {
  const error = version === 'v3' ? errorAnswer.v3 : errorAnswer.v2;
  return {
    summary: `Send a notification to a device through FCM or APNs (MongoosePush API ${version})`,
    tags: [TAGS.mongoosepush],
    security: [{}, { basic: [] }],
    params: { type: 'object', properties: { deviceId: { type: 'string', minLength: 1 } }, required: ['deviceId'] },
    body: version === 'v1' ? bodySchemas.v1 : bodySchemas.deep,
    response: {
      200: { description: 'Sent', type: 'null' },
      // A malformed JSON body (400) and the validation answer (422) carry the error list; provider refusals their answer.
      400: { anyOf: [castErrors, error] },
      // server.ts: a refused Basic credential (RFC 7617), as MongoosePush's auth plug answers it.
      401: { description: 'Basic credentials missing or wrong', type: 'null' },
      422: castErrors,
      '4xx': error,
      '5xx': error,
    },
  } as const;
}

export async function mongoosePushRoutes(app: FastifyInstance, opts: { bridges: Bridges }): Promise<void> {
  const { bridges } = opts;

  // MongooseIM sends JSON; an empty body is an empty object (Phoenix's parser does the same), so it gets
  // the validation answer that names the missing fields.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, raw, done) => {
    const text = String(raw).trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      const err = new Error('the body is not JSON') as FastifyError;
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  app.setErrorHandler((err: FastifyError, request, res) => {
    if (err.statusCode !== undefined && err.statusCode < 500) {
      return invalid(res, [{ title: 'Invalid value', source: { pointer: '/' }, message: err.message }], err.statusCode);
    }
    request.log.error({ err }, 'mongoosepush request failed');
    return res.code(500).type('application/json; charset=utf-8').send('null');
  });

  // Params are typed from their JSON schema; the body is documented there but read by request.ts (see bodySchemas).
  const typed = app.withTypeProvider<JsonSchemaToTsProvider>();
  const route = (version: ApiVersion) =>
    typed.post(
      `/${version}/notification/:deviceId`,
      {
        schema: routeSchema(version),
        // request.ts is the validator (OpenApiSpex's answers); the schema types and documents.
        validatorCompiler: () => () => true,
      },
      async (request, res) => {
        const parsed = parseRequest(version, request.body);
        if (!parsed.ok) return invalid(res, parsed.errors);
        const r = parsed.request;
        const fail = (e: MongoosePushError, retryAfter?: number | null) => send(res, answerFor(version, e), retryAfter);
        // MongoosePush picks a pool by mode and tags; Pushgate's apps carry no tags, so any tag matches none.
        const appId = r.tags.length > 0 ? undefined : bridges.mongoosepush[r.service === 'fcm' ? 'fcm' : r.mode === 'dev' ? 'apns-dev' : 'apns-prod'];
        const bridge = appId ? bridges.get(r.service, appId) : undefined;
        if (!bridge) return fail({ type: 'generic', reason: 'no_matching_pool' });
        const token = request.params.deviceId;
        // MongoosePush would hand such a token to the provider, which refuses it: answer as it would.
        if (!bridge.validateToken(token)) return fail({ type: 'invalid_request', reason: r.service === 'fcm' ? 'INVALID_ARGUMENT' : 'BadDeviceToken' });
        const result = await bridge.send(messageFor(token, r));
        if (result.outcome === 'delivered') return send(res, answerFor(version, null));
        return fail(errorOf(r.service, result), result.outcome === 'retry-later' ? result.retryAfter : null);
      },
    );
  route('v1');
  route('v2');
  route('v3');
}
