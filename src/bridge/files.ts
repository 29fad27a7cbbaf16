/**
 * Reading what a bridges-file entry names (keys, certificates, service accounts), relative to the file, with
 * errors that name the file, the app and the field.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BridgeConfigError } from './types.js';

export class AppFiles {
  private readonly base: string;

  constructor(
    readonly file: string,
    /** e.g. `apns app "org.example"` */
    readonly app: string,
  ) {
    this.base = dirname(resolve(file));
  }

  error(message: string): BridgeConfigError {
    return new BridgeConfigError(`${this.file}: ${this.app}: ${message}`);
  }

  read(field: string, path: string): Buffer {
    try {
      return readFileSync(resolve(this.base, path));
    } catch (err) {
      throw this.error(`cannot read ${field} ${path} (${(err as Error).message})`);
    }
  }

  privateKey(field: string, pem: Buffer | string): KeyObject {
    try {
      return createPrivateKey(pem);
    } catch (err) {
      throw this.error(`${field} is not a usable private key (${(err as Error).message})`);
    }
  }
}

/** A configured URL without its trailing slash. */
export const trimUrl = (url: string): string => url.replace(/\/$/, '');
