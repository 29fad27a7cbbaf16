// Unit tests of the client frame parser (src/webpush/connection/messages.ts): every frame a client can send
// becomes a typed message or a reason to close, with no socket involved.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { type ClientMessage, NotificationFrame, parseClientMessage } from '../../../src/webpush/connection/messages.js';
import { ClientMessageType } from '../../../src/webpush/protocol/websocket.js';
import { encodePayload, isBase64Url } from '../../../src/webpush/protocol/payload.js';
import { payload, testNotification } from '../../helpers/push.js';

describe('parseClientMessage', () => {
  it('refuses what is not a JSON object', () => {
    expect(parseClientMessage('{nope')).toEqual({ ok: false, reason: 'frame is not JSON' });
    for (const text of ['[]', 'null', '42', '"hello"']) expect(parseClientMessage(text)).toEqual({ ok: false, reason: 'frame is not a JSON object' });
  });

  it('reads an empty object as Firefox ping, and an explicit ping', () => {
    expect(parseClientMessage('{}')).toEqual({ ok: true, message: { messageType: 'ping' } });
    expect(parseClientMessage('{"messageType":"ping"}')).toEqual({ ok: true, message: { messageType: 'ping' } });
  });

  it('refuses unknown and non-string message types', () => {
    expect(parseClientMessage('{"messageType":"shutdown"}')).toEqual({ ok: false, reason: 'unknown messageType' });
    expect(parseClientMessage('{"messageType":7}')).toEqual({ ok: false, reason: 'unknown messageType' });
    expect(parseClientMessage('{"uaid":"x"}')).toEqual({ ok: false, reason: 'unknown messageType' });
    expect(parseClientMessage('{"messageType":"toString"}')).toEqual({ ok: false, reason: 'unknown messageType' });
  });

  it('reads hello, with use_webpush only when it is literally true', () => {
    expect(parseClientMessage('{"messageType":"hello","uaid":"0123456789ABCDEF0123456789abcdef","use_webpush":true}')).toEqual({
      ok: true,
      message: { messageType: 'hello', uaid: '0123456789abcdef0123456789abcdef', useWebpush: true, broadcasts: new Map() },
    });
    expect(parseClientMessage('{"messageType":"hello","uaid":"abc","use_webpush":"yes"}')).toEqual({
      ok: true,
      message: { messageType: 'hello', uaid: null, useWebpush: false, broadcasts: new Map() },
    });
  });

  it('passes register and unregister fields on for the handler to check', () => {
    expect(parseClientMessage('{"messageType":"register","channelID":"c","key":"k"}')).toEqual({
      ok: true,
      message: { messageType: 'register', channelID: 'c', key: 'k' },
    });
    expect(parseClientMessage('{"messageType":"unregister","channelID":"c","code":200}')).toEqual({
      ok: true,
      message: { messageType: 'unregister', channelID: 'c', code: 200 },
    });
  });

  it('reads ack updates, lower-casing channel ids and dropping a non-numeric code', () => {
    const text = JSON.stringify({
      messageType: 'ack',
      updates: [
        { channelID: 'ABC', version: 'v1', code: 100 },
        { channelID: 'def', version: 'v2', code: 'x' },
      ],
    });
    expect(parseClientMessage(text)).toEqual({
      ok: true,
      message: {
        messageType: 'ack',
        updates: [
          { channelID: 'abc', version: 'v1', code: 100 },
          { channelID: 'def', version: 'v2', code: null },
        ],
      },
    });
  });

  it('refuses malformed acks as a whole', () => {
    expect(parseClientMessage('{"messageType":"ack"}')).toEqual({ ok: false, reason: 'ack without updates' });
    expect(parseClientMessage('{"messageType":"ack","updates":{}}')).toEqual({ ok: false, reason: 'ack without updates' });
    expect(parseClientMessage('{"messageType":"ack","updates":[null]}')).toEqual({ ok: false, reason: 'malformed ack update' });
    expect(parseClientMessage('{"messageType":"ack","updates":[{"channelID":"a"}]}')).toEqual({ ok: false, reason: 'malformed ack update' });
    expect(parseClientMessage('{"messageType":"ack","updates":[{"channelID":"a","version":"v"},{"channelID":1,"version":"v"}]}')).toEqual({
      ok: false,
      reason: 'malformed ack update',
    });
  });

  it('reads nack with optional version and code', () => {
    expect(parseClientMessage('{"messageType":"nack","version":"v","code":301}')).toEqual({
      ok: true,
      message: { messageType: 'nack', version: 'v', code: 301 },
    });
    expect(parseClientMessage('{"messageType":"nack","version":5,"code":"x"}')).toEqual({
      ok: true,
      message: { messageType: 'nack', version: null, code: null },
    });
  });

  it('reads broadcast_subscribe', () => {
    expect(parseClientMessage('{"messageType":"broadcast_subscribe","broadcasts":{"remote-settings/monitor_changes":"v1"}}')).toEqual({
      ok: true,
      message: { messageType: 'broadcast_subscribe', broadcasts: new Map([['remote-settings/monitor_changes', 'v1']]) },
    });
  });
});

describe('NotificationFrame', () => {
  const uaid = 'a'.repeat(32);
  const cases = [
    // A 1 kB aes128gcm body, as the direct path carries it.
    testNotification({
      uaid,
      seq: 1,
      channelID: '5f6a6b0c-0000-4000-8000-000000000001',
      data: encodePayload(randomBytes(1024)),
      headers: { encoding: 'aes128gcm' },
    }),
    // No body: neither data nor headers, whatever headers the message holds.
    testNotification({ uaid, seq: 2, data: null, headers: { encoding: 'aes128gcm' } }),
    // A body without headers, and headers a sender wrote with characters JSON must escape.
    testNotification({ uaid, seq: 3, data: payload('ZGF0YQ'), headers: null }),
    testNotification({ uaid, seq: 4, ttl: 0, data: payload(''), headers: { encoding: 'aesgcm', encryption: 'salt="a\\b"\n\u2028é', crypto_key: 'dh=\u0000' } }),
    // Fields the frame escapes rather than trusts.
    testNotification({ uaid, seq: 5, channelID: 'quote"back\\slash', version: 'v"1', data: payload('-_09azAZ') }),
  ];

  it('writes exactly what JSON.stringify of the same frame writes, for bodies, no bodies and escaped headers', () => {
    for (const n of cases) {
      const frame = new NotificationFrame(n);
      expect(frame.text()).toBe(JSON.stringify(frame));
      const parsed = JSON.parse(frame.text()) as Record<string, unknown>;
      expect(parsed).toEqual({
        messageType: 'notification',
        channelID: n.channelID,
        version: n.version,
        ttl: n.ttl,
        ...(n.data !== null ? { data: n.data, ...(n.headers ? { headers: n.headers } : {}) } : {}),
      });
    }
  });

  it('takes only base64url as a body: the alphabet of RFC 4648 §5 without padding, nothing JSON would escape', () => {
    expect(isBase64Url(randomBytes(300).toString('base64url'))).toBe(true);
    for (const bad of ['a"b', 'a\\b', 'ab==', 'a+b/', 'é', 'a b', 'a\nb']) expect(isBase64Url(bad)).toBe(false);
    expect(() => payload('x"y')).toThrow(/not base64url/);
  });
});

/**
 * The parser and the frame writer over generated input (fast-check). A client may send any text: the parser never
 * throws, and what it accepts has the typed shape its handlers rely on. Any notification, whatever its strings
 * hold (quotes, controls, lone surrogates), is written as JSON.stringify writes it.
 */
describe('client frames and notification frames, for generated values', () => {
  /** Any text, with the characters JSON escapes (and lone surrogates, which a grapheme never holds) more often. */
  const text = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', '\ud800', '\udfff', 'a', 'é'), maxLength: 12 }),
  );
  const anyJson = fc.jsonValue({ maxDepth: 3 });
  /** An object with a known messageType and fields of any JSON type, under the names handlers read. */
  const chaotic = fc.record(
    {
      messageType: fc.constantFrom(...ClientMessageType, 'Hello', 'notification'),
      uaid: anyJson,
      use_webpush: anyJson,
      broadcasts: anyJson,
      channelID: fc.oneof(text, anyJson),
      key: anyJson,
      code: anyJson,
      version: fc.oneof(text, anyJson),
      updates: anyJson,
    },
    { requiredKeys: ['messageType'] },
  );
  /** Frames close to what Firefox sends: the right types mostly, ids in either case, up to 150 broadcasts. */
  const chid = fc.oneof(
    fc.uuid(),
    fc.uuid().map((u) => u.toUpperCase()),
    text,
  );
  const broadcasts = fc.dictionary(text, fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: anyJson }), { maxKeys: 150, size: 'max' });
  const plausible = fc.oneof(
    fc.record({
      messageType: fc.constant('hello'),
      uaid: fc.oneof(
        fc.uuid(),
        fc.uuid().map((u) => u.replaceAll('-', '').toUpperCase()),
        text,
      ),
      use_webpush: anyJson,
      broadcasts,
    }),
    fc.record({ messageType: fc.constant('register'), channelID: chid, key: fc.oneof(text, anyJson) }),
    fc.record({ messageType: fc.constant('unregister'), channelID: chid, code: fc.oneof(fc.integer(), anyJson) }),
    fc.record({
      messageType: fc.constant('ack'),
      updates: fc.array(fc.record({ channelID: chid, version: text, code: fc.oneof(fc.integer(), anyJson) }, { requiredKeys: ['channelID', 'version'] }), {
        maxLength: 5,
      }),
    }),
    fc.record({ messageType: fc.constant('nack'), version: fc.oneof(text, anyJson), code: fc.oneof(fc.integer(), anyJson) }),
    fc.record({ messageType: fc.constant('broadcast_subscribe'), broadcasts }),
  );

  /** What each handler takes for granted about a message the parser accepted. */
  const wellTyped = (m: ClientMessage) => {
    const isString = (v: unknown) => typeof v === 'string';
    const isCode = (v: unknown) => v === null || typeof v === 'number';
    const isBroadcasts = (b: ReadonlyMap<string, string>) => b.size <= 100 && [...b.values()].every(isString);
    switch (m.messageType) {
      case 'hello':
        return (m.uaid === null || /^[0-9a-f]{32}$/.test(m.uaid)) && typeof m.useWebpush === 'boolean' && isBroadcasts(m.broadcasts);
      case 'register':
        return isString(m.channelID) && (m.key === null || isString(m.key));
      case 'unregister':
        return isString(m.channelID) && isCode(m.code);
      case 'ack':
        return m.updates.every((u) => isString(u.channelID) && u.channelID === u.channelID.toLowerCase() && isString(u.version) && isCode(u.code));
      case 'nack':
        return (m.version === null || isString(m.version)) && isCode(m.code);
      case 'ping':
        return true;
      case 'broadcast_subscribe':
        return isBroadcasts(m.broadcasts);
    }
  };

  it('never throws, and whatever it accepts is well typed', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          text,
          anyJson.map((v) => JSON.stringify(v)),
          chaotic.map((v) => JSON.stringify(v)),
          plausible.map((v) => JSON.stringify(v)),
          plausible.map((v) => JSON.stringify(v)),
        ),
        (frame) => {
          const r = parseClientMessage(frame);
          if (r.ok) expect(wellTyped(r.message), JSON.stringify(r.message)).toBe(true);
          else expect(r.reason).toMatch(/./);
        },
      ),
    );
  });

  it('writes any notification exactly as JSON.stringify does', () => {
    const notification = fc.record({
      channelID: text,
      version: text,
      ttl: fc.oneof(fc.integer(), fc.double()),
      data: fc.option(
        fc.uint8Array({ maxLength: 64 }).map((b) => encodePayload(Buffer.from(b))),
        { nil: null },
      ),
      headers: fc.option(fc.dictionary(text, text, { maxKeys: 4 }), { nil: null }),
    });
    fc.assert(
      fc.property(notification, (n) => {
        const frame = new NotificationFrame(testNotification({ uaid: 'a'.repeat(32), seq: 1, ...n }));
        expect(frame.text()).toBe(JSON.stringify(frame));
      }),
    );
  });
});
