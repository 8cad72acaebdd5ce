/*
 * Preloaded by bench/mem-breakdown.mjs (NODE_OPTIONS=--require) into the processes of a
 * `c1m bench million` run: with C1M_MEMDBG_DIR set, SIGUSR2 writes this process's V8 heap
 * figures (per space: committed, used, resident) to C1M_MEMDBG_DIR/<pid>-<n>.json. It does
 * nothing else, and nothing at all without the variable; SIGWINCH writes a heap snapshot there.
 */
'use strict';
const dir = process.env.C1M_MEMDBG_DIR;
if (dir) {
  const v8 = require('node:v8');
  const fs = require('node:fs');
  let n = 0;
  process.on('SIGUSR2', () => {
    const spaces = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = { committed: s.space_size, used: s.space_used_size, physical: s.physical_space_size };
    const h = v8.getHeapStatistics();
    const c = v8.getHeapCodeStatistics();
    const out = {
      pid: process.pid,
      spaces,
      heap: { total_physical_size: h.total_physical_size, total_heap_size: h.total_heap_size, used_heap_size: h.used_heap_size, malloced_memory: h.malloced_memory, peak_malloced_memory: h.peak_malloced_memory, external_memory: h.external_memory },
      code: c,
      memory: process.memoryUsage(),
    };
    fs.writeFileSync(`${dir}/${process.pid}-${n++}.json`, JSON.stringify(out));
  });
  // SIGWINCH: a heap snapshot (after V8's own full GC) to <dir>/<pid>-<n>.heapsnapshot.
  process.on('SIGWINCH', () => {
    const f = `${dir}/${process.pid}-${n++}.heapsnapshot`;
    v8.writeHeapSnapshot(`${f}.part`);
    fs.renameSync(`${f}.part`, f);
  });
}
