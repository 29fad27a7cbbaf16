import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { dashboardToken, readVapidKey } from '../../src/dashboard/token.js';
import { BrowserKeys } from '../helpers/browser-keys.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { channelId, sendWebPush } from '../helpers/push.js';
import { PushClient } from '../helpers/ws-client.js';

/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core. The page signs its own VAPID token
 * with WebCrypto from a generated key, opts in, and watches pushes sent with `web-push` appear with their outcomes.
 * It saves docs/dashboard.png, the screenshot the README shows.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('dashboard in Chromium', () => {
  let gw: TestGateway;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];
  const keys = webpush.generateVAPIDKeys();

  beforeAll(async () => {
    gw = await startGateway({ dashboardFlushMs: 100 });
    profile = mkdtempSync(join(tmpdir(), 'pushgate-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
    page = context.pages()[0] ?? (await context.newPage());
    // A CSP violation or a script error shows up here.
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    await gw?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows the front page with working links and labelled, keyboard-reachable controls', async () => {
    await page.goto(`${gw.url}/`);
    await expect(page.locator('#ws-url').textContent()).resolves.toBe(gw.wsUrl);
    await page.keyboard.press('Tab');
    // Page-side code is given as strings: the test files are type-checked without the DOM library.
    expect(await page.evaluate('document.activeElement?.tagName')).toBe('A');
    await page.click('a[href="/dashboard"]');
    await page.waitForURL(`${gw.url}/dashboard`);
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input, textarea, select')].filter((el) => el.labels.length === 0).map((el) => el.id)",
    );
    expect(unlabelled).toEqual([]);
  });

  it('signs in with a pasted key, opts in, and shows pushes with their outcomes as they happen', async () => {
    await page.fill('#private-key', JSON.stringify(keys));
    await page.click('button:has-text("Sign in with key")');
    await page.waitForSelector('#opt-in:visible', { timeout: 10_000 });
    await page.click('#opt-in');
    await page.waitForSelector('#status:has-text("Opted in")', { timeout: 10_000 });

    const browser = new BrowserKeys();
    const client = await PushClient.connect(gw.wsUrl);
    const uaid = await client.hello();
    const chid = channelId();
    const endpoint = (await client.register(chid, keys.publicKey))['pushEndpoint'] as string;
    const send = (text: string, options: webpush.RequestOptions = {}) =>
      sendWebPush(browser.subscription(endpoint), text, { vapidDetails: { subject: 'mailto:dev@example.com', ...keys }, ...options });

    expect((await send('hello', { TTL: 60, urgency: 'high' })).status).toBe(201);
    const n = await client.next();
    client.ack(chid, n['version'] as string);
    client.close();
    await client.closedWith;
    expect((await send('while away', { TTL: 600, topic: 'news' })).status).toBe(201);
    expect((await send('now or never', { TTL: 0 })).status).toBe(201);
    // Beyond PUSHGATE_MAX_DATA_BYTES (5630 by default, autopush's max_data_bytes): 413 errno 104.
    expect((await send('x'.repeat(6000), { TTL: 60 })).status).toBe(413);

    // The page polls: each outcome appears without a reload.
    for (const outcome of ['delivered', 'stored', 'dropped', 'rejected']) {
      await page.waitForSelector(`#messages tbody tr[data-outcome="${outcome}"]`, { timeout: 15_000 });
    }
    await page.waitForSelector('#messages tbody tr[data-outcome="delivered"] >> text=ms', { timeout: 15_000 });
    await expect(page.locator('#messages tbody tr[data-outcome="rejected"]').first().textContent()).resolves.toContain('413 / 104');
    await expect(page.locator('#chart svg').getAttribute('aria-label')).resolves.toMatch(/delivered 1, stored 1.*dropped 1.*rejected 1/);

    // Back online: the stored message is delivered from storage and the row changes by itself.
    const again = await PushClient.connect(gw.wsUrl);
    await again.hello(uaid);
    const stored = await again.next();
    again.ack(chid, stored['version'] as string);
    await page.waitForSelector('#messages tbody tr[data-outcome="delivered_from_storage"]', { timeout: 15_000 });
    again.close();

    // The filter narrows the table.
    await page.selectOption('#f-outcome', 'rejected');
    // (Polled from the test: the page's CSP forbids the string evaluation waitForFunction would need.)
    await expect.poll(() => page.locator('#messages tbody tr:not([data-outcome="rejected"])').count(), { timeout: 15_000 }).toBe(0);
    expect(await page.locator('#messages tbody tr[data-outcome="rejected"]').count()).toBe(1);

    await page.selectOption('#f-outcome', '');
    await page.waitForSelector('#messages tbody tr[data-outcome="delivered"]');
    mkdirSync('docs', { recursive: true });
    await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
    expect(problems).toEqual([]);
  }, 90_000);

  it('signs in with a token made by `pushgate vapid-token`', async () => {
    await page.click('#sign-out');
    const token = await dashboardToken(readVapidKey(`${keys.publicKey}.${keys.privateKey}`), gw.config.publicUrl);
    await page.fill('#token', token);
    await page.click('button:has-text("Sign in with token")');
    await page.waitForSelector('#opt-state:has-text("opted in")', { timeout: 10_000 });
    await page.waitForSelector('#messages tbody tr[data-outcome="delivered"]', { timeout: 15_000 });
    expect(problems).toEqual([]);
  }, 60_000);
});
