/** An FCM app's settings, from its checked bridges-file entry: the service account is read and its key checked at start-up. */
import { type AppFiles, trimUrl } from '../files.js';
import type { FcmSettings, ServiceAccount } from './client.js';
import type { FcmAppConfig } from './schema.js';

const DEFAULTS = { baseUrl: 'https://fcm.googleapis.com', tokenUrl: 'https://oauth2.googleapis.com/token' };

export function fcmSettings(appId: string, cfg: FcmAppConfig, files: AppFiles, timeoutMs: number): FcmSettings {
  let sa: ServiceAccount;
  const raw = files.read('serviceAccount', cfg.serviceAccount);
  try {
    sa = JSON.parse(raw.toString('utf8')) as ServiceAccount;
  } catch {
    throw files.error('serviceAccount is not JSON');
  }
  for (const f of ['project_id', 'client_email', 'private_key'] as const) {
    if (typeof sa[f] !== 'string' || !sa[f]) throw files.error(`the service account lacks "${f}"`);
  }
  files.privateKey('the service account private_key', sa.private_key);
  return {
    appId,
    serviceAccount: sa,
    baseUrl: trimUrl(cfg.baseUrl ?? DEFAULTS.baseUrl),
    tokenUrl: trimUrl(cfg.tokenUrl ?? sa.token_uri ?? DEFAULTS.tokenUrl),
    ca: cfg.ca === undefined ? null : files.read('ca', cfg.ca),
    timeoutMs,
  };
}
