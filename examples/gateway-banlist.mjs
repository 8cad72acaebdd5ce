// A push gateway that refuses banned users, at connect and on open connections: the gateway of
// `c1m serve gateway` built from the package's `c1m/gateway` entry, with what flags cannot carry
// (an `authorize` hook), run again on every open connection every BANLIST_MS (default 30 s).
// The ban list is a file, one user (a token's `sub`) a line, read at most once a second.
// Run: BANLIST=./banned.txt node bin/c1m.js serve examples/gateway-banlist.mjs --port 8080 \
//        --handler-options '{"jwtSecret":"a-secret-of-16-chars-or-more","publishToken":"pt"}'
// then add a user to banned.txt: its open WebSockets close with 4003 within BANLIST_MS.
import { readFileSync } from 'node:fs';
import { createGateway } from 'c1m/gateway';

const every = Number(process.env.BANLIST_MS ?? 30_000);
let list = new Set();
let readAt = -Infinity;

/** The ban list, read again once it is a second old (a round checks every connection). */
function banList() {
  if (performance.now() - readAt >= 1000) {
    readAt = performance.now();
    try {
      list = new Set(readFileSync(process.env.BANLIST ?? 'banned.txt', 'utf8').split('\n').map((l) => l.trim()).filter(Boolean));
    } catch {
      list = new Set(); // no file: nobody is banned
    }
  }
  return list;
}

export const createHandler = (options) => createGateway({
  ...options,
  authorize: (grant) => !banList().has(grant.user),
  authorizeInterval: every,
});
