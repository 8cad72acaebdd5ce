/**
 * Latency statistics for `c1m bench`: HDR histograms recorded in nanoseconds in each worker,
 * shipped to the parent as compressed base64, merged there bucket by bucket.
 *
 * Invariants: percentiles are only ever read from a merged histogram; per-worker percentiles
 * are never averaged (the mean of p99s is not a p99). `hdr-histogram-js` is an optional
 * dependency of c1m that only the bench needs: it is loaded by {@link loadHistograms}, which
 * each bench entry point (`c1m bench`, `c1m bench million`, a worker) awaits before its first
 * histogram, so that `c1m serve`, `c1m doctor` and `import 'c1m'` never load it and work
 * without it installed.
 */
import type { Histogram } from 'hdr-histogram-js';

type Hdr = typeof import('hdr-histogram-js');
let hdr: Hdr | undefined;

/**
 * Load `hdr-histogram-js`; resolves at once after the first time.
 * Errors: rejects with an install hint when the package is missing (installed with
 * `--omit=optional`).
 */
export async function loadHistograms(): Promise<void> {
  hdr ??= await import('hdr-histogram-js').catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ERR_MODULE_NOT_FOUND'
      ? new Error('c1m bench needs the hdr-histogram-js package, an optional dependency of c1m left out of this install: npm install hdr-histogram-js')
      : err;
  });
}

/** The loaded package. Errors: throws when {@link loadHistograms} has not completed (a bench entry point forgot it). */
function lib(): Hdr {
  if (hdr === undefined) throw new Error('bench-stats: loadHistograms() must complete before the first histogram');
  return hdr;
}

/** Latency summary in microseconds (one decimal), as printed in the JSON result. */
export interface LatencySummary {
  /** Messages whose round trip was recorded. */
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/**
 * A latency histogram in nanoseconds: 1 ns to 1 h at 3 significant digits (it grows on demand
 * past 1 h rather than throw).
 */
export function latencyHistogram(): Histogram {
  return lib().build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** Encode for IPC; null for an empty histogram (nothing worth sending). */
export function encodeHistogram(h: Histogram): string | null {
  return h.totalCount === 0 ? null : lib().encodeIntoCompressedBase64(h);
}

/** Merge encoded histograms (nulls skipped) into `into` (a new one by default) and return it. */
export function mergeHistograms(encoded: readonly (string | null | undefined)[], into: Histogram = latencyHistogram()): Histogram {
  for (const e of encoded) {
    if (!e) continue;
    const h = lib().decodeFromCompressedBase64(e);
    into.add(h);
    h.destroy();
  }
  return into;
}

const us = (ns: number): number => Math.round(ns / 100) / 10;

/** Percentiles, max and mean of a nanosecond histogram, in microseconds; null when empty. */
export function summarize(h: Histogram): LatencySummary | null {
  if (h.totalCount === 0) return null;
  return {
    count: h.totalCount,
    p50: us(h.getValueAtPercentile(50)),
    p90: us(h.getValueAtPercentile(90)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    max: us(h.maxValue),
    mean: us(h.mean),
  };
}

/** Add every count of `from` into `into` (error tallies by code). */
export function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): Record<string, number> {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
  return into;
}

/** A duration in µs for humans: `850µs`, `12.3ms`, `1.20s`. */
export function formatMicros(v: number): string {
  if (v < 1000) return `${Math.round(v)}µs`;
  if (v < 1_000_000) return `${(v / 1000).toFixed(1)}ms`;
  return `${(v / 1_000_000).toFixed(2)}s`;
}
