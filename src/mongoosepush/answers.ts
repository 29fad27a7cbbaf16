/**
 * What MongoosePush answers, per API version: one table from a bridge outcome to MongoosePush's error
 * `{type, reason}` (its `Service.error()` / `MongoosePush.error()`), and the three response encoders
 * (esl/MongoosePush `lib/mongoose_push/api/v{1,2,3}/response_encoder.ex`).
 *
 * The provider's own refusal names go through MongoosePush's tables (`service/fcm/error_handler.ex`,
 * `service/apns/error_handler.ex`), so that for example APNs `BadDeviceToken` is `invalid_request` (400 in
 * v3) as MongoosePush says, although Pushgate's Web Push door treats it as a dead token.
 *
 * v3: 200 null; 400 invalid_request / no_matching_pool / invalid_notification; 410 unregistered;
 * 413 payload_too_large; 429 too_many_requests; 503 service_internal (also for `auth`), internal_config,
 * unable_to_connect, connection_lost; 520 unspecified; body `{"reason": …}`.
 * v1 and v2 (v1 reuses v2's encoder): 200 null; 503 `{"details": "Please try again later"}` for
 * unable_to_connect; every other error 500 `{"details": <the reason>}`, e.g. "UNREGISTERED" or "Unregistered".
 */
import type { BridgeResult } from '../bridge/index.js';
import type { ApiVersion } from './request.js';

export type ErrorType =
  | 'invalid_request'
  | 'unregistered'
  | 'payload_too_large'
  | 'too_many_requests'
  | 'service_internal'
  | 'auth'
  | 'internal_config'
  | 'unspecified'
  | 'unknown'
  | 'generic';

export interface MongoosePushError {
  type: ErrorType;
  reason: string;
}

/** MongoosePush.Service.FCM.ErrorHandler. */
const FCM_CODES: Record<string, ErrorType> = {
  INVALID_ARGUMENT: 'invalid_request',
  SENDER_ID_MISMATCH: 'auth',
  UNREGISTERED: 'unregistered',
  QUOTA_EXCEEDED: 'too_many_requests',
  UNSPECIFIED: 'unspecified',
  APNS_AUTH_ERROR: 'auth',
  THIRD_PARTY_AUTH_ERROR: 'auth',
  UNAVAILABLE: 'service_internal',
  INTERNAL: 'service_internal',
};

/** MongoosePush.Service.APNS.ErrorHandler. */
const APNS_CODES: Record<string, ErrorType> = {
  BadCollapseId: 'invalid_request',
  BadDeviceToken: 'invalid_request',
  DeviceTokenNotForTopic: 'invalid_request',
  IdleTimeout: 'invalid_request',
  PayloadEmpty: 'invalid_request',
  TopicDisallowed: 'invalid_request',
  Forbidden: 'invalid_request',
  BadMessageId: 'internal_config',
  BadPriority: 'internal_config',
  BadTopic: 'internal_config',
  DuplicateHeaders: 'internal_config',
  MissingDeviceToken: 'internal_config',
  MethodNotAllowed: 'internal_config',
  BadPath: 'internal_config',
  MissingTopic: 'internal_config',
  BadExpirationDate: 'internal_config',
  ExpiredProviderToken: 'auth',
  InvalidProviderToken: 'auth',
  MissingProviderToken: 'auth',
  BadCertificate: 'auth',
  BadCertificateEnvironment: 'auth',
  Unregistered: 'unregistered',
  TooManyProviderTokenUpdates: 'too_many_requests',
  TooManyRequests: 'too_many_requests',
  ServiceUnavailable: 'service_internal',
  Shutdown: 'service_internal',
  InternalServerError: 'service_internal',
  PayloadTooLarge: 'payload_too_large',
};

/** A bridge outcome other than delivery, in MongoosePush's terms. */
export function errorOf(service: 'fcm' | 'apns', result: Exclude<BridgeResult, { outcome: 'delivered' }>): MongoosePushError {
  const code = 'code' in result ? result.code : undefined;
  if (code) {
    const type = (service === 'fcm' ? FCM_CODES : APNS_CODES)[code];
    if (type) return { type, reason: code };
  }
  // No provider name (a transport failure, our own checks) or one MongoosePush does not know: by outcome.
  switch (result.outcome) {
    case 'dead-token':
      return { type: 'unregistered', reason: code ?? (service === 'fcm' ? 'UNREGISTERED' : 'Unregistered') };
    case 'retry-later':
      return result.status === 429
        ? { type: 'too_many_requests', reason: code ?? (service === 'fcm' ? 'QUOTA_EXCEEDED' : 'TooManyRequests') }
        : { type: 'service_internal', reason: code ?? (service === 'fcm' ? 'UNAVAILABLE' : 'ServiceUnavailable') };
    case 'misconfigured':
      return result.errno === 901 ? { type: 'auth', reason: code ?? 'auth' } : { type: 'internal_config', reason: code ?? 'internal_config' };
    case 'unreachable':
      return { type: 'generic', reason: 'unable_to_connect' };
    case 'timeout':
      // MongoosePush's HTTP/2 client reports a request that got no answer as a lost connection.
      return { type: 'generic', reason: 'connection_lost' };
    case 'rejected':
      if (result.tooLarge) return { type: 'payload_too_large', reason: code ?? 'PayloadTooLarge' };
      return code ? { type: 'unknown', reason: code } : { type: 'invalid_request', reason: service === 'fcm' ? 'INVALID_ARGUMENT' : 'BadRequest' };
  }
}

export interface Answer {
  status: number;
  body: Record<string, string> | null;
}

/** MongoosePush.API.V3.ResponseEncoder. */
function v3(e: MongoosePushError): Answer {
  const at = (status: number, reason: string): Answer => ({ status, body: { reason } });
  switch (e.type) {
    case 'invalid_request':
      return at(400, e.type);
    case 'unregistered':
      return at(410, e.type);
    case 'payload_too_large':
      return at(413, e.type);
    case 'too_many_requests':
      return at(429, e.type);
    case 'service_internal':
    case 'internal_config':
      return at(503, e.type);
    case 'auth':
      return at(503, 'service_internal');
    case 'unspecified':
      return at(520, e.type);
    case 'generic':
      if (e.reason === 'no_matching_pool' || e.reason === 'invalid_notification') return at(400, e.reason);
      if (e.reason === 'unable_to_connect' || e.reason === 'connection_lost') return at(503, e.reason);
      return at(500, e.reason);
    case 'unknown':
      // MongoosePush has no case for an unknown provider reason (its encoder would crash into a bare 500).
      return at(500, 'unknown');
  }
}

/** MongoosePush.API.V2.ResponseEncoder (v1 delegates to it). */
function v2(e: MongoosePushError): Answer {
  if (e.type === 'generic' && e.reason === 'unable_to_connect') return { status: 503, body: { details: 'Please try again later' } };
  return { status: 500, body: { details: e.reason } };
}

export function answerFor(version: ApiVersion, e: MongoosePushError | null): Answer {
  if (!e) return { status: 200, body: null };
  return version === 'v3' ? v3(e) : v2(e);
}
