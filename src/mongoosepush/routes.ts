import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { TAGS } from '../ops/openapi.js';
import type { BridgeAlert, BridgeMessage, BridgeResult, Bridges } from '../bridge/index.js';

/**
 * MongoosePush's REST API v3, as MongooseIM's mod_push_service_mongoosepush calls it:
 * `POST /v3/notification/{device_id}` with `service` (fcm | apns), `mode` (prod | dev), `priority`,
 * `time_to_live`, `mutable_content`, `topic`, and `alert` {title, body, click_action, tag, badge, sound}
 * and/or `data`. Replies: 200; 400, 410 `unregistered`, 413, 429, 500, 503 and 520, each with a `reason`.
 * The bridges file's `mongoosepush` section names the app serving fcm, apns-prod and apns-dev.
 */

/** FCM's default lifetime when MongoosePush is given none: four weeks. */
const DEFAULT_TTL = 4 * 7 * 24 * 60 * 60;

const bodySchema = {
  type: 'object',
  properties: {
    service: { type: 'string', enum: ['fcm', 'apns'] },
    mode: { type: 'string', enum: ['prod', 'dev'] },
    priority: { type: 'string', enum: ['normal', 'high'] },
    time_to_live: { type: 'integer', minimum: 0 },
    mutable_content: { type: 'boolean' },
    topic: { type: 'string', maxLength: 256 },
    tags: { type: 'array', items: { type: 'string' } },
    alert: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        body: { type: 'string' },
        click_action: { type: 'string' },
        tag: { type: 'string' },
        badge: { type: 'integer' },
        sound: { type: 'string' },
      },
      required: ['title', 'body'],
      additionalProperties: false,
    },
    data: { type: 'object' },
  },
  required: ['service'],
  anyOf: [{ required: ['alert'] }, { required: ['data'] }],
  additionalProperties: false,
} as const;

const reasonSchema = { type: 'object', properties: { reason: { type: 'string' } }, required: ['reason'] } as const;

function reply(res: FastifyReply, status: number, reason: string, retryAfter?: number | null): void {
  if (retryAfter) res.header('retry-after', String(retryAfter));
  res.code(status).send({ reason });
}

/** FCM data values are strings; nested values travel as JSON text. */
function stringData(data: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

export async function mongoosePushRoutes(app: FastifyInstance, opts: { bridges: Bridges }): Promise<void> {
  const { bridges } = opts;
  app.setErrorHandler((err: FastifyError, request, res) => {
    if (err.validation || (err.statusCode !== undefined && err.statusCode < 500)) return reply(res, 400, 'invalid_request');
    request.log.error({ err: err.message }, 'mongoosepush request failed');
    return reply(res, 500, 'unspecified');
  });

  // The body's type comes from its JSON schema (one declaration validates, types and documents).
  app.withTypeProvider<JsonSchemaToTsProvider>().post(
    '/v3/notification/:deviceId',
    {
      schema: {
        summary: 'Send a notification to a device through FCM or APNs (MongoosePush v3)',
        tags: [TAGS.mongoosepush],
        params: { type: 'object', properties: { deviceId: { type: 'string', minLength: 1, maxLength: 4096 } }, required: ['deviceId'] },
        body: bodySchema,
        response: { 200: { description: 'Accepted by the provider', type: 'null' }, '4xx': reasonSchema, '5xx': reasonSchema },
      },
    },
    async (request, res) => {
      const b = request.body;
      const service = b.service === 'fcm' ? 'fcm' : b.mode === 'dev' ? 'apns-dev' : 'apns-prod';
      const appId = bridges.mongoosepush[service];
      const bridge = appId ? bridges.get(b.service, appId) : undefined;
      // Our configuration, not the request, is at fault: MongooseIM must not disable the user for it.
      if (!bridge) return reply(res, 503, 'internal_config');
      if (!bridge.validateToken(request.params.deviceId)) return reply(res, 400, 'invalid_request');
      const alert: BridgeAlert | undefined = b.alert
        ? {
            title: b.alert.title,
            body: b.alert.body,
            ...(b.alert.click_action !== undefined ? { clickAction: b.alert.click_action } : {}),
            ...(b.alert.tag !== undefined ? { tag: b.alert.tag } : {}),
            ...(b.alert.badge !== undefined ? { badge: b.alert.badge } : {}),
            ...(b.alert.sound !== undefined ? { sound: b.alert.sound } : {}),
          }
        : undefined;
      const message: BridgeMessage = {
        token: request.params.deviceId,
        data: stringData(b.data),
        ttl: b.time_to_live ?? DEFAULT_TTL,
        // MongoosePush's default priority depends on the service: normal for FCM, high for APNs.
        priority: b.priority ?? (b.service === 'apns' ? 'high' : 'normal'),
        collapseKey: null,
        ...(alert ? { alert } : { background: b.service === 'apns' }),
        ...(b.mutable_content ? { mutableContent: true } : {}),
        ...(b.topic && b.service === 'apns' ? { apnsTopic: b.topic } : {}),
      };
      return respond(res, await bridge.send(message));
    },
  );
}

function respond(res: FastifyReply, result: BridgeResult): void {
  switch (result.outcome) {
    case 'delivered':
      res.code(200).send(null);
      return;
    case 'dead-token':
      return reply(res, 410, 'unregistered');
    case 'rejected':
      return result.tooLarge ? reply(res, 413, 'payload_too_large') : reply(res, 400, 'invalid_request');
    case 'retry-later':
      return result.status === 429 ? reply(res, 429, 'too_many_requests', result.retryAfter) : reply(res, 503, 'service_internal', result.retryAfter);
    case 'misconfigured':
      if (result.errno === 902) return reply(res, 503, 'unable_to_connect');
      if (result.errno === 903) return reply(res, 520, 'connection_lost');
      return reply(res, 503, 'internal_config');
  }
}

