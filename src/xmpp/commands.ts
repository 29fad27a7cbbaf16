import { createHash, randomBytes } from 'node:crypto';
import xml, { type Element } from '@xmpp/xml';
import type { Bridges, RouterType } from '../bridge/index.js';
import type { PushRegistration, Store } from '../store/index.js';
import { type FieldSpec, booleanValue, buildForm, readForm, value } from './forms.js';
import { NS, StanzaError } from './namespaces.js';

/**
 * XEP-0050 ad-hoc commands that register devices, as Conversations-style clients use them (the p2 app
 * server's `register-push-fcm` and `register-push-apns`, plus ADM and Web Push): the result form returns
 * `jid`, `node` and `secret`, which the client passes to its server's XEP-0357 `<enable/>`. The same device of
 * the same account keeps its node; each registration issues a new secret (only its hash is stored).
 */

export interface CommandContext {
  store: Store;
  bridges: Bridges;
  /** The component's JID: the push service the client enables. */
  jid: string;
}

interface CommandSpec {
  name: string;
  fields: FieldSpec[];
}

const OPT_IN: FieldSpec[] = [
  { var: 'include-sender', type: 'boolean', label: 'Show who wrote (the push reveals the sender to the provider)', value: '0' },
  { var: 'include-body', type: 'boolean', label: 'Show the message text (the push reveals it to the provider)', value: '0' },
];
const DEVICE: FieldSpec[] = [
  { var: 'token', type: 'text-single', label: 'Device token', required: true },
  { var: 'device-id', type: 'text-single', label: 'Device id', required: true },
  { var: 'application', type: 'text-single', label: 'Application id (when several are configured)' },
];

export const COMMANDS: Record<string, CommandSpec> = {
  'register-push-fcm': { name: 'Register an FCM device', fields: [...DEVICE, ...OPT_IN] },
  'register-push-apns': {
    name: 'Register an APNs device',
    fields: [...DEVICE, { var: 'push-type', type: 'list-single', label: 'Alert or background pushes', options: ['alert', 'background'], value: 'alert' }, ...OPT_IN],
  },
  'register-push-adm': { name: 'Register an ADM device', fields: [...DEVICE, ...OPT_IN] },
  'register-push-webpush': {
    name: 'Register a Web Push subscription',
    fields: [
      { var: 'endpoint', type: 'text-single', label: 'Push endpoint URL', required: true },
      { var: 'p256dh', type: 'text-single', label: 'p256dh key (base64url)', required: true },
      { var: 'auth', type: 'text-single', label: 'auth secret (base64url)', required: true },
      { var: 'device-id', type: 'text-single', label: 'Device id' },
      ...OPT_IN,
    ],
  },
  'unregister-push': { name: 'Unregister a device', fields: [{ var: 'node', type: 'text-single', label: 'Push node', required: true }] },
};

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function bareJid(full: string | undefined): string | null {
  if (!full) return null;
  const bare = full.split('/')[0]!.toLowerCase();
  return bare.includes('@') ? bare : null;
}

const b64url = /^[A-Za-z0-9_-]+=*$/;

export async function executeCommand(ctx: CommandContext, from: string | undefined, command: Element): Promise<Element> {
  const node = command.attrs['node'] ?? '';
  const spec = COMMANDS[node];
  if (!spec) throw new StanzaError('cancel', 'item-not-found', `unknown command ${node}`);
  const action = command.attrs['action'] ?? 'execute';
  const sessionid = command.attrs['sessionid'] ?? randomBytes(8).toString('hex');
  const reply = (status: string, ...children: (Element | null)[]) =>
    xml('command', { xmlns: NS.commands, node, sessionid, status }, ...children);

  if (action === 'cancel') return reply('canceled');
  const form = readForm(command.getChild('x', NS.data));
  if (!form || form.type === 'form') {
    if (action !== 'execute' && action !== 'next') throw new StanzaError('modify', 'bad-request', 'submit the form', { name: 'bad-action', xmlns: NS.commands });
    return reply('executing', xml('actions', { execute: 'complete' }, xml('complete')), buildForm('form', spec.name, spec.fields));
  }
  if (form.type !== 'submit') throw new StanzaError('modify', 'bad-request', 'the form must be of type submit');

  const account = bareJid(from);
  if (!account) throw new StanzaError('auth', 'forbidden', 'commands are for user accounts');

  if (node === 'unregister-push') {
    const target = value(form, 'node');
    if (!target) throw new StanzaError('modify', 'bad-request', 'node is required');
    const reg = await storage(() => ctx.store.getPushRegistration(target));
    // Another account's node is reported as absent: registrations never leak across accounts.
    if (!reg || reg.account !== account) throw new StanzaError('cancel', 'item-not-found', 'no such registration');
    await storage(() => ctx.store.removePushRegistration(target));
    return reply('completed', xml('note', { type: 'info' }, 'Unregistered'));
  }

  const kind = node.slice('register-push-'.length) as RouterType | 'webpush';
  let token: string;
  let appId: string | null = null;
  let keys: PushRegistration['keys'] = null;
  let deviceId: string | undefined;
  if (kind === 'webpush') {
    token = value(form, 'endpoint') ?? '';
    const p256dh = value(form, 'p256dh');
    const auth = value(form, 'auth');
    let url: URL | null;
    try {
      url = new URL(token);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new StanzaError('modify', 'bad-request', 'endpoint must be an http(s) URL');
    if (!p256dh || !auth || !b64url.test(p256dh) || !b64url.test(auth) || Buffer.from(p256dh, 'base64url').length !== 65 || Buffer.from(auth, 'base64url').length < 16) {
      throw new StanzaError('modify', 'bad-request', 'p256dh and auth must be the subscription keys in base64url');
    }
    keys = { p256dh, auth };
    deviceId = value(form, 'device-id') ?? createHash('sha256').update(token).digest('hex').slice(0, 32);
  } else {
    token = value(form, 'token') ?? '';
    deviceId = value(form, 'device-id') ?? value(form, 'android-id');
    if (!token) throw new StanzaError('modify', 'bad-request', 'token is required');
    if (!deviceId) throw new StanzaError('modify', 'bad-request', 'device-id is required');
    const requested = value(form, 'application');
    const bridge = requested ? ctx.bridges.get(kind, requested) : ctx.bridges.only(kind);
    if (!bridge) throw new StanzaError('modify', 'bad-request', requested ? `no ${kind} application ${requested}` : `name the ${kind} application`);
    if (!bridge.validateToken(token)) throw new StanzaError('modify', 'bad-request', `not a valid ${kind} token`);
    appId = bridge.appId;
  }
  if (deviceId.length > 256 || token.length > 4096) throw new StanzaError('modify', 'bad-request', 'value too long');

  const secret = randomBytes(18).toString('base64url');
  const saved = await storage(() =>
    ctx.store.savePushRegistration({
      node: randomBytes(12).toString('base64url'),
      secretHash: hashSecret(secret),
      account,
      deviceId: deviceId,
      kind,
      appId,
      token,
      keys,
      includeSender: booleanValue(form, 'include-sender'),
      includeBody: booleanValue(form, 'include-body'),
      background: kind === 'apns' && value(form, 'push-type') === 'background',
      createdAt: Date.now(),
    }),
  );
  return reply(
    'completed',
    buildForm('result', null, [
      { var: 'jid', type: 'jid-single', value: ctx.jid },
      { var: 'node', type: 'text-single', value: saved.node },
      { var: 'secret', type: 'text-private', value: secret },
    ]),
  );
}

/** Storage trouble is transient: `wait`, so clients and servers retry rather than give up. */
export async function storage<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch {
    throw new StanzaError('wait', 'internal-server-error', 'storage temporarily unavailable');
  }
}
