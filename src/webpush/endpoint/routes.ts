import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Metrics } from '../../ops/metrics.js';
import type { Store } from '../../store/index.js';
import { ApiError, errorBody, errorBodySchema, storageCall } from '../protocol/errors.js';
import { type ApiVersion, type EndpointTokenInfo, parseEndpointToken } from '../protocol/endpoint-token.js';
import type { MultiFernet } from '../protocol/fernet.js';
import { parseMessageId } from '../protocol/message-id.js';
import type { WebPushRouter } from './router.js';
import { parseNotificationHeaders } from './headers.js';
import { BoundedMap } from '../../util/bounded-map.js';
import { extractVapid, type VapidVerifier } from './vapid.js';
import type { DashboardTracker } from '../../dashboard/tracker.js';

/** RFC 8030 allows the push service to limit payloads; 4096 bytes is what every Web Push service accepts. */
export const MAX_PAYLOAD_BYTES = 4096;

export interface EndpointOptions {
  fernet: MultiFernet;
  router: WebPushRouter;
  vapid: VapidVerifier;
  store: Store;
  metrics: Metrics;
  publicUrl: string;
  /** The developer dashboard's recorder (src/dashboard/tracker.ts); null when nothing records. */
  dashboard?: DashboardTracker | null;
}

const tokenParams = {
  type: 'object',
  properties: { token: { type: 'string', maxLength: 1024 }, apiVersion: { type: 'string' } },
  required: ['token'],
} as const;

const pushSchema = {

  params: tokenParams,
  headers: {
    type: 'object',
    properties: {
      ttl: { type: 'string', description: 'seconds to keep the message (required, capped at 30 days)' },
      topic: { type: 'string', description: 'replaces a pending message with the same topic (RFC 8030 §5.4)' },
      urgency: { type: 'string', description: 'very-low | low | normal | high (RFC 8030 §5.3)' },
      'content-encoding': { type: 'string', description: 'aes128gcm (RFC 8291) or legacy aesgcm' },
    },
  },
  response: { 201: { type: 'null' }, '4xx': errorBodySchema, '5xx': errorBodySchema },
} as const;

/** Decrypted endpoint tokens kept for senders that push to the same subscription again. */
const TOKEN_CACHE_LIMIT = 100_000;

/**
 * The endpoint server (autopush's autoendpoint) for Web Push: POST /wpush/{v1,v2}/{token} (and the bare
 * /wpush/{token}, which is v1) and DELETE /m/{message-id}.
 */
export async function endpointRoutes(app: FastifyInstance, opts: EndpointOptions): Promise<void> {
  const { fernet, router, vapid, metrics, publicUrl, store, dashboard } = opts;
  // Only tokens that decrypted are kept, so garbage tokens cannot fill the cache.
  const tokens = new BoundedMap<string, EndpointTokenInfo>(TOKEN_CACHE_LIMIT);
  const decodeToken = (token: string, version: ApiVersion): EndpointTokenInfo | null => {
    const key = version === 'v1' ? token : `2${token}`;
    const hit = tokens.get(key);
    if (hit) return hit;
    const info = parseEndpointToken(fernet, token, version);
    if (info) tokens.set(key, info);
    return info;
  };

  // Push bodies are opaque encrypted bytes whatever Content-Type a sender claims.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_PAYLOAD_BYTES }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const apiError = toApiError(err, request.log);
    if (request.routeOptions.url?.startsWith('/wpush/')) dashboard?.rejected(request.headers, request.params, apiError);
    sendError(reply, apiError);
  });

  async function push(apiVersion: ApiVersion, token: string, request: { headers: import('node:http').IncomingHttpHeaders; body: unknown }, reply: FastifyReply) {
    const started = process.hrtime.bigint();
    const info = decodeToken(token, apiVersion);
    if (!info) throw new ApiError('invalidUrl', 'Invalid endpoint token');

    const creds = extractVapid(request.headers);
    const verified = creds ? await vapid.verify(creds) : null;
    if (info.keyHash) {
      // RFC 8292 §4.2: a restricted (v2) endpoint only accepts the key it was created for.
      if (!verified) throw new ApiError('invalidAuthentication', 'This endpoint requires VAPID authentication');
      if (!timingSafeEqual(verified.keyHash, info.keyHash)) throw new ApiError('invalidAuthentication', 'VAPID key does not match this endpoint');
    }

    const body = request.body instanceof Buffer ? request.body : null;
    const hasBody = body !== null && body.length > 0;
    const h = parseNotificationHeaders(request.headers, hasBody);
    let headers = h.cryptoHeaders;
    // RFC 8030 §5.3: the client learns a non-default urgency with the message (autopush drops it).
    if (h.urgency !== 'normal') headers = { ...(headers ?? {}), urgency: h.urgency };

    const result = await router.route({
      uaid: info.uaid,
      channelID: info.channelID,
      ttl: h.ttl,
      topic: h.topic,
      urgency: h.urgency,
      data: hasBody ? body.toString('base64url') : null,
      headers,
    });
    dashboard?.accepted(verified?.keyHash, { uaid: info.uaid, channelID: info.channelID, ttl: h.ttl, topic: h.topic, urgency: h.urgency, size: hasBody ? body.length : 0 }, result);
    metrics.postDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    reply
      .code(201)
      .header('location', `${publicUrl}/m/${result.messageId}`)
      .header('ttl', String(h.ttl))
      .send();
  }

  app.post<{ Params: { apiVersion: string; token: string } }>('/wpush/:apiVersion/:token', { schema: pushSchema }, async (request, reply) => {
    const v = request.params.apiVersion;
    if (v !== 'v1' && v !== 'v2') throw new ApiError('invalidUrl', 'Invalid API version');
    return push(v, request.params.token, request, reply);
  });

  app.post<{ Params: { token: string } }>('/wpush/:token', { schema: pushSchema }, async (request, reply) =>
    push('v1', request.params.token, request, reply),
  );

  app.delete<{ Params: { messageId: string } }>(
    '/m/:messageId',
    {
      schema: {

        params: { type: 'object', properties: { messageId: { type: 'string', maxLength: 1024 } }, required: ['messageId'] },
        response: { 204: { type: 'null' }, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const key = parseMessageId(fernet, request.params.messageId);
      if (!key) throw new ApiError('invalidUrl', 'Invalid message id');
      const removed = await storageCall(() =>
        key.topic !== undefined ? store.removeTopicMessage(key.uaid, key.channelID, key.topic) : store.removeMessage(key.uaid, key.seq),
      );
      if (removed) dashboard?.deleted(request.params.messageId);
      reply.code(204).send();
    },
  );
}

export function toApiError(err: FastifyError | Error, log?: { error: (o: object, m: string) => void }): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('payloadTooLarge', `Body must be at most ${MAX_PAYLOAD_BYTES} bytes`);
  if ((err as FastifyError).validation) return new ApiError('invalidUrl', 'Invalid request');
  const status = (err as FastifyError).statusCode;
  if (status === 413) return new ApiError('payloadTooLarge', err.message);
  // Never 404 for a request we could not read: senders drop subscriptions on 404.
  if (status !== undefined && status >= 400 && status < 500) return new ApiError('invalidRequest', err.message);
  log?.error({ err: err.message }, 'unexpected error');
  return new ApiError('unknown', 'Internal error');
}

export function sendError(reply: FastifyReply, err: ApiError): void {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  // autopush lets caches and senders remember a gone endpoint for a day.
  if (err.status === 410) reply.header('cache-control', 'max-age=86400');
  reply.code(err.status).type('application/json').send(err.body());
}

export { errorBody };
