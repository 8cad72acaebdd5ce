/**
 * The `c1m` command line: argument dispatch only; each command calls the public API.
 */
import { benchMain } from './bench.js';
import { doctorMain } from './doctor.js';
import { serveMain, SERVE_USAGE } from './serve.js';

const USAGE = `c1m: a network engine for a million connections

usage:
  c1m serve <app|./handler.js> --port P [options]
                                        run a built-in server or your handler module (c1m serve --help)
  c1m bench <hold|echo|http|broadcast|ws-hold|ws-echo|connect> --port P -c N [options]
                                        load generator on N connections (c1m bench --help)
  c1m bench udp --port P [--mode echo|flood] [options]
                                        UDP echo (loss, latency) or flood (c1m bench udp --help)
  c1m bench report RESULTS.json... -o REPORT.html
                                        an HTML report from saved results
  c1m bench million [--steps ...]       ramp this box to a million connections (c1m bench million --help)
  c1m bench million --ws --broadcast    the same with gateway WebSocket subscribers and one broadcast
  c1m doctor [--connections N] [--json] [--apply]
                                        the OS limits that stop N connections, and how to lift them
`;

/** Run the CLI with `argv` (without node and script). Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serveMain(rest);
    case 'bench':
      return benchMain(rest);
    case 'doctor':
      return doctorMain(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`c1m: unknown command "${cmd}"\n${USAGE}\n${SERVE_USAGE}\n`);
      return 2;
  }
}
