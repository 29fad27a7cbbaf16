// Unit tests of endpoint tokens and message ids (src/webpush/protocol/endpoint-token.ts, message-id.ts):
// what one key makes, the same key reads back; anything else (other key, other version, tampering) is null.
import { describe, expect, it } from 'vitest';
import {
  decodeVapidKey,
  generateVapidKeys,
  makeEndpoint,
  makeEndpointToken,
  parseEndpointToken,
  vapidKeyHash,
  vapidKeyHashOf,
} from '../../../src/webpush/protocol/endpoint-token.js';
import { FernetKey, MultiFernet } from '../../../src/webpush/protocol/fernet.js';
import { makeMessageId, parseMessageId } from '../../../src/webpush/protocol/message-id.js';

const fernet = new MultiFernet([FernetKey.generate()]);
const other = new MultiFernet([FernetKey.generate()]);
const uaid = '0123456789abcdef0123456789abcdef';
const chid = '01234567-89ab-cdef-0123-456789abcdef';

describe('VAPID keys', () => {
  it('decodes a raw uncompressed P-256 point, padding optional', () => {
    const { publicKey, privateKey } = generateVapidKeys();
    expect(decodeVapidKey(publicKey)).toHaveLength(65);
    expect(decodeVapidKey(` ${publicKey}= `)?.[0]).toBe(4);
    expect(Buffer.from(privateKey, 'base64url')).toHaveLength(32);
  });
  it('refuses other alphabets, lengths and point forms', () => {
    expect(decodeVapidKey('not base64!')).toBeNull();
    expect(decodeVapidKey(Buffer.alloc(64, 4).toString('base64url'))).toBeNull();
    expect(decodeVapidKey(Buffer.alloc(65, 2).toString('base64url'))).toBeNull();
  });
});

describe('endpoint tokens', () => {
  it('round-trips a v1 token', () => {
    const token = makeEndpointToken(fernet, uaid, chid, null);
    expect(token).not.toMatch(/=/);
    expect(parseEndpointToken(fernet, token, 'v1')).toEqual({ uaid, channelID: chid, keyHash: null });
    expect(parseEndpointToken(fernet, token, 'v2')).toBeNull();
  });

  it('round-trips a v2 token bound to a VAPID key (RFC 8292 §4.2)', () => {
    const keyHash = vapidKeyHash(decodeVapidKey(generateVapidKeys().publicKey)!);
    const endpoint = makeEndpoint('https://push.example', fernet, uaid, chid, keyHash);
    const token = endpoint.split('/').pop()!;
    expect(endpoint).toBe(`https://push.example/wpush/v2/${token}`);
    expect(parseEndpointToken(fernet, token, 'v2')?.keyHash?.equals(keyHash)).toBe(true);
    expect(parseEndpointToken(fernet, token, 'v1')).toBeNull();
  });

  it('refuses a token of another key or a tampered one', () => {
    const token = makeEndpointToken(fernet, uaid, chid, null);
    expect(parseEndpointToken(other, token, 'v1')).toBeNull();
    expect(parseEndpointToken(fernet, token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA'), 'v1')).toBeNull();
    expect(parseEndpointToken(fernet, '', 'v1')).toBeNull();
  });

  it('refuses ids it cannot encode instead of making a short token', () => {
    expect(() => makeEndpointToken(fernet, 'not a uaid', chid, null)).toThrow();
    expect(() => makeEndpointToken(fernet, uaid.slice(0, 30) + 'zz', chid, null)).toThrow();
    expect(() => makeEndpointToken(fernet, uaid, chid.replaceAll('-', ''), null)).toThrow();
    expect(() => makeEndpointToken(fernet, uaid, chid.slice(0, 35) + 'x', null)).toThrow();
  });
});

describe('message ids', () => {
  it('round-trips topic and sequence message ids', () => {
    expect(parseMessageId(fernet, makeMessageId(fernet, { uaid, channelID: chid, topic: 'news' }))).toEqual({ uaid, channelID: chid, topic: 'news' });
    expect(parseMessageId(fernet, makeMessageId(fernet, { uaid, channelID: chid, seq: 42 }))).toEqual({ uaid, channelID: chid, seq: 42 });
  });

  it('refuses ids of another key and well-signed ids of a wrong shape', () => {
    expect(parseMessageId(other, makeMessageId(fernet, { uaid, channelID: chid, seq: 1 }))).toBeNull();
    const sign = (text: string) => fernet.encryptToString(Buffer.from(text)).replace(/=+$/, '');
    expect(parseMessageId(fernet, sign(`03:${uaid}:${chid}:1`))).toBeNull();
    expect(parseMessageId(fernet, sign(`02:${uaid}:${chid}:x`))).toBeNull();
    expect(parseMessageId(fernet, sign(`01:${uaid}:${chid}:a:b`))).toBeNull();
    expect(parseMessageId(fernet, sign(`01:nope:${chid}:a`))).toBeNull();
    expect(parseMessageId(fernet, sign(`01:${uaid}:${chid}`))).toBeNull();
  });
});

describe("vapidKeyHashOf (the register path's cached key hash)", () => {
  it('answers what decoding and hashing answer, the first time and from its cache, and null for a bad key', () => {
    for (let i = 0; i < 3; i++) {
      const { publicKey } = generateVapidKeys();
      const expected = vapidKeyHash(decodeVapidKey(publicKey)!);
      expect(vapidKeyHashOf(publicKey)).toEqual(expected);
      expect(vapidKeyHashOf(publicKey)).toEqual(expected);
    }
    expect(vapidKeyHashOf('not base64!')).toBeNull();
    expect(vapidKeyHashOf('not base64!')).toBeNull();
  });

  it('stays bounded and correct when many distinct keys pass (hostile clients)', () => {
    const { publicKey } = generateVapidKeys();
    const expected = vapidKeyHash(decodeVapidKey(publicKey)!);
    // Distinct spellings that are all invalid keys: more than the cache holds, so it empties at least once.
    for (let i = 0; i < 3000; i++) expect(vapidKeyHashOf(`bad${i}`)).toBeNull();
    expect(vapidKeyHashOf(publicKey)).toEqual(expected);
  });
});
