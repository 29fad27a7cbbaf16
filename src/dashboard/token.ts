import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

/**
 * `pushgate vapid-token`: a dashboard token for a VAPID key file, signed like a push's VAPID token (RFC 8292 §2:
 * ES256 JWT with `aud` = the push service's origin and `exp` at most 24 hours ahead), printed as the
 * `Authorization` value the dashboard API and page accept.
 */

/** Dashboard tokens from the command line live 12 hours (RFC 8292 allows at most 24). */
export const TOKEN_HOURS = 12;

/**
 * Reads a key file: a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY"), the JSON of
 * `web-push generate-vapid-keys --json` ({publicKey, privateKey}), or Pushgate's data-dir `vapid_key`
 * (`<public>.<private>`, base64url).
 */
export function readVapidKey(text: string): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) return createPrivateKey(t);
  let pub: string | undefined;
  let priv: string | undefined;
  if (t.startsWith('{')) {
    const json = JSON.parse(t) as { publicKey?: unknown; privateKey?: unknown };
    if (typeof json.publicKey === 'string' && typeof json.privateKey === 'string') [pub, priv] = [json.publicKey, json.privateKey];
  } else if (/^[A-Za-z0-9_-]{87}\.[A-Za-z0-9_-]{43}$/.test(t)) {
    [pub, priv] = t.split('.') as [string, string];
  }
  if (!pub || !priv) throw new Error('expected a PEM private key, {"publicKey","privateKey"} JSON, or <public>.<private> base64url');
  const point = Buffer.from(pub, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('the public key is not an uncompressed P-256 point');
  return createPrivateKey({
    format: 'jwk',
    key: { kty: 'EC', crv: 'P-256', d: priv, x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
  });
}

/** `vapid t=<JWT>, k=<public key>` for `audience`, valid TOKEN_HOURS from `now` (seconds). */
export async function dashboardToken(key: KeyObject, audience: string, now = Math.floor(Date.now() / 1000)): Promise<string> {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new Error('the key is not a P-256 (ES256) key');
  const k = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]).toString('base64url');
  const t = await new SignJWT({ aud: new URL(audience).origin, exp: now + TOKEN_HOURS * 3600 }).setProtectedHeader({ typ: 'JWT', alg: 'ES256' }).sign(key);
  return `vapid t=${t}, k=${k}`;
}
