/**
 * Run the CLI of this build: `node <build>/cli/run.js <command> [args]`. `bin/c1m.js` is the
 * installed launcher; this entry lets `c1m bench million` start `c1m serve` from the very
 * build it runs from (dist/ or a test build).
 */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`c1m: ${err?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
