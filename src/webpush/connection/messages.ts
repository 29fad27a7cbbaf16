import { ClientMessageType } from '../protocol/websocket.js';
import { normaliseUaid } from '../protocol/ids.js';
import type { Base64Url } from '../protocol/payload.js';
import type { Notification } from '../../store/index.js';

/**
 * Parsing of client frames into typed messages (autopush-rs: autoconnect-common's protocol.rs, a tagged enum):
 * every field a handler receives is already checked and typed, so the session never looks at raw JSON and no
 * `unknown` reaches a handler. Fields a handler answers with a status (a malformed channelID, a bad key) keep
 * the client's string so the reply can echo it.
 */

/** Broadcast id → version, as the client sent it (non-string versions are dropped). */
export type BroadcastVersions = ReadonlyMap<string, string>;

export type ClientMessage =
  /** `uaid` is normalised to 32 lower-case hex digits, or null when absent or not a UUID (a fresh uaid is issued). */
  | { messageType: 'hello'; uaid: string | null; useWebpush: boolean; broadcasts: BroadcastVersions }
  /** `channelID` is '' when the client sent no string; `key` null when absent, '' when not a string (refused as bad key). */
  | { messageType: 'register'; channelID: string; key: string | null }
  | { messageType: 'unregister'; channelID: string; code: number | null }
  | { messageType: 'ack'; updates: { channelID: string; version: string; code: number | null }[] }
  | { messageType: 'nack'; version: string | null; code: number | null }
  | { messageType: 'ping' }
  | { messageType: 'broadcast_subscribe'; broadcasts: BroadcastVersions };

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; reason: string };

const KNOWN = new Set<string>(ClientMessageType);
/** At most this many broadcast ids are read from one frame (Firefox sends a handful). */
const MAX_BROADCASTS = 100;

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
    case 'hello': {
      const broadcasts = broadcastMap(obj['broadcasts']);
      if (!broadcasts) return { ok: false, reason: 'malformed broadcasts' };
      return { ok: true, message: { messageType: 'hello', uaid: normaliseUaid(obj['uaid']), useWebpush: obj['use_webpush'] === true, broadcasts } };
    }
    case 'register': {
      const key = obj['key'];
      return {
        ok: true,
        message: {
          messageType: 'register',
          channelID: str(obj['channelID']),
          key: key === undefined || key === null ? null : typeof key === 'string' ? key : '',
        },
      };
    }
    case 'unregister': {
      const code = obj['code'];
      return { ok: true, message: { messageType: 'unregister', channelID: str(obj['channelID']), code: typeof code === 'number' ? code : null } };
    }
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
    case 'broadcast_subscribe': {
      const broadcasts = broadcastMap(obj['broadcasts']);
      if (!broadcasts) return { ok: false, reason: 'malformed broadcasts' };
      return { ok: true, message: { messageType: 'broadcast_subscribe', broadcasts } };
    }
  }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** autopush reads `broadcasts` as a map of strings; absent is empty. Null when it is not an object. */
function broadcastMap(v: unknown): Map<string, string> | null {
  const out = new Map<string, string>();
  if (v === undefined || v === null) return out;
  if (typeof v !== 'object' || Array.isArray(v)) return null;
  for (const [id, version] of Object.entries(v as Record<string, unknown>)) {
    if (out.size >= MAX_BROADCASTS) break;
    if (typeof version === 'string') out.set(id, version);
  }
  return out;
}

/**
 * The server's `notification` frame (autopush-rs autoconnect-common protocol.rs ServerMessage::Notification): the
 * keys and order JSON.stringify of this object gives, written by `text()` instead. Its `data` is base64url by type
 * (protocol/payload.ts), so it goes into the frame as it is: JSON.stringify spends most of a 1 kB frame's
 * serialisation scanning that string for characters to escape (1.3 against 4.2 µs per frame in a micro-benchmark,
 * docs/benchmarks.md "Per-core speed"). Every other string is still escaped by JSON.stringify.
 */
export class NotificationFrame {
  readonly messageType = 'notification';
  readonly channelID: string;
  readonly version: string;
  readonly ttl: number;
  /** autopush sends data and its headers only for a push with a body (undefined keys are left out of the JSON). */
  readonly data: Base64Url | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(n: Notification) {
    this.channelID = n.channelID;
    this.version = n.version;
    this.ttl = n.ttl;
    this.data = n.data ?? undefined;
    this.headers = n.data !== null ? (n.headers ?? undefined) : undefined;
  }

  /** The frame's JSON text: exactly JSON.stringify(this), without the escape scan of `data`. */
  text(): string {
    let s = `{"messageType":"notification","channelID":${JSON.stringify(this.channelID)},"version":${JSON.stringify(this.version)},"ttl":${JSON.stringify(this.ttl)}`;
    if (this.data !== undefined) {
      s += `,"data":"${this.data}"`;
      if (this.headers !== undefined) s += `,"headers":${JSON.stringify(this.headers)}`;
    }
    return s + '}';
  }
}
