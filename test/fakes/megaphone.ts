import { createServer, type IncomingMessage, type Server } from 'node:http';
import { freePort } from '../helpers/gateway.js';

/** A fake Megaphone: GET answers the current table; records what it was asked. */
export class FakeMegaphone {
  broadcasts: Record<string, string> = {};
  mode: 'ok' | 'error' | 'garbage' | 'slow' = 'ok';
  requests: IncomingMessage[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    const port = await freePort();
    this.server = createServer((req, res) => {
      this.requests.push(req);
      if (this.mode === 'slow') return void setTimeout(() => res.end('{}'), 3000);
      if (this.mode === 'error') return void res.writeHead(500).end();
      if (this.mode === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"broadcasts": [1, 2]}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 200, broadcasts: this.broadcasts }));
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${port}/v1/broadcasts`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
