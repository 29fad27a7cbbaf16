import xml, { type Element } from '@xmpp/xml';

/** The XML namespaces Pushgate's XMPP component speaks, in one place. */
export const NS = {
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  commands: 'http://jabber.org/protocol/commands',
  pubsub: 'http://jabber.org/protocol/pubsub',
  pubsubOwner: 'http://jabber.org/protocol/pubsub#owner',
  pubsubErrors: 'http://jabber.org/protocol/pubsub#errors',
  publishOptions: 'http://jabber.org/protocol/pubsub#publish-options',
  push: 'urn:xmpp:push:0',
  pushSummary: 'urn:xmpp:push:summary',
  data: 'jabber:x:data',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  ping: 'urn:xmpp:ping',
} as const;

/** RFC 6120 §8.3.2 error types. */
export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3 defined conditions used here. */
export type Condition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'internal-server-error'
  | 'item-not-found'
  | 'not-acceptable'
  | 'not-allowed'
  | 'policy-violation'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable';

/** A stanza error as data: handlers throw it, the dispatcher turns it into the error reply. */
export class StanzaError extends Error {
  constructor(
    readonly type: ErrorType,
    readonly condition: Condition,
    readonly text?: string,
    /** An application-specific condition, e.g. pubsub#errors `nodeid-required`. */
    readonly app?: { name: string; xmlns: string },
  ) {
    super(`${type}/${condition}${text ? `: ${text}` : ''}`);
  }

  element(): Element {
    return xml(
      'error',
      { type: this.type },
      xml(this.condition, { xmlns: NS.stanzas }),
      this.text ? xml('text', { xmlns: NS.stanzas }, this.text) : null,
      this.app ? xml(this.app.name, { xmlns: this.app.xmlns }) : null,
    );
  }
}
