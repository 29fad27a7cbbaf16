/**
 * MongoosePush's send API as MongooseIM's mod_push_service_mongoosepush calls it:
 * `POST /{v1,v2,v3}/notification/{device_id}` (esl/MongoosePush `lib/mongoose_push_web/router.ex`). Bodies are
 * parsed by request.ts, answers encoded by answers.ts; this file only wires them to fastify and to the bridges.
 * The bridges file's `mongoosepush` section names the app (MongoosePush's pool) serving fcm, apns-prod and
 * apns-dev. It is registered only on its own listener (server.ts), never on the public port.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
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

  const route = (version: ApiVersion) =>
    app.post<{ Params: { deviceId: string } }>(`/${version}/notification/:deviceId`, async (request, res) => {
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
    });
  route('v1');
  route('v2');
  route('v3');
}
