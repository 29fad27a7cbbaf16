// Unit tests of endpoint tokens and message ids (src/webpush/protocol/endpoint-token.ts, message-id.ts):
// what one key makes, the same key reads back; anything else (other key, other version, tampering) is null.
import fc from 'fast-check';
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

/**
 * The same promises over generated values (fast-check): every uaid, channel id, key hash, topic and ordering key
 * round-trips; a token or id with any one byte changed reads as null; and no string, however made, throws.
 */
describe('tokens and ids, for generated values', () => {
  const uaidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
  const chidArb = fc.uuid();
  const keyHashArb = fc.option(
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
    { nil: null },
  );
  /** RFC 8030 §5.4's topic alphabet, as the endpoint admits it (headers.ts). */
  const topicArb = fc.stringMatching(/^[0-9A-Za-z_-]{1,32}$/);
  const keyArb = fc.oneof(
    fc.record({ uaid: uaidArb, channelID: chidArb, topic: topicArb }),
    fc.record({ uaid: uaidArb, channelID: chidArb, seq: fc.maxSafeNat() }),
  );
  /** The token with one decoded byte changed, spelled canonically (an altered character could decode alike). */
  const tamper = (token: string, at: number, xor: number) => {
    const bytes = Buffer.from(token, 'base64url');
    bytes[at % bytes.length]! ^= xor;
    return bytes.toString('base64url');
  };

  it('round-trips every endpoint token, under its own API version only', () => {
    fc.assert(
      fc.property(uaidArb, chidArb, keyHashArb, (u, c, keyHash) => {
        const token = makeEndpointToken(fernet, u, c, keyHash);
        const [own, otherVersion] = keyHash ? (['v2', 'v1'] as const) : (['v1', 'v2'] as const);
        expect(parseEndpointToken(fernet, token, own)).toEqual({ uaid: u, channelID: c.toLowerCase(), keyHash });
        expect(parseEndpointToken(fernet, token, otherVersion)).toBeNull();
        expect(parseEndpointToken(other, token, own)).toBeNull();
      }),
    );
  });

  it('round-trips every message id', () => {
    fc.assert(
      fc.property(keyArb, (key) => {
        expect(parseMessageId(fernet, makeMessageId(fernet, key))).toEqual({ ...key, channelID: key.channelID.toLowerCase() });
      }),
    );
  });

  it('reads a token or id with any one byte changed as null', () => {
    fc.assert(
      fc.property(uaidArb, chidArb, keyHashArb, keyArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (u, c, keyHash, key, at, xor) => {
        const token = makeEndpointToken(fernet, u, c, keyHash);
        expect(parseEndpointToken(fernet, tamper(token, at, xor), keyHash ? 'v2' : 'v1')).toBeNull();
        expect(parseMessageId(fernet, tamper(makeMessageId(fernet, key), at, xor))).toBeNull();
      }),
    );
  });

  it('never throws on a string from the network, and reads none of them', () => {
    const anything = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='), maxLength: 400 }),
    );
    fc.assert(
      fc.property(anything, (text) => {
        expect(parseEndpointToken(fernet, text, 'v1')).toBeNull();
        expect(parseEndpointToken(fernet, text, 'v2')).toBeNull();
        expect(parseMessageId(fernet, text)).toBeNull();
      }),
    );
  });
});
