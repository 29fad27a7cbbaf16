import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';

/**
 * The `floor` benchmark's server: the same four socket operations a direct push costs Pushgate (read the POST,
 * write its 201, write the notification frame, read the ack), done by bare `node:http` and `ws` with nothing
 * else: no authentication, no Fernet, no store, no metrics, no framework. The bench drives it with the same
 * load processes, bodies and clients as the `direct` scenario, so its CPU per message is what Node itself costs
 * for that socket work on this machine. Never a product: it accepts any POST for any connected uaid.
 *
 * Run by bench/lib/procs.ts startFloor() as `node floor.js <port>`; it reports readiness over IPC.
 */

const port = Number(process.argv[2]);
const clients = new Map<string, WebSocket>();
let nextVersion = 0;
// A fixed prefix and a counter: message ids as long as Pushgate's, made without crypto.
const versionPrefix = randomBytes(60).toString('base64url');

function onPush(req: IncomingMessage, res: ServerResponse, uaid: string): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const ws = clients.get(uaid);
    if (!ws) {
      res.writeHead(404).end();
      return;
    }
    const version = `${versionPrefix}${nextVersion++}`;
    const headers: Record<string, string> = { encoding: String(req.headers['content-encoding'] ?? '') };
    ws.send(JSON.stringify({ messageType: 'notification', channelID: uaid, version, ttl: 60, data: Buffer.concat(chunks).toString('base64url'), headers }));
    res.writeHead(201, { location: `http://127.0.0.1:${port}/m/${version}`, ttl: String(req.headers['ttl'] ?? '0') }).end();
  });
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'POST' && url.startsWith('/wpush/')) return onPush(req, res, url.slice(url.lastIndexOf('/') + 1));
  // The two gauges the connections scenario reads, under Pushgate's names; no store counters (the floor has no store).
  if (url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end(`pushgate_connections ${wss.clients.size}\npushgate_nodejs_heap_size_used_bytes ${process.memoryUsage().heapUsed}\n`);
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  let uaid: string | null = null;
  ws.on('message', (data) => {
    const m = JSON.parse((data as Buffer).toString()) as { messageType: string; channelID?: string };
    if (m.messageType === 'hello') {
      uaid = randomUUID().replaceAll('-', '');
      clients.set(uaid, ws);
      ws.send(JSON.stringify({ messageType: 'hello', uaid, status: 200, use_webpush: true }));
    } else if (m.messageType === 'register' && uaid) {
      ws.send(JSON.stringify({ messageType: 'register', channelID: m.channelID, status: 200, pushEndpoint: `http://127.0.0.1:${port}/wpush/v2/${uaid}` }));
    }
    // ack: nothing to do (nothing is stored).
  });
  ws.on('close', () => {
    if (uaid && clients.get(uaid) === ws) clients.delete(uaid);
  });
});

server.listen(port, '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
});
