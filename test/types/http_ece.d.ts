declare module 'http_ece' {
  interface Params {
    version: 'aes128gcm' | 'aesgcm';
    privateKey?: import('node:crypto').ECDH;
    dh?: string | undefined;
    salt?: string | undefined;
    authSecret?: string;
  }
  const ece: { decrypt(buffer: Buffer, params: Params): Buffer; encrypt(buffer: Buffer, params: Params): Buffer };
  export default ece;
}
