import xml, { type Element } from '@xmpp/xml';
import { COMMANDS, type CommandContext, executeCommand } from './commands.js';
import { NS, StanzaError } from './namespaces.js';
import { handleCreate, handleOwner, handlePublish, type PubsubContext } from './pubsub.js';

/**
 * The component's stanza dispatcher, one handler per namespace (disco, commands, pubsub). It turns every
 * stanza into at most one reply and never throws: malformed, oversized or unexpected stanzas get the right
 * stanza error (RFC 6120 §8.3), so no input can break the component's connection. Stanza size is bounded
 * before this point, while the bytes arrive (./component.ts).
 */

export interface HandlerContext extends CommandContext, PubsubContext {
  /** Largest stanza accepted, in bytes of XML (enforced by the component's parser). */
  maxStanzaBytes: number;
}

const FEATURES = [
  NS.discoInfo,
  NS.discoItems,
  NS.push,
  NS.pubsub,
  `${NS.pubsub}#publish`,
  `${NS.pubsub}#publish-options`,
  `${NS.pubsub}#create-nodes`,
  `${NS.pubsub}#delete-nodes`,
  `${NS.pubsub}#modify-affiliations`,
  `${NS.pubsub}#config-node`,
  NS.commands,
  NS.data,
  NS.ping,
];

function discoInfo(node: string | undefined): Element {
  if (node === undefined) {
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'pubsub', type: 'push', name: 'Pushgate' }),
      ...FEATURES.map((f) => xml('feature', { var: f })),
    );
  }
  if (node === NS.commands) return xml('query', { xmlns: NS.discoInfo, node }, xml('identity', { category: 'automation', type: 'command-list' }));
  const command = COMMANDS[node];
  if (!command) throw new StanzaError('cancel', 'item-not-found');
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    xml('identity', { category: 'automation', type: 'command-node', name: command.name }),
    xml('feature', { var: NS.commands }),
    xml('feature', { var: NS.data }),
  );
}

function discoItems(jid: string, node: string | undefined): Element {
  // XEP-0050 §2.2: the command list is the commands node's items; a plain query lists them too.
  if (node !== undefined && node !== NS.commands) return xml('query', { xmlns: NS.discoItems, node });
  return xml('query', { xmlns: NS.discoItems, node }, ...Object.entries(COMMANDS).map(([n, c]) => xml('item', { jid, node: n, name: c.name })));
}

async function iqPayload(ctx: HandlerContext, iq: Element): Promise<Element | null> {
  const type = iq.attrs['type'];
  const children = iq.getChildElements();
  if (children.length !== 1) throw new StanzaError('modify', 'bad-request', 'an iq carries exactly one payload');
  const payload = children[0]!;
  const ns = payload.attrs['xmlns'];
  const from = iq.attrs['from'];
  if (type === 'get') {
    // XEP-0199 §4.2: a ping to the component is answered with an empty result.
    if (payload.is('ping', NS.ping)) return null;
    if (payload.is('query', NS.discoInfo)) return discoInfo(payload.attrs['node']);
    if (payload.is('query', NS.discoItems)) return discoItems(ctx.jid, payload.attrs['node']);
    if (payload.is('pubsub', NS.pubsubOwner)) return handleOwner(ctx, 'get', from, payload);
    if (ns === NS.pubsub || ns === NS.commands) throw new StanzaError('cancel', 'feature-not-implemented');
    throw new StanzaError('cancel', 'service-unavailable');
  }
  if (payload.is('command', NS.commands)) return executeCommand(ctx, from, payload);
  if (payload.is('pubsub', NS.pubsub)) {
    if (payload.getChild('publish')) return handlePublish(ctx, from, payload);
    if (payload.getChild('create')) return handleCreate(ctx, from, payload);
    throw new StanzaError('cancel', 'feature-not-implemented', undefined, { name: 'unsupported', xmlns: NS.pubsubErrors });
  }
  if (payload.is('pubsub', NS.pubsubOwner)) return handleOwner(ctx, 'set', from, payload);
  if (ns === NS.discoInfo || ns === NS.discoItems) throw new StanzaError('modify', 'bad-request', 'disco is a get');
  throw new StanzaError('cancel', 'service-unavailable');
}

export function errorReply(stanza: Element, err: StanzaError): Element {
  return xml(stanza.name, { type: 'error', id: stanza.attrs['id'], to: stanza.attrs['from'], from: stanza.attrs['to'] }, err.element());
}

/** The reply to a stanza, or null when none is due (results, errors, messages, presences). */
export async function handleStanza(ctx: HandlerContext, stanza: Element): Promise<Element | null> {
  const type = stanza.attrs['type'];
  if (stanza.name !== 'iq') {
    // RFC 6120 §8.3.1: never answer an error with an error. Messages to the push service are not served.
    if (stanza.name === 'message' && type !== 'error') return errorReply(stanza, new StanzaError('cancel', 'service-unavailable'));
    return null;
  }
  if (type !== 'get' && type !== 'set') return null;
  try {
    if (!stanza.attrs['id']) throw new StanzaError('modify', 'bad-request', 'an iq needs an id');
    const payload = await iqPayload(ctx, stanza);
    return xml('iq', { type: 'result', id: stanza.attrs['id'], to: stanza.attrs['from'], from: stanza.attrs['to'] }, payload);
  } catch (err) {
    if (err instanceof StanzaError) return errorReply(stanza, err);
    // Not a stanza error: a bug. Still wait (ejabberd disables on anything else), logged with its stack.
    ctx.log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack }, 'xmpp handler failed');
    return errorReply(stanza, new StanzaError('wait', 'internal-server-error'));
  }
}
