/**
 * The one storage contract of Pushgate. Every backend (src/store/sqlite.ts, later MongoDB) implements it
 * exactly; nothing outside src/store knows which one runs. All methods are async so that networked
 * backends fit the same shape.
 */
import type { Base64Url } from '../webpush/protocol/payload.js';

/** RFC 8030 §5.3 urgency levels, lowest first. */
export const URGENCIES = ['very-low', 'low', 'normal', 'high'] as const;
export type Urgency = (typeof URGENCIES)[number];

/** A user agent's record (autopush's "router record"). */
export interface UserRecord {
  uaid: string;
  /** `webpush` for websocket clients; a bridge type (fcm, apns, adm) for mobile registrations. */
  routerType: string;
  routerData: Record<string, unknown> | null;
  /** When the client last connected (ms since the epoch); conditional updates are decided on it. */
  connectedAt: number;
  /** The node holding the client's websocket, when one does (scale-out). */
  peerId: string | null;
}

export interface ChannelRecord {
  channelID: string;
  /** sha256 of the VAPID public key the channel was registered with, or null for an unrestricted channel. */
  keyHash: Buffer | null;
}

/** One push message on its way to a client, stored or not. */
export interface Notification {
  uaid: string;
  channelID: string;
  /** Per-uaid ordering key, increasing in order of acceptance. */
  seq: number;
  /** The message id (also the `version` the client acks). */
  version: string;
  /** Seconds, as applied (RFC 8030 §5.2). */
  ttl: number;
  /** ms since the epoch after which the message must never be delivered. */
  expiry: number;
  topic: string | null;
  urgency: Urgency;
  /** The encrypted body, base64url without padding (branded: webpush/protocol/payload.ts), or null for a push without data. */
  data: Base64Url | null;
  /** What the client needs to decrypt: encoding, and for aesgcm encryption and crypto_key. */
  headers: Record<string, string> | null;
  /** ms since the epoch when the message was accepted. */
  timestamp: number;
  /**
   * Developer dashboard (src/dashboard): the hex key hash of the opted-in VAPID key that signed it. Absent for every
   * other message, so untracked messages cost nothing; it travels through storage, the peer hop and the workers' mesh so the
   * process that sees the ack can record it.
   */
  dashboardKey?: string;
}

/** An XEP-0357 push registration of an XMPP account's device (src/xmpp). */
export interface PushRegistration {
  /** The pubsub node the XMPP server publishes to. */
  node: string;
  /** sha256 of the node's secret (hex), or null for a MongooseIM-style node published to with publish-options. */
  secretHash: string | null;
  /** The registering account's bare JID. */
  account: string;
  /** The device id; for a p2 group-chat registration, `device id NUL "muc" NUL muc JID` (src/xmpp/commands.ts). */
  deviceId: string;
  /** fcm | apns | adm | webpush, or `mongoose` for a node whose publishes name the device themselves. */
  kind: string;
  appId: string | null;
  /** Device token, or the Web Push endpoint. */
  token: string;
  /** Web Push subscription keys (RFC 8291): p256dh and auth, base64url. */
  keys: { p256dh: string; auth: string } | null;
  includeSender: boolean;
  includeBody: boolean;
  /** APNs: send background (content-available) pushes instead of alerts. */
  background: boolean;
  createdAt: number;
  /**
   * XMPP registrations (issue 12): the node's secret sealed with the gateway's crypto key, so re-registering
   * the same device can return the same secret (p2 and mod_push_appserver keep it). Absent on older records.
   */
  sealedSecret?: string | null;
}

export interface Store {
  /** Creates the user, or takes it over when the stored record is older (connectedAt). False when it lost the race. */
  addUser(user: UserRecord): Promise<boolean>;
  getUser(uaid: string): Promise<UserRecord | null>;
  /** Updates the record only when the stored connectedAt is not newer. False when it lost the race. */
  updateUser(user: UserRecord): Promise<boolean>;
  /**
   * Clears the user's route, only if the record still names this node and this connection (connectedAt):
   * a node clearing a stale route never erases the route of a newer connection elsewhere.
   */
  clearNodeId(uaid: string, connectedAt: number, peerId: string): Promise<boolean>;
  /** Removes the user with all its channels and messages. */
  removeUser(uaid: string): Promise<void>;

  addChannel(uaid: string, channel: ChannelRecord): Promise<void>;
  getChannel(uaid: string, channelID: string): Promise<ChannelRecord | null>;
  getChannels(uaid: string): Promise<ChannelRecord[]>;
  /** Removes the channel and its pending messages; false when it did not exist. */
  removeChannel(uaid: string, channelID: string): Promise<boolean>;

  /**
   * Stores a message; one with a topic replaces the pending message of the same topic on the same channel, unless
   * that one is newer (a greater seq: the repeat of a message its topic has since replaced is left out). Saving
   * a message again by its key (uaid, seq) leaves one copy, never an error: in a fleet or with workers the process
   * holding the client saves it, and the endpoint saves it again when that process did not answer (README
   * "Durability"). A different message (another version) that holds the key is never replaced (two processes of a
   * fleet stamped the same uaid's messages alike): both are kept, SQLite moving this one to the next free seq, MongoDB
   * keeping it beside the other under a version-tagged _id.
   */
  saveMessage(message: Notification): Promise<void>;
  /** Pending, unexpired messages with seq > afterSeq, in seq order. */
  fetchMessages(uaid: string, afterSeq: number, limit: number, now: number): Promise<Notification[]>;
  /** Counts pending messages, stopping at `cap` (the count is bounded so it never scans a large backlog). */
  countMessages(uaid: string, cap: number): Promise<number>;
  /** Removes the message of this version at this seq (or where a save moved it); another message there is left alone. */
  removeMessage(uaid: string, seq: number, version: string): Promise<boolean>;
  removeTopicMessage(uaid: string, channelID: string, topic: string): Promise<boolean>;
  /** Deletes expired messages; returns how many. */
  sweepExpired(now: number): Promise<number>;

  /**
   * Saves a push registration. An existing registration of the same account and device keeps its node:
   * the returned record is what is stored (its node may differ from the one given).
   */
  savePushRegistration(reg: PushRegistration): Promise<PushRegistration>;
  getPushRegistration(node: string): Promise<PushRegistration | null>;
  removePushRegistration(node: string): Promise<boolean>;

  /** Throws when the store cannot serve (used by /__heartbeat__). */
  health(): Promise<void>;
  close(): Promise<void>;

  // XMPP registrations by device and per-account caps (issue 9 item 5, issue 12).
  /** The registration of this account's device, if any. */
  findPushRegistration(account: string, deviceId: string): Promise<PushRegistration | null>;
  /** Counts the account's registrations, stopping at `cap`. */
  countPushRegistrations(account: string, cap: number): Promise<number>;
  // Megaphone broadcasts (src/webpush/broadcast): versions shared by every peer of a fleet.
  /** Sets a broadcast's version; the id is `broadcaster/channel`. True when the broadcast is new. */
  putBroadcast(id: string, version: string): Promise<boolean>;
  /** Every broadcast id with its current version. */
  getBroadcasts(): Promise<Record<string, string>>;
  // --- websocket door: bounded channel loading (issue 9 item 7) ---
  /**
   * At most `limit` of the uaid's channels with a channelID greater than `afterChannelID` ('' for the start), in
   * channelID order: a hello loads a uaid's channels page by page, yielding to the event loop between pages.
   */
  getChannelsPage(uaid: string, afterChannelID: string, limit: number): Promise<ChannelRecord[]>;
  // Developer dashboard (src/dashboard): opted-in VAPID keys and the metadata kept for their messages.
  /** Opts a key in (idempotent). `keyHash` is the hex sha256 of the raw VAPID public key. */
  addDashboardKey(keyHash: string, now: number): Promise<void>;
  /** Opts a key out and erases every record kept for it; false when it was not opted in. */
  removeDashboardKey(keyHash: string): Promise<boolean>;
  /** Every opted-in key hash (the trackers' in-memory set is refreshed from it). */
  listDashboardKeys(): Promise<string[]>;
  /**
   * Inserts or replaces records by (keyHash, ref). Records of keys that are not opted in are ignored, so a
   * late batch never brings back what an opt-out erased.
   */
  saveDashboardRecords(records: DashboardRecord[]): Promise<void>;
  /** A key's records, newest first (by ref, descending), filtered; `before` is an exclusive ref cursor. */
  listDashboardRecords(keyHash: string, query: DashboardQuery): Promise<DashboardRecord[]>;
  /** Keeps a key's newest `keep` records received after `since` (ms); returns how many were deleted. */
  pruneDashboardRecords(keyHash: string, keep: number, since: number): Promise<number>;
  // Developer dashboard, fleet events (src/dashboard): later events recorded by a process that did not accept the message.
  /**
   * Changes the outcome (and delivered_at) of the record with this message id, only while its outcome is one of
   * `from` (a late event never undoes a final one). Per mark, whether a record changed.
   */
  markDashboardRecords(marks: DashboardMark[]): Promise<boolean[]>;
  // Acked messages (src/webpush/connection/session.ts): deletes that nobody waits on for a result.
  /**
   * Deletes a delivered and acked message by its version at its seq (or where a save moved it), like removeMessage
   * without a result: a backend may send the deletes of one turn to its server together.
   */
  forgetMessage(message: Pick<Notification, 'uaid' | 'seq' | 'version' | 'channelID' | 'topic'>): Promise<void>;
}

/** A later event of a message, found by its message id (src/dashboard/tracker.ts). */
export interface DashboardMark {
  /** The key the record belongs to, or null for any key (a DELETE does not know the sender's key; ids are unique). */
  keyHash: string | null;
  /** The message id; null: the key's records of `replaced` (a Topic replacement, whose old id the new push does not know). */
  id: string | null;
  /** RFC 8030 §5.4: the key's records of this subscription hash and Topic received before `before` (ms) and unexpired then. */
  replaced?: { subscription: string; topic: string; before: number };
  from: string[];
  outcome: string;
  deliveredAt: number | null;
}

/** What the dashboard keeps about one message of an opted-in key: metadata only, never a payload or endpoint. */
export interface DashboardRecord {
  keyHash: string;
  /** Unique per key and sortable by time: zero-padded received_at, then the message id or a random id. */
  ref: string;
  /** The message id of the push's Location, or null for a rejected push. */
  id: string | null;
  receivedAt: number;
  ttl: number | null;
  topic: string | null;
  urgency: string | null;
  /** Payload bytes. */
  size: number;
  /** An opaque per-key hash of the subscription, or null when the endpoint token did not decrypt. */
  subscription: string | null;
  outcome: string;
  /** HTTP status and errno of a rejection. */
  status: number | null;
  errno: number | null;
  /** The provider's answer (bridged) or the error message (rejected). */
  detail: string | null;
  deliveredAt: number | null;
}

export interface DashboardQuery {
  limit: number;
  before?: string | undefined;
  outcome?: string | undefined;
  /** received_at bounds, ms since the epoch, inclusive. */
  since?: number | undefined;
  until?: number | undefined;
}

/** Thrown by a backend when it cannot reach its storage: callers answer 503, never 404/410. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
