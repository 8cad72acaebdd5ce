/**
 * `--node-flags="FLAGS"` (`c1m serve`, `c1m bench million`): Node/V8 flags for worker
 * processes, as one space-separated string.
 */

/** Split `s` into its flags; `bad` is the first word that is not a `--flag[=value]`. */
export function splitNodeFlags(s: string): { flags: string[]; bad?: string } {
  const flags = s.split(/\s+/).filter((f) => f !== '');
  const bad = flags.find((f) => !/^--[a-z0-9][-a-z0-9_]*(=\S*)?$/i.test(f));
  return bad === undefined ? { flags } : { flags, bad };
}
