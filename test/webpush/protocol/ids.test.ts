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

  it('makes version 4 UUIDs as uaids, each different', () => {
    const a = newUaid();
    expect(isUaid(a)).toBe(true);
    expect(a[12]).toBe('4');
    expect(['8', '9', 'a', 'b']).toContain(a[16]);
    expect(newUaid()).not.toBe(a);
  });

  it('round-trips ids through their 16 bytes', () => {
    const chid = '01234567-89ab-cdef-0123-456789abcdef';
    expect(channelIdToBytes(chid)).toHaveLength(16);
    expect(bytesToChannelId(channelIdToBytes(chid))).toBe(chid);
    expect(uaidToBytes('0123456789abcdef0123456789abcdef').toString('hex')).toBe('0123456789abcdef0123456789abcdef');
  });
});
