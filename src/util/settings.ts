/**
 * The shape of a setting and the parsers settings share. Each concern declares its own table beside the code
 * that uses it (src/settings.ts, src/store/settings.ts, src/webpush/{protocol,connection,endpoint}/settings.ts,
 * src/bridge/settings.ts, src/xmpp/settings.ts); src/config.ts merges them, reads the file and the environment, and checks the whole.
 */

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Parse<T> = (raw: string) => T | undefined;

export interface Setting<T> {
  env: string;
  /** Key in the JSON file. */
  key: string;
  help: string;
  /** What a valid value looks like, for error messages. */
  expect: string;
  parse: Parse<T>;
  default: T | ((partial: Record<string, unknown>) => T);
  /** The value never appears in messages. */
  secret?: boolean;
}

export type SettingsTable = Record<string, Setting<unknown>>;

export const int =
  (min: number, max: number): Parse<number> =>
  (raw) => {
    if (!/^\d+$/.test(raw.trim())) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
export const str: Parse<string> = (raw) => raw;
export const optionalPath: Parse<string | null> = (raw) => (raw.trim() === '' ? null : raw);
export const nonEmpty: Parse<string> = (raw) => (raw.trim() ? raw.trim() : undefined);
export const origin: Parse<string> = (raw) => {
  try {
    const u = new URL(raw);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      return undefined;
    }
    return u.origin;
  } catch {
    return undefined;
  }
};
export const optionalPort: Parse<number | null> = (raw) => (raw.trim() === '' ? null : int(1, 65535)(raw));
export const optionalUrl: Parse<string | null> = (raw) => {
  if (raw.trim() === '') return null;
  return origin(raw);
};
