/**
 * The autopush websocket protocol's tables: message types, status and ack codes, and the close codes
 * Pushgate uses. One source of truth; the README documents the same table.
 */

export const SUBPROTOCOL = 'push-notification';

export const ClientMessageType = ['hello', 'register', 'unregister', 'ack', 'nack', 'ping', 'broadcast_subscribe'] as const;
export type ClientMessageType = (typeof ClientMessageType)[number];

/**
 * Close codes (RFC 6455 §7.4.1). autopush closes most failures with 1011; Pushgate names the cause more
 * precisely. Firefox treats every close alike: it reconnects with backoff.
 */
export const CloseCode = {
  /** The uaid was reset (too many stored messages) or a newer connection of the same uaid took over. */
  normal: 1000,
  /** The server is shutting down; reconnect (to another node). */
  goingAway: 1001,
  /** A binary frame: the protocol is JSON text only. */
  unsupportedData: 1003,
  /** A frame that is not JSON, not an object, or has an unknown messageType. */
  invalidPayload: 1007,
  /** A protocol rule broken: no hello in time, a message before hello, a second hello, pings too often. */
  policyViolation: 1008,
  /** A frame larger than the configured limit (sent by the ws library). */
  messageTooBig: 1009,
  /** An unexpected server failure. */
  internalError: 1011,
  /** Storage unavailable while identifying the client: try again later. */
  tryAgainLater: 1013,
} as const;

/**
 * `ack` update codes (autopush): delivered, decryption error, not delivered. Pushgate acts on none of them yet;
 * kept as the protocol's table (one source of truth) for the code that will.
 * @public
 */
export const AckCode = { delivered: 100, decryptionError: 101, notDelivered: 102 } as const;
/** `nack` codes (autopush): 301 decryption failure, 302 service worker error, 303 other. */
export const NACK_CODES = [301, 302, 303] as const;
/**
 * `unregister` codes: 200 user action, 201 quota exceeded, 202 permission revoked. Read by no code yet; kept as
 * the protocol's table (one source of truth).
 * @public
 */
export const UNREGISTER_CODES = [200, 201, 202] as const;
