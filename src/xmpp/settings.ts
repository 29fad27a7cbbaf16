import { type SettingsTable, int } from '../util/settings.js';

/** The XEP-0357 push service, and Pushgate's own VAPID key for the Web Push it sends. */
export const xmppSettings = {
  xmppService: { env: 'PUSHGATE_XMPP_SERVICE', key: 'xmppService', help: "XMPP servers' component ports, comma-separated xmpp://host:port (enables the XEP-0357 push service)", expect: 'comma-separated xmpp://host:port URLs', parse: (r: string) => (r.split(',').every((u) => /^xmpp:\/\/[^\s/:]+:\d{1,5}$/.test(u.trim())) ? r : undefined), default: null as string | null },
  xmppDomain: { env: 'PUSHGATE_XMPP_DOMAIN', key: 'xmppDomain', help: 'the component JID on each server (comma-separated, one per service, or one for all)', expect: 'comma-separated domain names', parse: (r: string) => (r.split(',').every((d) => /^[a-z0-9.-]+$/i.test(d.trim())) ? r : undefined), default: null as string | null },
  xmppPassword: { env: 'PUSHGATE_XMPP_PASSWORD', secret: true, key: 'xmppPassword', help: 'component secret on each server (comma-separated, one per service, or one for all)', expect: 'a non-empty secret', parse: (r: string) => (r.length > 0 ? r : undefined), default: null as string | null },
  xmppPublishOptionsDomains: { env: 'PUSHGATE_XMPP_PUBLISH_OPTIONS_DOMAINS', key: 'xmppPublishOptionsDomains', help: 'XMPP servers (bare domain JIDs, no user, no resource) that may create push nodes and publish with publish-options service/device_id (MongooseIM)', expect: 'comma-separated domain names', parse: (r: string) => r, default: '' },
  xmppRateLimit: { env: 'PUSHGATE_XMPP_RATE_LIMIT', key: 'xmppRateLimit', help: 'pushes per minute per push node; beyond it publishes are accepted and dropped, or answered wait (see PUSHGATE_XMPP_RATE_LIMIT_REPLY; 0: no limit)', expect: 'an integer from 0 to 100000', parse: int(0, 100000), default: 60 },
  xmppRateBurst: { env: 'PUSHGATE_XMPP_RATE_BURST', key: 'xmppRateBurst', help: 'pushes a push node may send in a burst', expect: 'an integer from 1 to 100000', parse: int(1, 100000), default: 20 },
  xmppRateLimitReply: { env: 'PUSHGATE_XMPP_RATE_LIMIT_REPLY', key: 'xmppRateLimitReply', help: 'what a publish beyond the rate gets: drop (a result, the push is dropped, as fpush and mod_push_appserver do) or wait (wait/resource-constraint)', expect: 'drop or wait', parse: (r: string) => (r === 'drop' || r === 'wait' ? r : undefined), default: 'drop' as const },
  xmppMaxStanza: { env: 'PUSHGATE_XMPP_MAX_STANZA', key: 'xmppMaxStanza', help: 'largest stanza accepted, in bytes, counted as it arrives; a larger one closes the component stream with policy-violation (RFC 6120 §4.9.3.14)', expect: 'an integer from 1024 to 10485760', parse: int(1024, 10485760), default: 1048576 },
  xmppMaxRegistrations: { env: 'PUSHGATE_XMPP_MAX_REGISTRATIONS', key: 'xmppMaxRegistrations', help: 'devices one XMPP account may register (re-registering a device does not count twice)', expect: 'an integer from 1 to 10000', parse: int(1, 10000), default: 20 },
  xmppDefaultApps: {
    env: 'PUSHGATE_XMPP_DEFAULT_APPS',
    key: 'xmppDefaultApps',
    help: 'the app a registration naming no application goes to, per provider: comma-separated type:appId (default: the first app of that provider)',
    expect: 'comma-separated fcm|apns|adm:appId',
    parse: (r: string) => (r === '' || r.split(',').every((e) => /^(fcm|apns|adm):[^\s,:]+$/.test(e.trim())) ? r : undefined),
    default: '',
  },
  xmppWebpushAllow: { env: 'PUSHGATE_XMPP_WEBPUSH_ALLOW', key: 'xmppWebpushAllow', help: "hosts and CIDRs register-push-webpush may reach although not public (push services inside the operator's network; these may use http:)", expect: 'comma-separated host names, IP addresses or CIDRs', parse: (r: string) => r, default: '' },
  vapidPublicKey: { env: 'PUSHGATE_VAPID_PUBLIC_KEY', key: 'vapidPublicKey', help: "Pushgate's own VAPID public key, for Web Push it sends (pushgate genvapid)", expect: 'a P-256 public key in base64url', parse: (r: string) => (/^[A-Za-z0-9_-]{87}$/.test(r) ? r : undefined), default: '' },
  vapidPrivateKey: { env: 'PUSHGATE_VAPID_PRIVATE_KEY', secret: true, key: 'vapidPrivateKey', help: 'the matching private key', expect: 'a P-256 private key in base64url', parse: (r: string) => (/^[A-Za-z0-9_-]{43}$/.test(r) ? r : undefined), default: '' },
  vapidSubject: { env: 'PUSHGATE_VAPID_SUBJECT', key: 'vapidSubject', help: 'VAPID sub claim: a mailto: or https: URL for the operator', expect: 'a mailto: or https: URL', parse: (r: string) => (/^(mailto:|https:)/.test(r) ? r : undefined), default: (p: Record<string, unknown>) => `mailto:push@${new URL(String(p['publicUrl'])).hostname}` },
} satisfies SettingsTable;
