import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { TAGS } from '../ops/openapi.js';
import { authFailed, type Metrics } from '../ops/metrics.js';
import type { DashboardQuery, Store } from '../store/index.js';
import { versionInfo } from '../ops/version.js';
import { ApiError, errorBodySchema, storageCall } from '../webpush/protocol/errors.js';
import { extractVapid, type VapidVerifier } from '../webpush/endpoint/vapid.js';
import { sendError, toApiError } from '../webpush/endpoint/routes.js';
import { effectiveOutcome, hourlyStats, isOutcome, type MessageView, toView } from './outcomes.js';
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

/** The API's schemas: the caller's VAPID key (RFC 8292) is its credential; every refusal is autopush's error body. */
const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;
const api = { tags: [TAGS.dashboard], security: [{ vapid: [] }] } as const;
const optedIn = { type: 'object', properties: { opted_in: { type: 'boolean' } }, required: ['opted_in'] } as const;
const nullable = (type: 'string' | 'integer') => ({ type, nullable: true }) as const;
/** One recorded push: MessageView's fields, no more and no fewer (`satisfies` checks it at compile time). */
const messageView = {
  type: 'object',
  properties: {
    id: nullable('string'),
    received_at: { type: 'string' },
    ttl: nullable('integer'),
    topic: nullable('string'),
    urgency: nullable('string'),
    size: { type: 'integer' },
    subscription: nullable('string'),
    outcome: { type: 'string' },
    status: nullable('integer'),
    errno: nullable('integer'),
    detail: nullable('string'),
    delivered_at: nullable('string'),
    latency_ms: nullable('integer'),
  } satisfies Record<keyof MessageView, object>,
  required: ['id', 'received_at', 'ttl', 'topic', 'urgency', 'size', 'subscription', 'outcome', 'status', 'errno', 'detail', 'delivered_at', 'latency_ms'],
  additionalProperties: false,
} as const;
const messagesAnswer = {
  type: 'object',
  properties: {
    messages: { type: 'array', items: messageView },
    next_cursor: { type: 'string', nullable: true },
  },
  required: ['messages', 'next_cursor'],
} as const;
const statsAnswer = {
  type: 'object',
  properties: {
    hours: {
      type: 'array',
      items: {
        type: 'object',
        properties: { hour: { type: 'string' }, counts: { type: 'object', additionalProperties: { type: 'integer' } } },
        required: ['hour', 'counts'],
      },
    },
    totals: { type: 'object', additionalProperties: { type: 'integer' } },
  },
  required: ['hours', 'totals'],
} as const;
/** A page: its one content type (documented only; the handler sets it and sends a string). */
const pageSchema = (summary: string, type: string) =>
  ({ summary, tags: [TAGS.dashboard], response: { 200: { description: 'OK', content: { [type]: { schema: { type: 'string' } } } } } }) as const;

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

  app.get(
    '/dashboard/api/keys',
    { schema: { ...api, summary: "Whether the caller's VAPID key is opted in", response: { 200: optedIn, ...errors } } },
    async (request) => {
      const key = await caller(request);
      return { opted_in: (await storageCall(() => store.listDashboardKeys())).includes(key) };
    },
  );

  app.post(
    '/dashboard/api/keys',
    { schema: { ...api, summary: "Opt the caller's VAPID key in: its pushes are recorded from now on", response: { 201: optedIn, ...errors } } },
    async (request, reply) => {
      const key = await caller(request);
      if (!(await storageCall(() => tracker.optIn(key))))
        throw new ApiError('rateLimited', 'The dashboard holds as many keys as it may; try again later', 3600);
      reply.code(201);
      return { opted_in: true };
    },
  );

  app.delete(
    '/dashboard/api/keys',
    {
      schema: {
        ...api,
        summary: "Opt the caller's VAPID key out and erase what was recorded for it",
        response: {
          200: { type: 'object', properties: { opted_in: { type: 'boolean' }, erased: { type: 'boolean' } }, required: ['opted_in', 'erased'] },
          ...errors,
        },
      },
    },
    async (request) => {
      const key = await caller(request);
      const erased = await storageCall(() => tracker.optOut(key));
      return { opted_in: false, erased };
    },
  );

  // The query is typed from its JSON schema (one declaration validates, types and documents); the answer's schema
  // uses OpenAPI 3.0's `nullable`, which json-schema-to-ts does not read, so the reply is typed by MessageView.
  app.get<{ Querystring: FromSchema<typeof messagesQuery> }>(
    '/dashboard/api/messages',
    {
      schema: {
        ...api,
        summary: "The caller's recorded pushes, newest first, a page at a time",
        querystring: messagesQuery,
        response: { 200: messagesAnswer, ...errors },
      },
    },
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

  app.get(
    '/dashboard/api/stats',
    { schema: { ...api, summary: "The caller's pushes per hour and outcome", response: { 200: statsAnswer, ...errors } } },
    async (request) => {
      const key = await caller(request);
      const now = Date.now();
      const records = await storageCall(() => store.listDashboardRecords(key, { limit: opts.maxMessages, since: now - opts.maxHours * 3_600_000 }));
      const hours = hourlyStats(records, now, opts.maxHours);
      const totals: Record<string, number> = {};
      for (const h of hours) for (const [o, n] of Object.entries(h.counts)) totals[o] = (totals[o] ?? 0) + n;
      return { hours, totals };
    },
  );

  const frontSchema = {
    summary: 'The front page (HTML), or its facts as JSON for a client that asks for application/json only',
    tags: [TAGS.dashboard],
    response: {
      200: {
        description: 'OK',
        content: {
          'text/html': { schema: { type: 'string' } },
          'application/json': {
            schema: {
              type: 'object',
              properties: { service: { type: 'string' }, version: { type: 'string' }, health: { type: 'string', enum: ['OK', 'ERROR'] } },
              additionalProperties: { type: 'string' },
              required: ['service', 'version', 'health'],
            },
          },
        },
      },
    },
  } as const;
  app.get('/', { schema: frontSchema }, async (request, reply) => {
    let health = 'OK';
    try {
      await store.health();
    } catch {
      health = 'ERROR';
    }
    if (prefersJson(request)) return { service: 'Pushgate', version: page.version, health, ...frontLinks(page) };
    return html(reply, frontPage(page, health));
  });
  app.get('/dashboard', { schema: pageSchema('The dashboard page', 'text/html') }, async (_request, reply) => html(reply, dashboardPage(page)));
  app.get('/dashboard/app.js', { schema: pageSchema("The dashboard page's script", 'text/javascript') }, async (_request, reply) => {
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache');
    return loadScript();
  });
  app.get('/dashboard/style.css', { schema: pageSchema("The pages' style sheet", 'text/css') }, async (_request, reply) => {
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
