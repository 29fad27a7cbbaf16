/** An APNs app's settings, from its checked bridges-file entry: the .p8 key or the certificate and its key are read and checked at start-up. */
import { X509Certificate } from 'node:crypto';
import { type AppFiles, trimUrl } from '../files.js';
import { BridgeConfigError } from '../types.js';
import type { ApnsSettings } from './client.js';
import type { ApnsAppConfig } from './schema.js';

export function apnsSettings(appId: string, cfg: ApnsAppConfig, files: AppFiles, timeoutMs: number): ApnsSettings {
  let auth: ApnsSettings['auth'];
  if (cfg.token) {
    const key = files.read('token.keyFile', cfg.token.keyFile);
    if (files.privateKey('token.keyFile', key).asymmetricKeyType !== 'ec') throw files.error('token.keyFile must be the .p8 EC key Apple issued');
    auth = { token: { key, keyId: cfg.token.keyId, teamId: cfg.token.teamId } };
  } else {
    // The schema demands exactly one of token and cert.
    const c = cfg.cert!;
    const cert = files.read('cert.certFile', c.certFile);
    const key = files.read('cert.keyFile', c.keyFile);
    try {
      const x = new X509Certificate(cert);
      if (!x.checkPrivateKey(files.privateKey('cert.keyFile', key))) throw files.error('cert.keyFile does not match cert.certFile');
      if (new Date(x.validTo).getTime() < Date.now()) throw files.error(`the certificate expired on ${x.validTo}`);
    } catch (err) {
      if (err instanceof BridgeConfigError) throw err;
      throw files.error('cert.certFile is not a PEM certificate');
    }
    auth = { cert: { cert, key } };
  }
  return {
    appId,
    topic: cfg.topic,
    sandbox: cfg.sandbox === true,
    auth,
    baseUrl: cfg.baseUrl === undefined ? null : trimUrl(cfg.baseUrl),
    ca: cfg.ca === undefined ? null : files.read('ca', cfg.ca),
    timeoutMs,
  };
}
