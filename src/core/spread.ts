/**
 * Spreading work over time: `spreadOver` calls a step for each of `count` items, evenly over
 * `ms` milliseconds (a graceful shutdown's closes, so that clients do not all reconnect in
 * the same second).
 */

/** How often a spread runs its share, in ms. */
export const SPREAD_TICK_MS = 50;

/**
 * Call `step(i)` for i = 0 .. count-1, in order, spread evenly over `ms`: every
 * `SPREAD_TICK_MS` the steps due by then (the share of the time elapsed, rounded up) run, so a
 * late timer catches up and the last step runs once `ms` has passed. With `ms` 0 (or nothing
 * to do) every step runs at once. Resolves after the last step.
 *
 * `done` says there is nothing left to do (checked at each tick: the steps still due are then
 * skipped and the promise resolves); `now` is the clock (ms), for tests.
 *
 * Errors: a step that throws is not retried; the rest go on and the promise rejects with the
 * first error once all have run.
 */
export function spreadOver(count: number, ms: number, step: (i: number) => void, done: () => boolean = () => false, now: () => number = () => performance.now()): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const runTo = (due: number): void => {
    while (next < due) {
      try {
        step(next++);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  const settle = (): Promise<void> => (failure === null ? Promise.resolve() : Promise.reject(failure.err));
  if (ms <= 0 || count === 0) {
    runTo(count);
    return settle();
  }
  return new Promise<void>((resolve, reject) => {
    const start = now();
    const timer = setInterval(() => {
      const elapsed = now() - start;
      // Nothing left to do (the steps still due would find nothing): stop early.
      if (done()) next = count;
      else runTo(elapsed >= ms ? count : Math.min(count, Math.ceil((count * elapsed) / ms)));
      if (next < count) return;
      clearInterval(timer);
      settle().then(resolve, reject);
    }, Math.min(SPREAD_TICK_MS, ms));
  });
}
