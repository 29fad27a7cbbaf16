// Unit tests of the internal port's shared-secret check (src/webpush/protocol/peer-auth.ts).
import { describe, expect, it } from 'vitest';
import { secretMatches } from '../../../src/webpush/protocol/peer-auth.js';

describe('secretMatches', () => {
  it('accepts exactly "Bearer <secret>"', () => {
    expect(secretMatches('Bearer s3cret', 's3cret')).toBe(true);
    expect(secretMatches('Bearer s3cret ', 's3cret')).toBe(false);
    expect(secretMatches('s3cret', 's3cret')).toBe(false);
    expect(secretMatches('Bearer other', 's3cret')).toBe(false);
    expect(secretMatches(undefined, 's3cret')).toBe(false);
  });
});
