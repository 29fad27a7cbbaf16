import { StoreUnavailableError } from './types.js';

/**
 * Outage versus bug (issue 10 §3): each backend says which of its driver's failures mean "storage cannot serve
 * now" (connection, timeout, busy, I/O), and every method of the backend turns those, and only those, into the
 * one typed StoreUnavailableError. Anything else (a constraint violation, a TypeError, a bad query) propagates
 * unchanged, so callers answer it as a server error with its stack in the log instead of a 503 forever.
 * autopush-common's db/error.rs draws the same line.
 */
export type UnavailableTest = (err: unknown) => boolean;

/** Wraps every method of a backend's prototype (those added later included) with the classification. */
export function classifyStoreErrors(proto: object, isUnavailable: UnavailableTest, backend: string): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor') continue;
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    if (!desc || typeof desc.value !== 'function') continue;
    const method = desc.value as (...args: unknown[]) => unknown;
    const classify = (err: unknown): never => {
      if (err instanceof StoreUnavailableError || !isUnavailable(err)) throw err;
      throw new StoreUnavailableError(`${backend} unavailable: ${(err as Error).message}`, { cause: err });
    };
    Object.defineProperty(proto, name, {
      ...desc,
      value: function (this: unknown, ...args: unknown[]): unknown {
        let result: unknown;
        try {
          result = method.apply(this, args);
        } catch (err) {
          classify(err);
        }
        return result instanceof Promise ? result.catch(classify) : result;
      },
    });
  }
}

/**
 * SQLite result codes that mean the database cannot serve now rather than a wrong statement
 * (https://sqlite.org/rescode.html): locked or busy past busy_timeout, disk I/O, full disk, cannot open,
 * read-only file system, out of memory; and a handle already closed (during shutdown).
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|NOMEM|PROTOCOL|NOLFS)/;

export function sqliteUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && SQLITE_UNAVAILABLE.test(code)) return true;
  return err instanceof TypeError && /database connection is not open/.test(err.message);
}

/**
 * MongoDB failures that mean the deployment cannot serve now: network errors and timeouts, no server
 * selectable, a closed client, errors the driver labels retryable (the server's own "try again"), a write
 * concern that timed out (WriteConcernFailed, 64), and the server codes of elections and shutdowns.
 */
const MONGO_UNAVAILABLE_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoServerClosedError',
  'MongoWriteConcernError',
  'MongoPoolClearedError',
  'MongoOperationTimeoutError',
]);
// HostUnreachable, HostNotFound, WriteConcernFailed, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown,
// ExceededTimeLimit, NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
// NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary (mongo/base/error_codes.yml).
const MONGO_UNAVAILABLE_CODES = new Set([6, 7, 64, 89, 91, 189, 262, 10107, 11600, 11602, 13435, 13436]);

export function mongoUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (MONGO_UNAVAILABLE_NAMES.has(err.name)) return true;
  const e = err as Error & { code?: unknown; hasErrorLabel?: (l: string) => boolean };
  if (typeof e.code === 'number' && MONGO_UNAVAILABLE_CODES.has(e.code)) return true;
  return e.hasErrorLabel?.('RetryableWriteError') === true || e.hasErrorLabel?.('ResetPool') === true;
}
