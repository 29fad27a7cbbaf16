// Test tiers and the coverage gate. `npm run test:unit` runs the pure parts (no servers, sockets or child
// processes; seconds), `npm run test:integration` the gateway, store and CLI tests, `npm run test:interop` the
// real peers (Firefox ESR, Prosody, a fleet); `npm test` (scripts/test.mjs) runs all three with coverage, and the
// 90 % line floor below fails the run when the suite covers less of src/.
import { defineConfig } from 'vitest/config';

/** Unit tests: pure modules only. A file belongs here only if it starts no server and runs in milliseconds. */
const UNIT = [
  'test/webpush/protocol/ids.test.ts',
  'test/webpush/protocol/tokens.test.ts',
  'test/webpush/protocol/peer-auth.test.ts',
  'test/webpush/broadcast/*.test.ts',
  'test/webpush/connection/messages.test.ts',
  'test/webpush/endpoint/headers.test.ts',
  'test/webpush/endpoint/bridged.test.ts',
  'test/xmpp/summary.test.ts',
  'test/xmpp/forms.test.ts',
  'test/xmpp/settings.test.ts',
  'test/bridge/retry-after.test.ts',
  'test/util/*.test.ts',
  'test/config.test.ts',
  'test/cli-main.test.ts',
];
const INTEROP = ['test/interop/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...UNIT, ...INTEROP] } },
      { extends: true, test: { name: 'interop', include: INTEROP } },
    ],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/types/**', 'src/**/*.d.ts'],
      reporter: ['text-summary', ['text', { skipFull: true }], 'json-summary'],
      reportsDirectory: '.test-tmp/coverage',
      reportOnFailure: true,
      thresholds: { lines: 90 },
    },
  },
});
