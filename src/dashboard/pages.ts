import { errnoGlossary, OUTCOMES } from './outcomes.js';

/**
 * The HTML of the front page and the dashboard, rendered on the server from typed values (every value escaped),
 * and their one stylesheet. No inline script or style: the Content-Security-Policy forbids both.
 */

export interface PageContext {
  publicUrl: string;
  version: string;
  xmppDomains: string[];
  maxMessages: number;
  maxHours: number;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function layout(title: string, body: string, script = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/style.css">
${script ? '<script type="module" src="/dashboard/app.js"></script>\n' : ''}</head>
<body>
${body}
</body>
</html>
`;
}

export function frontPage(p: PageContext, health: string): string {
  const e = escapeHtml;
  const ws = p.publicUrl.replace(/^http/, 'ws') + '/';
  const domain = p.xmppDomains[0] ?? 'push.example.com';
  return layout(
    'Pushgate',
    `<header><h1>Pushgate</h1><p>An open-source push gateway: Web Push for browsers (autopush-compatible), XEP-0357 push for XMPP servers, and bridges to FCM, APNs and ADM.</p></header>
<main>
<section aria-labelledby="status-h"><h2 id="status-h">This server</h2>
<dl>
<dt>Version</dt><dd id="version">${e(p.version)}</dd>
<dt>Health</dt><dd id="health" class="${health === 'OK' ? 'ok' : 'bad'}">${e(health)}</dd>
<dt>Public URL</dt><dd><code>${e(p.publicUrl)}</code></dd>
</dl></section>
<section aria-labelledby="firefox-h"><h2 id="firefox-h">Firefox</h2>
<p>In <code>about:config</code>, set <code>dom.push.serverURL</code> to:</p>
<pre><code id="ws-url">${e(ws)}</code></pre></section>
<section aria-labelledby="xmpp-h"><h2 id="xmpp-h">XMPP server (XEP-0357)</h2>
<p>Pushgate attaches to your XMPP server as an external component (XEP-0114). In Prosody:</p>
<pre><code>Component "${e(domain)}"
  component_secret = "the value of PUSHGATE_XMPP_PASSWORD"</code></pre>
<p>Clients (Conversations and others) then enable push with the app server JID <code>${e(domain)}</code>; ejabberd's <code>listen</code> <code>ejabberd_service</code> works the same way.</p></section>
<section aria-labelledby="mim-h"><h2 id="mim-h">MongooseIM</h2>
<p>Point MongooseIM's MongoosePush pool at this server (it speaks the MongoosePush v3 API, <code>POST /v3/notification/{device}</code>):</p>
<pre><code>[outgoing_pools.http.mongoose_push_http]
  connection.host = "${e(p.publicUrl)}"

[modules.mod_push_service_mongoosepush]
  pool_name = "mongoose_push_http"
  api_version = "v3"</code></pre></section>
<section aria-labelledby="links-h"><h2 id="links-h">More</h2>
<ul>
<li><a href="/dashboard">Developer dashboard</a>: see what happened to the pushes you signed with your VAPID key.</li>
<li><a href="/openapi.json">API documentation (OpenAPI)</a></li>
<li><a href="/__heartbeat__">Health check</a> and <a href="/__version__">version</a></li>
</ul></section>
</main>`,
  );
}

export function dashboardPage(p: PageContext): string {
  const e = escapeHtml;
  const outcomes = Object.entries(OUTCOMES)
    .map(([o, text]) => `<dt><span class="outcome o-${o}">${e(o)}</span></dt><dd>${e(text)}</dd>`)
    .join('\n');
  const errnos = errnoGlossary()
    .map((g) => `<tr><td>${g.errno}</td><td>${g.statuses.join(', ')}</td><td>${e(g.advice)}</td></tr>`)
    .join('\n');
  const options = Object.keys(OUTCOMES)
    .map((o) => `<option value="${e(o)}">${e(o)}</option>`)
    .join('');
  return layout(
    'Pushgate developer dashboard',
    `<header><h1>Developer dashboard</h1><p><a href="/">Pushgate</a> ${e(p.version)}: what happened to the pushes you sent.</p></header>
<main id="app" data-audience="${e(p.publicUrl)}">
<section id="signin" aria-labelledby="signin-h"><h2 id="signin-h">Sign in with your VAPID key</h2>
<p>Your key never leaves this page: the page signs a short-lived token (ES256, <code>aud</code> ${e(p.publicUrl)}) with it in your browser.</p>
<form id="key-form">
<label for="private-key">Private key: PEM (PKCS#8), the JSON of <code>web-push generate-vapid-keys --json</code>, or base64url</label>
<textarea id="private-key" rows="4" autocomplete="off" spellcheck="false"></textarea>
<label for="key-file">…or choose or drop a key file</label>
<input id="key-file" type="file">
<label for="public-key">Public key (base64url; needed only with a bare base64url private key)</label>
<input id="public-key" type="text" autocomplete="off" spellcheck="false">
<button type="submit">Sign in with key</button>
</form>
<form id="token-form">
<label for="token">…or paste a token made by <code>pushgate vapid-token</code> (<code>vapid t=…, k=…</code>)</label>
<textarea id="token" rows="3" autocomplete="off" spellcheck="false"></textarea>
<button type="submit">Sign in with token</button>
</form>
</section>
<section id="account" hidden aria-labelledby="account-h"><h2 id="account-h">Your key</h2>
<p>Key <code id="key-id"></code>: <span id="opt-state"></span></p>
<button id="opt-in" type="button">Opt in: keep metadata of my messages</button>
<button id="opt-out" type="button">Opt out and erase</button>
<button id="sign-out" type="button">Sign out</button>
<p>Kept: the last ${p.maxMessages} messages and ${p.maxHours} hours, metadata only (never a payload or an endpoint).</p>
</section>
<p id="status" role="status" aria-live="polite"></p>
<section id="activity" hidden aria-labelledby="activity-h"><h2 id="activity-h">Recent messages</h2>
<figure><figcaption>Outcomes, last ${p.maxHours} hours</figcaption><div id="chart"></div></figure>
<form id="filters">
<label for="f-outcome">Outcome</label>
<select id="f-outcome"><option value="">all</option>${options}</select>
<label for="f-since">Since</label>
<input id="f-since" type="datetime-local">
</form>
<div class="table-wrap"><table id="messages"><caption>Newest first; updates every few seconds</caption>
<thead><tr><th scope="col">Received</th><th scope="col">Outcome</th><th scope="col">Status / errno</th><th scope="col">TTL</th><th scope="col">Urgency</th><th scope="col">Topic</th><th scope="col">Size</th><th scope="col">Subscription</th><th scope="col">Latency</th><th scope="col">Id</th></tr></thead>
<tbody></tbody></table></div>
<button id="older" type="button" hidden>Older messages</button>
</section>
<section aria-labelledby="help-h"><h2 id="help-h">What the outcomes mean</h2><dl id="outcomes">${outcomes}</dl>
<h3>Errors (errno)</h3>
<table id="errnos"><thead><tr><th scope="col">errno</th><th scope="col">HTTP status</th><th scope="col">Meaning and what to do</th></tr></thead><tbody>
${errnos}
</tbody></table></section>
</main>`,
    true,
  );
}

/** Colours meet WCAG AA contrast on their backgrounds; focus is always visible. */
export const STYLE = `:root { color-scheme: light; --fg: #1b1b1f; --muted: #4a4a55; --bg: #fff; --accent: #0b57d0; --line: #d0d0d7; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header { border-bottom: 1px solid var(--line); }
h1 { margin: 1rem 0 0.25rem; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #e37400; outline-offset: 2px; }
pre { background: #f3f3f6; padding: 0.75rem; overflow-x: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
.ok { color: #13653a; font-weight: 600; }
.bad { color: #a50e0e; font-weight: 600; }
form { display: grid; gap: 0.4rem; max-width: 40rem; margin: 0.75rem 0; }
#filters { grid-template-columns: max-content 12rem max-content 14rem; align-items: center; max-width: none; }
textarea, input, select, button { font: inherit; }
textarea, input[type=text] { width: 100%; padding: 0.4rem; border: 1px solid #767680; }
button { padding: 0.4rem 0.9rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; justify-self: start; }
#account button { margin: 0 0.5rem 0.5rem 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
caption { text-align: left; color: var(--muted); }
.outcome { display: inline-block; padding: 0 0.4rem; border-radius: 3px; color: #fff; background: #4a4a55; font-weight: 600; }
.o-delivered, .o-delivered_from_storage, .o-bridged { background: #13653a; }
.o-stored { background: #0b57d0; }
.o-replaced, .o-deleted { background: #5f4b8b; }
.o-expired, .o-dropped { background: #8a4b00; }
.o-rejected { background: #a50e0e; }
#chart svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
.bar-delivered, .bar-delivered_from_storage, .bar-bridged { fill: #13653a; }
.bar-stored { fill: #0b57d0; }
.bar-replaced, .bar-deleted { fill: #5f4b8b; }
.bar-expired, .bar-dropped { fill: #8a4b00; }
.bar-rejected { fill: #a50e0e; }
[hidden] { display: none !important; }
`;
