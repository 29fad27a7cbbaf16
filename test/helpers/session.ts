import type { SessionPort } from '../../src/webpush/connection/session.js';

/** A session's socket as tests see it: the frames it sent, how it was closed, a send buffer the test sets. */
export class RecordingPort implements SessionPort {
  frames: Record<string, unknown>[] = [];
  closedWith: { code: number; reason: string } | null = null;
  buffered = 0;
  writes = 0;
  send(frames: object[], onWritten?: (err?: Error) => void): void {
    this.writes++;
    this.frames.push(...(frames as Record<string, unknown>[]));
    onWritten?.();
  }
  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  take(): Record<string, unknown>[] {
    const f = this.frames;
    this.frames = [];
    return f;
  }
}

/** Lets the store's group commits (setImmediate) and the sessions' queued work run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
}
