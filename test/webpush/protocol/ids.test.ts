// Unit tests of the autopush identifiers (src/webpush/protocol/ids.ts): uaid and channelID shapes and their bytes.
import { describe, expect, it } from 'vitest';
import { bytesToChannelId, channelIdToBytes, isChannelId, isUaid, newUaid, uaidToBytes } from '../../../src/webpush/protocol/ids.js';

describe('ids', () => {
  it('accepts only 32 lower-case hex digits as a uaid', () => {
    expect(isUaid('0123456789abcdef0123456789abcdef')).toBe(true);
    expect(isUaid('0123456789ABCDEF0123456789ABCDEF')).toBe(false);
    expect(isUaid('0123456789abcdef0123456789abcde')).toBe(false);
    expect(isUaid(42)).toBe(false);
  });

  it('accepts only the lower-case dashed UUID as a channelID, as autopush-rs does', () => {
    expect(isChannelId('01234567-89ab-cdef-0123-456789abcdef')).toBe(true);
    expect(isChannelId('01234567-89AB-cdef-0123-456789abcdef')).toBe(false);
    expect(isChannelId('0123456789abcdef0123456789abcdef')).toBe(false);
    expect(isChannelId(null)).toBe(false);
  });

  it('makes time-ordered version 7 UUIDs as uaids (RFC 9562 §5.7), each different', () => {
    const now = Date.UTC(2026, 0, 1);
    const a = newUaid(now);
    expect(isUaid(a)).toBe(true);
    // The first 48 bits are the creation time in ms, then the version nibble, then the variant bits.
    expect(parseInt(a.slice(0, 12), 16)).toBe(now);
    expect(a[12]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(a[16]);
    expect(newUaid(now)).not.toBe(a);
    // A later uaid sorts after an earlier one, so new users' rows land together in the store's B-trees.
    expect(newUaid(now + 1) > a).toBe(true);
    expect(newUaid() > a).toBe(true);
  });

  it('keeps 74 random bits in each uaid: every one of them varies', () => {
    // Over 256 uaids each random bit is seen both 0 and 1 (the chance of a fair bit not doing so is 2^-255).
    const ids = Array.from({ length: 256 }, () => BigInt('0x' + newUaid(0)));
    // rand_b is bits 0–61, rand_a bits 64–75 (RFC 9562 §5.7, counting from the least significant bit).
    const mask = ((1n << 62n) - 1n) | (0xfffn << 64n);
    let seenOne = 0n;
    let seenZero = 0n;
    for (const id of ids) {
      seenOne |= id & mask;
      seenZero |= ~id & mask;
    }
    expect(seenOne).toBe(mask);
    expect(seenZero).toBe(mask);
    // The fixed bits: version 7 at bits 76–79, variant 0b10 at bits 62–63.
    for (const id of ids) {
      expect((id >> 76n) & 0xfn).toBe(7n);
      expect((id >> 62n) & 0x3n).toBe(2n);
    }
  });

  it('round-trips ids through their 16 bytes', () => {
    const chid = '01234567-89ab-cdef-0123-456789abcdef';
    expect(channelIdToBytes(chid)).toHaveLength(16);
    expect(bytesToChannelId(channelIdToBytes(chid))).toBe(chid);
    expect(uaidToBytes('0123456789abcdef0123456789abcdef').toString('hex')).toBe('0123456789abcdef0123456789abcdef');
  });
});
