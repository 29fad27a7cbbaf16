/**
 * The VAPID verifier's caches (src/webpush/endpoint/vapid.ts): a repeated `vapid` Authorization header is answered
 * without parsing it again, and nothing cached outlives its token's expiry (RFC 8292 §2).
 */
import webpush from 'web-push';
import { describe, expect, it } from 'vitest';
import { extractVapid, VapidFailure, VapidVerifier } from '../../../src/webpush/endpoint/vapid.js';

const AUDIENCE = 'https://push.example.com';
const SKEW = 60;

function vapidHeader(expiresAt: number): string {
  const keys = webpush.generateVAPIDKeys();
  return webpush.getVapidHeaders(AUDIENCE, 'mailto:ops@example.com', keys.publicKey, keys.privateKey, 'aes128gcm', expiresAt).Authorization;
}

describe('VapidVerifier caches', () => {
  it('answers a repeated vapid header from the header cache, with the same result as its credentials', async () => {
    const now = Math.floor(Date.now() / 1000);
    const auth = vapidHeader(now + 3600);
    const verifier = new VapidVerifier(AUDIENCE, SKEW);
    expect(verifier.cachedHeader(auth, now)).toBeUndefined();
    const creds = extractVapid({ authorization: auth })!;
    const verified = await verifier.verify(creds, now);
    verifier.rememberHeader(auth, verified);
    expect(verifier.cachedHeader(auth, now)).toBe(verified);
    expect(verifier.cached(creds, now)).toBe(verified);
    // Another spelling of the same credentials is not the same header: it is parsed and found by its credentials.
    expect(verifier.cachedHeader(auth.replace('vapid ', 'VAPID  '), now)).toBeUndefined();
  });

  it('forgets a header whose token has expired, and the credentials lookup refuses it as expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + 120;
    const auth = vapidHeader(exp);
    const verifier = new VapidVerifier(AUDIENCE, SKEW);
    const creds = extractVapid({ authorization: auth })!;
    verifier.rememberHeader(auth, await verifier.verify(creds, now));
    const later = exp + SKEW + 1;
    expect(verifier.cachedHeader(auth, later)).toBeUndefined();
    let err: unknown;
    try {
      verifier.cached(creds, later);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VapidFailure);
    expect((err as VapidFailure).reason).toBe('expired');
  });

  it('keeps no header of the legacy schemes, whose key travels in Crypto-Key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const auth = vapidHeader(now + 3600);
    const verifier = new VapidVerifier(AUDIENCE, SKEW);
    const verified = await verifier.verify(extractVapid({ authorization: auth })!, now);
    const legacy = `WebPush ${extractVapid({ authorization: auth })!.token}`;
    verifier.rememberHeader(legacy, verified);
    expect(verifier.cachedHeader(legacy, now)).toBeUndefined();
  });
});
