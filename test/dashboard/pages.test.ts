import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { PushClient } from '../helpers/ws-client.js';

/** The front page and the dashboard page over HTTP: security headers, content negotiation, and the websocket at `/`. */
describe('front page and dashboard page', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.close();
  });

  function expectStrictHeaders(res: Response): void {
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  }

  it('serves an HTML front page with version, health, the Firefox, XMPP and MongooseIM settings, and links', async () => {
    const res = await fetch(`${gw.url}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expectStrictHeaders(res);
    const html = await res.text();
    expect(html).toContain('dom.push.serverURL');
    expect(html).toContain(`${gw.wsUrl}`);
    expect(html).toContain('<dd id="health" class="ok">OK</dd>');
    expect(html).toContain('href="/dashboard"');
    expect(html).toContain('href="/openapi.json"');
    expect(html).toContain('mod_push_service_mongoosepush');
    // No inline script or style: only the external script and stylesheet.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/\sstyle=|<style/);
  });

  it('answers JSON at / for a client that asks for JSON', async () => {
    const res = await fetch(`${gw.url}/`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(body['service']).toBe('Pushgate');
    expect(body['health']).toBe('OK');
    expect(body['websocket']).toBe(gw.wsUrl);
  });

  it('keeps the websocket door at / working beside the page', async () => {
    const client = await PushClient.connect(gw.wsUrl);
    expect(await client.hello()).toMatch(/^[0-9a-f]{32}$/);
    client.close();
  });

  it('serves the dashboard page, its script and its stylesheet with strict headers', async () => {
    const page = await fetch(`${gw.url}/dashboard`);
    expectStrictHeaders(page);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/dashboard/app.js"></script>');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    expect(html).toContain(`data-audience="${gw.config.publicUrl}"`);
    const js = await fetch(`${gw.url}/dashboard/app.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('crypto.subtle');
    const css = await fetch(`${gw.url}/dashboard/style.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });
});
