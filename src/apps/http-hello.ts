/**
 * The handler behind `c1m serve http`: an HTTP/1.1 hello world (`GET /` answers
 * `Hello, World!`), everything else 404. A handler module so that every reactor of a
 * multi-core server can load it.
 */
import { createHttpHandler } from '../protocols/http1/index.js';
import type { Handler } from '../core/index.js';

const HELLO = Buffer.from('Hello, World!');

/** One handler per reactor (`serve` calls this in each thread or process). */
export function createHandler(): Handler {
  return createHttpHandler({
    routes: {
      'GET /': (_req, res) => {
        res.setHeader('Content-Type', 'text/plain');
        res.end(HELLO);
      },
    },
  });
}
