/**
 * The request bodies of MongoosePush's send API, parsed at the edge into one typed PushRequest, with the
 * validation errors MongoosePush itself answers (422 and OpenApiSpex's `{"errors": [{title, source, message}]}`).
 *
 * v1 takes the flat body (`FlatNotification`: service, title, body, badge, tag, click_action, topic, data,
 * mode; service, body and title required). v2 and v3 take the deep body (`Deep.*Notification`: service, mode,
 * priority, time_to_live, mutable_content, tags, topic, and `alert` {title, body, badge, click_action, tag,
 * sound} and/or `data`). As MongoosePush's CastAndValidate plug does, a deep body with `alert` and `data` is
 * checked as a mixed notification, one with only `data` as a silent one, anything else as an alert one (so a
 * body with neither is "Missing field: alert"). Unknown fields are refused at every level.
 *
 * Values are cast as OpenApiSpex casts them: an integer may come as a decimal string ("3600") and a boolean
 * as "true"/"false", which matters because MongooseIM forwards publish-options (all strings) as they are.
 * Deliberate difference: `null` in an optional field counts as absent (MongooseIM 2.x sends `"topic": null`
 * and `"click_action": null`); OpenApiSpex would refuse it.
 */

export type ApiVersion = 'v1' | 'v2' | 'v3';

export interface PushAlert {
  title: string;
  body: string;
  badge?: number;
  clickAction?: string;
  tag?: string;
  sound?: string;
}

export interface PushRequest {
  service: 'fcm' | 'apns';
  /** Selects the app (MongoosePush's pool): prod unless asked. */
  mode: 'prod' | 'dev';
  priority?: 'normal' | 'high';
  timeToLive?: number;
  mutableContent: boolean;
  /** APNs: the apns-topic. */
  topic?: string;
  /** MongoosePush pool-selection tags. */
  tags: string[];
  alert?: PushAlert;
  data?: Record<string, unknown>;
}

/** One entry of OpenApiSpex's error list. */
export interface CastError {
  title: 'Invalid value';
  source: { pointer: string };
  message: string;
}

export type Parsed = { ok: true; request: PushRequest } | { ok: false; errors: CastError[] };

type Kind = 'string' | 'integer' | 'boolean' | 'object' | 'array';
interface Field {
  kind: Kind;
  enum?: readonly string[];
  items?: 'string';
}

const ALERT_FIELDS: Record<string, Field> = {
  body: { kind: 'string' },
  title: { kind: 'string' },
  badge: { kind: 'integer' },
  click_action: { kind: 'string' },
  tag: { kind: 'string' },
  sound: { kind: 'string' },
};

const SERVICE: Field = { kind: 'string', enum: ['fcm', 'apns'] };
const MODE: Field = { kind: 'string', enum: ['prod', 'dev'] };

/** FlatNotification (v1). */
const FLAT_FIELDS: Record<string, Field> = {
  service: SERVICE,
  body: { kind: 'string' },
  title: { kind: 'string' },
  badge: { kind: 'integer' },
  click_action: { kind: 'string' },
  tag: { kind: 'string' },
  topic: { kind: 'string' },
  data: { kind: 'object' },
  mode: MODE,
};

/** Deep.base() plus alert and data (v2, v3). */
const DEEP_FIELDS: Record<string, Field> = {
  service: SERVICE,
  mode: MODE,
  priority: { kind: 'string', enum: ['normal', 'high'] },
  time_to_live: { kind: 'integer' },
  mutable_content: { kind: 'boolean' },
  tags: { kind: 'array', items: 'string' },
  topic: { kind: 'string' },
  alert: { kind: 'object' },
  data: { kind: 'object' },
};

const INT32_MAX = 2 ** 31 - 1;

/** OpenApiSpex's name for a JSON value's type (OpenApiSpex.TermType). */
function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const error = (pointer: string, message: string): CastError => ({ title: 'Invalid value', source: { pointer }, message });

/** Casts one value as OpenApiSpex would; undefined and an error when it cannot. */
function cast(value: unknown, field: Field, pointer: string, errors: CastError[]): unknown {
  const invalid = () => {
    errors.push(error(pointer, `Invalid ${field.kind}. Got: ${typeName(value)}`));
    return undefined;
  };
  switch (field.kind) {
    case 'string':
      if (typeof value !== 'string') return invalid();
      if (field.enum && !field.enum.includes(value)) {
        errors.push(error(pointer, 'Invalid value for enum'));
        return undefined;
      }
      return value;
    case 'integer': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) return invalid();
      if (n > INT32_MAX || n < -INT32_MAX - 1) {
        errors.push(error(pointer, `Invalid format. Expected :int32`));
        return undefined;
      }
      return n;
    }
    case 'boolean':
      if (value === 'true' || value === 'false') return value === 'true';
      return typeof value === 'boolean' ? value : invalid();
    case 'object':
      return isObject(value) ? value : invalid();
    case 'array':
      if (!Array.isArray(value)) return invalid();
      value.forEach((item, i) => {
        if (typeof item !== 'string') errors.push(error(`${pointer}/${i}`, `Invalid string. Got: ${typeName(item)}`));
      });
      return value;
  }
}

/** The fields of an object against a table: unknown ones refused, required ones demanded, nulls dropped. */
function castObject(
  body: Record<string, unknown>,
  fields: Record<string, Field>,
  required: string[],
  prefix: string,
  errors: CastError[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of required) {
    if (body[name] === undefined) errors.push(error(`${prefix}/${name}`, `Missing field: ${name}`));
    else if (body[name] === null) errors.push(error(`${prefix}/${name}`, `null value where ${fields[name]!.kind} expected`));
  }
  for (const [name, value] of Object.entries(body)) {
    const field = fields[name];
    if (!field) {
      errors.push(error(`${prefix}/${name}`, `Unexpected field: ${name}`));
      continue;
    }
    if (value === null) continue;
    const v = cast(value, field, `${prefix}/${name}`, errors);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

function alertOf(a: Record<string, unknown>): PushAlert {
  return {
    title: a['title'] as string,
    body: a['body'] as string,
    ...(a['badge'] !== undefined ? { badge: a['badge'] as number } : {}),
    ...(a['click_action'] !== undefined ? { clickAction: a['click_action'] as string } : {}),
    ...(a['tag'] !== undefined ? { tag: a['tag'] as string } : {}),
    ...(a['sound'] !== undefined ? { sound: a['sound'] as string } : {}),
  };
}

/** A v1 flat body: the alert's fields at the top level, always a visible notification. */
export function parseFlat(body: unknown): Parsed {
  if (!isObject(body)) return { ok: false, errors: [error('', `Invalid object. Got: ${typeName(body)}`)] };
  const errors: CastError[] = [];
  const f = castObject(body, FLAT_FIELDS, ['service', 'body', 'title'], '', errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    request: {
      service: f['service'] as PushRequest['service'],
      mode: (f['mode'] as PushRequest['mode'] | undefined) ?? 'prod',
      mutableContent: false,
      tags: [],
      alert: alertOf(f),
      ...(f['topic'] !== undefined ? { topic: f['topic'] as string } : {}),
      ...(f['data'] !== undefined ? { data: f['data'] as Record<string, unknown> } : {}),
    },
  };
}

/** A v2/v3 deep body: alert, silent (data only) or mixed. */
export function parseDeep(body: unknown): Parsed {
  if (!isObject(body)) return { ok: false, errors: [error('', `Invalid object. Got: ${typeName(body)}`)] };
  const errors: CastError[] = [];
  // The schema CastAndValidate picks: mixed with both, silent with data only, alert otherwise.
  const hasData = body['data'] !== undefined && body['data'] !== null;
  const hasAlert = body['alert'] !== undefined && body['alert'] !== null;
  const f = castObject(body, DEEP_FIELDS, hasData && !hasAlert ? ['service', 'data'] : ['service', 'alert'], '', errors);
  let alert: PushAlert | undefined;
  if (isObject(f['alert'])) {
    const a = castObject(f['alert'], ALERT_FIELDS, ['body', 'title'], '/alert', errors);
    alert = alertOf(a);
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    request: {
      service: f['service'] as PushRequest['service'],
      mode: (f['mode'] as PushRequest['mode'] | undefined) ?? 'prod',
      mutableContent: f['mutable_content'] === true,
      tags: (f['tags'] as string[] | undefined) ?? [],
      ...(f['priority'] !== undefined ? { priority: f['priority'] as 'normal' | 'high' } : {}),
      ...(f['time_to_live'] !== undefined ? { timeToLive: f['time_to_live'] as number } : {}),
      ...(f['topic'] !== undefined ? { topic: f['topic'] as string } : {}),
      ...(alert ? { alert } : {}),
      ...(f['data'] !== undefined ? { data: f['data'] as Record<string, unknown> } : {}),
    },
  };
}

export function parseRequest(version: ApiVersion, body: unknown): Parsed {
  return version === 'v1' ? parseFlat(body) : parseDeep(body);
}
