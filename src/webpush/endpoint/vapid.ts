import type { IncomingHttpHeaders } from 'node:http';
import { importJWK, jwtVerify } from 'jose';
import { decodeVapidKey, vapidKeyHash } from '../protocol/endpoint-token.js';
import { ApiError } from '../protocol/errors.js';
import { parseCryptoKeyHeader } from './headers.js';
import { BoundedMap } from '../../util/bounded-map.js';

/**
 * VAPID (RFC 8292): the application server's ES256 JWT and public key, from
 * `Authorization: vapid t=<jwt>, k=<key>` (§3) or the legacy `WebPush <jwt>` / `Bearer <jwt>` with
 * `Crypto-Key: p256ecdsa=<key>`. A verified token is cached until it expires, so a sender that reuses its
 * token (as every Web Push library does for a while) pays for the signature check once.
 */

/** RFC 8292 §2: a token must not expire more than 24 hours after it is presented. */
const MAX_EXPIRY_SECONDS = 24 * 60 * 60;
const CACHE_LIMIT = 10_000;

export interface VapidCredentials {
  token: string;
  key: string;
}

export interface VerifiedVapid {
  /** sha256 of the raw public key: compared with a v2 endpoint's bound key. */
  keyHash: Buffer;
  /** Expiry, seconds since the epoch. */
  exp: number;
  sub: string | null;
  /** What is wrong with `sub`, which autopush (and so Pushgate) counts but does not enforce; null when fine. */
  subProblem: 'missing' | 'empty' | 'bad_format' | null;
}

/**
 * A refused credential (401 errno 109). `reason` is autopush's metric label for it (VapidError::as_metric),
 * used for the auth-failure counter; the message never contains the token.
 */
export class VapidFailure extends ApiError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super('invalidAuthentication', message);
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The VAPID credentials of a request, null when it carries none. Parsed as autopush's VapidHeader::parse:
 * the scheme is the text before the first space (case-insensitive); spaces are removed from the rest. The
 * legacy `WebPush`/`Bearer` schemes take the key from `Crypto-Key: p256ecdsa=`; when that is missing
 * autopush answers 400 errno 110 (an encryption-header error), not 401, and so does Pushgate.
 */
export function extractVapid(headers: IncomingHttpHeaders): VapidCredentials | null {
  const auth = header(headers, 'authorization');
  if (auth === undefined) return null;
  const space = auth.indexOf(' ');
  if (space < 0) throw new VapidFailure(ALLOWED_SCHEMES.has(auth.toLowerCase()) ? 'missing_token' : 'unknown_scheme', 'Missing VAPID token');
  const scheme = auth.slice(0, space).toLowerCase();
  const data = auth.slice(space + 1).replaceAll(' ', '');
  if (!ALLOWED_SCHEMES.has(scheme)) throw new VapidFailure('unknown_scheme', 'Unknown auth scheme');
  if (scheme === 'vapid') {
    const params = new Map<string, string>();
    for (const item of data.split(',')) {
      const eq = item.indexOf('=');
      if (eq >= 0) params.set(item.slice(0, eq), item.slice(eq + 1));
    }
    const key = params.get('k');
    const token = params.get('t');
    if (key === undefined) throw new VapidFailure('missing_key', 'Missing VAPID public key');
    if (token === undefined) throw new VapidFailure('missing_token', 'Missing VAPID token');
    return { token, key };
  }
  const cryptoKey = header(headers, 'crypto-key');
  if (cryptoKey === undefined) throw new ApiError('invalidCryptoKeys', 'Missing Crypto-Key header');
  const items = parseCryptoKeyHeader(cryptoKey);
  if (!items) throw new ApiError('invalidCryptoKeys', 'Invalid Crypto-Key header');
  const key = items.get('p256ecdsa');
  if (key === undefined) throw new ApiError('invalidCryptoKeys', 'Missing p256ecdsa in Crypto-Key header');
  return { token: data, key };
}

const ALLOWED_SCHEMES = new Set(['bearer', 'webpush', 'vapid']);

export class VapidVerifier {
  private readonly cache = new BoundedMap<string, VerifiedVapid>(CACHE_LIMIT);
  /**
   * The same answers by the whole `Authorization: vapid t=…, k=…` header as it arrived (RFC 8292 §3): that header
   * alone carries both credentials, so a sender repeating it is answered without parsing it again (about 1 µs per
   * push, in-process micro-benchmark). The legacy schemes take their key from another header and are not kept here.
   */
  private readonly byHeader = new BoundedMap<string, VerifiedVapid>(CACHE_LIMIT);
  hits = 0;
  misses = 0;

  constructor(
    /** Our origin: a token's `aud` must equal it (RFC 8292 §2). */
    private readonly audience: string,
    /** Seconds of clock difference tolerated on `exp`. */
    private readonly clockSkew: number,
  ) {}

  async verify(creds: VapidCredentials, now = Date.now() / 1000): Promise<VerifiedVapid> {
    return this.cached(creds, now) ?? this.verifyAndCache(creds, now);
  }

  /**
   * The answer for a `vapid` Authorization header verified before (see `byHeader`), or undefined: then the header is
   * parsed (extractVapid) and looked up by its credentials. Never throws: an entry that expired is forgotten here,
   * and the credentials' own lookup refuses it with the expiry error.
   */
  cachedHeader(authorization: string, now = Date.now() / 1000): VerifiedVapid | undefined {
    const hit = this.lookup(this.byHeader, authorization, now);
    return hit === 'expired' ? undefined : hit;
  }

  /** Remembers a verified answer by the `vapid` Authorization header it came in (cachedHeader). */
  rememberHeader(authorization: string, verified: VerifiedVapid): void {
    if (/^vapid /i.test(authorization)) this.byHeader.set(authorization, verified);
  }

  /**
   * The answer for a token verified before, without a promise (the push endpoint's common case: senders reuse
   * their token); undefined when it must be verified (`verify`). A cached token that has expired since is refused.
   */
  cached(creds: VapidCredentials, now = Date.now() / 1000): VerifiedVapid | undefined {
    const hit = this.lookup(this.cache, `${creds.key} ${creds.token}`, now);
    if (hit === 'expired') throw new VapidFailure('expired', 'VAPID token expired');
    return hit;
  }

  /** Both caches' one rule: an entry answers while its token is valid (clock skew allowed); an expired one is forgotten. */
  private lookup(cache: BoundedMap<string, VerifiedVapid>, key: string, now: number): VerifiedVapid | 'expired' | undefined {
    const hit = cache.get(key);
    if (hit === undefined) return undefined;
    if (hit.exp + this.clockSkew > now) {
      this.hits++;
      return hit;
    }
    cache.delete(key);
    return 'expired';
  }

  private async verifyAndCache(creds: VapidCredentials, now: number): Promise<VerifiedVapid> {
    this.misses++;
    const verified = await this.verifyUncached(creds, now);
    this.cache.set(`${creds.key} ${creds.token}`, verified);
    return verified;
  }

  private async verifyUncached(creds: VapidCredentials, now: number): Promise<VerifiedVapid> {
    const raw = decodeVapidKey(creds.key);
    if (!raw) throw new VapidFailure('invalid_key', 'Invalid VAPID public key');
    let payload;
    try {
      const key = await importJWK(
        { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') },
        'ES256',
      );
      ({ payload } = await jwtVerify(creds.token, key, {
        algorithms: ['ES256'],
        clockTolerance: this.clockSkew,
        currentDate: new Date(now * 1000),
        requiredClaims: ['exp', 'aud'],
      }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw new VapidFailure('expired', 'VAPID token expired');
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw new VapidFailure('bad_signature', 'Invalid VAPID token signature');
      throw new VapidFailure('invalid_vapid', 'Invalid VAPID token');
    }
    const aud = payload.aud;
    if (typeof aud !== 'string' || normaliseOrigin(aud) !== this.audience) throw new VapidFailure('invalid_audience', 'Invalid VAPID audience');
    const exp = payload.exp!;
    // autopush compares exp with now + 24 h exactly (validate_vapid_jwt), without the clock leeway.
    if (exp > now + MAX_EXPIRY_SECONDS) throw new VapidFailure('future_expiration_token', 'The VAPID token expiration is too long');
    // RFC 8292 §2.1: sub is a SHOULD. autopush-rs 1.83 counts a missing or malformed sub but accepts the token.
    const sub = typeof payload.sub === 'string' ? payload.sub : null;
    const subProblem = sub === null ? 'missing' : sub === '' ? 'empty' : /^(mailto:|https:\/\/)/.test(sub) ? null : 'bad_format';
    return { keyHash: vapidKeyHash(raw), exp, sub, subProblem };
  }
}

function normaliseOrigin(value: string): string | null {
  try {
    return new URL(value).origin;
  } catch {
    return null;
  }
}
