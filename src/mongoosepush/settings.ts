/**
 * The MongoosePush API's own listener: off unless a port is given, loopback by default, optionally TLS and
 * HTTP basic auth (RFC 7617). Never on the public port.
 */
import { type SettingsTable, nonEmpty, optionalPath, optionalPort } from '../util/settings.js';

export const mongoosePushSettings = {
  mongoosepushPort: { env: 'PUSHGATE_MONGOOSEPUSH_PORT', key: 'mongoosepushPort', help: 'port of the MongoosePush API (/v1,/v2,/v3/notification/{device}) for MongooseIM; off when unset', expect: 'an integer from 1 to 65535, different from PUSHGATE_PORT', parse: optionalPort, default: null as number | null },
  mongoosepushHost: { env: 'PUSHGATE_MONGOOSEPUSH_HOST', key: 'mongoosepushHost', help: 'listen address of the MongoosePush API (a non-loopback one needs basic auth)', expect: 'an IP address or host name', parse: nonEmpty, default: '127.0.0.1' },
  mongoosepushTlsCert: { env: 'PUSHGATE_MONGOOSEPUSH_TLS_CERT', key: 'mongoosepushTlsCert', help: 'PEM certificate file: serve the MongoosePush API over https', expect: 'a readable PEM file', parse: optionalPath, default: null as string | null },
  mongoosepushTlsKey: { env: 'PUSHGATE_MONGOOSEPUSH_TLS_KEY', key: 'mongoosepushTlsKey', help: 'PEM private key file for PUSHGATE_MONGOOSEPUSH_TLS_CERT', expect: 'a readable PEM file', parse: optionalPath, default: null as string | null },
  mongoosepushUser: { env: 'PUSHGATE_MONGOOSEPUSH_USER', key: 'mongoosepushUser', help: 'HTTP basic auth user the MongoosePush API demands (with PUSHGATE_MONGOOSEPUSH_PASSWORD)', expect: 'a user name without ":"', parse: (r: string) => (r === '' ? null : r.includes(':') ? undefined : r), default: null as string | null },
  mongoosepushPassword: { env: 'PUSHGATE_MONGOOSEPUSH_PASSWORD', secret: true, key: 'mongoosepushPassword', help: 'HTTP basic auth password of the MongoosePush API', expect: 'a password of at least 12 characters', parse: (r: string) => (r === '' ? null : r.length >= 12 ? r : undefined), default: null as string | null },
} satisfies SettingsTable;
