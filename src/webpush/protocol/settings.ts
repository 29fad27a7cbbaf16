import { type SettingsTable } from '../../util/settings.js';
import { MultiFernet } from './fernet.js';

export const cryptoKeys = (raw: string): string | undefined => {
  try {
    MultiFernet.parseList(raw);
    return raw;
  } catch {
    return undefined;
  }
};

/** The keys of endpoint tokens and message ids. */
export const protocolSettings = {
  cryptoKey: { env: 'PUSHGATE_CRYPTO_KEY', secret: true, key: 'cryptoKey', help: "comma-separated Fernet keys, or autopush's bracketed [k1,k2]: the first encrypts, all decrypt", expect: 'comma-separated 32-byte url-safe base64 Fernet keys (make one with `pushgate genkey`)', parse: cryptoKeys, default: '' },
} satisfies SettingsTable;
