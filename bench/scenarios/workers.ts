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
