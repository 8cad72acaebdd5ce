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
 * glibc's trim threshold to 0 so freed heap tops go back to the kernel at once. Prefork
 * children also start with one malloc arena (`GLIBC_TUNABLES=glibc.malloc.arena_max=1`,
 * `compactChildEnv`): every thread's heap top is then the main arena's, which the after-burst
 * `malloc_trim(0)` below returns, so their threshold is 4 MiB instead of 0 and a burst does
 * not fault the same pages in again and again (~0.4 -> ~0.2 page faults per WebSocket upgrade).
 *
 * The trim threshold only returns the free *top* of each malloc heap; free pages between live
 * chunks (V8's compiler threads and the upgrade path free most of what a burst allocated, in
 * the middle of the main arena and of the threads' arenas) stay resident. And V8 keeps both
 * 1 MiB semi-spaces committed once a burst has used them (2 MiB a process: ~100 B per
 * connection at 19,000), with no full GC to come in a process that then sits idle, so its
 * memory reducer never runs. So once a burst is over (`trimServerProcess`) a compact server
 * process runs two full V8 collections (they shrink the young generation back to its idle
 * size and free what the burst left in the old one) and then `malloc_trim(0)`. Quiet means the event loop busy less than 2 % of
 * the time (a heartbeat's trickle of pings is quiet, a connect burst is not) and the open
 * connections steady within a trickle (a ramp spread over many processes keeps each one's
 * loop nearly idle) for 6 s: V8 only
 * gives semi-space pages back when its allocation rate over its last 5 s is low. Never under
 * load, once per quiet spell, never on a timer of its own while nothing happens. The
 * collection's pause is measured (`gather('c1m.memory')`: `gcMs`, `gcMsMax`, and the young
 * generation's resident size after it, `newSpaceKb`): a few ms at 19,000 connections.
 */
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadBinding } from '../core/binding.js';
import type { Reactor } from '../core/types.js';
import { provide } from './gather.js';

let applied = false;

/** How often `trimServerProcess` looks at the activity. */
export const TRIM_CHECK_MS = 500;
/**
 * How often it looks once settled (trimmed, nothing moved since): an idle server then wakes
 * for it once in 5 s, not twice a second (a wake-up of an idle Node process into JS cost
 * ~0.5 ms of CPU on the slow hosts of 2026-12-06). A burst is seen at most this late; the
 * trim comes TRIM_QUIET_CHECKS after its end either way.
 */
export const TRIM_SETTLED_CHECK_MS = 5000;
/**
 * Quiet checks in a row that end a burst: 6 s, past V8's 5 s window for its allocation rate
 * (it shrinks the young generation in a full collection only when that rate is low).
 */
export const TRIM_QUIET_CHECKS = 12;
/** The event loop's busy share below which a check counts as quiet. */
export const TRIM_QUIET_ELU = 0.02;
/**
 * Open connections that may come or go between two checks of a quiet spell (32 a second): a
 * trickle of reconnects is quiet, a ramp is not. The busy share alone cannot tell: a ramp
 * spread over more processes than cores keeps each one busy ~1 % of the time (the TCP million:
 * 53 servers on 2 cores), and each then took the ramp for quiet and ran its two full
 * collections again and again in the middle of it (BENCHMARKS.md, ninth sitting).
 */
export const TRIM_QUIET_CONNS = 16;

/** A level that a burst moves either way (open connections): moved when |change| > trickle. */
export interface TrimLevel {
  read(): number;
  trickle: number;
}

/**
 * The burst detector behind `trimServerProcess`, without its timer (for tests): `check()` once
 * per interval reads a monotonic activity count; after a move of more than `trickle` (a burst,
 * or the start of the process) followed by `quietChecks` readings that moved at most `trickle`
 * it calls `trim` once, then waits for the next move. So under steady load (the count moves at
 * every check) it never trims. The activity `trim` itself causes is not a move: an idle process
 * trims once, not again and again.
 */
export class BurstTrim {
  readonly #activity: () => number;
  readonly #trim: () => void;
  readonly #quietChecks: number;
  readonly #trickle: number;
  readonly #level: TrimLevel | undefined;
  #last: number;
  #lastLevel: number;
  /** Something happened since the last trim (the process start counts). */
  #busy = true;
  #quiet = 0;

  /**
   * `level`, when given, is a second signal (open connections): a check is quiet only if
   * neither the activity moved more than `trickle` nor the level more than its own.
   */
  constructor(activity: () => number, trim: () => void, quietChecks = TRIM_QUIET_CHECKS, trickle = 0, level?: TrimLevel) {
    this.#activity = activity;
    this.#trim = trim;
    this.#quietChecks = quietChecks;
    this.#trickle = trickle;
    this.#level = level;
    this.#last = activity();
    this.#lastLevel = level?.read() ?? 0;
  }

  /** Trimmed, and nothing moved since: the next check may come later (with its `span`). */
  get settled(): boolean {
    return !this.#busy;
  }

  /**
   * One look at the activity; true when it trimmed. `span`: how many intervals passed since
   * the last look (a settled detector looked less often): the trickles scale with it.
   */
  check(span = 1): boolean {
    const a = this.#activity();
    const moved = a - this.#last;
    this.#last = a;
    let shifted = 0;
    if (this.#level !== undefined) {
      const l = this.#level.read();
      shifted = Math.abs(l - this.#lastLevel);
      this.#lastLevel = l;
    }
    if (moved > this.#trickle * span || shifted > (this.#level?.trickle ?? 0) * span) {
      this.#busy = true;
      this.#quiet = 0;
      return false;
    }
    if (!this.#busy || ++this.#quiet < this.#quietChecks) return false;
    this.#busy = false;
    this.#quiet = 0;
    this.#trim();
    // The trim's own time is not a burst: its two collections keep the loop busy 10-30 ms,
    // more than the trickle, and counting them made an idle process trim every 6.5 s forever.
    this.#last = this.#activity();
    return true;
  }
}

let fullGc: (() => void) | null | undefined;

/**
 * V8's full collection as a function, without `--expose-gc` on the command line: the flag is
 * set for the one moment it takes to make a context that has `gc`, then cleared again, so
 * contexts user code makes later get no `gc` global. Null if this V8 refuses. The function
 * keeps that context alive: ~150 KiB of heap, ~250 KiB of RSS once per process (measured on
 * Node 20), part of every compact process's fixed cost, not of its connections'.
 */
export function fullCollection(): (() => void) | null {
  if (fullGc !== undefined) return fullGc;
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return (fullGc = own as () => void);
  // V8's flags are process-wide: in `threads` mode a sibling worker doing the same may clear
  // the flag between our setting it and our context; another try makes that moot.
  for (let tries = 0; tries < 5 && !fullGc; tries++) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('typeof gc === "function" ? gc : null') as unknown;
      fullGc = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      fullGc = null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  return fullGc ?? null;
}

/** What the after-burst trims did in this process (gather key MEMORY_KEY). */
const done = { trims: 0, gcs: 0, gcMs: 0, gcMsMax: 0, newSpaceKb: 0 };

/** This process's after-burst collections so far and their longest pause in ms (metrics). */
export function compactions(): { gcs: number; gcMsMax: number } {
  return { gcs: done.gcs, gcMsMax: done.gcMsMax };
}

/** `malloc_trim(0)`: the process's freed malloc pages back to the kernel. False without glibc or the addon. */
function trimMalloc(): boolean {
  const b = loadBinding();
  return typeof b?.mallocTrim === 'function' && b.mallocTrim() >= 0;
}

/** The gather key under which a compact server process provides its figures (`trimServerProcess`). */
export const MEMORY_KEY = 'c1m.memory';

/**
 * Each time a burst is over, two full V8 collections and `malloc_trim(0)` in this compact
 * server process or worker thread: its activity is its event loop's busy time (the reactor
 * runs on that loop), quiet below TRIM_QUIET_ELU for TRIM_QUIET_CHECKS checks, with no more
 * than TRIM_QUIET_CONNS of `reactor`'s connections (the one on this thread) opened or closed
 * between two checks. Its figures
 * (`{ compact, trimThreshold, trims, gcs, gcMs, gcMsMax, newSpaceKb }`: glibc's trim
 * threshold it set, the last and the longest pause of a trim's collections, the young
 * generation's resident size after the last) are under MEMORY_KEY for `gather`.
 * Single mode, prefork workers and `threads` workers (each isolate its own young generation)
 * call it once. Threading: this thread's timer (unref'd, it keeps no process alive); the
 * collections are this isolate's, the trim process-wide (a `threads` worker's trim also
 * returns what its siblings freed; glibc serializes it with their allocations). Returns
 * the stop function. Without the addon or glibc only the collections run.
 */
export function trimServerProcess(reactor: Reactor): () => void {
  provide(MEMORY_KEY, () => ({ compact: applied, trimThreshold, ...done }));
  let trim = true;
  const gc = fullCollection();
  const activity = (): number => performance.eventLoopUtilization().active;
  const burst = new BurstTrim(activity, () => {
    if (gc !== null) {
      // The first shrinks the young generation and flips into its smaller half, the second
      // leaves the survivors in fresh pages so the rest of that half is no longer resident.
      const t0 = performance.now();
      gc();
      gc();
      const ms = performance.now() - t0;
      done.gcs++;
      done.gcMs = Math.round(ms * 100) / 100;
      done.gcMsMax = Math.max(done.gcMsMax, done.gcMs);
      const young = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
      done.newSpaceKb = Math.round((young?.physical_space_size ?? 0) / 1024);
    }
    if (trim && trimMalloc()) done.trims++;
    else trim = false; // no glibc: nothing to trim, ever
  }, TRIM_QUIET_CHECKS, TRIM_QUIET_ELU * TRIM_CHECK_MS, { read: () => reactor.stats.connections, trickle: TRIM_QUIET_CONNS });
  // Every TRIM_CHECK_MS, or TRIM_SETTLED_CHECK_MS once settled.
  let timer: NodeJS.Timeout;
  const next = (): void => {
    const span = burst.settled ? TRIM_SETTLED_CHECK_MS / TRIM_CHECK_MS : 1;
    timer = setTimeout(() => {
      burst.check(span);
      next();
    }, span * TRIM_CHECK_MS);
    timer.unref();
  };
  next();
  return () => clearTimeout(timer);
}

/**
 * The memory benchmarks' forced collection (SIGUSR1 in a server started with `--expose-gc`):
 * `gc`, then in a compact process also `malloc_trim(0)`, so a sample taken after it stands on
 * the same footing as one taken after an after-burst trim (a baseline with the burst's freed
 * malloc pages still resident would be compared with an end without them).
 */
export function benchCollect(gc: () => void): void {
  gc();
  if (applied) trimMalloc();
}

/** Node flags for a prefork child started with `compactMemory`. */
export const COMPACT_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];
/**
 * The same cap for a `threads` worker of a compact server (a Worker's `resourceLimits`): a
 * young generation of 3 MiB is V8's two 1 MiB semi-spaces and their large-object share.
 * Without it a worker isolate's semi-spaces grow to 8 MiB each under a burst.
 */
export const COMPACT_THREAD_LIMITS = { maxYoungGenerationSizeMb: 3 } as const;

/** The glibc tunable a prefork child of a compact server starts with: one malloc arena. */
export const ONE_ARENA_TUNABLE = 'glibc.malloc.arena_max=1';
/** The `arena_max` a GLIBC_TUNABLES string sets, or undefined when it sets none. */
const arenaMax = (tunables: string): string | undefined => /(?:^|:)glibc\.malloc\.arena_max=([^:]*)/.exec(tunables)?.[1];
/**
 * The trim threshold of a process with one arena: freed heap tops up to 4 MiB stay for the
 * next allocations of a burst (no page faults to take them again), the after-burst
 * `malloc_trim(0)` returns them. A process with thread arenas needs 0 instead: `malloc_trim`
 * never returns a thread arena's free top; only a free() that leaves a top above the
 * threshold does.
 */
export const ONE_ARENA_TRIM_THRESHOLD = 4 << 20;

/**
 * The environment of a prefork child started with `compactMemory`: `env` with
 * {@link ONE_ARENA_TUNABLE} added to `GLIBC_TUNABLES` (a user's own `arena_max` wins). Tunables
 * are read at process start, so a child is the only place to set them. Why one arena: V8's
 * compiler and GC threads otherwise malloc in arenas of their own, whose free tops only a
 * threshold of 0 gives back, at the price of a page fault each time a burst takes them again
 * (~0.2 per WebSocket upgrade, ~6-10 % of a cold process's upgrade CPU: BENCHMARKS.md).
 */
export function compactChildEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const cur = env.GLIBC_TUNABLES ?? '';
  if (arenaMax(cur) !== undefined) return env;
  return { ...env, GLIBC_TUNABLES: cur === '' ? ONE_ARENA_TUNABLE : `${cur}:${ONE_ARENA_TUNABLE}` };
}

/** The trim threshold `applyCompactMemory` sets for a process started with `tunables` (its GLIBC_TUNABLES). */
export function compactTrimThreshold(tunables = process.env.GLIBC_TUNABLES ?? ''): number {
  return arenaMax(tunables) === '1' ? ONE_ARENA_TRIM_THRESHOLD : 0;
}

/** glibc's trim threshold this process set (compactTrimThreshold), or null when none was set. */
let trimThreshold: number | null = null;

/**
 * In a worker thread of a compact server: the policy is already the process's (its main thread
 * applied it before starting the thread); count this isolate as compact so that its figures
 * and `benchCollect` say so. Threading: this thread's module state only.
 */
export function adoptCompactMemory(): void {
  if (applied) return;
  applied = true;
  trimThreshold = loadBinding() === null ? null : compactTrimThreshold();
}

/** Apply the compact-memory policy to this process, once. Never throws: without the addon or
 *  glibc only the V8 part applies. */
export function applyCompactMemory(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString('--semi-space-growth-factor=1');
  const bytes = compactTrimThreshold();
  if ((loadBinding()?.mallocTrimThreshold(bytes) ?? -1) >= 0) trimThreshold = bytes;
}
