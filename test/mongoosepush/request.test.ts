/**
 * The pure parts of the MongoosePush API without sockets: body parsing and casting (request.ts) and the
 * answer tables per version (answers.ts), against what MongoosePush's own controller tests expect.
 */
import { describe, expect, it } from 'vitest';
import { answerFor, errorOf } from '../../src/mongoosepush/answers.js';
import { parseDeep, parseFlat } from '../../src/mongoosepush/request.js';

describe('parsing MongoosePush bodies', () => {
  it('casts string integers and booleans as OpenApiSpex does, and drops nulls', () => {
    const r = parseDeep({
      service: 'apns',
      time_to_live: '60',
      mutable_content: 'true',
      topic: null,
      alert: { title: 't', body: 'b', badge: '2', click_action: null },
    });
    expect(r).toEqual({
      ok: true,
      request: { service: 'apns', mode: 'prod', mutableContent: true, tags: [], timeToLive: 60, alert: { title: 't', body: 'b', badge: 2 } },
    });
  });

  it('checks a body with alert and data as mixed, with data only as silent', () => {
    expect(parseDeep({ service: 'fcm', data: { a: 1 } })).toMatchObject({ ok: true, request: { data: { a: 1 } } });
    expect(parseDeep({ service: 'fcm', data: { a: 1 }, alert: { title: 't' } })).toEqual({
      ok: false,
      errors: [{ title: 'Invalid value', source: { pointer: '/alert/body' }, message: 'Missing field: body' }],
    });
  });

  it.each([
    [[], 'Invalid object. Got: array', ''],
    [{ service: null, data: {} }, 'null value where string expected', '/service'],
    [{ service: 'fcm', data: 'x' }, 'Invalid object. Got: string', '/data'],
    [{ service: 'fcm', data: {}, tags: ['a', 1] }, 'Invalid string. Got: integer', '/tags/1'],
    [{ service: 'fcm', data: {}, mutable_content: 'yes' }, 'Invalid boolean. Got: string', '/mutable_content'],
    [{ service: 'fcm', data: {}, time_to_live: 1.5 }, 'Invalid integer. Got: number', '/time_to_live'],
    [{ service: 'fcm', data: {}, time_to_live: 2 ** 31 }, 'Invalid format. Expected :int32', '/time_to_live'],
  ])('refuses %j', (body, message, pointer) => {
    expect(parseDeep(body)).toEqual({ ok: false, errors: [{ title: 'Invalid value', source: { pointer }, message }] });
  });

  it('reads v1 flat bodies into an alert', () => {
    expect(parseFlat({ service: 'fcm', title: 't', body: 'b', tag: 'x', mode: 'dev', data: { k: 'v' } })).toEqual({
      ok: true,
      request: { service: 'fcm', mode: 'dev', mutableContent: false, tags: [], alert: { title: 't', body: 'b', tag: 'x' }, data: { k: 'v' } },
    });
    expect(parseFlat({ service: 'fcm', title: 't', body: 'b', sound: 'x' })).toMatchObject({ ok: false, errors: [{ message: 'Unexpected field: sound' }] });
  });
});

describe('MongoosePush answers per version', () => {
  it.each([
    // [error, v3, v2] as in MongoosePush's controller tests
    [{ type: 'invalid_request', reason: 'BadCollapseId' }, [400, { reason: 'invalid_request' }], [500, { details: 'BadCollapseId' }]],
    [{ type: 'unregistered', reason: 'Unregistered' }, [410, { reason: 'unregistered' }], [500, { details: 'Unregistered' }]],
    [{ type: 'payload_too_large', reason: 'PayloadTooLarge' }, [413, { reason: 'payload_too_large' }], [500, { details: 'PayloadTooLarge' }]],
    [{ type: 'too_many_requests', reason: 'TooManyRequests' }, [429, { reason: 'too_many_requests' }], [500, { details: 'TooManyRequests' }]],
    [{ type: 'service_internal', reason: 'InternalServerError' }, [503, { reason: 'service_internal' }], [500, { details: 'InternalServerError' }]],
    [{ type: 'auth', reason: 'MissingProviderToken' }, [503, { reason: 'service_internal' }], [500, { details: 'MissingProviderToken' }]],
    [{ type: 'internal_config', reason: 'BadMessageId' }, [503, { reason: 'internal_config' }], [500, { details: 'BadMessageId' }]],
    [{ type: 'unspecified', reason: 'Unspecified' }, [520, { reason: 'unspecified' }], [500, { details: 'Unspecified' }]],
    [{ type: 'generic', reason: 'no_matching_pool' }, [400, { reason: 'no_matching_pool' }], [500, { details: 'no_matching_pool' }]],
    [{ type: 'generic', reason: 'unable_to_connect' }, [503, { reason: 'unable_to_connect' }], [503, { details: 'Please try again later' }]],
    [{ type: 'generic', reason: 'connection_lost' }, [503, { reason: 'connection_lost' }], [500, { details: 'connection_lost' }]],
    [{ type: 'generic', reason: 'invalid_notification' }, [400, { reason: 'invalid_notification' }], [500, { details: 'invalid_notification' }]],
    [{ type: 'generic', reason: 'unspecified' }, [500, { reason: 'unspecified' }], [500, { details: 'unspecified' }]],
  ] as const)('%j', (error, [s3, b3], [s2, b2]) => {
    expect(answerFor('v3', error)).toEqual({ status: s3, body: b3 });
    expect(answerFor('v2', error)).toEqual({ status: s2, body: b2 });
    expect(answerFor('v1', error)).toEqual({ status: s2, body: b2 });
  });

  it('maps provider reasons through MongoosePush tables and outcomes without one by kind', () => {
    expect(errorOf('apns', { outcome: 'dead-token', reason: 'x', code: 'BadDeviceToken' })).toEqual({ type: 'invalid_request', reason: 'BadDeviceToken' });
    expect(errorOf('fcm', { outcome: 'dead-token', reason: 'x', code: 'SENDER_ID_MISMATCH' })).toEqual({ type: 'auth', reason: 'SENDER_ID_MISMATCH' });
    expect(errorOf('apns', { outcome: 'misconfigured', reason: 'x', errno: 901, code: 'BadTopic' })).toEqual({ type: 'internal_config', reason: 'BadTopic' });
    expect(errorOf('fcm', { outcome: 'unreachable', reason: 'ECONNREFUSED' })).toEqual({ type: 'generic', reason: 'unable_to_connect' });
    expect(errorOf('fcm', { outcome: 'timeout', reason: 'late' })).toEqual({ type: 'generic', reason: 'connection_lost' });
    expect(errorOf('fcm', { outcome: 'retry-later', reason: 'queue', status: 503, retryAfter: 10 })).toEqual({
      type: 'service_internal',
      reason: 'UNAVAILABLE',
    });
    expect(errorOf('fcm', { outcome: 'rejected', reason: 'big', tooLarge: true })).toEqual({ type: 'payload_too_large', reason: 'PayloadTooLarge' });
    expect(answerFor('v3', errorOf('apns', { outcome: 'rejected', reason: 'x', tooLarge: false, code: 'SomethingNew' }))).toEqual({
      status: 500,
      body: { reason: 'unknown' },
    });
  });
});
