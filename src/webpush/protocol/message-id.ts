/**
 * Message ids: the `Location` of a created push message (RFC 8030 §5) and the `version` a client acks.
 * Byte-compatible with autopush-rs (autoendpoint extractors/message_id.rs): a Fernet token, with its `=`
 * padding as the `fernet` crate writes it, over `01:{uaid}:{chid}:{topic}` for a message with a Topic
 * (it names the slot the topic occupies) or `02:{uaid}:{chid}:{timestamp}` for any other, uaid and chid
 * as simple (undashed) UUIDs. So `DELETE /m/{id}` accepts ids autopush issued with the same CRYPTO_KEY, and
 * an autopush node reads ours. The `02` number is Pushgate's per-uaid ordering key (microseconds since the
 * epoch) where autopush writes its sort-key timestamp (milliseconds): both are an opaque u64 to the reader.
 */
import type { MultiFernet } from './fernet.js';
import { bytesToChannelId } from './ids.js';

export type MessageKey =
  { uaid: string; channelID: string; topic: string; seq?: undefined } | { uaid: string; channelID: string; seq: number; topic?: undefined };

export const TOPIC_PREFIX = '01';
export const STANDARD_PREFIX = '02';

export function messageIdPlaintext(key: MessageKey): string {
  const chid = key.channelID.replaceAll('-', '');
  return key.topic !== undefined ? `${TOPIC_PREFIX}:${key.uaid}:${chid}:${key.topic}` : `${STANDARD_PREFIX}:${key.uaid}:${chid}:${key.seq}`;
}

export function makeMessageId(fernet: MultiFernet, key: MessageKey): string {
  return fernet.encryptToString(Buffer.from(messageIdPlaintext(key), 'utf8'), true);
}

/** A message id as makeMessageId spells it, the `=` padding restored: the version stored with the message. */
export function canonicalMessageId(id: string): string {
  const bare = id.replace(/=+$/, '');
  return bare + '='.repeat((4 - (bare.length % 4)) % 4);
}

/**
 * A UUID as Rust's `Uuid::parse_str` reads it in the forms senders meet (simple or dashed, any case),
 * as 32 lower-case hex digits; null otherwise.
 */
function uuidHex(text: string): string | null {
  const hex = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text) ? text.replaceAll('-', '') : text;
  return /^[0-9a-fA-F]{32}$/.test(hex) ? hex.toLowerCase() : null;
}

export function parseMessageId(fernet: MultiFernet, id: string): MessageKey | null {
  const plain = fernet.decryptString(id);
  if (!plain) return null;
  const segments = plain.toString('utf8').split(':');
  if (segments.length !== 4) return null;
  const [kind, uaidText, chidText, rest] = segments as [string, string, string, string];
  const uaid = uuidHex(uaidText);
  const chid = uuidHex(chidText);
  if (!uaid || !chid) return null;
  const channelID = bytesToChannelId(Buffer.from(chid, 'hex'));
  if (kind === TOPIC_PREFIX) return { uaid, channelID, topic: rest };
  // A u64 as autopush parses it; beyond 2^53 it cannot name one of our ordering keys anyway.
  if (kind === STANDARD_PREFIX && /^\d{1,20}$/.test(rest) && Number.isSafeInteger(Number(rest))) return { uaid, channelID, seq: Number(rest) };
  return null;
}
