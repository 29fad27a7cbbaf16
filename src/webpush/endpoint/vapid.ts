import type { IncomingHttpHeaders } from 'node:http';
import { importJWK, jwtVerify } from 'jose';
import { decodeVapidKey, vapidKeyHash } from '../protocol/endpoint-token.js';
import { ApiError } from '../protocol/errors.js';
import { parseParams } from './headers.js';
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
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The VAPID credentials of a request, null when it carries none, ApiError 401 when they are malformed. */
export function extractVapid(headers: IncomingHttpHeaders): VapidCredentials | null {
  const auth = header(headers, 'authorization');
  if (auth === undefined) return null;
  const space = auth.indexOf(' ');
  const scheme = (space > 0 ? auth.slice(0, space) : auth).toLowerCase();
  const rest = space > 0 ? auth.slice(space + 1).trim() : '';
  if (scheme === 'vapid') {
    const params = parseParams(rest);
    const token = params?.get('t');
    const key = params?.get('k');
    if (!token || !key) throw new ApiError('invalidAuthentication', 'VAPID header needs t= and k=');
    return { token, key };
  }
  if (scheme === 'webpush' || scheme === 'bearer') {
    const cryptoKey = header(headers, 'crypto-key');
    const key = cryptoKey ? parseParams(cryptoKey)?.get('p256ecdsa') : undefined;
    if (!rest || !key) throw new ApiError('invalidAuthentication', 'Missing p256ecdsa in the Crypto-Key header');
    return { token: rest, key };
  }
  throw new ApiError('invalidAuthentication', 'Unknown Authorization scheme');
}

export class VapidVerifier {
  private readonly cache = new BoundedMap<string, VerifiedVapid>(CACHE_LIMIT);
  hits = 0;
  misses = 0;

  constructor(
    /** Our origin: a token's `aud` must equal it (RFC 8292 §2). */
    private readonly audience: string,
    /** Seconds of clock difference tolerated on `exp`. */
    private readonly clockSkew: number,
  ) {}

  async verify(creds: VapidCredentials, now = Date.now() / 1000): Promise<VerifiedVapid> {
    const cacheKey = `${creds.key} ${creds.token}`;
    const cached = this.cache.get(cacheKey);
    if (cached) {
      if (cached.exp + this.clockSkew > now) {
        this.hits++;
        return cached;
      }
      this.cache.delete(cacheKey);
      throw new ApiError('invalidAuthentication', 'VAPID token expired');
    }
    this.misses++;
    const verified = await this.verifyUncached(creds, now);
    this.cache.set(cacheKey, verified);
    return verified;
  }

  private async verifyUncached(creds: VapidCredentials, now: number): Promise<VerifiedVapid> {
    const raw = decodeVapidKey(creds.key);
    if (!raw) throw new ApiError('invalidAuthentication', 'Invalid VAPID public key');
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
    } catch {
      throw new ApiError('invalidAuthentication', 'VAPID token invalid or expired');
    }
    const aud = payload.aud;
    if (typeof aud !== 'string' || normaliseOrigin(aud) !== this.audience) {
      throw new ApiError('invalidAuthentication', 'VAPID aud does not match this push service');
    }
    const exp = payload.exp!;
    if (exp > now + MAX_EXPIRY_SECONDS + this.clockSkew) {
      throw new ApiError('invalidAuthentication', 'VAPID exp is more than 24 hours ahead');
    }
    const sub = typeof payload.sub === 'string' ? payload.sub : null;
    if (sub !== null && !/^(mailto:|https:)/.test(sub)) {
      throw new ApiError('invalidAuthentication', 'VAPID sub must be a mailto: or https: URL');
    }
    return { keyHash: vapidKeyHash(raw), exp, sub };
  }
}

function normaliseOrigin(value: string): string | null {
  try {
    return new URL(value).origin;
  } catch {
    return null;
  }
}
