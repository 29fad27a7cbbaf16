import { readFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { descriptorReport, descriptorState, keepAccepting, parseOpenFilesLimit } from '../../src/ops/descriptors.js';
import { logCapture, startGateway } from '../helpers/gateway.js';
import { PushClient } from '../helpers/ws-client.js';

/** An error as Node's net.Server emits it when accept(2) fails (lib/net.js `onconnection`). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, syscall: 'accept' });
}

describe('the descriptor limit', () => {
  it('reads the soft "Max open files" limit of /proc/<pid>/limits', () => {
    const table = (soft: string) =>
      [
        'Limit                     Soft Limit           Hard Limit           Units     ',
        'Max processes             96365                96365                processes ',
        `Max open files            ${soft.padEnd(21)}1048576              files     `,
        'Max locked memory         8388608              8388608              bytes     ',
      ].join('\n');
    expect(parseOpenFilesLimit(table('20000'))).toBe(20000);
    expect(parseOpenFilesLimit(table('unlimited'))).toBe(Infinity);
    expect(parseOpenFilesLimit('Limit Soft Limit\nMax processes 1 1 processes\n')).toBeNull();
    expect(parseOpenFilesLimit(table('many'))).toBeNull();
    // This machine's own file, as the gateway reads it.
    expect(parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'))).toBe(descriptorState().limit);
    expect(descriptorState().open).toBeGreaterThan(2);
  });

  it('warns when fewer connections fit than PUSHGATE_MAX_CONNECTIONS allows, and says how many fit', () => {
    expect(descriptorReport({ limit: 20000, open: 40 }, 10000)).toEqual({
      level: 'info',
      fields: { descriptorLimit: 20000, descriptorsOpen: 40, connectionsAtMost: 19960 },
      msg: 'descriptor limit',
    });
    const low = descriptorReport({ limit: 1024, open: 40 }, 10000)!;
    expect(low.level).toBe('warn');
    expect(low.fields).toEqual({ descriptorLimit: 1024, descriptorsOpen: 40, connectionsAtMost: 984, maxConnections: 10000 });
    expect(low.msg).toMatch(/LimitNOFILE/);
    expect(descriptorReport({ limit: Infinity, open: 40 }, 10000)?.level).toBe('info');
    expect(descriptorReport({ limit: null, open: null }, 10000)).toBeNull();
  });
});

describe('accept errors', () => {
  it('are counted and logged at most once a second, and the server keeps accepting', async () => {
    const server: Server = createServer((s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const lines: Record<string, unknown>[] = [];
    let count = 0;
    let now = 0;
    keepAccepting(
      server,
      'public',
      { error: (obj, msg) => lines.push({ ...obj, msg }) },
      () => count++,
      () => now,
    );
    // Without a listener, Node's emit('error') would throw here: the process would end.
    server.emit('error', acceptError('ENOBUFS'));
    now = 400;
    server.emit('error', acceptError('ENOBUFS'));
    server.emit('error', acceptError('ENOMEM'));
    now = 1500;
    server.emit('error', acceptError('EPERM'));
    expect(count).toBe(4);
    expect(lines).toEqual([
      { listener: 'public', code: 'ENOBUFS', syscall: 'accept', errors: 1, msg: 'listener error; still accepting' },
      { listener: 'public', code: 'EPERM', syscall: 'accept', errors: 3, msg: 'listener error; still accepting' },
    ]);
    const { port } = server.address() as { port: number };
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      connect(port, '127.0.0.1')
        .on('data', (d) => (got += d.toString()))
        .on('end', () => resolve(got))
        .on('error', reject);
    });
    expect(answer).toBe('ok');
    await new Promise((r) => server.close(r));
  });

  it('on the gateway public port: counted in pushgate_accept_errors_total, and clients still connect', async () => {
    const log = logCapture();
    const gw = await startGateway({ logLevel: 'error' }, { logStream: log });
    try {
      gw.app.server.emit('error', acceptError('ENOBUFS'));
      expect(await gw.metrics.registry.getSingleMetricAsString('pushgate_accept_errors_total')).toContain('pushgate_accept_errors_total{listener="public"} 1');
      expect(log.lines.find((l) => l['msg'] === 'listener error; still accepting')).toMatchObject({ listener: 'public', code: 'ENOBUFS' });
      const client = await PushClient.connect(gw.wsUrl);
      expect(await client.hello()).toMatch(/^[0-9a-f]{32}$/);
      client.close();
    } finally {
      await gw.close();
    }
  });
});
