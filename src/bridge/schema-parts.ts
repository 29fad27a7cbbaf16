/**
 * JSON-schema pieces every provider's section of the bridges file shares (the per-provider schemas live
 * beside each client: fcm/schema.ts, apns/schema.ts, adm/schema.ts). `description` says what a valid value
 * is: the loader's error messages quote it.
 */

export const httpUrl = { type: 'string', pattern: '^https?://[^\\s]+$', description: 'an http(s) URL' } as const;
export const filePath = (what: string) => ({ type: 'string', minLength: 1, description: `the path of ${what}` }) as const;
/** Extra CA to trust (a staging fake, an egress proxy). */
export const caFile = filePath('a PEM CA certificate file');
