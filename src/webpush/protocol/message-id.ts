import type { MultiFernet } from './fernet.js';
import { isChannelId, isUaid } from './ids.js';

/**
 * Message ids: the `Location` of a created push message (RFC 8030 §5) and the `version` a client acks.
 * Opaque and authenticated, like autopush's: a Fernet token over "01:uaid:chid:topic" for a message that
 * carries a Topic (it names the slot the topic occupies) or "02:uaid:chid:seq" for any other.
 */

export type MessageKey =
  | { uaid: string; channelID: string; topic: string; seq?: undefined }
  | { uaid: string; channelID: string; seq: number; topic?: undefined };

export function makeMessageId(fernet: MultiFernet, key: MessageKey): string {
  const text =
    key.topic !== undefined ? `01:${key.uaid}:${key.channelID}:${key.topic}` : `02:${key.uaid}:${key.channelID}:${key.seq}`;
  return fernet.encryptToString(Buffer.from(text, 'utf8')).replace(/=+$/, '');
}

export function parseMessageId(fernet: MultiFernet, id: string): MessageKey | null {
  const plain = fernet.decryptString(id);
  if (!plain) return null;
  const [kind, uaid, channelID, rest, ...extra] = plain.toString('utf8').split(':');
  if (extra.length > 0 || !isUaid(uaid) || !isChannelId(channelID) || rest === undefined) return null;
  if (kind === '01') return { uaid, channelID, topic: rest };
  if (kind === '02' && /^\d{1,16}$/.test(rest)) return { uaid, channelID, seq: Number(rest) };
  return null;
}
