import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ApiVersion } from '../protocol/endpoint-token.js';
import { type ApiError, errorAnswer } from '../protocol/errors.js';
import { corsHeaders } from './cors.js';
import { type NotificationHeaders, parseNotificationHeaders } from './headers.js';
import type { Checked } from './routes.js';

/**
 * The push route's hot path on the raw HTTP/1.1 request, in front of fastify (issue 13, per-core speed).
 *
 * Measured on the direct path (1 kB body, reused VAPID token, TTL 0), fastify's own work per request (routing,
 * request and reply objects, hook runners, content-type parsing, the reply's path to `res.end`) was 10–16 µs of
 * 78–99 (docs/benchmarks.md, Per-core speed). This path takes only a request it can answer exactly as the route would, and
 * decides that before it reads a byte of the body:
 * - `POST /wpush/v1/<token>` or `/wpush/v2/<token>`, the token in its canonical characters (no escapes, no query);
 * - a `vapid` Authorization header this gateway verified before (VapidVerifier.cachedHeader), and a token that
 *   decrypts and, for v2, is bound to that key;
 * - a Content-Length within the body limit, no Transfer-Encoding and no Expect;
 * - headers that parse (TTL, Topic, Urgency, the content coding's).
 * Anything else goes to fastify untouched, which answers it in autopush's order with its errno. Once taken, the
 * push runs the route's own code (routes.ts `accept`: router, dashboard, metrics), and a refusal after the body
 * (an unknown subscription, a storage outage) is answered with the route's error body (errors.ts errorAnswer).
 * Its answers are the route's, header for header: test/webpush/endpoint/fast-path.test.ts sends the same
 * requests through both and compares them.
 */

export type FastPushHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface FastPushCore {
  maxDataBytes: number;
  publicUrl: string;
  /** True while the gateway shuts down: fastify then answers 503. */
  closing(): boolean;
  /** The route's checks before the body for a verified header; null when the route must answer (a refusal too). */
  credentials(apiVersion: ApiVersion, token: string, authorization: string): Checked | null;
  /** The route's push once every check passed: its message id. */
  accept(checked: Checked, h: NotificationHeaders, body: Buffer | null): Promise<string>;
  /** What the route's error handler makes of a failure after the checks (logged, counted, recorded). */
  refused(err: unknown, headers: IncomingHttpHeaders, params: { apiVersion: string; token: string }): ApiError;
  /** Counts an answer (pushgate_http_requests_total under the route's pattern). */
  answered(status: number): void;
}

/** The route's path (PUSH_ROUTE) with a token fastify would pass on as it came: url-safe base64, at most 1024 long. */
const PUSH_PATH = /^\/wpush\/(v[12])\/([A-Za-z0-9_-]{1,1024}=*)$/;

function declaredLength(value: string | undefined): number | null {
  return value !== undefined && /^[0-9]{1,9}$/.test(value) ? Number(value) : null;
}

export function fastPushHandler(core: FastPushCore): FastPushHandler {
  return (req, res) => {
    if (req.method !== 'POST' || req.httpVersionMajor !== 1 || core.closing()) return false;
    const m = PUSH_PATH.exec(req.url ?? '');
    if (!m) return false;
    const headers = req.headers;
    const authorization = headers.authorization;
    if (authorization === undefined || headers['transfer-encoding'] !== undefined || headers.expect !== undefined) return false;
    const length = declaredLength(headers['content-length']);
    if (length === null || length > core.maxDataBytes) return false;
    let h: NotificationHeaders;
    try {
      h = parseNotificationHeaders(headers, length > 0);
    } catch {
      // The route answers a header fault after its subscription check (autopush's order).
      return false;
    }
    // Last, since it counts what it accepts (pushgate_vapid_sub_problems_total): a request declined after it would be
    // counted again by the route.
    const apiVersion = m[1] as ApiVersion;
    const token = m[2]!;
    const checked = core.credentials(apiVersion, token, authorization);
    if (!checked) return false;

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A request that breaks off (the socket closed, the listener guard's deadline) has no one to answer.
    req.on('error', () => {});
    req.on('end', () => {
      const body = length === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      core.accept(checked, h, body).then(
        (messageId) => {
          // The route's 201: fastify's reply with these two headers and an empty body.
          const out: Record<string, string> = { location: `${core.publicUrl}/m/${messageId}`, ttl: String(h.ttl) };
          answer(res, core, 201, withCors(out, headers.origin), null);
        },
        (err: unknown) => {
          const e = core.refused(err, headers, { apiVersion, token });
          const { status, headers: errorHeaders, body: text } = errorAnswer(e);
          answer(res, core, status, withCors(errorHeaders, headers.origin), text);
        },
      );
    });
    return true;
  };
}

function withCors(headers: Record<string, string>, origin: string | undefined): Record<string, string> {
  const cors = corsHeaders(origin);
  return cors ? { ...headers, ...cors } : headers;
}

function answer(res: ServerResponse, core: FastPushCore, status: number, headers: Record<string, string>, body: string | null): void {
  if (res.headersSent || res.destroyed) return;
  headers['content-length'] = String(body === null ? 0 : Buffer.byteLength(body));
  // As fastify answers while it shuts down: the connection ends with this answer.
  if (core.closing()) headers['connection'] = 'close';
  res.writeHead(status, headers);
  res.end(body ?? undefined);
  core.answered(status);
}
