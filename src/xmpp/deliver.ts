import type { BridgeMessage, BridgeResult, Bridges } from '../bridge/index.js';
import type { PushRegistration } from '../store/index.js';
import { p2WakeData } from './commands.js';
import type { Summary } from './summary.js';

/**
 * Turning an XEP-0357 publish into a push: what each kind of registration receives, and how the provider's
 * answer becomes the XMPP reply. Only what the registration opted in to (sender, body) leaves Pushgate.
 */

export type DeliveryOutcome =
  | { ok: true }
  /** The device is gone (the provider said so): the registration is removed, the XMPP server told cancel. */
  | { ok: false; kind: 'dead' }
  /** Anything transient or on our side: the XMPP server is told wait, so it keeps the registration. */
  | { ok: false; kind: 'wait'; condition: 'resource-constraint' | 'internal-server-error' | 'remote-server-timeout' };

/** A wake-up should not outlive the conversation it announces. */
const PUSH_TTL = 24 * 60 * 60;
const NEUTRAL_TITLE = 'New message';
const NEUTRAL_BODY = 'You have a new message';

/**
 * Content is never a reason to refuse a publish (ejabberd would disable the registration): a body or sender
 * longer than the providers' 4 KB payloads leave room for is cut, at a character boundary, and delivered.
 */
export const MAX_BODY_BYTES = 1024;
export const MAX_SENDER_BYTES = 512;

export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}

/** The summary with its free-text fields cut to what the providers take. */
export function boundedSummary(s: Summary): Summary {
  return {
    ...s,
    lastMessageBody: s.lastMessageBody === null ? null : truncateUtf8(s.lastMessageBody, MAX_BODY_BYTES),
    lastMessageSender: s.lastMessageSender === null ? null : truncateUtf8(s.lastMessageSender, MAX_SENDER_BYTES),
  };
}

/**
 * Options a MongooseIM publish carries instead of a registration (its publish-options form): every option
 * MongooseIM's mod_push_service_mongoosepush forwards to MongoosePush.
 */
export interface PublishOptions {
  service: 'fcm' | 'apns';
  deviceId: string;
  mode: 'prod' | 'dev';
  silent: boolean;
  /** MongoosePush's default is normal. */
  priority: 'high' | 'normal';
  topic: string | null;
  clickAction: string | null;
  sound: string | null;
  mutableContent: boolean;
  /** Seconds (MongoosePush `time_to_live`); null: the default. */
  ttl: number | null;
}

export function summaryData(reg: Pick<PushRegistration, 'includeSender' | 'includeBody' | 'node'>, s: Summary): Record<string, string> {
  const data: Record<string, string> = { node: reg.node };
  if (s.messageCount !== null) data['message-count'] = String(s.messageCount);
  if (s.pendingSubscriptionCount !== null) data['pending-subscription-count'] = String(s.pendingSubscriptionCount);
  if (reg.includeSender && s.lastMessageSender) data['last-message-sender'] = s.lastMessageSender;
  if (reg.includeBody && s.lastMessageBody) data['last-message-body'] = s.lastMessageBody;
  return data;
}

/**
 * The bridge message for a registered device. FCM and ADM get a data wake-up carrying p2's `account` (and
 * `channel`) hashes, which Conversations reads to know which account to wake; its priority follows p2's rule
 * (high when the publish carries a message body, else normal). APNs gets an alert for a message, and a silent
 * background push for a publish without a body (receipts, markers, Prosody's pings), as p2 does.
 */
export function registrationMessage(reg: PushRegistration, summary: Summary): BridgeMessage {
  const s = boundedSummary(summary);
  const hasBody = s.lastMessageBody !== null;
  const data = summaryData(reg, s);
  if (reg.kind !== 'apns') Object.assign(data, p2WakeData(reg));
  const msg: BridgeMessage = { token: reg.token, data, ttl: PUSH_TTL, priority: hasBody ? 'high' : 'normal', collapseKey: null };
  if (reg.kind === 'apns') {
    if (reg.background || !hasBody) {
      msg.background = true;
      msg.priority = 'normal';
    } else {
      msg.alert = {
        title: reg.includeSender && s.lastMessageSender ? s.lastMessageSender : NEUTRAL_TITLE,
        body: reg.includeBody && s.lastMessageBody ? s.lastMessageBody : NEUTRAL_BODY,
        ...(s.messageCount !== null ? { badge: s.messageCount } : {}),
      };
      msg.mutableContent = true;
    }
  }
  return msg;
}

/**
 * A MongooseIM publish, as mod_push_service_mongoosepush builds it for MongoosePush: silent pushes carry the
 * notification as data; others become an alert with title and tag the sender, body the message, badge the
 * message count, and the click_action and sound options; mode, priority, topic, mutable_content and
 * time_to_live apply to both.
 */
export function publishOptionsMessage(o: PublishOptions, summary: Summary, node: string): BridgeMessage {
  const s = boundedSummary(summary);
  const data: Record<string, string> = { node };
  if (s.messageCount !== null) data['message-count'] = String(s.messageCount);
  if (s.lastMessageSender) data['last-message-sender'] = s.lastMessageSender;
  if (s.lastMessageBody) data['last-message-body'] = s.lastMessageBody;
  const msg: BridgeMessage = {
    token: o.deviceId,
    data,
    ttl: o.ttl ?? PUSH_TTL,
    priority: o.priority,
    collapseKey: null,
    ...(o.topic && o.service === 'apns' ? { apnsTopic: o.topic } : {}),
    ...(o.mutableContent ? { mutableContent: true } : {}),
  };
  if (o.silent) msg.background = o.service === 'apns';
  else {
    msg.alert = {
      title: s.lastMessageSender ?? NEUTRAL_TITLE,
      body: s.lastMessageBody ?? NEUTRAL_BODY,
      ...(s.lastMessageSender ? { tag: s.lastMessageSender } : {}),
      ...(s.messageCount !== null ? { badge: s.messageCount } : {}),
      ...(o.clickAction ? { clickAction: o.clickAction } : {}),
      ...(o.sound ? { sound: o.sound } : {}),
    };
  }
  return msg;
}

export function outcomeOf(result: BridgeResult): DeliveryOutcome {
  switch (result.outcome) {
    case 'delivered':
      return { ok: true };
    case 'dead-token':
      return { ok: false, kind: 'dead' };
    case 'retry-later':
      return { ok: false, kind: 'wait', condition: 'resource-constraint' };
    case 'misconfigured':
    case 'unreachable':
      return { ok: false, kind: 'wait', condition: 'internal-server-error' };
    case 'timeout':
      return { ok: false, kind: 'wait', condition: 'remote-server-timeout' };
    case 'rejected':
      return { ok: false, kind: 'wait', condition: 'internal-server-error' };
  }
}

export async function sendThroughBridge(bridges: Bridges, type: string, appId: string | null, msg: BridgeMessage): Promise<DeliveryOutcome> {
  const bridge = appId ? bridges.get(type, appId) : undefined;
  // A missing app is our configuration's fault, never the user's: wait, so the registration survives.
  if (!bridge) return { ok: false, kind: 'wait', condition: 'internal-server-error' };
  return outcomeOf(await bridge.send(msg));
}
