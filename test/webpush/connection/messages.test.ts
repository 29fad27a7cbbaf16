// Unit tests of the client frame parser (src/webpush/connection/messages.ts): every frame a client can send
// becomes a typed message or a reason to close, with no socket involved.
import { describe, expect, it } from 'vitest';
import { parseClientMessage } from '../../../src/webpush/connection/messages.js';

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
