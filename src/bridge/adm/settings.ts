/** An ADM app's settings, from its checked bridges-file entry. */
import { type AppFiles, trimUrl } from '../files.js';
import type { AdmSettings } from './client.js';
import type { AdmAppConfig } from './schema.js';

const DEFAULTS = { baseUrl: 'https://api.amazon.com', tokenUrl: 'https://api.amazon.com/auth/o2/token' };

export function admSettings(appId: string, cfg: AdmAppConfig, files: AppFiles, timeoutMs: number, maxConcurrent: number): AdmSettings {
  return {
    appId,
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    baseUrl: trimUrl(cfg.baseUrl ?? DEFAULTS.baseUrl),
    tokenUrl: trimUrl(cfg.tokenUrl ?? DEFAULTS.tokenUrl),
    ca: cfg.ca === undefined ? null : files.read('ca', cfg.ca),
    timeoutMs,
    maxConcurrent,
  };
}
