import { randomBytes, timingSafeEqual } from 'node:crypto';
import xml, { type Element } from '@xmpp/xml';
import type { Bridges } from '../bridge/index.js';
import { authFailed, type Metrics } from '../ops/metrics.js';
import type { PushRegistration, Store } from '../store/index.js';
import { accountLock, hashSecret, storage, type XmppLog } from './commands.js';
import {
  boundedSummary,
  type DeliveryOutcome,
  type PublishOptions,
  publishOptionsMessage,
  registrationMessage,
  sendThroughBridge,
  summaryData,
} from './deliver.js';
import { readForm, value } from './forms.js';
import { NS, StanzaError } from './namespaces.js';
import type { NodeRateLimiter } from './rate-limit.js';
import { readSummary, type Summary } from './summary.js';
import type { WebPushSender } from './webpush-sender.js';

/**
 * XEP-0060 as an XEP-0357 push service uses it: publishes from XMPP servers, and node creation and deletion
 * for MongooseIM-style clients. The reply follows XEP-0357 and what real servers do with it (see
 * ../shared/notes/xmpp.md): `result` once the provider accepted the push; `cancel`/`item-not-found` only for
 * an unknown node or a dead device; `auth`/`forbidden` for a wrong secret or a sender that may not publish;
 * `wait` for everything transient, because ejabberd disables a registration on its first non-wait error.
 * Content is never refused (`modify`): a long body is cut and delivered.
 *
 * Who may publish (issue 9 items 2 and 3): only XMPP servers, which publish from their bare domain JID
 * (Prosody's module.host, ejabberd's LServer, MongooseIM since 3.6). A registration's node takes publishes
 * only from the domain of the account that registered it, as p2 does; publish-options nodes only from a server
 * on PUSHGATE_XMPP_PUBLISH_OPTIONS_DOMAINS.
 */

export interface PubsubContext {
  store: Store;
  bridges: Bridges;
  webpush: WebPushSender | null;
  limiter: NodeRateLimiter;
  /** Beyond the rate: drop (answer result, as fpush and mod_push_appserver do) or wait. */
  rateLimitReply: 'drop' | 'wait';
  metrics: Metrics;
  log: XmppLog;
  /** Devices (here: nodes) one account may hold. */
  maxRegistrations: number;
  /** XMPP servers (bare domain JIDs) whose publishes may name the device in publish-options (MongooseIM). */
  publishOptionsDomains: ReadonlySet<string>;
}

/** The sender as a bare domain JID (no localpart, no resource), or null when it is anything else. */
export function serverJid(jid: string | undefined): string | null {
  if (!jid || jid.includes('@') || jid.includes('/')) return null;
  return jid.toLowerCase();
}

function domainOf(account: string): string {
  return account.slice(account.indexOf('@') + 1);
}

function sameSecret(given: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(given), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

const MAX_TTL = 28 * 24 * 60 * 60;

/** MongooseIM's publish-options form, as its mod_push_service_mongoosepush reads it. */
function publishOptions(form: ReturnType<typeof readForm>): PublishOptions | null {
  const service = value(form, 'service');
  const deviceId = value(form, 'device_id');
  if (!service || !deviceId) return null;
  // A client's wrong options (MongoosePush answers them 400): modify, which MongooseIM does not treat as fatal.
  if (service !== 'fcm' && service !== 'apns') throw new StanzaError('modify', 'bad-request', 'service must be fcm or apns');
  if (deviceId.length > 4096) throw new StanzaError('modify', 'bad-request', 'device_id too long');
  const mode = value(form, 'mode') ?? 'prod';
  if (mode !== 'prod' && mode !== 'dev') throw new StanzaError('modify', 'bad-request', 'mode must be prod or dev');
  const ttl = value(form, 'time_to_live');
  return {
    service,
    deviceId,
    mode,
    silent: value(form, 'silent') === 'true' || value(form, 'silent') === '1',
    priority: value(form, 'priority') === 'high' ? 'high' : 'normal',
    topic: value(form, 'topic')?.slice(0, 256) ?? null,
    clickAction: value(form, 'click_action')?.slice(0, 256) ?? null,
    sound: value(form, 'sound')?.slice(0, 256) ?? null,
    mutableContent: value(form, 'mutable_content') === 'true' || value(form, 'mutable_content') === '1',
    ttl: ttl !== undefined && /^\d{1,9}$/.test(ttl) ? Math.min(Number(ttl), MAX_TTL) : null,
  };
}

function forbidden(ctx: PubsubContext, reason: string, from: string | undefined, node: string): StanzaError {
  authFailed(ctx.metrics, ctx.log, 'xmpp', reason, { from, node });
  return new StanzaError('auth', 'forbidden', reason === 'wrong-secret' ? 'wrong or missing secret' : 'this sender may not publish to this node');
}

export async function handlePublish(ctx: PubsubContext, from: string | undefined, pubsub: Element): Promise<Element> {
  const publish = pubsub.getChild('publish');
  const node = publish?.attrs['node'];
  if (!publish || !node) throw new StanzaError('modify', 'bad-request', 'publish needs a node', { name: 'nodeid-required', xmlns: NS.pubsubErrors });
  const options = readForm(pubsub.getChild('publish-options')?.getChild('x', NS.data));
  const server = serverJid(from);
  const reg = await storage(ctx.log, () => ctx.store.getPushRegistration(node));
  if (!reg) throw new StanzaError('cancel', 'item-not-found', 'no such push node');

  const summary = readSummary(publish.getChild('item'));
  let send: () => Promise<DeliveryOutcome>;
  if (reg.kind === 'mongoose') {
    if (!server || !ctx.publishOptionsDomains.has(server)) throw forbidden(ctx, 'publish-options-sender', from, node);
    const o = publishOptions(options);
    if (!o) throw new StanzaError('modify', 'bad-request', 'publish-options must carry service and device_id');
    const service = o.service === 'fcm' ? 'fcm' : o.mode === 'dev' ? 'apns-dev' : 'apns-prod';
    send = () => sendThroughBridge(ctx.bridges, o.service, ctx.bridges.mongoosepush[service] ?? null, publishOptionsMessage(o, summary, node));
  } else {
    if (server !== domainOf(reg.account)) throw forbidden(ctx, 'foreign-sender', from, node);
    const secret = value(options, 'secret');
    if (!secret || !reg.secretHash || !sameSecret(secret, reg.secretHash)) throw forbidden(ctx, 'wrong-secret', from, node);
    send = () => deliver(ctx, reg, summary);
  }
  const ok = () => xml('pubsub', { xmlns: NS.pubsub }, xml('publish', { node }, xml('item', { id: randomBytes(8).toString('hex') })));
  if (!ctx.limiter.take(node)) {
    ctx.metrics.notifications.inc({ outcome: 'rate_limited', path: 'xmpp' });
    // fpush and mod_push_appserver accept and drop: the server keeps the registration and sends the next one.
    if (ctx.rateLimitReply === 'drop') return ok();
    throw new StanzaError('wait', 'resource-constraint', 'too many pushes for this node; try later');
  }
  const outcome = await send();
  if (outcome.ok) {
    ctx.metrics.notifications.inc({ outcome: 'delivered', path: 'xmpp' });
    return ok();
  }
  ctx.metrics.notifications.inc({ outcome: outcome.kind === 'dead' ? 'dead_token' : 'deferred', path: 'xmpp' });
  if (outcome.kind === 'dead') {
    if (reg.kind !== 'mongoose') await ctx.store.removePushRegistration(node).catch(() => false);
    throw new StanzaError('cancel', 'item-not-found', 'the device is no longer registered');
  }
  throw new StanzaError('wait', outcome.condition, 'push temporarily not possible; try later');
}

async function deliver(ctx: PubsubContext, reg: PushRegistration, summary: Summary): Promise<DeliveryOutcome> {
  if (reg.kind === 'webpush') {
    if (!ctx.webpush) return { ok: false, kind: 'wait', condition: 'internal-server-error' };
    return ctx.webpush.send(reg, JSON.stringify(summaryData(reg, boundedSummary(summary))));
  }
  return sendThroughBridge(ctx.bridges, reg.kind, reg.appId, registrationMessage(reg, summary));
}

/**
 * Node set-up as MongooseIM's push tutorial does it: the user creates the node (`<create node='…'
 * type='push'/>`, XEP-0060 §8.1, with an optional `<configure/>`), then gives the server the publish-only
 * affiliation (§8.9). Only users of a server on the allow-list may create nodes; re-creating an existing node is
 * `cancel`/`conflict` (§8.1.3), whoever asks.
 */
export async function handleCreate(ctx: PubsubContext, from: string | undefined, pubsub: Element): Promise<Element | null> {
  const create = pubsub.getChild('create')!;
  const account = (from ?? '').split('/')[0]!.toLowerCase();
  if (!account.includes('@') || !ctx.publishOptionsDomains.has(domainOf(account))) {
    authFailed(ctx.metrics, ctx.log, 'xmpp', 'create-sender', { from });
    throw new StanzaError('auth', 'forbidden', 'node creation is not allowed');
  }
  const node = create.attrs['node'] || randomBytes(12).toString('base64url');
  if (node.length > 256) throw new StanzaError('cancel', 'not-acceptable', 'node name too long');
  // The existence check and the save run under the node's lock (two accounts creating one name at once must not
  // both pass it: the second save would take the first one's node), the cap's count under the account's, as
  // registrations do (see accountLock). Always node, then account: no cycle.
  return accountLock.run(`node:${node}`, () =>
    accountLock.run(account, async () => {
      const existing = await storage(ctx.log, () => ctx.store.getPushRegistration(node));
      if (existing) throw new StanzaError('cancel', 'conflict', 'the node exists');
      if ((await storage(ctx.log, () => ctx.store.countPushRegistrations(account, ctx.maxRegistrations))) >= ctx.maxRegistrations) {
        throw new StanzaError('cancel', 'not-allowed', `at most ${ctx.maxRegistrations} nodes per account`);
      }
      await storage(ctx.log, () =>
        ctx.store.savePushRegistration({
          node,
          secretHash: null,
          account,
          deviceId: `node:${node}`,
          kind: 'mongoose',
          appId: null,
          token: '',
          keys: null,
          includeSender: true,
          includeBody: true,
          background: false,
          createdAt: Date.now(),
        }),
      );
      return create.attrs['node'] ? null : xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node }));
    }),
  );
}

/** The node, if the sender's account owns it; absent and foreign nodes look the same (no probing). */
async function ownedNode(ctx: PubsubContext, from: string | undefined, node: string | undefined): Promise<PushRegistration> {
  if (!node) throw new StanzaError('modify', 'bad-request', 'the request needs a node', { name: 'nodeid-required', xmlns: NS.pubsubErrors });
  const account = (from ?? '').split('/')[0]!.toLowerCase();
  const reg = await storage(ctx.log, () => ctx.store.getPushRegistration(node));
  if (!reg || reg.kind !== 'mongoose') throw new StanzaError('cancel', 'item-not-found', 'no such node');
  if (reg.account !== account) {
    authFailed(ctx.metrics, ctx.log, 'xmpp', 'not-owner', { from, node });
    throw new StanzaError('auth', 'forbidden', 'not the node owner');
  }
  return reg;
}

/**
 * The owner operations MongooseIM's clients send (XEP-0060 §8): `<delete/>` (§8.4), `<affiliations/>` get and
 * set (§8.9: the tutorial gives the server `publish-only`; who may publish is decided by the allow-list, so a set
 * is acknowledged and the list reports the owner and the allowed servers), `<configure/>` get and set (§8.2:
 * push nodes have no options to change; a set is acknowledged).
 */
export async function handleOwner(ctx: PubsubContext, type: string, from: string | undefined, owner: Element): Promise<Element | null> {
  const del = owner.getChild('delete');
  if (del && type === 'set') {
    const reg = await ownedNode(ctx, from, del.attrs['node']);
    await storage(ctx.log, () => ctx.store.removePushRegistration(reg.node));
    return null;
  }
  const affiliations = owner.getChild('affiliations');
  if (affiliations) {
    const reg = await ownedNode(ctx, from, affiliations.attrs['node']);
    if (type === 'set') {
      for (const a of affiliations.getChildren('affiliation')) {
        const aff = a.attrs['affiliation'];
        if (!a.attrs['jid'] || !['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast'].includes(aff ?? '')) {
          throw new StanzaError('modify', 'bad-request', 'an affiliation needs a jid and a known affiliation');
        }
      }
      return null;
    }
    return xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml(
        'affiliations',
        { node: reg.node },
        xml('affiliation', { jid: reg.account, affiliation: 'owner' }),
        ...[...ctx.publishOptionsDomains].map((d) => xml('affiliation', { jid: d, affiliation: 'publish-only' })),
      ),
    );
  }
  const configure = owner.getChild('configure');
  if (configure) {
    const reg = await ownedNode(ctx, from, configure.attrs['node']);
    if (type === 'set') return null;
    return xml(
      'pubsub',
      { xmlns: NS.pubsubOwner },
      xml(
        'configure',
        { node: reg.node },
        xml('x', { xmlns: NS.data, type: 'form' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${NS.pubsub}#node_config`))),
      ),
    );
  }
  throw new StanzaError('cancel', 'feature-not-implemented', undefined, { name: 'unsupported', xmlns: NS.pubsubErrors });
}
