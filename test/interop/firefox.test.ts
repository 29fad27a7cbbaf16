import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { sendWebPush, type Subscription } from '../helpers/push.js';

/**
 * A real browser: Debian's Firefox ESR, headless, with its push service pointed at Pushgate through profile
 * prefs. A page subscribes with a VAPID key through a service worker; the test sends with web-push; the
 * service worker reports the text it decrypted.
 */

const FIREFOX = process.env['FIREFOX'] ?? '/usr/bin/firefox-esr';
const vapid = webpush.generateVAPIDKeys();

const PAGE = (key: string) => `<!doctype html><meta charset="utf-8"><title>push test</title><script>
const report = (path, body) => fetch(path, { method: 'POST', body: JSON.stringify(body) });
const b64 = (s) => { s = s.replace(/-/g, '+').replace(/_/g, '/'); const r = atob(s + '==='.slice((s.length + 3) % 4)); return Uint8Array.from(r, (c) => c.charCodeAt(0)); };
(async () => {
  try {
    const reg = await navigator.serviceWorker.register('/sw.js');
    await navigator.serviceWorker.ready;
    // Firefox starts its push service as an idle task after start-up: a subscribe() made before that
    // never settles, so poll getSubscription() with a short timeout until it answers.
    for (;;) {
      const answered = await Promise.race([reg.pushManager.getSubscription().then(() => true), new Promise((r) => setTimeout(() => r(false), 1500))]);
      if (answered) break;
    }
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64('${key}') });
    await report('/subscription', sub.toJSON());
  } catch (e) {
    await report('/error', { message: String(e) });
  }
})();
</script>`;

const SW = `self.addEventListener('push', (event) => {
  event.waitUntil(fetch('/received', { method: 'POST', body: JSON.stringify({ text: event.data ? event.data.text() : null }) }));
});
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));`;

/** The page's server: serves the page and the worker, and turns their reports into awaitable events. */
class PageServer {
  server: Server;
  private waiting = new Map<string, (body: unknown) => void>();
  private received = new Map<string, unknown[]>();

  constructor() {
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE(vapid.publicKey));
      } else if (req.method === 'GET' && req.url === '/sw.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(SW);
      } else if (req.method === 'POST') {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          res.writeHead(204).end();
          this.deliver(req.url ?? '', JSON.parse(body) as unknown);
        });
      } else {
        res.writeHead(404).end();
      }
    });
  }

  private deliver(path: string, body: unknown): void {
    const waiter = this.waiting.get(path);
    if (waiter) {
      this.waiting.delete(path);
      waiter(body);
    } else {
      this.received.set(path, [...(this.received.get(path) ?? []), body]);
    }
  }

  next(path: string, error: Promise<never>): Promise<unknown> {
    const queued = this.received.get(path);
    if (queued?.length) return Promise.resolve(queued.shift());
    return Promise.race([new Promise((resolve) => this.waiting.set(path, resolve)), error]);
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }
}

function writeProfile(dir: string, gatewayPort: number): void {
  const prefs: Record<string, string | number | boolean> = {
    'dom.push.serverURL': `ws://127.0.0.1:${gatewayPort}/`,
    'dom.push.testing.allowInsecureServerURL': true,
    'dom.push.connection.enabled': true,
    'dom.push.testing.ignorePermission': true,
    'dom.push.loglevel': 'Debug',
    'devtools.console.stdout.chrome': true,
    'dom.serviceWorkers.enabled': true,
    'browser.shell.checkDefaultBrowser': false,
    'browser.startup.homepage_override.mstone': 'ignore',
    'datareporting.policy.dataSubmissionEnabled': false,
    'toolkit.telemetry.reportingpolicy.firstRun': false,
    'app.update.enabled': false,
    'services.settings.server': 'http://127.0.0.1:9/',
    'network.connectivity-service.enabled': false,
    'network.captive-portal-service.enabled': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'extensions.update.enabled': false,
  };
  writeFileSync(
    join(dir, 'user.js'),
    Object.entries(prefs)
      .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
      .join('\n') + '\n',
  );
}

describe('a real Firefox ESR against Pushgate', () => {
  let gw: TestGateway;
  let page: PageServer;
  let firefox: ChildProcess;
  let profile: string;
  let failed: Promise<never>;
  const log: string[] = [];

  beforeAll(async () => {
    expect(existsSync(FIREFOX), `${FIREFOX} is missing: npm test installs firefox-esr with apt`).toBe(true);
    gw = await startGateway();
    page = new PageServer();
    const pagePort = await page.listen();
    profile = mkdtempSync(join(tmpdir(), 'pushgate-firefox-'));
    writeProfile(profile, gw.config.port);
    firefox = spawn(FIREFOX, ['--headless', '--no-remote', '--new-instance', '--profile', profile, `http://127.0.0.1:${pagePort}/`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MOZ_HEADLESS: '1' },
    });
    firefox.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    firefox.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    failed = new Promise<never>((_, reject) => {
      firefox.once('exit', (code) => reject(new Error(`firefox exited (${code}):\n${log.join('').slice(-3000)}`)));
    });
    failed.catch(() => {});
  }, 60_000);

  afterAll(async () => {
    if (firefox && firefox.exitCode === null) {
      const exited = new Promise((r) => firefox.once('exit', r));
      firefox.kill('SIGTERM');
      await exited;
    }
    await gw?.close();
    page?.server.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('subscribes through Pushgate and its service worker receives exactly what web-push sent', async () => {
    const pageError = page.next('/error', failed).then((e) => {
      throw new Error(`page failed: ${JSON.stringify(e)}`);
    });
    const sub = (await Promise.race([page.next('/subscription', failed), pageError])) as Subscription;
    expect(sub.endpoint.startsWith(`${gw.config.publicUrl}/wpush/v2/`)).toBe(true);

    for (const [text, contentEncoding] of [
      ['Hello Firefox, from Pushgate ✓', 'aes128gcm'],
      ['and once more with legacy aesgcm', 'aesgcm'],
    ] as const) {
      const res = await sendWebPush(sub, text, { vapidDetails: { subject: 'mailto:test@example.com', ...vapid }, contentEncoding });
      expect(res.status).toBe(201);
      expect(await page.next('/received', failed)).toEqual({ text });
    }
  }, 90_000);
});
