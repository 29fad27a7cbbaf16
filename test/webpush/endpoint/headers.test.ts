/**
 * The push request header rules as pure functions (no socket): autopush-rs 1.83's
 * extractors/notification_headers.rs and headers/crypto_key.rs, case by case.
 */
import { describe, expect, it } from 'vitest';
import { MAX_TTL, parseCryptoKeyHeader, parseNotificationHeaders } from '../../../src/webpush/endpoint/headers.js';
import { type ApiError } from '../../../src/webpush/protocol/errors.js';

function errno(headers: Record<string, string>, hasBody = false): number | null {
  try {
    parseNotificationHeaders(headers, hasBody);
    return null;
  } catch (err) {
    return (err as ApiError).errno;
  }
}

describe('notification headers as autopush reads them', () => {
  it.each([
    ['60', 60],
    ['+60', 60],
    ['0', 0],
    [String(MAX_TTL + 1), MAX_TTL],
    ['9223372036854775807', MAX_TTL],
  ])('TTL %s is %i', (ttl, expected) => {
    expect(parseNotificationHeaders({ ttl }, false).ttl).toBe(expected);
  });

  it.each([
    [{}, 111],
    [{ ttl: '' }, 111],
    [{ ttl: '1.5' }, 111],
    [{ ttl: '9223372036854775808' }, 111],
    [{ ttl: '-1' }, 114],
    [{ ttl: '60', topic: 'a'.repeat(33) }, 113],
    [{ ttl: '60', topic: 'a b' }, 113],
    [{ ttl: '60', topic: '' }, 113],
    [{ ttl: '60', topic: 'a=b' }, 113],
  ])('%j is errno %i', (headers, expected) => {
    expect(errno(headers)).toBe(expected);
  });

  it('accepts a 32-character Topic with trailing padding, and keeps it as sent', () => {
    expect(parseNotificationHeaders({ ttl: '1', topic: 'dGVzdA==' }, false).topic).toBe('dGVzdA==');
  });

  it('treats an unknown Urgency as normal and says so', () => {
    expect(parseNotificationHeaders({ ttl: '1', urgency: 'HIGH' }, false)).toMatchObject({ urgency: 'high', unknownUrgency: false });
    expect(parseNotificationHeaders({ ttl: '1', urgency: 'urgent' }, false)).toMatchObject({ urgency: 'normal', unknownUrgency: true });
  });

  it('checks crypto headers only when there is a body, before the TTL range', () => {
    expect(errno({ ttl: '-1', 'content-encoding': 'bogus' }, false)).toBe(114);
    expect(errno({ ttl: '-1', 'content-encoding': 'bogus' }, true)).toBe(110);
    expect(parseNotificationHeaders({ ttl: '1', encryption: 'garbage' }, false).cryptoHeaders).toBeNull();
  });

  it("passes the crypto headers on with quotes and padding stripped by autopush's rule", () => {
    const h = parseNotificationHeaders(
      { ttl: '1', 'content-encoding': 'aesgcm', encryption: 'salt="YWJjZA=="; rs=4096', 'crypto-key': 'dh="ZGg=",p256ecdsa=a+b=' },
      true,
    );
    expect(h.cryptoHeaders).toEqual({ encoding: 'aesgcm', encryption: 'salt=YWJjZA; rs=4096', crypto_key: 'dh=ZGg,p256ecdsa=a+b' });
  });

  it('refuses aes128gcm with a salt or dh, and unparsable headers, with errno 110', () => {
    expect(errno({ ttl: '1', 'content-encoding': 'aes128gcm', encryption: 'salt=abc' }, true)).toBe(110);
    expect(errno({ ttl: '1', 'content-encoding': 'aes128gcm', 'crypto-key': 'keyid=a;dh=b' }, true)).toBe(110);
    expect(errno({ ttl: '1', 'content-encoding': 'aes128gcm', 'crypto-key': 'p256ecdsa=abc;' }, true)).toBe(110);
    expect(errno({ ttl: '1', 'content-encoding': 'aes128gcm', 'crypto-key': 'p256ecdsa=abc' }, true)).toBeNull();
    expect(errno({ ttl: '1', 'content-encoding': 'aesgcm', encryption: 'salt=a b' }, true)).toBe(110);
  });
});

describe('Crypto-Key header parsing (autopush CryptoKeyHeader)', () => {
  it('reads sections and items, the first value of a key winning', () => {
    const h = parseCryptoKeyHeader('keyid="p256dh";dh="abc", p256ecdsa="def";dh=zzz');
    expect(h?.get('dh')).toBe('abc');
    expect(h?.get('p256ecdsa')).toBe('def');
    expect(h?.get('keyid')).toBe('p256dh');
  });

  it('is invalid when any item lacks "=", and keys are case-sensitive', () => {
    expect(parseCryptoKeyHeader('dh=abc;')).toBeNull();
    expect(parseCryptoKeyHeader('dh')).toBeNull();
    expect(parseCryptoKeyHeader('DH=abc')?.get('dh')).toBeUndefined();
  });
});
