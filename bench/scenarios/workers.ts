import type { BenchContext } from '../lib/context.js';
import { direct } from './direct.js';

/**
 * The `workers` scenario: the direct-delivery measurement against `pushgate serve` with PUSHGATE_WORKERS=2
 * (both cores here), one SQLite file shared in WAL mode. Half the pushes land on the worker that does not hold
 * the client and cross to it over the workers' unix-socket mesh; CPU per message counts the primary and both
 * workers, and primaryCpuUsPerMsg the primary's share.
 */
export function workers(ctx: BenchContext): Promise<void> {
  return direct(ctx, 'workers');
}

/**
 * The `directory` scenario: the same against three workers, the directory replicated and then partitioned
 * (PUSHGATE_WORKER_DIRECTORY). Partitioned, a push that lands on neither the holder nor the uaid's owner crosses
 * twice (about 2 in 9 with three workers), and the slow-ack row's stored messages each cost the notify's hop too.
 */
export async function directoryLayouts(ctx: BenchContext): Promise<void> {
  await direct(ctx, 'workers', false, { workers: 3, directory: 'replicated' });
  await direct(ctx, 'workers', false, { workers: 3, directory: 'partitioned' });
}
