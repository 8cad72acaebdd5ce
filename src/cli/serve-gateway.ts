/**
 * The flags of `c1m serve gateway` (docs/gateway.md): their parseArgs spec, usage text, and
 * their translation into the gateway's handler options. Argument parsing only; the gateway
 * itself is src/apps/gateway, loaded by every worker as a handler module.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export const GATEWAY_FLAGS = {
  nats: { type: 'string' },
  'nats-prefix': { type: 'string' },
  'nats-control-prefix': { type: 'string' },
  history: { type: 'string' },
  'history-bytes': { type: 'string' },
  'history-ttl': { type: 'string' },
  'history-stream': { type: 'string' },
  'history-storage': { type: 'string' },
  'history-stream-bytes': { type: 'string' },
  'jwt-secret': { type: 'string' },
  'jwt-public-key': { type: 'string' },
  'no-auth': { type: 'boolean' },
  'publish-token': { type: 'string' },
  'client-publish': { type: 'boolean' },
  'client-publish-rate': { type: 'string' },
  'max-message': { type: 'string' },
  'max-topics-per-connection': { type: 'string' },
  'slow-subscriber': { type: 'string' },
  'max-buffered': { type: 'string' },
  'ping-interval': { type: 'string' },
  'shutdown-spread': { type: 'string' },
  'admin-port': { type: 'string' },
  'admin-host': { type: 'string' },
} as const;

export const GATEWAY_USAGE = `gateway options (c1m serve gateway; see docs/gateway.md):
  --jwt-secret S | --jwt-public-key FILE | --no-auth
                              how clients' tokens are checked: HS256 secret (or env
                              C1M_JWT_SECRET), an RSA/P-256 public key in PEM (RS256/ES256),
                              or no token at all (an open gateway: say so explicitly)
  --publish-token T           a static bearer token for POST /publish/<topic> (or env
                              C1M_PUBLISH_TOKEN), besides JWTs with a publish claim; the
                              only one for POST /disconnect/, /unsubscribe/, /subscribe/<user>
  --client-publish            clients may publish over their WebSocket ({"op":"pub"}): to the
                              topics their token's publish claim grants (--no-auth: any)
  --client-publish-rate N     most pubs per second per user (all its connections; with --nats
                              the gateways tell each other what users spent, once a second;
                              --no-auth: per connection), in bursts of up to N; more get a
                              limit error (default 100; 0: no limit; a token's publish_rate
                              claim overrides it)
  --nats URL[,URL...]         fan-out through NATS across processes and machines (required
                              with --processes/--threads above 1)
  --nats-prefix P             NATS subject of topic T is P + T (default c1m.topic.)
  --nats-control-prefix P     NATS subjects of control messages (P + disconnect, P +
                              unsubscribe, P + subscribe; default c1m.control., or
                              c1m.control.<nats-prefix> with --nats-prefix; must not overlap
                              --nats-prefix)
  --history N                 keep each topic's last N messages for recovery (default 0)
  --history-bytes B           and at most B bytes of them per topic (default 1048576)
  --history-ttl MS            keep a topic without subscribers this long (default 300000)
                              With --nats, --history N lives in a NATS JetStream stream
                              shared by every process and machine (the server needs -js);
                              --history-bytes and --history-ttl then do not apply:
  --history-stream NAME       the stream (default C1M_HISTORY), created or updated at start
  --history-storage memory|file  its storage (default memory: lost when NATS restarts)
  --history-stream-bytes B    bytes it keeps over all topics (default 268435456)
  --max-message BYTES         largest published or client message (default 65536)
  --max-topics-per-connection N  (default 100)
  --slow-subscriber close|drop   past --max-buffered bytes queued to a subscriber, close it or
  --max-buffered BYTES           skip its deliveries (default close, 4194304)
  --ping-interval MS          WebSocket heartbeat (default 30000; 0 disables)
  --shutdown-spread MS        on SIGTERM/SIGINT close the WebSockets (1001) evenly over MS
                              instead of all at once, so their clients do not all reconnect
                              in the same second; each keeps receiving until its turn
                              (default 0; --grace then defaults to 5000 + MS)
  --admin-port P              serve POST /publish/<topic>, /metrics, /stats and /dashboard on
                              this port (every worker, SO_REUSEPORT) instead of --port, which
                              then serves only /ws; not --port nor --metrics-port
  --admin-host H              the address --admin-port binds (default 127.0.0.1)`;

type Values = Record<string, string | boolean | undefined>;
/** The longest `--shutdown-spread` (a restart that takes longer is an outage of its own). */
const MAX_SPREAD_MS = 3_600_000;
const int = (s: string | boolean | undefined): number | undefined => (typeof s !== 'string' ? undefined : /^\d+$/.test(s) ? Number(s) : NaN);

/** The gateway's handler options from its flags, or an error message. */
export function gatewayOptions(v: Values, workers: number): { options: Record<string, unknown> } | { error: string } {
  const secret = (v['jwt-secret'] as string | undefined) ?? process.env.C1M_JWT_SECRET;
  const keyFile = v['jwt-public-key'] as string | undefined;
  const ways = [secret !== undefined, keyFile !== undefined, v['no-auth'] === true].filter(Boolean).length;
  if (ways !== 1) return { error: 'the gateway needs exactly one of --jwt-secret S, --jwt-public-key FILE, --no-auth' };
  if (secret !== undefined && secret.length < 16) {
    return { error: `${v['jwt-secret'] !== undefined ? '--jwt-secret' : 'C1M_JWT_SECRET'} must be at least 16 characters (an HS256 secret shorter than that is guessable)` };
  }
  if (workers > 1 && v.nats === undefined) {
    return { error: `${workers} workers need --nats URL: without a broker a message published in one worker would never reach the subscribers of the others` };
  }
  let jwtPublicKey: string | undefined;
  if (keyFile !== undefined) {
    try {
      jwtPublicKey = readFileSync(keyFile, 'utf8');
    } catch (e) {
      return { error: `--jwt-public-key: ${(e as Error).message}` };
    }
  }
  const numeric: [string, number | undefined][] = [
    ['history', int(v.history)], ['history-bytes', int(v['history-bytes'])], ['history-ttl', int(v['history-ttl'])],
    ['history-stream-bytes', int(v['history-stream-bytes'])],
    ['max-message', int(v['max-message'])], ['max-topics-per-connection', int(v['max-topics-per-connection'])],
    ['max-buffered', int(v['max-buffered'])], ['ping-interval', int(v['ping-interval'])],
    ['client-publish-rate', int(v['client-publish-rate'])], ['shutdown-spread', int(v['shutdown-spread'])],
  ];
  const bad = numeric.find(([, n]) => Number.isNaN(n));
  if (bad) return { error: `--${bad[0]} must be a non-negative integer` };
  if ((int(v['shutdown-spread']) ?? 0) > MAX_SPREAD_MS) return { error: `--shutdown-spread is at most ${MAX_SPREAD_MS} ms (an hour)` };
  if (v['client-publish-rate'] !== undefined && v['client-publish'] !== true) return { error: '--client-publish-rate needs --client-publish' };
  const slow = v['slow-subscriber'];
  if (slow !== undefined && slow !== 'close' && slow !== 'drop') return { error: '--slow-subscriber is close or drop' };
  const storage = v['history-storage'];
  if (storage !== undefined && storage !== 'memory' && storage !== 'file') return { error: '--history-storage is memory or file' };
  const stream = v['history-stream'];
  if (typeof stream === 'string' && !/^[A-Za-z0-9_-]{1,64}$/.test(stream)) return { error: '--history-stream is 1 to 64 of [A-Za-z0-9_-]' };
  const admin = adminAddress(v);
  if ('error' in admin) return admin;
  const n = Object.fromEntries(numeric);
  return {
    options: {
      jwtSecret: secret,
      jwtPublicKey,
      noAuth: v['no-auth'] === true ? true : undefined,
      publishToken: (v['publish-token'] as string | undefined) ?? process.env.C1M_PUBLISH_TOKEN,
      clientPublish: v['client-publish'] === true ? true : undefined,
      clientPublishRate: n['client-publish-rate'],
      nats: v.nats,
      natsPrefix: v['nats-prefix'],
      natsControlPrefix: v['nats-control-prefix'],
      history: n.history,
      historyBytes: n['history-bytes'],
      ttl: n['history-ttl'],
      historyStream: stream,
      historyStorage: storage,
      historyStreamBytes: n['history-stream-bytes'],
      maxMessageBytes: n['max-message'],
      pingInterval: n['ping-interval'],
      shutdownSpread: n['shutdown-spread'],
      pubsub: { maxTopicsPerConnection: n['max-topics-per-connection'], slowSubscriber: slow, maxBufferedBytes: n['max-buffered'] },
      adminPort: admin.port,
      adminHost: admin.host,
    },
  };
}

/** `--admin-port`/`--admin-host`, checked against the server's other ports (`--port`, `--metrics-port`). */
function adminAddress(v: Values): { port?: number; host?: string } | { error: string } {
  const p = v['admin-port'], host = v['admin-host'];
  if (p === undefined) return host === undefined ? {} : { error: '--admin-host needs --admin-port' };
  const port = int(p);
  if (port === undefined || !(port >= 1 && port <= 65535)) return { error: `--admin-port must be a port number from 1 to 65535 (every worker binds the same one), not ${JSON.stringify(p)}` };
  if (host !== undefined && (typeof host !== 'string' || isIP(host) === 0)) return { error: `--admin-host must be an IP address, not ${JSON.stringify(host)}` };
  for (const other of ['port', 'metrics-port'] as const) {
    if (int(v[other]) === port) return { error: `--admin-port ${port} is also --${other}: give the admin listener a port of its own` };
  }
  return { port, host: host as string | undefined };
}

/** The name of a gateway flag given to another app, if any. */
export function strayGatewayFlag(v: Values): string | undefined {
  return Object.keys(GATEWAY_FLAGS).find((k) => v[k] !== undefined);
}
