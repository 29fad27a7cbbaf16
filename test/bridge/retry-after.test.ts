// Retry-After as the providers send it (src/bridge/types.ts parseRetryAfter): delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3), possibly repeated; anything else is no advice at all.
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/bridge/types.js';

describe('parseRetryAfter', () => {
  it('reads delay-seconds, the first of repeated headers, and nothing from an absent or empty one', () => {
    expect(parseRetryAfter(' 120 ')).toBe(120);
    expect(parseRetryAfter(['30', '60'])).toBe(30);
    expect(parseRetryAfter(undefined)).toBeNull();
    expect(parseRetryAfter('')).toBeNull();
  });

  it('turns an HTTP-date into seconds from now, never negative, and refuses what is not a date', () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const seconds = parseRetryAfter(inAMinute)!;
    // toUTCString drops the milliseconds: between 59 and 60 seconds remain.
    expect(seconds).toBeGreaterThanOrEqual(59);
    expect(seconds).toBeLessThanOrEqual(60);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(0);
    expect(parseRetryAfter('soon')).toBeNull();
    // Neither delay-seconds nor a date, although Date.parse would read each as a year.
    expect(parseRetryAfter('-5')).toBeNull();
    expect(parseRetryAfter('1.5')).toBeNull();
    expect(parseRetryAfter('2026-11-23')).toBeNull();
    // The obsolete forms a recipient must still accept (RFC 9110 §5.6.7).
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(0);
    expect(parseRetryAfter('Sun Nov  6 08:49:37 1994')).toBe(0);
  });
});
