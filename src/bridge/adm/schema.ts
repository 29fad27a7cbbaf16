/** One ADM app in the bridges file (`"adm": {"<app id>": {…}}`): its LWA client credentials. Unknown fields are refused. */
import { caFile, httpUrl } from '../schema-parts.js';

export const admAppSchema = {
  type: 'object',
  properties: {
    clientId: { type: 'string', minLength: 1, description: 'the client id of the app (Login with Amazon)' },
    clientSecret: { type: 'string', minLength: 1, description: 'the client secret of the app', writeOnly: true },
    baseUrl: httpUrl,
    tokenUrl: httpUrl,
    ca: caFile,
  },
  required: ['clientId', 'clientSecret'],
  additionalProperties: false,
} as const;

export interface AdmAppConfig {
  clientId: string;
  clientSecret: string;
  baseUrl?: string;
  tokenUrl?: string;
  ca?: string;
}
