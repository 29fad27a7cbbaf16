/**
 * One FCM app in the bridges file (`"fcm": {"<app id>": {…}}`), as autopush-rs's routers/fcm/settings.rs
 * describes its apps: unknown fields are refused.
 */
import { caFile, filePath, httpUrl } from '../schema-parts.js';

export const fcmAppSchema = {
  type: 'object',
  properties: {
    serviceAccount: filePath('the service-account JSON file Firebase issued'),
    baseUrl: httpUrl,
    tokenUrl: httpUrl,
    ca: caFile,
  },
  required: ['serviceAccount'],
  additionalProperties: false,
} as const;

export interface FcmAppConfig {
  serviceAccount: string;
  baseUrl?: string;
  tokenUrl?: string;
  ca?: string;
}
