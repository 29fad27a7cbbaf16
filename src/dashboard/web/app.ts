/**
 * The dashboard page's script (compiled by tsc, served at /dashboard/app.js; no inline script anywhere). It signs
 * the dashboard's VAPID tokens in the browser with WebCrypto (RFC 8292 §2: ES256 JWT, aud = this server, exp ≤ 24 h)
 * from the developer's private key, which never leaves the page; or it uses a token made by `pushgate vapid-token`.
 * It polls the API every few seconds and renders the table, the chart (inline SVG) and the filters.
 */
import type { MessageView } from './view.js';

const POLL_MS = 3000;
/** Tokens the page signs live 12 hours (RFC 8292 allows up to 24) and are re-signed an hour before they end. */
const TOKEN_SECONDS = 12 * 3600;

type Auth = () => Promise<string>;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const app = $('app');
const audience = app.dataset['audience'] ?? location.origin;
let auth: Auth | null = null;
let keyId = '';
let pollTimer: number | undefined;
let older: MessageView[] = [];
let olderCursor: string | null = null;

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(s: string): Uint8Array<ArrayBuffer> {
  const t = s.trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const bin = atob(t + '='.repeat((4 - (t.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function status(text: string): void {
  $('status').textContent = text;
}

/** A signing key and its public key (base64url, uncompressed point) from what the developer gave. */
async function importKey(privateText: string, publicText: string): Promise<{ key: CryptoKey; publicKey: string }> {
  const text = privateText.trim();
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  if (text.includes('BEGIN EC PRIVATE KEY')) throw new Error('SEC1 PEM is not supported by WebCrypto: convert with openssl pkcs8 -topk8 -nocrypt');
  if (text.includes('BEGIN PRIVATE KEY')) {
    const der = fromB64url(
      text
        .replace(/-----[^-]+-----/g, '')
        .replace(/\s+/g, '')
        .replace(/\+/g, '-')
        .replace(/\//g, '_'),
    );
    const extractable = await crypto.subtle.importKey('pkcs8', der, alg, true, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', extractable);
    const key = await crypto.subtle.importKey('jwk', jwk, alg, false, ['sign']);
    return { key, publicKey: publicFromJwk(jwk) };
  }
  let d = text;
  let pub = publicText.trim();
  if (text.startsWith('{')) {
    const json = JSON.parse(text) as { privateKey?: string; publicKey?: string };
    d = json.privateKey ?? '';
    pub = json.publicKey ?? pub;
  }
  if (!d || !pub) throw new Error('Give the public key too (base64url), or use a PEM or JSON key');
  const point = fromB64url(pub);
  if (point.length !== 65 || point[0] !== 4) throw new Error('The public key must be an uncompressed P-256 point (65 bytes, base64url)');
  const jwk: JsonWebKey = { kty: 'EC', crv: 'P-256', d: b64url(fromB64url(d)), x: b64url(point.slice(1, 33)), y: b64url(point.slice(33)), ext: false };
  const key = await crypto.subtle.importKey('jwk', jwk, alg, false, ['sign']);
  return { key, publicKey: b64url(point) };
}

function publicFromJwk(jwk: JsonWebKey): string {
  const point = new Uint8Array(65);
  point[0] = 4;
  point.set(fromB64url(jwk.x ?? ''), 1);
  point.set(fromB64url(jwk.y ?? ''), 33);
  return b64url(point);
}

/** An ES256 JWT: WebCrypto's ECDSA signature is already the JWS form (r ‖ s, RFC 7518 §3.4). */
async function signToken(key: CryptoKey): Promise<{ token: string; exp: number }> {
  const enc = new TextEncoder();
  const exp = Math.floor(Date.now() / 1000) + TOKEN_SECONDS;
  const head = b64url(enc.encode(JSON.stringify({ typ: 'JWT', alg: 'ES256' })));
  const body = b64url(enc.encode(JSON.stringify({ aud: audience, exp })));
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, enc.encode(`${head}.${body}`));
  return { token: `${head}.${body}.${b64url(new Uint8Array(sig))}`, exp };
}

function keyAuth(key: CryptoKey, publicKey: string): Auth {
  let current: { header: string; exp: number } | null = null;
  return async () => {
    if (!current || current.exp - 3600 < Date.now() / 1000) {
      const { token, exp } = await signToken(key);
      current = { header: `vapid t=${token}, k=${publicKey}`, exp };
    }
    return current.header;
  };
}

async function api<T>(method: string, path: string): Promise<T> {
  if (!auth) throw new Error('not signed in');
  const res = await fetch(path, { method, headers: { authorization: await auth(), accept: 'application/json' } });
  const body = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(`${res.status}: ${body.message ?? 'request failed'}`);
  return body;
}

async function signedIn(a: Auth, publicKey: string): Promise<void> {
  auth = a;
  keyId = publicKey.slice(0, 12) + '…';
  const { opted_in } = await api<{ opted_in: boolean }>('GET', '/dashboard/api/keys');
  $('signin').hidden = true;
  $('account').hidden = false;
  $('key-id').textContent = keyId;
  showOptState(opted_in);
  status('Signed in.');
}

function showOptState(optedIn: boolean): void {
  $('opt-state').textContent = optedIn ? 'opted in: your messages are recorded' : 'not opted in: nothing is recorded';
  $('opt-in').hidden = optedIn;
  $('opt-out').hidden = !optedIn;
  $('activity').hidden = !optedIn;
  window.clearTimeout(pollTimer);
  if (optedIn) void poll();
}

function query(extra: Record<string, string> = {}): string {
  const p = new URLSearchParams(extra);
  const outcome = $<HTMLSelectElement>('f-outcome').value;
  if (outcome) p.set('outcome', outcome);
  const since = $<HTMLInputElement>('f-since').value;
  if (since) p.set('since', new Date(since).toISOString());
  const s = p.toString();
  return s ? `?${s}` : '';
}

async function poll(): Promise<void> {
  window.clearTimeout(pollTimer);
  try {
    const [page, stats] = await Promise.all([
      api<{ messages: MessageView[]; next_cursor: string | null }>('GET', `/dashboard/api/messages${query({ limit: '100' })}`),
      api<{ totals: Record<string, number> }>('GET', '/dashboard/api/stats'),
    ]);
    if (older.length === 0) olderCursor = page.next_cursor;
    renderTable([...page.messages, ...older.filter((m) => !page.messages.some((n) => n.id === m.id && n.received_at === m.received_at))]);
    renderChart(stats.totals);
    $('older').hidden = olderCursor === null;
  } catch (err) {
    status(`Could not load messages: ${(err as Error).message}`);
  }
  if (auth) pollTimer = window.setTimeout(() => void poll(), POLL_MS);
}

function cell(row: HTMLTableRowElement, text: string, cls?: string): void {
  const td = row.insertCell();
  if (cls) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    td.append(span);
  } else td.textContent = text;
}

function renderTable(messages: MessageView[]): void {
  const body = document.querySelector('#messages tbody')!;
  const rows = messages.map((m) => {
    const row = document.createElement('tr');
    row.dataset['outcome'] = m.outcome;
    cell(row, new Date(m.received_at).toLocaleString());
    cell(row, m.outcome, `outcome o-${m.outcome}`);
    cell(row, m.status !== null ? `${m.status} / ${m.errno ?? ''}${m.detail ? ` (${m.detail})` : ''}` : (m.detail ?? ''));
    cell(row, m.ttl !== null ? String(m.ttl) : '');
    cell(row, m.urgency ?? '');
    cell(row, m.topic ?? '');
    cell(row, `${m.size} B`);
    cell(row, m.subscription ?? '');
    cell(row, m.latency_ms !== null ? `${m.latency_ms} ms` : '');
    cell(row, m.id ? `${m.id.slice(0, 10)}…` : '');
    return row;
  });
  body.replaceChildren(...rows);
}

const SVG = 'http://www.w3.org/2000/svg';

/** Horizontal bars, one per outcome, with the count as text (so the chart reads without colour too). */
function renderChart(totals: Record<string, number>): void {
  const entries = Object.entries(totals);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  const svg = document.createElementNS(SVG, 'svg');
  const rowH = 20;
  svg.setAttribute('viewBox', `0 0 520 ${entries.length * rowH}`);
  svg.setAttribute('width', '520');
  svg.setAttribute('height', String(entries.length * rowH));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', entries.map(([o, n]) => `${o} ${n}`).join(', '));
  entries.forEach(([o, n], i) => {
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', '0');
    label.setAttribute('y', String(i * rowH + 14));
    label.textContent = o;
    const bar = document.createElementNS(SVG, 'rect');
    bar.setAttribute('x', '170');
    bar.setAttribute('y', String(i * rowH + 3));
    bar.setAttribute('height', '14');
    bar.setAttribute('width', String(Math.round((n / max) * 300)));
    bar.setAttribute('class', `bar-${o}`);
    const count = document.createElementNS(SVG, 'text');
    count.setAttribute('x', String(176 + Math.round((n / max) * 300)));
    count.setAttribute('y', String(i * rowH + 14));
    count.textContent = String(n);
    svg.append(label, bar, count);
  });
  $('chart').replaceChildren(svg);
}

async function readKeyText(): Promise<string> {
  const file = $<HTMLInputElement>('key-file').files?.[0];
  return file ? file.text() : $<HTMLTextAreaElement>('private-key').value;
}

$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    try {
      const { key, publicKey } = await importKey(await readKeyText(), $<HTMLInputElement>('public-key').value);
      $<HTMLTextAreaElement>('private-key').value = '';
      await signedIn(keyAuth(key, publicKey), publicKey);
    } catch (err) {
      status(`Sign-in failed: ${(err as Error).message}`);
    }
  })();
});

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $<HTMLTextAreaElement>('token')
    .value.trim()
    .replace(/^authorization:\s*/i, '');
  const header = text.toLowerCase().startsWith('vapid ') ? text : `vapid ${text}`;
  const k = /k=([A-Za-z0-9_-]+)/.exec(header)?.[1] ?? '';
  signedIn(async () => header, k).catch((err: Error) => status(`Sign-in failed: ${err.message}`));
});

// A dropped key file is read like a chosen one.
$('signin').addEventListener('dragover', (ev) => ev.preventDefault());
$('signin').addEventListener('drop', (ev) => {
  ev.preventDefault();
  const file = ev.dataTransfer?.files[0];
  if (file) void file.text().then((t) => ($<HTMLTextAreaElement>('private-key').value = t));
});

$('opt-in').addEventListener('click', () => {
  api<{ opted_in: boolean }>('POST', '/dashboard/api/keys').then(
    () => (showOptState(true), status('Opted in: messages signed with this key are recorded from now on.')),
    (err: Error) => status(`Opt-in failed: ${err.message}`),
  );
});

$('opt-out').addEventListener('click', () => {
  api<{ opted_in: boolean }>('DELETE', '/dashboard/api/keys').then(
    () => (showOptState(false), status('Opted out: everything kept for this key was erased.')),
    (err: Error) => status(`Opt-out failed: ${err.message}`),
  );
});

$('sign-out').addEventListener('click', () => {
  auth = null;
  window.clearTimeout(pollTimer);
  $('signin').hidden = false;
  $('account').hidden = true;
  $('activity').hidden = true;
  status('Signed out.');
});

$('older').addEventListener('click', () => {
  if (olderCursor === null) return;
  api<{ messages: MessageView[]; next_cursor: string | null }>('GET', `/dashboard/api/messages${query({ limit: '100', cursor: olderCursor })}`).then(
    (page) => {
      older = [...older, ...page.messages];
      olderCursor = page.next_cursor;
      void poll();
    },
    (err: Error) => status(err.message),
  );
});

for (const id of ['f-outcome', 'f-since']) {
  $(id).addEventListener('change', () => {
    older = [];
    olderCursor = null;
    void poll();
  });
}
