/**
 * One APNs app in the bridges file (`"apns": {"<app id>": {…}}`): its bundle id, sandbox or production, and
 * either a .p8 signing key (token) or a client certificate. Unknown fields are refused.
 */
import { caFile, filePath, httpUrl } from '../schema-parts.js';

const appleId = (what: string) => ({ type: 'string', pattern: '^[A-Z0-9]{10}$', description: `Apple's 10-character ${what}` }) as const;

export const apnsAppSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string', minLength: 1, description: "the app's bundle id" },
    sandbox: { type: 'boolean', description: 'true or false' },
    token: {
      type: 'object',
      properties: { keyFile: filePath('the .p8 key Apple issued'), keyId: appleId('key id'), teamId: appleId('team id') },
      required: ['keyFile', 'keyId', 'teamId'],
      additionalProperties: false,
    },
    cert: {
      type: 'object',
      properties: { certFile: filePath('the PEM client certificate'), keyFile: filePath('its PEM private key') },
      required: ['certFile', 'keyFile'],
      additionalProperties: false,
    },
    baseUrl: httpUrl,
    ca: caFile,
  },
  required: ['topic'],
  // Exactly one way to authenticate.
  oneOf: [{ required: ['token'] }, { required: ['cert'] }],
  additionalProperties: false,
} as const;

export interface ApnsAppConfig {
  topic: string;
  sandbox?: boolean;
  token?: { keyFile: string; keyId: string; teamId: string };
  cert?: { certFile: string; keyFile: string };
  baseUrl?: string;
  ca?: string;
}
