/**
 * What /proc says about other processes: their children and their threads' scheduling policy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { processTree } from '../../src/cli/bench-proc.js';

/** `pid`'s children now (empty when it is gone). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `pid`'s live descendants now (the bench's own process-tree walk). */
export function descendants(pid: number): number[] {
  return processTree([pid]).filter((p) => p !== pid);
}

/** Linux scheduling policies as /proc/PID/stat field 41 gives them. */
export const SCHED_OTHER = 0, SCHED_BATCH = 3;

/** The scheduling policy of each thread of `pid` (threads that exit meanwhile are left out). */
export function threadPolicies(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // fields after "(comm)" start at field 3; policy is field 41
      out.push(Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[41 - 3]));
    } catch {
      // the thread exited
    }
  }
  return out;
}

/**
 * `node RUN_JS serve HANDLER --port 0 --host 127.0.0.1 ...args` (the CLI tests' server), with
 * its stdout and stderr gathered in `out()`.
 */
export function serveCli(runJs: string, handler: string, args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [runJs, 'serve', handler, '--port', '0', '--host', '127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}
