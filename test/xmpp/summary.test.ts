// Unit tests of the XEP-0357 §7 summary reader (src/xmpp/summary.ts): Prosody's and ejabberd's forms, missing
// fields and malformed counts, on publish items built in memory.
import xml from '@xmpp/xml';
import { describe, expect, it } from 'vitest';
import { NS } from '../../src/xmpp/namespaces.js';
import { EMPTY_SUMMARY, readSummary } from '../../src/xmpp/summary.js';

const field = (name: string, v?: string) => xml('field', { var: name }, v === undefined ? null : xml('value', {}, v));
const item = (...forms: ReturnType<typeof xml>[]) => xml('item', {}, xml('notification', { xmlns: NS.push }, ...forms));

describe('readSummary', () => {
  it("reads Prosody's form (type form) in any field order", () => {
    const form = xml(
      'x',
      { xmlns: NS.data, type: 'form' },
      field('last-message-body', 'hi'),
      field('FORM_TYPE', NS.pushSummary),
      field('message-count', '3'),
      field('last-message-sender', 'romeo@example.org/orchard'),
      field('pending-subscription-count', '0'),
    );
    expect(readSummary(item(form))).toEqual({
      messageCount: 3,
      lastMessageSender: 'romeo@example.org/orchard',
      lastMessageBody: 'hi',
      pendingSubscriptionCount: 0,
    });
  });

  it("reads ejabberd's submit form and leaves missing fields null", () => {
    const form = xml('x', { xmlns: NS.data, type: 'submit' }, field('FORM_TYPE', NS.pushSummary), field('message-count', '1'), field('last-message-body'));
    expect(readSummary(item(form))).toEqual({ ...EMPTY_SUMMARY, messageCount: 1 });
  });

  it('accepts a form without FORM_TYPE and skips forms of other types', () => {
    const other = xml('x', { xmlns: NS.data }, field('FORM_TYPE', 'urn:example:other'), field('message-count', '9'));
    const plain = xml('x', { xmlns: NS.data }, field('message-count', '2'));
    expect(readSummary(item(other, plain)).messageCount).toBe(2);
    expect(readSummary(item(other))).toEqual(EMPTY_SUMMARY);
  });

  it('ignores counts that are not small non-negative integers', () => {
    for (const v of ['-1', '1.5', 'many', '1234567890', ''])
      expect(readSummary(item(xml('x', { xmlns: NS.data }, field('message-count', v), field('pending-subscription-count', v)))).messageCount).toBeNull();
  });

  it('is empty for a publish without a notification or a summary (legal per XEP-0357 §7)', () => {
    expect(readSummary(undefined)).toEqual(EMPTY_SUMMARY);
    expect(readSummary(xml('item', {}))).toEqual(EMPTY_SUMMARY);
    expect(readSummary(item())).toEqual(EMPTY_SUMMARY);
  });
});
