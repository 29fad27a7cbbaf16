import { timingSafeEqual } from 'node:crypto';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RequestPayload } from 'fastify';
import { TAGS } from '../../ops/openapi.js';
import { authFailed, type Metrics } from '../../ops/metrics.js';
import type { Store } from '../../store/index.js';
import { ApiError, errorAnswer, errorBodySchema, StorageOutageLog, storageCall } from '../protocol/errors.js';
import { StoreUnavailableError } from '../../store/types.js';
import { encodePayload } from '../protocol/payload.js';
import { type ApiVersion, type EndpointTokenInfo, parseEndpointToken } from '../protocol/endpoint-token.js';
import type { MultiFernet } from '../protocol/fernet.js';
import { canonicalMessageId, parseMessageId } from '../protocol/message-id.js';
import type { WebPushRouter } from './router.js';
import { type NotificationHeaders, parseNotificationHeaders } from './headers.js';
import { type FastPushHandler, fastPushHandler } from './fast-path.js';
import { BoundedMap } from '../../util/bounded-map.js';
import { extractVapid, VapidFailure, type VapidVerifier, type VerifiedVapid } from './vapid.js';
import type { ClientRegistry } from '../connection/clients.js';
import { cors } from './cors.js';
import { checkSubscription } from './subscription.js';
import type { DashboardTracker } from '../../dashboard/tracker.js';

export interface EndpointOptions {
  fernet: MultiFernet;
  router: WebPushRouter;
  vapid: VapidVerifier;
  store: Store;
  clients: ClientRegistry;
  metrics: Metrics;
  publicUrl: string;
  /** Largest raw body accepted (autopush max_data_bytes, 5630 by default); larger is 413 errno 104. */
  maxDataBytes: number;
  /** The developer dashboard's recorder (src/dashboard/tracker.ts); null when nothing records. */
  dashboard?: DashboardTracker | null;
  /** Receives the push route's fast path on the raw request (fast-path.ts), for a plain HTTP/1.1 listener to call. */
  fastPath?: (handler: FastPushHandler) => void;
  /** True once the gateway shuts down: the fast path then leaves every request to fastify (503). */
  closing?: () => boolean;
}

/** The push route's pattern, as fastify reports it and as pushgate_http_requests_total labels it. */
export const PUSH_ROUTE = '/wpush/:apiVersion/:token';

const tokenParams = { type: 'object', properties: { token: { type: 'string', maxLength: 1024 } }, required: ['token'] } as const;
/** `/wpush/{apiVersion}/{token}`: v1 (autopush's unsigned endpoints) or v2 (bound to a VAPID key, RFC 8292 §4.2). */
const versionedParams = {
  type: 'object',
  properties: { apiVersion: { type: 'string', description: 'v1 or v2; anything else is 404 errno 102' }, token: tokenParams.properties.token },
  required: ['apiVersion', 'token'],
} as const;

const pushSchema = {
  summary: 'Send a push message to a subscription (RFC 8030 §5)',
  tags: [TAGS.webpush],
  security: [{}, { vapid: [] }],
  consumes: ['application/octet-stream'],
  params: versionedParams,
  headers: {
    type: 'object',
    properties: {
      ttl: { type: 'string', description: 'seconds to keep the message (required, capped at 30 days)' },
      topic: { type: 'string', description: 'replaces a pending message with the same topic (RFC 8030 §5.4)' },
      urgency: { type: 'string', description: 'very-low | low | normal | high (RFC 8030 §5.3); anything else is normal' },
      'content-encoding': { type: 'string', description: 'aes128gcm (RFC 8291) or legacy aesgcm' },
    },
  },
  response: { 201: { description: 'Accepted; Location names the message', type: 'null' }, '4xx': errorBodySchema, '5xx': errorBodySchema },
} as const;

/**
 * The push routes' schemas document them (OpenAPI) and type their params; they are not compiled into validators,
 * because nothing in them can fail on a request that reaches the route: the router already refuses a path parameter
 * over 1024 characters (maxParamLength in gateway.ts; decoding only shortens it), Node's parser gives these headers
 * as strings, and every value is checked by the route itself with autopush's errnos (headers.ts). Skipping ajv's
 * no-op pass saves its cost on every push.
 */
const documentOnly = () => () => true;

/** Decrypted endpoint tokens kept for senders that push to the same subscription again. */
const TOKEN_CACHE_LIMIT = 100_000;

/** What the checks before the body established about a push request. */
export interface Checked {
  info: EndpointTokenInfo;
  /** sha256 of the push's verified VAPID key, when it carried one (the dashboard's identity). */
  keyHash: Buffer | undefined;
}

/** The request field holding a push request's Checked (decorated on the endpoint's routes only). */
const CHECKED = 'pushgateChecked';
type CheckedRequest = FastifyRequest & { [CHECKED]?: Checked | null };
/** The checks' result, or undefined/null before they passed (and on requests of other routes, e.g. not found). */
const checkedOf = (request: FastifyRequest): Checked | null | undefined => (request as CheckedRequest)[CHECKED];

/**
 * The endpoint server (autopush's autoendpoint) for Web Push: POST /wpush/{v1,v2}/{token} (and the bare
 * /wpush/{token}, which is v1) and DELETE /m/{message-id}.
 *
 * Checks run in autopush's order, so a sender sees the same answer for the same faulty request: the token
 * (404 errno 102) and VAPID (401 errno 109) before the body is read, then the subscription (410 errno 106),
 * then the body size (413 errno 104), then the headers (400). To keep the common path at one storage read,
 * the subscription is looked up ahead of routing only when the body or headers are refused; the router
 * checks it on the way for every accepted message.
 */
export async function endpointRoutes(app: FastifyInstance, opts: EndpointOptions): Promise<void> {
  const { fernet, router, vapid, metrics, publicUrl, store, clients, maxDataBytes, dashboard } = opts;
  // Params are typed from their JSON schemas (one declaration validates, types and documents).
  const typed = app.withTypeProvider<JsonSchemaToTsProvider>();
  // Only tokens that decrypted are kept, so garbage tokens cannot fill the cache.
  // One cache per API version (the same token reads differently on each path), keyed by the token as it came.
  const tokens = { v1: new BoundedMap<string, EndpointTokenInfo>(TOKEN_CACHE_LIMIT), v2: new BoundedMap<string, EndpointTokenInfo>(TOKEN_CACHE_LIMIT) };
  const decodeToken = (token: string, version: ApiVersion): EndpointTokenInfo | null => {
    const cache = tokens[version];
    const hit = cache.get(token);
    if (hit) return hit;
    const info = parseEndpointToken(fernet, token, version);
    if (info) cache.set(token, info);
    return info;
  };
  // The checks before the body leave their result on the request: a decorated field (set in fastify's request
  // constructor, so every request keeps one shape) instead of a WeakMap, whose set measured about 1 % of a push.
  app.decorateRequest(CHECKED, null);

  cors(app, { preflight: true });
  // Push bodies are opaque encrypted bytes whatever Content-Type a sender claims.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxDataBytes }, (_req, body, done) => done(null, body));
  const outages = new StorageOutageLog(app.log);
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    let apiError = toApiError(err, request.log, outages);
    // A body over the limit is only refused once the subscription is known to be live (autopush order).
    const pending = checkedOf(request);
    if (apiError.kind === 'payloadTooLarge' && pending) {
      apiError = await checkSubscription(store, clients, pending.info.uaid, pending.info.channelID).then(
        () => new ApiError('payloadTooLarge', `Body must be at most ${maxDataBytes} bytes`),
        (e: unknown) => toApiError(e as Error, request.log, outages),
      );
    }
    // The developer dashboard records a rejection when the push's VAPID token was valid (it re-derives the key).
    if (request.routeOptions.url?.startsWith('/wpush/')) dashboard?.rejected(request.headers, request.params, apiError);
    sendError(reply, apiError);
  });

  /**
   * Token and VAPID: everything autopush checks before it reads the body (RFC 8292 §4.2 for v2). Synchronous when
   * the sender's VAPID token was verified before (undefined: passed; a throw: refused), a promise only when its
   * signature must be checked: the common push then costs no promise and no microtask turn here.
   */
  function checkCredentials(apiVersion: ApiVersion, token: string, request: FastifyRequest): Promise<void> | undefined {
    const info = decodeToken(token, apiVersion);
    // autopush answers 404 at once only for a token that does not decrypt; one of the wrong length for its
    // path (a v2 token on /wpush/v1/) is refused after the VAPID checks (extractors/subscription.rs).
    if (!info && fernet.decryptString(token) === null) throw new ApiError('invalidUrl', 'Invalid token');
    try {
      // A sender repeating its `vapid` Authorization header is answered by the header as a whole.
      const auth = request.headers.authorization;
      const known = auth !== undefined ? vapid.cachedHeader(auth) : undefined;
      if (known !== undefined) {
        acceptCredentials(request, info, known);
        return;
      }
      const creds = extractVapid(request.headers);
      const verified = creds ? vapid.cached(creds) : null;
      if (verified === undefined) {
        return vapid
          .verify(creds!)
          .then((v) => {
            vapid.rememberHeader(auth!, v);
            acceptCredentials(request, info, v);
          })
          .catch((err: unknown) => refuseCredentials(request, err));
      }
      if (verified !== null) vapid.rememberHeader(auth!, verified);
      acceptCredentials(request, info, verified);
    } catch (err) {
      refuseCredentials(request, err);
    }
  }

  /** The checks on a verified (or absent) VAPID credential, in autopush's order: what passed, or the refusal. */
  function credentialsOf(info: EndpointTokenInfo | null, verified: VerifiedVapid | null): Checked | ApiError | VapidFailure {
    if (!info) return new ApiError('invalidUrl', 'Invalid token');
    if (info.keyHash) {
      if (!verified) return new VapidFailure('missing_key', 'Missing VAPID public key');
      if (!timingSafeEqual(verified.keyHash, info.keyHash)) return new VapidFailure('key_mismatch', 'VAPID public key mismatch');
    }
    return { info, keyHash: verified?.keyHash };
  }

  /** The route's credential checks: the caller counts a refusal (refuseCredentials). */
  function acceptCredentials(request: FastifyRequest, info: EndpointTokenInfo | null, verified: VerifiedVapid | null): void {
    if (verified?.subProblem) metrics.vapidSubProblems.inc({ problem: verified.subProblem });
    const checked = credentialsOf(info, verified);
    if (checked instanceof Error) throw checked;
    (request as CheckedRequest)[CHECKED] = checked;
  }

  /** A refused credential is counted (autopush's metric) and goes on to the error handler. */
  function refuseCredentials(request: FastifyRequest, err: unknown): never {
    if (err instanceof VapidFailure) authFailed(metrics, request.log, 'vapid', err.reason);
    throw err;
  }

  async function push(request: FastifyRequest, reply: FastifyReply) {
    const checked = checkedOf(request)!;
    const body: Buffer | null = request.body instanceof Buffer ? (request.body as Buffer) : null;
    let h;
    try {
      h = parseNotificationHeaders(request.headers, body !== null && body.length > 0);
    } catch (err) {
      // A dead subscription answers 410 before any header fault (autopush reads the subscription first).
      await checkSubscription(store, clients, checked.info.uaid, checked.info.channelID);
      throw err;
    }
    const messageId = await accept(checked, h, body);
    reply.code(201).header('location', `${publicUrl}/m/${messageId}`).header('ttl', String(h.ttl)).send();
  }

  /** A push whose every check passed, body and headers read: routed, recorded and timed. Its message id. */
  async function accept({ info, keyHash }: Checked, h: NotificationHeaders, body: Buffer | null): Promise<string> {
    const started = process.hrtime.bigint();
    const hasBody = body !== null && body.length > 0;
    if (h.unknownUrgency) metrics.unknownUrgency.inc();
    let headers = h.cryptoHeaders;
    // RFC 8030 §5.3: the client learns a non-default urgency with the message (autopush drops it).
    if (h.urgency !== 'normal') headers = { ...(headers ?? {}), urgency: h.urgency };

    // The dashboard's tag goes with the message (storage, peer hop, workers' mesh) only for opted-in keys.
    const dashboardKey = dashboard?.tag(keyHash);
    const result = await router.route({
      uaid: info.uaid,
      channelID: info.channelID,
      ttl: h.ttl,
      topic: h.topic,
      urgency: h.urgency,
      data: hasBody ? encodePayload(body) : null,
      headers,
      ...(dashboardKey !== undefined ? { dashboardKey } : {}),
    });
    dashboard?.accepted(
      keyHash,
      { uaid: info.uaid, channelID: info.channelID, ttl: h.ttl, topic: h.topic, urgency: h.urgency, size: hasBody ? body.length : 0 },
      result,
    );
    metrics.postDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return result.messageId;
  }

  // The same push on the raw HTTP/1.1 request, for senders whose VAPID header was verified before (fast-path.ts).
  opts.fastPath?.(
    fastPushHandler({
      maxDataBytes,
      publicUrl,
      closing: opts.closing ?? (() => false),
      credentials(apiVersion, token, authorization) {
        const verified = vapid.cachedHeader(authorization);
        if (verified === undefined) return null;
        const checked = credentialsOf(decodeToken(token, apiVersion), verified);
        // A refusal is the route's to answer, count and log.
        if (checked instanceof Error) return null;
        if (verified.subProblem) metrics.vapidSubProblems.inc({ problem: verified.subProblem });
        return checked;
      },
      accept,
      refused(err, headers, params) {
        const apiError = toApiError(err as Error, app.log, outages);
        dashboard?.rejected(headers, params, apiError);
        return apiError;
      },
      answered: (status) => metrics.httpRequests.inc({ route: PUSH_ROUTE, status: String(status) }),
    }),
  );

  // Callback-style preParsing: no promise per push unless the VAPID signature must be checked (checkCredentials).
  const afterCredentials = (pending: Promise<void> | undefined, payload: RequestPayload, done: (err: Error | null, payload?: RequestPayload) => void) => {
    if (pending === undefined) return done(null, payload);
    pending.then(() => done(null, payload), done);
  };

  typed.post(
    PUSH_ROUTE,
    {
      schema: pushSchema,
      validatorCompiler: documentOnly,
      preParsing: (request, _reply, payload, done) => {
        let pending;
        try {
          const v = request.params.apiVersion;
          if (v !== 'v1' && v !== 'v2') throw new ApiError('invalidUrl', 'Invalid API version');
          pending = checkCredentials(v, request.params.token, request);
        } catch (err) {
          return done(err as Error);
        }
        afterCredentials(pending, payload, done);
      },
    },
    push,
  );

  typed.post(
    '/wpush/:token',
    {
      schema: { ...pushSchema, params: tokenParams },
      validatorCompiler: documentOnly,
      preParsing: (request, _reply, payload, done) => {
        let pending;
        try {
          pending = checkCredentials('v1', request.params.token, request);
        } catch (err) {
          return done(err as Error);
        }
        afterCredentials(pending, payload, done);
      },
    },
    push,
  );

  typed.delete(
    '/m/:messageId',
    {
      schema: {
        summary: 'Delete a pending message by its Location (RFC 8030 §6.2)',
        tags: [TAGS.webpush],
        params: { type: 'object', properties: { messageId: { type: 'string', maxLength: 1024 } }, required: ['messageId'] },
        response: { 204: { description: 'Deleted, or already gone', type: 'null' }, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const key = parseMessageId(fernet, request.params.messageId);
      // autopush answers 400 "Invalid message ID" (with errno null; Pushgate's table has no null errno: 999).
      if (!key) throw new ApiError('invalidRequest', 'Invalid message ID');
      const removed = await storageCall(() =>
        key.topic !== undefined
          ? store.removeTopicMessage(key.uaid, key.channelID, key.topic)
          : store.removeMessage(key.uaid, key.seq, canonicalMessageId(request.params.messageId)),
      );
      if (removed) dashboard?.deleted(request.params.messageId);
      reply.code(204).send(null);
    },
  );
}

export function toApiError(err: FastifyError | Error, log?: { error: (o: object, m: string) => void }, outages?: StorageOutageLog): ApiError {
  if (err instanceof ApiError) {
    if (err.cause instanceof StoreUnavailableError) outages?.report(err.cause);
    return err;
  }
  if (err instanceof StoreUnavailableError) {
    outages?.report(err);
    return new ApiError('backOff', 'Storage temporarily unavailable', undefined, { cause: err });
  }
  const code = (err as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('payloadTooLarge', 'Body is larger than this push service accepts');
  if ((err as FastifyError).validation) return new ApiError('invalidUrl', 'Invalid request');
  const status = (err as FastifyError).statusCode;
  if (status === 413) return new ApiError('payloadTooLarge', err.message);
  // Never 404 for a request we could not read: senders drop subscriptions on 404.
  if (status !== undefined && status >= 400 && status < 500) return new ApiError('invalidRequest', err.message);
  // A bug, not an outage: the whole error (pino logs its stack) so it can be found and fixed.
  log?.error({ err }, 'unexpected error');
  return new ApiError('unknown', 'Internal error');
}

export function sendError(reply: FastifyReply, err: ApiError): void {
  const { status, headers, body } = errorAnswer(err);
  reply.code(status).headers(headers).send(body);
}
