/**
 * The autopush error table: one place for every HTTP status + errno pair the push endpoints answer.
 * Senders act on these numbers (404/410 make them drop a subscription), so each failure must map to
 * exactly the entry autopush documents ("autopush Documentation", HTTP API, Error Codes).
 */
import { StoreUnavailableError } from '../../store/types.js';

export const ERROR_DOC_URL = 'http://autopush.readthedocs.io/en/latest/http.html#error-codes';

/** Reason phrases for the statuses we answer with (the `error` field of the body). */
const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export const Errno = {
  missingCryptoKeys: { status: 400, errno: 101 },
  invalidUrl: { status: 404, errno: 102 },
  expiredEndpoint: { status: 410, errno: 103 },
  payloadTooLarge: { status: 413, errno: 104 },
  unavailableEndpoint: { status: 410, errno: 105 },
  invalidSubscription: { status: 410, errno: 106 },
  invalidRouterType: { status: 400, errno: 108 },
  /** A device token the router refuses at registration (autopush: InvalidRouterToken). */
  invalidRouterToken: { status: 400, errno: 108 },
  /** A malformed request body (registration and MongoosePush APIs); autopush answers these without an errno. */
  invalidRequest: { status: 400, errno: 999 },
  invalidAuthentication: { status: 401, errno: 109 },
  invalidCryptoKeys: { status: 400, errno: 110 },
  missingHeader: { status: 400, errno: 111 },
  invalidTopic: { status: 400, errno: 113 },
  /** A negative TTL: autopush-rs answers its validator's code, 114 (its errno 112 is no longer sent). */
  negativeTtl: { status: 400, errno: 114 },
  rateLimited: { status: 429, errno: 201 },
  backOff: { status: 503, errno: 201 },
  retryNow: { status: 503, errno: 202 },
  bridgeMisconfigured: { status: 502, errno: 900 },
  bridgeAuth: { status: 502, errno: 901 },
  bridgeConnect: { status: 502, errno: 902 },
  bridgeTimeout: { status: 502, errno: 903 },
  unknown: { status: 500, errno: 999 },
} as const;

export type ErrnoKind = keyof typeof Errno;

/** Seconds a sender should wait after a 503 (autopush answers the same). */
export const RETRY_AFTER_SECONDS = 120;

/** An endpoint failure as data: the route's error handler turns it into the response. */
export class ApiError extends Error {
  readonly status: number;
  readonly errno: number;
  readonly retryAfter: number | undefined;

  constructor(
    readonly kind: ErrnoKind,
    message: string,
    retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = Errno[kind].status;
    this.errno = Errno[kind].errno;
    this.retryAfter = retryAfter ?? (this.status === 503 ? RETRY_AFTER_SECONDS : undefined);
  }

  body(): ErrorBody {
    return errorBody(this.status, this.errno, this.message);
  }
}

/**
 * Runs a storage call. An outage (the backend's StoreUnavailableError) is never a 404/410 to a sender but
 * 503 errno 201 with Retry-After; any other failure is a bug and propagates as itself, so the route's error
 * handler answers 500 errno 999 and logs its stack (issue 10 §3; autopush-common db/error.rs).
 */
export async function storageCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new ApiError('backOff', 'Storage temporarily unavailable', undefined, { cause: err });
    throw err;
  }
}

/**
 * Logs a storage outage once per burst instead of once per request: the first failure at error level, then
 * nothing until the store has been quiet for `quietMs`, when one line says how many requests were answered 503.
 */
export class StorageOutageLog {
  private burst: { started: number; last: number; count: number } | null = null;

  constructor(
    private readonly log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void },
    private readonly quietMs = 10_000,
  ) {}

  report(err: StoreUnavailableError, now = Date.now()): void {
    if (this.burst && now - this.burst.last < this.quietMs) {
      this.burst.count++;
      this.burst.last = now;
      return;
    }
    if (this.burst && this.burst.count > 1) {
      this.log.warn({ requests: this.burst.count, ms: this.burst.last - this.burst.started }, 'previous storage outage ended');
    }
    this.burst = { started: now, last: now, count: 1 };
    this.log.error({ err: err.message }, 'storage unavailable: answering 503 with Retry-After until it recovers (logged once per burst)');
  }
}

export interface ErrorBody {
  code: number;
  errno: number;
  error: string;
  message: string;
  more_info: string;
}

export function errorBody(status: number, errno: number, message: string): ErrorBody {
  return { code: status, errno, error: REASON[status] ?? 'Error', message, more_info: ERROR_DOC_URL };
}

/**
 * An ApiError as the HTTP answer every door sends (routes.ts sendError, and the push route's fast path): the
 * status, `Retry-After` when the error has one, a day's `Cache-Control` on 410 (autopush lets caches and senders
 * remember a gone endpoint), and the JSON body.
 */
export function errorAnswer(err: ApiError): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  if (err.status === 410) headers['cache-control'] = 'max-age=86400';
  headers['content-type'] = 'application/json; charset=utf-8';
  return { status: err.status, headers, body: JSON.stringify(err.body()) };
}

/** JSON schema of the error body, shared by every route's response declaration. */
export const errorBodySchema = {
  type: 'object',
  properties: {
    code: { type: 'integer' },
    errno: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    more_info: { type: 'string' },
  },
  required: ['code', 'errno', 'error', 'message', 'more_info'],
} as const;
