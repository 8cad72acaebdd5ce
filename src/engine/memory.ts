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
 */
import { setFlagsFromString } from 'node:v8';
import { loadBinding } from '../core/binding.js';

let applied = false;

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
