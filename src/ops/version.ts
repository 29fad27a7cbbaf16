import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Package version and build identity, for /__version__ and `pushgate --version`. */
export interface VersionInfo {
  version: string;
  commit: string;
  source: string;
  build: string;
}

let cached: VersionInfo | undefined;

export function versionInfo(): VersionInfo {
  if (!cached) {
    // src/ops/version.ts and dist/ops/version.js both sit two levels below package.json.
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
    cached = {
      version: pkg.version,
      commit: process.env['PUSHGATE_COMMIT'] ?? 'unknown',
      source: process.env['PUSHGATE_SOURCE'] ?? 'unknown',
      build: process.env['PUSHGATE_BUILD'] ?? 'local',
    };
  }
  return cached;
}
