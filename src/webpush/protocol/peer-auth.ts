import { createHash, timingSafeEqual } from 'node:crypto';

/** The shared secret of the internal port, compared in constant time (over digests, so lengths never leak). */
export function secretMatches(presented: string | undefined, secret: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(`Bearer ${secret}`).digest();
  return timingSafeEqual(a, b);
}
