import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authFailed, type Metrics } from '../ops/metrics.js';
import type { DashboardQuery, Store } from '../store/index.js';
import { versionInfo } from '../ops/version.js';
import { ApiError, errorBodySchema, storageCall } from '../webpush/protocol/errors.js';
import { TAGS } from '../ops/openapi.js';
import { extractVapid, type VapidVerifier } from '../webpush/endpoint/vapid.js';
import { sendError, toApiError } from '../webpush/endpoint/routes.js';
import { effectiveOutcome, hourlyStats, isOutcome, toView } from './outcomes.js';
import { dashboardPage, frontPage, type PageContext, STYLE } from './pages.js';
import type { DashboardTracker } from './tracker.js';

/**
 * The developer dashboard on the public port: the API (`/dashboard/api/*`, authenticated by the caller's own VAPID
 * key exactly as a push is, RFC 8292), the dashboard page and its script, and the front page at `/`. Every answer
 * carries strict security headers; the pages run no inline script and no inline style.
 */

export interface DashboardOptions {
  store: Store;
  vapid: VapidVerifier;
  metrics: Metrics;
  tracker: DashboardTracker;
  publicUrl: string;
  maxMessages: number;
  maxHours: number;
  /** The XMPP component domains this gateway serves (shown on the front page). */
  xmppDomains: string[];
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const PAGE_LIMIT = 1000;
/** A cursor is a record ref (padded time and a message id, a Fernet token) in base64url. */
const CURSOR_MAX = 1024;

const messagesQuery = {
  type: 'object',
  properties: {
    outcome: { type: 'string', maxLength: 32 },
    since: { type: 'string', maxLength: 40 },
    until: { type: 'string', maxLength: 40 },
    cursor: { type: 'string', maxLength: CURSOR_MAX },
    limit: { type: 'integer', minimum: 1, maximum: PAGE_LIMIT },
  },
  additionalProperties: false,
} as const;

/** The browser script: compiled by the build next to this file; from src (tests, tsx) it is transpiled once. */
let appScript: string | undefined;
async function loadScript(): Promise<string> {
  if (appScript !== undefined) return appScript;
  const built = fileURLToPath(new URL('./web/app.js', import.meta.url));
  if (existsSync(built)) return (appScript = readFileSync(built, 'utf8'));
  const ts = (await import('typescript')).default;
  const source = readFileSync(fileURLToPath(new URL('./web/app.ts', import.meta.url)), 'utf8');
  return (appScript = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText);
}

/** A time filter: an ISO 8601 date or milliseconds since the epoch. */
function parseTime(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new ApiError('invalidRequest', `Invalid time "${v.slice(0, 40)}": use ISO 8601 or milliseconds`);
  return n;
}

/** OpenAPI for the dashboard API: its errors use the push endpoint's error body (401 errno 109 without a valid token). */
const doc = (summary: string, ok: Record<number, unknown> = {}) => ({
  summary,
  tags: [TAGS.dashboard],
  response: { ...ok, '4xx': errorBodySchema, '5xx': errorBodySchema },
});
const optedIn = { type: 'object', properties: { opted_in: { type: 'boolean' } }, required: ['opted_in'] } as const;
/** OpenAPI for the pages (HTML, script, stylesheet): no JSON body to describe. */
const page_ = (summary: string) => ({ summary, tags: [TAGS.dashboard] });

export async function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const { store, vapid, metrics, tracker } = opts;
  const page: PageContext = {
    publicUrl: opts.publicUrl,
    version: versionInfo().version,
    xmppDomains: opts.xmppDomains,
    maxMessages: opts.maxMessages,
    maxHours: opts.maxHours,
  };

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });
  // A query that fails its schema is a 400 here (the push endpoint answers 404 for a bad URL, autopush's errno 102).
  app.setErrorHandler((err: FastifyError, request, reply) =>
    sendError(reply, err.validation ? new ApiError('invalidRequest', `Invalid request: ${err.message}`) : toApiError(err, request.log)),
  );

  /** The caller's identity: the hex sha256 of a VAPID key whose token verifies for this server (aud, exp ≤ 24 h). */
  async function caller(request: FastifyRequest): Promise<string> {
    let reason = 'missing';
    try {
      const creds = extractVapid(request.headers);
      if (creds) {
        reason = 'invalid';
        return (await vapid.verify(creds)).keyHash.toString('hex');
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      reason = err.message.includes('expired') ? 'expired' : 'invalid';
    }
    authFailed(metrics, request.log, 'dashboard', reason);
    throw new ApiError('invalidAuthentication', 'The dashboard needs Authorization: vapid t=<JWT for this server>, k=<your VAPID public key>');
  }

  app.get('/dashboard/api/keys', { schema: doc('Whether the calling VAPID key is opted in') }, async (request) => {
    const key = await caller(request);
    return { opted_in: (await storageCall(() => store.listDashboardKeys())).includes(key) };
  });

  app.post('/dashboard/api/keys', { schema: doc('Opt the calling VAPID key in', { 201: optedIn }) }, async (request, reply) => {
    const key = await caller(request);
    if (!(await storageCall(() => tracker.optIn(key)))) throw new ApiError('rateLimited', 'The dashboard holds as many keys as it may; try again later', 3600);
    reply.code(201);
    return { opted_in: true };
  });

  app.delete('/dashboard/api/keys', { schema: doc('Opt the calling VAPID key out and erase its records') }, async (request) => {
    const key = await caller(request);
    const erased = await storageCall(() => tracker.optOut(key));
    return { opted_in: false, erased };
  });

  app.get<{ Querystring: { outcome?: string; since?: string; until?: string; cursor?: string; limit?: number } }>(
    '/dashboard/api/messages',
    { schema: { querystring: messagesQuery, ...doc('Recent messages of the calling VAPID key, newest first') } },
    async (request) => {
      const key = await caller(request);
      const q = request.query;
      if (q.outcome !== undefined && !isOutcome(q.outcome)) throw new ApiError('invalidRequest', 'Unknown outcome');
      const limit = q.limit ?? 100;
      const before = q.cursor !== undefined ? Buffer.from(q.cursor, 'base64url').toString('utf8') : undefined;
      // `expired` is `stored` past its TTL (decided at read time), so both read stored records and filter.
      const storedOutcome = q.outcome === 'expired' ? 'stored' : q.outcome;
      const query: DashboardQuery = { limit, before, outcome: storedOutcome, since: parseTime(q.since), until: parseTime(q.until) };
      const records = await storageCall(() => store.listDashboardRecords(key, query));
      const now = Date.now();
      const messages = records.filter((r) => q.outcome === undefined || effectiveOutcome(r, now) === q.outcome).map((r) => toView(r, now));
      const last = records.length === limit ? records[records.length - 1] : undefined;
      return { messages, next_cursor: last ? Buffer.from(last.ref).toString('base64url') : null };
    },
  );

  app.get('/dashboard/api/stats', { schema: doc('Counts by outcome per hour for the calling VAPID key') }, async (request) => {
    const key = await caller(request);
    const now = Date.now();
    const records = await storageCall(() => store.listDashboardRecords(key, { limit: opts.maxMessages, since: now - opts.maxHours * 3_600_000 }));
    const hours = hourlyStats(records, now, opts.maxHours);
    const totals: Record<string, number> = {};
    for (const h of hours) for (const [o, n] of Object.entries(h.counts)) totals[o] = (totals[o] ?? 0) + n;
    return { hours, totals };
  });

  app.get('/', { schema: page_('Front page (HTML, or JSON for Accept: application/json)') }, async (request, reply) => {
    let health = 'OK';
    try {
      await store.health();
    } catch {
      health = 'ERROR';
    }
    if (prefersJson(request)) return { service: 'Pushgate', version: page.version, health, ...frontLinks(page) };
    return html(reply, frontPage(page, health));
  });
  app.get('/dashboard', { schema: page_('The developer dashboard (HTML)') }, async (_request, reply) => html(reply, dashboardPage(page)));
  app.get('/dashboard/app.js', { schema: page_("The dashboard's script") }, async (_request, reply) => {
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache');
    return loadScript();
  });
  app.get('/dashboard/style.css', { schema: page_("The pages' stylesheet") }, async (_request, reply) => {
    reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache');
    return STYLE;
  });
}

function html(reply: FastifyReply, body: string): string {
  reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache');
  return body;
}

/** A client that asks for JSON and not HTML (API clients, curl -H 'Accept: application/json') gets JSON. */
function prefersJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

export function frontLinks(p: PageContext): Record<string, string> {
  return {
    websocket: p.publicUrl.replace(/^http/, 'ws') + '/',
    dashboard: `${p.publicUrl}/dashboard`,
    api_docs: `${p.publicUrl}/openapi.json`,
    heartbeat: `${p.publicUrl}/__heartbeat__`,
  };
}
