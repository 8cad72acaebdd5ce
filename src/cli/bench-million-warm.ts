/**
 * Warming the clients of `c1m bench million` before its first step (`--client-warmup N`).
 *
 * Why: a million is held by 50+ client processes, and each sees ONE measured broadcast (or one
 * echo round): ~19,000 deliveries, all run by V8's interpreter and baseline code while the
 * optimizing compiler catches up, 50 times over on 2 shared cores. One client process measured
 * alone (19,000 subscribers, 2026-12-06): 6.3 user-µs per delivery in its first broadcast,
 * 1.6-2.6 in the next five. That is the load generator's cost, not the server's, and on a box
 * that runs both it delays the last delivery. Subscribers on other machines would be warm.
 *
 * What: each client process opens `conns` connections (WebSocket: subscribed like the rest; TCP:
 * plain echo peers), then `rounds` rounds of the run's own traffic reach them (WebSocket: one
 * publish per round, by the run's route, HTTP or NATS; TCP: one echo on every connection per
 * round, each round waited for), so each client process takes about N deliveries down the same
 * path the measured ones take, with the same poll interval. The connections stay open: they are
 * the first of the first step's. The counters these deliveries leave are before every measured
 * window (a broadcast and an echo round count from their own start and empty the histograms).
 *
 * Invariants: every wait is bounded; a warm-up that fails is reported in the result
 * (`client.warmup.error`) and the run goes on with its steps, as it would without one.
 */
import { performance } from 'node:perf_hooks';
import type { WorkerPool } from './bench-pool.js';

/** WebSocket warm-up: subscribers per client process (each publish reaches every one). */
const WS_WARM_CONNS = 20;
/** TCP warm-up: connections per client process (each echo round is one parent-paced round trip). */
const TCP_WARM_CONNS = 200;
const CONNECT_WAIT_MS = 60_000;
const DELIVERY_WAIT_MS = 60_000;

/** What a warm-up did (`client.warmup` in the JSON). */
export interface ClientWarmup {
  /** Connections per client process. */
  connections: number;
  rounds: number;
  /** Deliveries counted over all client processes, of `expected` (connections open x rounds). */
  deliveries: number;
  expected: number;
  s: number;
  error: string | null;
}

/** The connections per client process and the rounds for about `deliveries` deliveries each; null: none. */
export function warmPlan(deliveries: number, ws: boolean, firstShares: readonly number[]): { conns: number; rounds: number } | null {
  const least = Math.min(...firstShares);
  const conns = Math.min(ws ? WS_WARM_CONNS : TCP_WARM_CONNS, least);
  if (deliveries <= 0 || conns <= 0) return null;
  return { conns, rounds: Math.ceil(deliveries / conns) };
}

/**
 * Run the warm-up: `conns` connections per worker, then `rounds` rounds, `round()` starting one
 * (a publish; or an echo round, which `paced` makes wait for its echoes before the next).
 */
export async function warmClients(pool: WorkerPool, plan: { conns: number; rounds: number }, paced: boolean,
  round: () => Promise<unknown>, watch: () => void): Promise<ClientWarmup> {
  const t0 = performance.now();
  const result = (deliveries: number, expected: number, error: string | null): ClientWarmup =>
    ({ connections: plan.conns, rounds: plan.rounds, deliveries, expected, s: Math.round(performance.now() - t0) / 1000, error });
  for (const w of pool.workers) pool.sendTo(w, { type: 'go', upTo: plan.conns });
  const settled = await pool.waitFor(() => pool.workers.every((w) => w.settledAt !== undefined), CONNECT_WAIT_MS, false, watch);
  pool.send({ type: 'end-connect' });
  const open = pool.sum((c) => c.open);
  if (!settled || open === 0) return result(0, 0, `${open} of ${plan.conns * pool.workers.length} warm-up connections open`);
  const before = pool.sum((c) => c.msgsTotal);
  const got = (): number => pool.sum((c) => c.msgsTotal) - before;
  const expected = open * plan.rounds;
  try {
    for (let i = 1; i <= plan.rounds; i++) {
      await round();
      if (paced && !(await pool.waitFor(() => got() >= open * i, DELIVERY_WAIT_MS, false, watch))) {
        return result(got(), expected, `round ${i}: ${got()} of ${open * i} deliveries`);
      }
    }
  } catch (e) {
    return result(got(), expected, (e as Error).message);
  }
  const all = await pool.waitFor(() => got() >= expected, DELIVERY_WAIT_MS, false, watch);
  return result(got(), expected, all ? null : `${got()} of ${expected} deliveries`);
}
