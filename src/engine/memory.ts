/**
 * `serve({ compactMemory: true })`: trade a little CPU for a small idle footprint.
 *
 * Why: an idle connection costs the engine a 32-byte slot, but the first few thousand accepts
 * or upgrades of a burst grow two process-wide pools that a user then sees as RSS for good:
 * V8's young generation (its semi-spaces grow from 1 to 16 MiB under allocation and stay),
 * and glibc's malloc heaps (memory freed by V8's compiler stays in the arenas below
 * `M_TRIM_THRESHOLD`). Measured on 19,000 idle WebSockets (docs/websocket.md, BENCHMARKS.md):
 * 273-385 B of RSS per connection without, 86-110 B with both; the young-generation cap costs
 * about 1-2 % more CPU per message (more, smaller scavenges).
 *
 * What it does, for the process it runs in (V8 flags and malloc policy are process-wide, so
 * worker threads are covered by their process): caps semi-space growth at its start size
 * (`--semi-space-growth-factor=1`, the only young-generation knob V8 honours after start-up;
 * prefork children get `--max-semi-space-size=1` on their command line instead), and sets
 * glibc's trim threshold to 0 so freed heap tops go back to the kernel at once.
 *
 * The trim threshold only returns the free *top* of each malloc heap; free pages between live
 * chunks (V8's compiler threads and the upgrade path free most of what a burst allocated, in
 * the middle of the main arena and of the threads' arenas) stay resident. So a compact server
 * process also calls `malloc_trim(0)` once a burst is over (`trimAfterBursts`): its reactors
 * moved, then stood still for about a second. Never under load (the activity keeps moving),
 * once per quiet spell, never on a timer of its own while nothing happens.
 */
import { setFlagsFromString } from 'node:v8';
import { loadBinding } from '../core/binding.js';
import type { Reactor } from '../core/types.js';
import { provide } from './gather.js';

let applied = false;

/** How often `trimAfterBursts` looks at the activity. */
export const TRIM_CHECK_MS = 500;
/** Checks in a row without activity that end a burst: 0.5-1 s of quiet after the last poll. */
export const TRIM_QUIET_CHECKS = 2;

/**
 * The burst detector behind `trimAfterBursts`, without its timer (for tests): `check()` once
 * per interval reads a monotonic activity count; after a change (a burst, or the start of the
 * process) followed by `quietChecks` unchanged readings it calls `trim` once, then waits for
 * the next change. So under steady load (the count moves at every check) it never trims.
 */
export class BurstTrim {
  readonly #activity: () => number;
  readonly #trim: () => void;
  readonly #quietChecks: number;
  #last: number;
  /** Something happened since the last trim (the process start counts). */
  #busy = true;
  #quiet = 0;

  constructor(activity: () => number, trim: () => void, quietChecks = TRIM_QUIET_CHECKS) {
    this.#activity = activity;
    this.#trim = trim;
    this.#quietChecks = quietChecks;
    this.#last = activity();
  }

  /** One look at the activity; true when it trimmed. */
  check(): boolean {
    const a = this.#activity();
    if (a !== this.#last) {
      this.#last = a;
      this.#busy = true;
      this.#quiet = 0;
      return false;
    }
    if (!this.#busy || ++this.#quiet < this.#quietChecks) return false;
    this.#busy = false;
    this.#quiet = 0;
    this.#trim();
    return true;
  }
}

/**
 * Hand the process's freed malloc memory back to the kernel (`malloc_trim(0)`) each time a
 * burst of activity is over: `activity` is a count that moves while the process works (its
 * reactors' polls and connections). Part of `compactMemory`; started by the engine for each
 * server process (single mode, prefork workers). Threading: the calling thread's timer (unref'd,
 * it keeps no process alive); the trim itself is process-wide. Returns the stop function. A
 * no-op without the addon or glibc.
 */
export function trimAfterBursts(activity: () => number): () => void {
  const b = loadBinding();
  if (typeof b?.mallocTrim !== 'function') return () => undefined;
  const burst = new BurstTrim(activity, () => {
    if (b.mallocTrim() < 0) clearInterval(timer); // no glibc: nothing to trim, ever
    else trims++;
  });
  const timer = setInterval(() => burst.check(), TRIM_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

let trims = 0;

/** The gather key under which a compact server process provides its `{ compact, trims }`. */
export const MEMORY_KEY = 'c1m.memory';

/**
 * The after-burst trim of a compact server process whose activity is `reactor`'s (its polls
 * that reached JS, and its connection count), with its figures (`{ compact, trims }`) under
 * MEMORY_KEY for `gather`. Single mode and prefork workers call it once; returns the stop.
 */
export function trimServerProcess(reactor: Reactor): () => void {
  provide(MEMORY_KEY, () => ({ compact: applied, trims }));
  return trimAfterBursts(() => {
    const s = reactor.stats;
    return s.batches + s.connections;
  });
}

/** Node flags for a prefork child started with `compactMemory`. */
export const COMPACT_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];

/** Apply the compact-memory policy to this process, once. Never throws: without the addon or
 *  glibc only the V8 part applies. */
export function applyCompactMemory(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString('--semi-space-growth-factor=1');
  loadBinding()?.mallocTrimThreshold(0);
}
