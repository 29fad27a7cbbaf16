import { createHash, ECDH, randomBytes } from 'node:crypto';
import xml, { type Element } from '@xmpp/xml';
import type { Bridge, Bridges, RouterType } from '../bridge/index.js';
import { ROUTER_TYPES } from '../bridge/types.js';
import { type PushRegistration, type Store, StoreUnavailableError } from '../store/index.js';
import type { EndpointGuard } from './endpoint-guard.js';
import { type FieldSpec, booleanValue, buildForm, readForm, value } from './forms.js';
import { NS, StanzaError } from './namespaces.js';
import { KeyedLock } from '../util/keyed-lock.js';

/**
 * XEP-0050 ad-hoc commands that register devices, as Conversations-style clients use them (the p2 app
 * server's `register-push-fcm` and `register-push-apns`, plus ADM and Web Push): the result form returns
 * `jid`, `node` and `secret`, which the client passes to its server's XEP-0357 `<enable/>`. As in p2 and
 * mod_push_appserver, the same device of the same account keeps both its node and its secret (Conversations
 * re-registers on every bind; a lost `<enable/>` must not leave its server publishing with a dead secret, which
 * ejabberd would answer by disabling push for good). The secret is stored sealed with the gateway's crypto
 * key so it can be returned again; publishes are checked against its hash.
 */

/**
 * Registrations of one account (ad-hoc commands and MongooseIM node creation) check the cap and save under this
 * lock, so a burst of pipelined registrations cannot slip past the count. Per process: in a fleet each node
 * serialises its own, so a burst spread over N nodes at once can overshoot the cap by at most N - 1.
 */
export const accountLock = new KeyedLock();

export interface XmppLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Seals secrets at rest (the gateway's crypto key): open() is null when no current key opens it. */
export interface SecretSealer {
  seal(secret: string): string;
  open(sealed: string): string | null;
}

export interface CommandContext {
  store: Store;
  bridges: Bridges;
  /** The component's JID: the push service the client enables. */
  jid: string;
  log: XmppLog;
  sealer: SecretSealer;
  guard: EndpointGuard;
  /** Devices one account may register (issue 9 item 5). */
  maxRegistrations: number;
  /** The app a registration naming none goes to, per provider (PUSHGATE_XMPP_DEFAULT_APPS). */
  defaultApps: ReadonlyMap<string, string>;
}

interface CommandSpec {
  name: string;
  fields: FieldSpec[];
}

/** Bounds on every stored field (issue 9 item 5): a registration costs at most a few KB. */
export const LIMITS = { token: 4096, deviceId: 256, muc: 1024, endpoint: 2048, application: 256 } as const;

const OPT_IN: FieldSpec[] = [
  { var: 'include-sender', type: 'boolean', label: 'Show who wrote (the push reveals the sender to the provider)', value: '0' },
  { var: 'include-body', type: 'boolean', label: 'Show the message text (the push reveals it to the provider)', value: '0' },
];
const DEVICE: FieldSpec[] = [
  { var: 'token', type: 'text-single', label: 'Device token', required: true },
  { var: 'device-id', type: 'text-single', label: 'Device id', required: true },
  { var: 'muc', type: 'jid-single', label: 'Group chat (bare JID) this registration is for (p2)' },
  { var: 'application', type: 'text-single', label: 'Application id (when several are configured)' },
];
/** p2's `unregister-push-<service>`: the device (device-id or android-id), optionally one group chat's registration. */
const UNREGISTER_DEVICE: FieldSpec[] = [
  { var: 'device-id', type: 'text-single', label: 'Device id', required: true },
  { var: 'muc', type: 'jid-single', label: 'Group chat (bare JID)' },
];

export const COMMANDS: Record<string, CommandSpec> = {
  'register-push-fcm': { name: 'Register an FCM device', fields: [...DEVICE, ...OPT_IN] },
  'register-push-apns': {
    name: 'Register an APNs device',
    fields: [
      ...DEVICE,
      { var: 'push-type', type: 'list-single', label: 'Alert or background pushes', options: ['alert', 'background'], value: 'alert' },
      ...OPT_IN,
    ],
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
  'unregister-push-fcm': { name: 'Unregister an FCM device', fields: UNREGISTER_DEVICE },
  'unregister-push-apns': { name: 'Unregister an APNs device', fields: UNREGISTER_DEVICE },
  'unregister-push-adm': { name: 'Unregister an ADM device', fields: UNREGISTER_DEVICE },
  'unregister-push-webpush': { name: 'Unregister a Web Push subscription', fields: UNREGISTER_DEVICE },
  // mod_push_appserver (Monal): `type` is the provider, `node` the client's device identifier, `token` the token.
  'v1-register-push': {
    name: 'Register a device (mod_push_appserver)',
    fields: [
      { var: 'type', type: 'text-single', label: 'Push service (fcm, apns, adm)', required: true },
      { var: 'node', type: 'text-single', label: 'Device identifier', required: true },
      { var: 'token', type: 'text-single', label: 'Device token', required: true },
    ],
  },
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

/** p2's Utils.combineAndHash: sha1 hex of the parts joined by NUL. */
export function p2Hash(...parts: string[]): string {
  return createHash('sha1').update(parts.join('\0')).digest('hex');
}

/** The stored device key: the device id, or the device id and the group chat for a p2 MUC registration. */
function deviceKey(deviceId: string, muc: string | null): string {
  return muc ? `${deviceId}\0muc\0${muc}` : deviceId;
}

/**
 * What p2 puts in its FCM wake-up, from a stored registration: `account` = sha1(bare JID NUL device id) and, for
 * a group-chat registration, `channel` = sha1(muc NUL device id) (p2 Utils.combineAndHash, FcmPushService).
 */
export function p2WakeData(reg: Pick<PushRegistration, 'account' | 'deviceId'>): { account: string; channel?: string } {
  const [deviceId, tag, muc] = reg.deviceId.split('\0');
  const account = p2Hash(reg.account, deviceId!);
  return tag === 'muc' && muc ? { account, channel: p2Hash(muc, deviceId!) } : { account };
}

/** p2's `muc` field: a bare JID (a full JID is a bad request, as in p2). */
function mucOf(form: ReturnType<typeof readForm>): string | null {
  const muc = value(form, 'muc')?.toLowerCase();
  if (!muc) return null;
  if (muc.includes('/') || muc.length > LIMITS.muc || !/^[^@\s]+@[^@\s]+$/.test(muc)) throw new StanzaError('modify', 'bad-request', 'muc must be a bare JID');
  return muc;
}

function deviceIdOf(form: ReturnType<typeof readForm>): string {
  const deviceId = value(form, 'device-id') ?? value(form, 'android-id');
  if (!deviceId) throw new StanzaError('modify', 'bad-request', 'device-id is required');
  if (deviceId.length > LIMITS.deviceId) throw new StanzaError('modify', 'bad-request', 'device-id too long');
  return deviceId;
}

/** The app of a provider a registration goes to: the one named, else the configured default, else the first. */
function appFor(ctx: CommandContext, kind: RouterType, requested: string | undefined): Bridge | undefined {
  if (requested) return ctx.bridges.get(kind, requested);
  const named = ctx.defaultApps.get(kind);
  if (named) return ctx.bridges.get(kind, named);
  return ctx.bridges.list().find((b) => b.type === kind);
}

export async function executeCommand(ctx: CommandContext, from: string | undefined, command: Element): Promise<Element> {
  const node = command.attrs['node'] ?? '';
  const spec = COMMANDS[node];
  if (!spec) throw new StanzaError('cancel', 'item-not-found', `unknown command ${node}`);
  const action = command.attrs['action'] ?? 'execute';
  const sessionid = command.attrs['sessionid'] ?? randomBytes(8).toString('hex');
  const reply = (status: string, ...children: (Element | null)[]) => xml('command', { xmlns: NS.commands, node, sessionid, status }, ...children);

  if (action === 'cancel') return reply('canceled');
  const form = readForm(command.getChild('x', NS.data));
  if (!form || form.type === 'form') {
    if (action !== 'execute' && action !== 'next')
      throw new StanzaError('modify', 'bad-request', 'submit the form', { name: 'bad-action', xmlns: NS.commands });
    return reply('executing', xml('actions', { execute: 'complete' }, xml('complete')), buildForm('form', spec.name, spec.fields));
  }
  if (form.type !== 'submit') throw new StanzaError('modify', 'bad-request', 'the form must be of type submit');

  const account = bareJid(from);
  if (!account) throw new StanzaError('auth', 'forbidden', 'commands are for user accounts');

  if (node === 'unregister-push') {
    const target = value(form, 'node');
    if (!target) throw new StanzaError('modify', 'bad-request', 'node is required');
    const reg = await storage(ctx.log, () => ctx.store.getPushRegistration(target));
    // Another account's node is reported as absent: registrations never leak across accounts.
    if (!reg || reg.account !== account) throw new StanzaError('cancel', 'item-not-found', 'no such registration');
    await storage(ctx.log, () => ctx.store.removePushRegistration(target));
    return reply('completed', xml('note', { type: 'info' }, 'Unregistered'));
  }
  if (node.startsWith('unregister-push-')) {
    // p2: the account's device (and, with muc, that group chat's registration of it).
    const service = node.slice('unregister-push-'.length);
    const muc = mucOf(form);
    const reg = await storage(ctx.log, () => ctx.store.findPushRegistration(account, deviceKey(deviceIdOf(form), muc)));
    if (!reg || (!muc && reg.kind !== service)) throw new StanzaError('cancel', 'item-not-found', 'no such registration');
    await storage(ctx.log, () => ctx.store.removePushRegistration(reg.node));
    return reply('completed', xml('note', { type: 'info' }, 'Unregistered'));
  }

  // mod_push_appserver's v1-register-push names the provider in `type` and the device in `node`; Pushgate still
  // issues its own node (nodes are global: a client-chosen one could take another account's).
  const v1 = node === 'v1-register-push';
  const kind = (v1 ? (value(form, 'type') ?? '') : node.slice('register-push-'.length)) as RouterType | 'webpush';
  if (v1 && !(ROUTER_TYPES as readonly string[]).includes(kind)) throw new StanzaError('modify', 'bad-request', 'type must be fcm, apns or adm');
  let token: string;
  let appId: string | null = null;
  let keys: PushRegistration['keys'] = null;
  let deviceId: string;
  let muc: string | null = null;
  if (kind === 'webpush') {
    token = value(form, 'endpoint') ?? '';
    const p256dh = value(form, 'p256dh');
    const auth = value(form, 'auth');
    if (token.length > LIMITS.endpoint) throw new StanzaError('modify', 'bad-request', 'endpoint too long');
    if (
      !p256dh ||
      !auth ||
      !b64url.test(p256dh) ||
      !b64url.test(auth) ||
      Buffer.from(p256dh, 'base64url').length !== 65 ||
      auth.length > 64 ||
      Buffer.from(auth, 'base64url').length < 16
    ) {
      throw new StanzaError('modify', 'bad-request', 'p256dh and auth must be the subscription keys in base64url');
    }
    // 65 bytes that are not a point on P-256 would be accepted, then fail every send (RFC 8291 §3.1 needs the point).
    if (!isP256Point(Buffer.from(p256dh, 'base64url'))) throw new StanzaError('modify', 'bad-request', 'p256dh is not a P-256 public key');
    // One answer for every refused endpoint, whatever the reason: the command is no probe of internal networks.
    const verdict = await ctx.guard.check(token);
    if (!verdict.ok) throw new StanzaError('modify', 'not-acceptable', 'endpoint must be an https: URL of a public push service');
    keys = { p256dh, auth };
    deviceId = value(form, 'device-id') ?? createHash('sha256').update(token).digest('hex').slice(0, 32);
    if (deviceId.length > LIMITS.deviceId) throw new StanzaError('modify', 'bad-request', 'device-id too long');
  } else {
    token = value(form, 'token') ?? '';
    if (!token) throw new StanzaError('modify', 'bad-request', 'token is required');
    if (token.length > LIMITS.token) throw new StanzaError('modify', 'bad-request', 'token too long');
    if (v1) {
      deviceId = value(form, 'node') ?? '';
      if (!deviceId || deviceId.length > LIMITS.deviceId)
        throw new StanzaError('modify', 'bad-request', 'node (the device identifier) is required, at most 256 characters');
    } else {
      deviceId = deviceIdOf(form);
      muc = mucOf(form);
    }
    const requested = value(form, 'application');
    if (requested && requested.length > LIMITS.application) throw new StanzaError('modify', 'bad-request', 'application too long');
    const bridge = appFor(ctx, kind, requested);
    if (!bridge) throw new StanzaError('modify', 'bad-request', requested ? `no ${kind} application ${requested}` : `no ${kind} application is configured`);
    if (!bridge.validateToken(token)) throw new StanzaError('modify', 'bad-request', `not a valid ${kind} token`);
    appId = bridge.appId;
  }

  const key = deviceKey(deviceId, muc);
  return accountLock.run(account, () => saveRegistration(ctx, reply, form, account, key, kind, appId, token, keys));
}

/** The cap check and the save, run under the account's lock. */
async function saveRegistration(
  ctx: CommandContext,
  reply: (status: string, ...children: (Element | null)[]) => Element,
  form: NonNullable<ReturnType<typeof readForm>>,
  account: string,
  key: string,
  kind: RouterType | 'webpush',
  appId: string | null,
  token: string,
  keys: PushRegistration['keys'],
): Promise<Element> {
  const existing = await storage(ctx.log, () => ctx.store.findPushRegistration(account, key));
  if (!existing && (await storage(ctx.log, () => ctx.store.countPushRegistrations(account, ctx.maxRegistrations))) >= ctx.maxRegistrations) {
    throw new StanzaError('cancel', 'not-allowed', `at most ${ctx.maxRegistrations} devices per account; unregister one first`);
  }
  // The same device keeps its secret (p2 does), unless it can no longer be opened (its key was retired).
  const kept = existing?.sealedSecret ? ctx.sealer.open(existing.sealedSecret) : null;
  const secret = kept && existing!.secretHash === hashSecret(kept) ? kept : randomBytes(18).toString('base64url');
  const saved = await storage(ctx.log, () =>
    ctx.store.savePushRegistration({
      node: existing?.node ?? randomBytes(12).toString('base64url'),
      secretHash: hashSecret(secret),
      account,
      deviceId: key,
      kind,
      appId,
      token,
      keys,
      includeSender: booleanValue(form, 'include-sender'),
      includeBody: booleanValue(form, 'include-body'),
      background: kind === 'apns' && value(form, 'push-type') === 'background',
      createdAt: existing?.createdAt ?? Date.now(),
      sealedSecret: ctx.sealer.seal(secret),
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

/** Whether these bytes are an uncompressed point on P-256 (convertKey checks the curve equation). */
function isP256Point(raw: Buffer): boolean {
  try {
    ECDH.convertKey(raw, 'prime256v1');
    return true;
  } catch {
    return false;
  }
}

/** When storage trouble was last logged: an outage is logged once per burst, not once per stanza. */
let outageLoggedAt = 0;

/**
 * Storage calls from the XMPP handlers (issue 10 item 3). An outage (StoreUnavailableError) is transient:
 * `wait`, logged once per burst. Anything else is a bug: still `wait`/internal-server-error (ejabberd disables
 * a registration on any other type), but logged at error level with its stack.
 */
export async function storage<T>(log: XmppLog, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof StoreUnavailableError) {
      const now = Date.now();
      if (now - outageLoggedAt > 10_000) {
        outageLoggedAt = now;
        log.warn({ err: err.message }, 'xmpp: storage unavailable; answering wait');
      }
      throw new StanzaError('wait', 'internal-server-error', 'storage temporarily unavailable');
    }
    log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack }, 'xmpp: storage call failed (a bug, not an outage)');
    throw new StanzaError('wait', 'internal-server-error', 'internal error');
  }
}
