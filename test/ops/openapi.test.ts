// The OpenAPI document at /openapi.json (src/ops/openapi.ts) and schemathesis, a property-based API fuzzer from
// PyPI (installed by scripts/test.mjs), run against it: generated requests to every documented operation of a
// gateway whose bridges point at the provider fakes, with a bounded number of examples. It must find no server
// error, no undocumented status code and no response that breaks its documented schema or content type.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeWorld, type BridgeWorld } from '../fakes/setup.js';

/** Examples per operation: enough to reach each validation branch, small enough for the run to stay under a minute. */
const MAX_EXAMPLES = 25;
const CHECKS = ['not_a_server_error', 'status_code_conformance', 'content_type_conformance', 'response_schema_conformance'];

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // cwd: schemathesis keeps a cache directory in its working directory, which must not land in the tree.
    const child = spawn(cmd, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('OpenAPI document', () => {
  let world: BridgeWorld;
  beforeAll(async () => {
    world = await bridgeWorld();
  });
  afterAll(() => world.close());

  it('describes every public HTTP route with a summary, a door tag and the error body', async () => {
    const res = await fetch(`${world.gw.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { summary?: string; tags?: string[]; responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
    expect(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual(
      expect.arrayContaining([
        'POST /wpush/{apiVersion}/{token}',
        'DELETE /m/{messageId}',
        'POST /v1/{type}/{appId}/registration',
        'POST /v3/notification/{deviceId}',
        'GET /__heartbeat__',
      ]),
    );
    for (const { op } of operations) {
      expect(op.summary).toBeTruthy();
      expect(op.tags).toHaveLength(1);
    }
    const postPush = doc.paths['/wpush/{apiVersion}/{token}']!['post']!;
    expect(JSON.stringify(postPush.responses['4XX'])).toContain('more_info');
  });

  it('passes schemathesis with a bounded number of examples', async () => {
    const reportDir = mkdtempSync(join(tmpdir(), 'pushgate-schemathesis-'));
    const junit = join(reportDir, 'junit.xml');
    const { code, out } = await run(
      'python3',
      [
        '-m',
        'schemathesis.cli',
        'run',
        `${world.gw.url}/openapi.json`,
        `--checks=${CHECKS.join(',')}`,
        `--max-examples=${MAX_EXAMPLES}`,
        '--seed=1',
        '--workers=1',
        '--report=junit',
        `--report-junit-path=${junit}`,
      ],
      reportDir,
      90_000,
    );
    expect(out, out).toMatch(/passed/i);
    expect(code, out).toBe(0);
    expect(readFileSync(junit, 'utf8')).not.toMatch(/<failure/);
  }, 120_000);
});
