import { randomBytes, timingSafeEqual } from 'node:crypto';
import xml, { type Element } from '@xmpp/xml';
import type { Bridges } from '../bridge/index.js';
import type { Metrics } from '../ops/metrics.js';
import type { PushRegistration, Store } from '../store/index.js';
import { hashSecret, storage } from './commands.js';
import { type DeliveryOutcome, type PublishOptions, publishOptionsMessage, registrationMessage, sendThroughBridge, summaryData } from './deliver.js';
import { readForm, value } from './forms.js';
import { NS, StanzaError } from './namespaces.js';
import type { NodeRateLimiter } from './rate-limit.js';
import { readSummary, type Summary } from './summary.js';
import type { WebPushSender } from './webpush-sender.js';

/**
 * XEP-0060 as an XEP-0357 push service uses it: publishes from XMPP servers, and node creation and deletion
 * for MongooseIM-style clients. The reply follows XEP-0357 and what real servers do with it (see
 * ../shared/notes/xmpp.md): `result` once the provider accepted the push; `cancel`/`item-not-found` only for
 * an unknown node or a dead device; `auth`/`forbidden` for a wrong secret; `wait` for everything transient,
 * because ejabberd disables a registration on its first non-wait error.
 */

export interface PubsubContext {
  store: Store;
  bridges: Bridges;
  webpush: WebPushSender | null;
  limiter: NodeRateLimiter;
  metrics: Metrics;
  /** Domains whose publishes may name the device in publish-options (MongooseIM) instead of a secret. */
  publishOptionsDomains: ReadonlySet<string>;
}

function domainOf(jid: string | undefined): string {
  const bare = (jid ?? '').split('/')[0]!;
  return bare.slice(bare.indexOf('@') + 1).toLowerCase();
}

function sameSecret(given: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(given), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function publishOptions(form: ReturnType<typeof readForm>): PublishOptions | null {
  const service = value(form, 'service');
  const deviceId = value(form, 'device_id');
  if (!service || !deviceId) return null;
  if (service !== 'fcm' && service !== 'apns') throw new StanzaError('modify', 'bad-request', 'service must be fcm or apns');
  const mode = value(form, 'mode') ?? 'prod';
  if (mode !== 'prod' && mode !== 'dev') throw new StanzaError('modify', 'bad-request', 'mode must be prod or dev');
  const priority = value(form, 'priority');
  return {
    service,
    deviceId,
    mode,
    silent: value(form, 'silent') === 'true' || value(form, 'silent') === '1',
    priority: priority === 'high' || priority === 'normal' ? priority : null,
    topic: value(form, 'topic') ?? null,
    clickAction: value(form, 'click_action') ?? null,
  };
}

export async function handlePublish(ctx: PubsubContext, from: string | undefined, pubsub: Element): Promise<Element> {
  const publish = pubsub.getChild('publish');
  const node = publish?.attrs['node'];
  if (!publish || !node) throw new StanzaError('modify', 'bad-request', 'publish needs a node', { name: 'nodeid-required', xmlns: NS.pubsubErrors });
  const options = readForm(pubsub.getChild('publish-options')?.getChild('x', NS.data));
  const reg = await storage(() => ctx.store.getPushRegistration(node));
  if (!reg) throw new StanzaError('cancel', 'item-not-found', 'no such push node');

  const summary = readSummary(publish.getChild('item'));
  let send: () => Promise<DeliveryOutcome>;
  if (reg.kind === 'mongoose') {
    const o = publishOptions(options);
    if (!o) throw new StanzaError('modify', 'bad-request', 'publish-options must carry service and device_id');
    if (!ctx.publishOptionsDomains.has(domainOf(from))) throw new StanzaError('auth', 'forbidden', 'this server may not publish with publish-options');
    const service = o.service === 'fcm' ? 'fcm' : o.mode === 'dev' ? 'apns-dev' : 'apns-prod';
    send = () => sendThroughBridge(ctx.bridges, o.service, ctx.bridges.mongoosepush[service] ?? null, publishOptionsMessage(o, summary, node));
  } else {
    const secret = value(options, 'secret');
    if (!secret || !reg.secretHash || !sameSecret(secret, reg.secretHash)) throw new StanzaError('auth', 'forbidden', 'wrong or missing secret');
    send = () => deliver(ctx, reg, summary);
  }
  if (!ctx.limiter.take(node)) {
    ctx.metrics.notifications.inc({ outcome: 'rate_limited', path: 'xmpp' });
    throw new StanzaError('wait', 'resource-constraint', 'too many pushes for this node; try later');
  }
  const outcome = await send();
  if (outcome.ok) {
    ctx.metrics.notifications.inc({ outcome: 'delivered', path: 'xmpp' });
    return xml('pubsub', { xmlns: NS.pubsub }, xml('publish', { node }, xml('item', { id: randomBytes(8).toString('hex') })));
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
    return ctx.webpush.send(reg, JSON.stringify(summaryData(reg, summary)));
  }
  return sendThroughBridge(ctx.bridges, reg.kind, reg.appId, registrationMessage(reg, summary));
}

/** `<create node='…'/>` (XEP-0060 §8.1) by a user of an allowed domain: a MongooseIM-style push node. */
export async function handleCreate(ctx: PubsubContext, from: string | undefined, pubsub: Element): Promise<Element | null> {
  const create = pubsub.getChild('create')!;
  const account = (from ?? '').split('/')[0]!.toLowerCase();
  if (!account.includes('@') || !ctx.publishOptionsDomains.has(domainOf(from))) throw new StanzaError('auth', 'forbidden', 'node creation is not allowed');
  const node = create.attrs['node'] || randomBytes(12).toString('base64url');
  if (node.length > 256) throw new StanzaError('modify', 'not-acceptable', 'node name too long');
  const existing = await storage(() => ctx.store.getPushRegistration(node));
  if (existing && existing.account !== account) throw new StanzaError('cancel', 'not-allowed', 'the node exists');
  await storage(() =>
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
}

/** `<delete node='…'/>` (XEP-0060 §8.4) by the node's owner. */
export async function handleDelete(ctx: PubsubContext, from: string | undefined, owner: Element): Promise<null> {
  const node = owner.getChild('delete')?.attrs['node'];
  if (!node) throw new StanzaError('modify', 'bad-request', 'delete needs a node', { name: 'nodeid-required', xmlns: NS.pubsubErrors });
  const account = (from ?? '').split('/')[0]!.toLowerCase();
  const reg = await storage(() => ctx.store.getPushRegistration(node));
  if (!reg) throw new StanzaError('cancel', 'item-not-found', 'no such node');
  if (reg.account !== account) throw new StanzaError('auth', 'forbidden', 'not the node owner');
  await storage(() => ctx.store.removePushRegistration(node));
  return null;
}
