import { ClientMessageType } from '../protocol/websocket.js';

/**
 * Parsing of client frames into typed messages: everything a handler receives is already checked
 * for shape, so the session's handlers never look at raw JSON.
 */

export type ClientMessage =
  | { messageType: 'hello'; uaid: unknown; useWebpush: boolean }
  | { messageType: 'register'; channelID: unknown; key: unknown }
  | { messageType: 'unregister'; channelID: unknown; code: unknown }
  | { messageType: 'ack'; updates: { channelID: string; version: string; code: number | null }[] }
  | { messageType: 'nack'; version: string | null; code: number | null }
  | { messageType: 'ping' }
  | { messageType: 'broadcast_subscribe' };

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; reason: string };

const KNOWN = new Set<string>(ClientMessageType);

export function parseClientMessage(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'frame is not a JSON object' };
  const obj = value as Record<string, unknown>;
  const type = obj['messageType'];
  // Firefox pings with an empty object; autopush also accepts an explicit "ping".
  if (type === undefined && Object.keys(obj).length === 0) return { ok: true, message: { messageType: 'ping' } };
  if (typeof type !== 'string' || !KNOWN.has(type)) return { ok: false, reason: 'unknown messageType' };
  switch (type as ClientMessageType) {
    case 'hello':
      return { ok: true, message: { messageType: 'hello', uaid: obj['uaid'], useWebpush: obj['use_webpush'] === true } };
    case 'register':
      return { ok: true, message: { messageType: 'register', channelID: obj['channelID'], key: obj['key'] } };
    case 'unregister':
      return { ok: true, message: { messageType: 'unregister', channelID: obj['channelID'], code: obj['code'] } };
    case 'ack': {
      const updates = obj['updates'];
      if (!Array.isArray(updates)) return { ok: false, reason: 'ack without updates' };
      const parsed = [];
      for (const u of updates) {
        if (typeof u !== 'object' || u === null) return { ok: false, reason: 'malformed ack update' };
        const { channelID, version, code } = u as Record<string, unknown>;
        if (typeof channelID !== 'string' || typeof version !== 'string') return { ok: false, reason: 'malformed ack update' };
        parsed.push({ channelID: channelID.toLowerCase(), version, code: typeof code === 'number' ? code : null });
      }
      return { ok: true, message: { messageType: 'ack', updates: parsed } };
    }
    case 'nack': {
      const version = obj['version'];
      const code = obj['code'];
      return {
        ok: true,
        message: { messageType: 'nack', version: typeof version === 'string' ? version : null, code: typeof code === 'number' ? code : null },
      };
    }
    case 'ping':
      return { ok: true, message: { messageType: 'ping' } };
    case 'broadcast_subscribe':
      return { ok: true, message: { messageType: 'broadcast_subscribe' } };
  }
}
