// Unit tests of the RFC 8030 / RFC 8291 request header checks (src/webpush/endpoint/headers.ts): each fault
// gets the errno autopush answers, and the crypto headers reach the client stripped as autopush strips them.
import { describe, expect, it } from 'vitest';
import { MAX_TTL, parseNotificationHeaders, parseParams } from '../../../src/webpush/endpoint/headers.js';
import { ApiError } from '../../../src/webpush/protocol/errors.js';

function fault(headers: Record<string, string | string[]>, hasBody = false): { kind: string; errno: number } {
  try {
    parseNotificationHeaders(headers, hasBody);
  } catch (err) {
    if (err instanceof ApiError) return { kind: err.kind, errno: err.errno };
    throw err;
  }
  throw new Error('headers were accepted');
}

describe('parseParams', () => {
  it('splits on ; and , lower-cases keys and removes quotes', () => {
    expect([...parseParams('Salt="abc"; rs=4096, dh=xyz')!]).toEqual([
      ['salt', 'abc'],
      ['rs', '4096'],
      ['dh', 'xyz'],
    ]);
  });
  it('skips empty items and refuses an item without a name', () => {
    expect(parseParams(';;a=1;')?.get('a')).toBe('1');
    expect(parseParams('novalue')).toBeNull();
    expect(parseParams('=x')).toBeNull();
  });
});

describe('parseNotificationHeaders', () => {
  it('needs a TTL that is a non-negative integer (RFC 8030 §5.2), capped at 30 days', () => {
    expect(fault({})).toEqual({ kind: 'missingHeader', errno: 111 });
    expect(fault({ ttl: ' ' })).toEqual({ kind: 'missingHeader', errno: 111 });
    expect(fault({ ttl: '-1' })).toEqual({ kind: 'invalidTtl', errno: 112 });
    expect(fault({ ttl: '1.5' })).toEqual({ kind: 'invalidTtl', errno: 112 });
    expect(parseNotificationHeaders({ ttl: ' 60 ' }, false)).toEqual({ ttl: 60, topic: null, urgency: 'normal', cryptoHeaders: null });
    expect(parseNotificationHeaders({ ttl: '999999999999' }, false).ttl).toBe(MAX_TTL);
  });

  it('checks Topic (RFC 8030 §5.4): at most 32 URL-safe base64 characters', () => {
    expect(parseNotificationHeaders({ ttl: '0', topic: 'a-B_9' }, false).topic).toBe('a-B_9');
    expect(fault({ ttl: '0', topic: 'x'.repeat(33) })).toEqual({ kind: 'invalidTopic', errno: 113 });
    expect(fault({ ttl: '0', topic: 'a b' })).toEqual({ kind: 'invalidTopic', errno: 113 });
    expect(fault({ ttl: '0', topic: '' })).toEqual({ kind: 'invalidTopic', errno: 113 });
  });

  it('checks Urgency (RFC 8030 §5.3), case-insensitively', () => {
    expect(parseNotificationHeaders({ ttl: '0', urgency: 'HIGH' }, false).urgency).toBe('high');
    expect(parseNotificationHeaders({ ttl: '0', urgency: 'very-low' }, false).urgency).toBe('very-low');
    expect(fault({ ttl: '0', urgency: 'urgent' })).toEqual({ kind: 'invalidUrgency', errno: 114 });
  });

  it('joins a repeated header before checking it', () => {
    expect(fault({ ttl: ['1', '2'] })).toEqual({ kind: 'invalidTtl', errno: 112 });
  });

  it('accepts aes128gcm (RFC 8291) with the keys in the body only', () => {
    expect(parseNotificationHeaders({ ttl: '0', 'content-encoding': 'AES128GCM' }, true).cryptoHeaders).toEqual({ encoding: 'aes128gcm' });
    expect(
      parseNotificationHeaders({ ttl: '0', 'content-encoding': 'aes128gcm', encryption: 'rs=4096', 'crypto-key': 'p256ecdsa=abc' }, true).cryptoHeaders,
    ).toEqual({
      encoding: 'aes128gcm',
    });
    expect(fault({ ttl: '0', 'content-encoding': 'aes128gcm', encryption: 'salt=abc' }, true)).toEqual({ kind: 'invalidCryptoKeys', errno: 110 });
    expect(fault({ ttl: '0', 'content-encoding': 'aes128gcm', 'crypto-key': 'dh=abc' }, true)).toEqual({ kind: 'invalidCryptoKeys', errno: 110 });
  });

  it('accepts legacy aesgcm with salt and dh, stripped of quotes and padding', () => {
    const h = parseNotificationHeaders({ ttl: '0', 'content-encoding': 'aesgcm', encryption: 'salt="c2FsdA=="', 'crypto-key': 'dh=ZGg=;p256ecdsa=a2V5' }, true);
    expect(h.cryptoHeaders).toEqual({ encoding: 'aesgcm', encryption: 'salt=c2FsdA', crypto_key: 'dh=ZGg;p256ecdsa=a2V5' });
  });

  it('refuses aesgcm without its keys, with bad keys, or with Encryption-Key', () => {
    const base = { ttl: '0', 'content-encoding': 'aesgcm' };
    const cases: Record<string, string>[] = [
      {},
      { encryption: 'salt=abc' },
      { encryption: 'rs=1', 'crypto-key': 'dh=abc' },
      { encryption: 'salt=abc', 'crypto-key': 'p256ecdsa=abc' },
      { encryption: 'salt=a b', 'crypto-key': 'dh=abc' },
      { encryption: 'salt', 'crypto-key': 'dh=abc' },
      { encryption: 'salt=abc', 'crypto-key': 'dh=abc', 'encryption-key': 'x' },
    ];
    for (const extra of cases) {
      expect(fault({ ...base, ...extra }, true)).toEqual({ kind: 'invalidCryptoKeys', errno: 110 });
    }
  });

  it('refuses a body without or with an unknown Content-Encoding', () => {
    expect(fault({ ttl: '0' }, true)).toEqual({ kind: 'invalidCryptoKeys', errno: 110 });
    expect(fault({ ttl: '0', 'content-encoding': 'gzip' }, true)).toEqual({ kind: 'invalidCryptoKeys', errno: 110 });
  });
});
