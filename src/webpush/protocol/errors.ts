/**
 * The autopush error table: one place for every HTTP status + errno pair the push endpoints answer.
 * Senders act on these numbers (404/410 make them drop a subscription), so each failure must map to
 * exactly the entry autopush documents ("autopush Documentation", HTTP API, Error Codes).
 */

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

  constructor(readonly kind: ErrnoKind, message: string, retryAfter?: number) {
    super(message);
    this.status = Errno[kind].status;
    this.errno = Errno[kind].errno;
    this.retryAfter = retryAfter ?? (this.status === 503 ? RETRY_AFTER_SECONDS : undefined);
  }

  body(): ErrorBody {
    return errorBody(this.status, this.errno, this.message);
  }
}

/** Runs a storage call; storage trouble is never a 404/410 to a sender but 503 with Retry-After. */
export async function storageCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError('backOff', 'Storage temporarily unavailable');
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
