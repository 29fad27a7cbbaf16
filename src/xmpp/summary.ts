import type { Element } from '@xmpp/xml';
import { NS } from './namespaces.js';
import { readForm, value } from './forms.js';

/**
 * The XEP-0357 §7 notification summary (FORM_TYPE urn:xmpp:push:summary), read whatever form type, field
 * order or missing fields the XMPP server uses (Prosody sends type "form", ejabberd "submit"; any field may
 * be absent or empty, and a publish without a summary at all is legal).
 */
export interface Summary {
  messageCount: number | null;
  lastMessageSender: string | null;
  lastMessageBody: string | null;
  pendingSubscriptionCount: number | null;
}

export const EMPTY_SUMMARY: Summary = { messageCount: null, lastMessageSender: null, lastMessageBody: null, pendingSubscriptionCount: null };

function count(v: string | undefined): number | null {
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : null;
}

export function readSummary(item: Element | undefined): Summary {
  const notification = item?.getChild('notification', NS.push);
  if (!notification) return EMPTY_SUMMARY;
  const form = notification
    .getChildren('x', NS.data)
    .map((x) => readForm(x))
    .find((f) => f && (f.formType === NS.pushSummary || f.formType === null));
  if (!form) return EMPTY_SUMMARY;
  return {
    messageCount: count(value(form, 'message-count')),
    lastMessageSender: value(form, 'last-message-sender') ?? null,
    lastMessageBody: value(form, 'last-message-body') ?? null,
    pendingSubscriptionCount: count(value(form, 'pending-subscription-count')),
  };
}
