import type { BridgeMessage, BridgeResult, Bridges } from '../bridge/index.js';
import type { PushRegistration } from '../store/index.js';
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

/** Options a MongooseIM publish carries instead of a registration (its publish-options form). */
export interface PublishOptions {
  service: 'fcm' | 'apns';
  deviceId: string;
  mode: 'prod' | 'dev';
  silent: boolean;
  priority: 'high' | 'normal' | null;
  topic: string | null;
  clickAction: string | null;
}

export function summaryData(reg: Pick<PushRegistration, 'includeSender' | 'includeBody' | 'node'>, s: Summary): Record<string, string> {
  const data: Record<string, string> = { node: reg.node };
  if (s.messageCount !== null) data['message-count'] = String(s.messageCount);
  if (s.pendingSubscriptionCount !== null) data['pending-subscription-count'] = String(s.pendingSubscriptionCount);
  if (reg.includeSender && s.lastMessageSender) data['last-message-sender'] = s.lastMessageSender;
  if (reg.includeBody && s.lastMessageBody) data['last-message-body'] = s.lastMessageBody;
  return data;
}

/** The bridge message for a registered device (FCM and ADM data wake-ups, APNs alert or background). */
export function registrationMessage(reg: PushRegistration, s: Summary): BridgeMessage {
  const data = summaryData(reg, s);
  const msg: BridgeMessage = { token: reg.token, data, ttl: PUSH_TTL, priority: 'high', collapseKey: null };
  if (reg.kind === 'apns') {
    if (reg.background) {
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

/** A MongooseIM publish: non-silent pushes become an alert (title the sender, body the message). */
export function publishOptionsMessage(o: PublishOptions, s: Summary, node: string): BridgeMessage {
  const data: Record<string, string> = { node };
  if (s.messageCount !== null) data['message-count'] = String(s.messageCount);
  if (s.lastMessageSender) data['last-message-sender'] = s.lastMessageSender;
  if (s.lastMessageBody) data['last-message-body'] = s.lastMessageBody;
  const msg: BridgeMessage = {
    token: o.deviceId,
    data,
    ttl: PUSH_TTL,
    priority: o.priority ?? (o.silent ? 'normal' : 'high'),
    collapseKey: null,
    ...(o.topic && o.service === 'apns' ? { apnsTopic: o.topic } : {}),
  };
  if (o.silent) msg.background = o.service === 'apns';
  else {
    msg.alert = {
      title: s.lastMessageSender ?? NEUTRAL_TITLE,
      body: s.lastMessageBody ?? NEUTRAL_BODY,
      ...(s.messageCount !== null ? { badge: s.messageCount } : {}),
      ...(o.clickAction ? { clickAction: o.clickAction } : {}),
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
