/**
 * The echo handler behind `c1m serve echo`: every byte received is written back.
 * A handler module (default export) so that every reactor of a multi-core server can load it.
 */
import type { Handler } from '../core/index.js';

const echo: Handler = {
  onData(conn, data) {
    conn.write(data);
  },
};

export default echo;
