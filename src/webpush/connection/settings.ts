import { type SettingsTable, int } from '../../util/settings.js';

/** The websocket door. */
export const connectionSettings = {
  msgLimit: { env: 'PUSHGATE_MSG_LIMIT', key: 'msgLimit', help: "stored messages a session may read in one run before the uaid is reset (autopush's msg_limit)", expect: 'an integer from 1 to 100000', parse: int(1, 100000), default: 150 },
  helloTimeout: { env: 'PUSHGATE_HELLO_TIMEOUT', key: 'helloTimeout', help: 'seconds a websocket client has to say hello', expect: 'an integer from 1 to 600', parse: int(1, 600), default: 10 },
  minPingInterval: { env: 'PUSHGATE_MIN_PING_INTERVAL', key: 'minPingInterval', help: 'seconds a client must leave between two protocol pings (autopush: 45)', expect: 'an integer from 0 to 3600', parse: int(0, 3600), default: 45 },
  wsPingInterval: { env: 'PUSHGATE_WS_PING_INTERVAL', key: 'wsPingInterval', help: 'seconds between websocket ping frames that detect dead connections', expect: 'an integer from 5 to 3600', parse: int(5, 3600), default: 300 },
  maxFrameBytes: { env: 'PUSHGATE_WS_MAX_MESSAGE', key: 'maxFrameBytes', help: 'largest websocket frame a client may send, in bytes', expect: 'an integer from 1024 to 1048576', parse: int(1024, 1048576), default: 16384 },
  storageBatch: { env: 'PUSHGATE_STORAGE_BATCH', key: 'storageBatch', help: 'stored messages sent per batch; the next batch is read once all are acked', expect: 'an integer from 1 to 1000', parse: int(1, 1000), default: 10 },
  maxUnacked: { env: 'PUSHGATE_MAX_UNACKED', key: 'maxUnacked', help: 'unacked messages in flight per connection; beyond it new messages are stored, not sent', expect: 'an integer from 1 to 10000', parse: int(1, 10000), default: 100 },
  wsHighWater: { env: 'PUSHGATE_WS_HIGH_WATER', key: 'wsHighWater', help: 'bytes queued on a websocket above which new messages are stored, not sent (backpressure)', expect: 'an integer from 1024 to 67108864', parse: int(1024, 67108864), default: 262144 },
  ackWaitMs: { env: 'PUSHGATE_ACK_WAIT_MS', key: 'ackWaitMs', help: 'milliseconds a direct TTL > 0 message waits for its ack before it is saved, for a client whose acks come within half of it or that has acked nothing yet (an acked message is never written); 0 saves every message at once', expect: 'an integer from 0 to 1000', parse: int(0, 1000), default: 100 },
  maxChannels: { env: 'PUSHGATE_MAX_CHANNELS', key: 'maxChannels', help: 'channels (subscriptions) per uaid; a register beyond answers status 500', expect: 'an integer from 1 to 100000', parse: int(1, 100000), default: 1000 },
  userMaxIdleDays: { env: 'PUSHGATE_USER_MAX_IDLE_DAYS', key: 'userMaxIdleDays', help: "days a uaid may stay unconnected before it is removed and its endpoints answer 410 (autopush's MAX_ROUTER_TIME)", expect: 'an integer from 1 to 3650', parse: int(1, 3650), default: 60 },
} satisfies SettingsTable;
