/**
 * `c1m serve gateway`: a real-time gateway. WebSocket clients subscribe to topics
 * (`/ws?topics=a,b`, or `sub`/`unsub` messages: protocol.ts), authenticated by a JWT
 * (auth.ts); publishers `POST /publish/<topic>` on the same port, or publish on NATS
 * (broker.ts); a topic's last messages are kept for clients that reconnect (history.ts, or
 * with NATS in a JetStream stream shared by every process: jetstream.ts);
 * `/metrics` and `/dashboard` show it at work (metrics.ts, dashboard.ts). With `adminPort`,
 * publish and those move to a listener of their own (admin.ts). docs/gateway.md.
 *
 * A handler module: each reactor (thread or process) builds its own gateway, and with
 * several of them NATS carries every message to each process that has subscribers for it.
 *
 * Per connection: a WebSocket's `data` holds its grant (user and patterns), and, until its
 * token is verified, the messages it sent meanwhile (client-data.ts); an open gateway's clients
 * hold nothing (one shared grant); subscriptions are the WebSocket server's topics (no JS object per
 * subscription). Verification is asynchronous (jose,
 * WebCrypto) while the engine's upgrade decision is synchronous, so a request without a token is refused at the upgrade
 * (401), and one with a token is upgraded, then verified before any of its messages is
 * served; a token that fails closes the WebSocket with 4001 (4003 when `authorize` says no, at
 * connect or, with `authorizeInterval`, later: reauthorize.ts).
 * A token with `exp` closes its WebSocket with 4001 (`unauthorized: expired`) when it expires
 * (expiry.ts), unless a `refresh` message brought a fresh token of the same user first.
 * Its options are in options.ts; operator requests are read and checked in operator.ts. With tokens, each WebSocket is also
 * filed under its user (users.ts), so that
 * `POST /disconnect/<user>` (and its NATS control message) closes a user's connections with 4009,
 * `POST /unsubscribe/<user>?topics=` takes them off topics (`unsubscribed`, as a `refresh`
 * whose token no longer grants a topic does), and `POST /subscribe/<user>?topics=` puts them on
 * those their token grants (`subscribed`).
 */
import type { Connection, Handler, Reactor } from '../../core/index.js';
import { C1mError } from '../../core/index.js';
import { trackReactor, untrackReactor } from '../../engine/index.js';
import { UPGRADE_IN_PLACE, UPGRADE_QUICK, createHttpHandler, type HttpRequest, type HttpResponse, type InPlaceUpgrade } from '../../protocols/http1/index.js';
import { createWebSocketHandler, quickUpgradeFor, type WebSocket } from '../../protocols/ws/index.js';
import { checkAdminAddress, openAdmin, type AdminListener } from './admin.js';
import { Auth, AuthError, OPEN_GRANT, allowed, bearer, isTopic, type Grant } from './auth.js';
import { Broker, type BrokerMessage } from './broker.js';
import { ExpiryWatch } from './expiry.js';
import { Reauthorizer } from './reauthorize.js';
import { PublishRate } from './pub-rate.js';
import { RateShare } from './rate-share.js';
import { Users } from './users.js';
import { OpQueues } from './op-queues.js';
import { dashboardRoutes } from './dashboard.js';
import { Streams, type Stream } from './history.js';
import { JetStreamHistory, type Fetched } from './jetstream.js';
import { newCounters, observeLatency, trackGateway } from './metrics.js';
import { MAX_EARLY_MESSAGES, Pending, grantOf, type ClientData } from './client-data.js';
import { answerJson, controlPrefix, parseBroadcast, parseControl, parseUserRequest, publishRefusal, type Answer, type UserAction, type UserControl } from './operator.js';
import {
  BINARY_TYPE, OpError, encodeAck, encodeAckOne, encodeError, encodeMsg, encodePong, encodePubAck, encodeSubscribed, encodeUnsubscribed, encodeWelcome, messageData, parseClientBinary,
  parseClientOp, parseQuerySub, queryOf, type ClientOp, type Frame, type MessageData, type TopicState,
} from './protocol.js';
import { GATEWAY_PUBSUB_DEFAULTS, subscribeOrNone } from './topics.js';
import type { GatewayOptions } from './options.js';

export type { GatewayOptions };
export type { Grant } from './auth.js';
export type { AuthorizeRequest } from './reauthorize.js';

/** Wall-clock ms with sub-ms precision (latency across processes of one machine). */
const nowMs = (): number => performance.timeOrigin + performance.now();

/** The welcome of every client without a user (an open gateway's), as UTF-8 bytes made once. */
const OPEN_WELCOME_BYTES = Buffer.from(encodeWelcome(''));

/** Close code of a WebSocket whose user was disconnected (`POST /disconnect/<user>`). */
export const DISCONNECT_CODE = 4009;
/** The `reason` of the `unsubscribed` a `refresh` sends for the topics its token no longer grants. */
export const REFRESH_REASON = 'refresh';
/** An operator's requests about a user, each a NATS control subject under the control prefix. */
const USER_ACTIONS: readonly UserAction[] = ['disconnect', 'unsubscribe', 'subscribe'];

/**
 * The result of delivering one topic message in this process; a publish's answer. With NATS
 * the answer leaves before this process's delivery (`delivered: null`: not known then).
 */
interface Delivered {
  delivered: number | null;
  seq: number | null;
  epoch: string | null;
}

/**
 * Build one gateway handler (one per reactor). Async: it connects to NATS first when asked.
 * Errors: rejects with a plain Error for inconsistent options, or NATS unreachable at start.
 */
export async function createGateway(o: GatewayOptions): Promise<Handler> {
  const adminHost = o.adminHost ?? '127.0.0.1';
  const badAdmin = o.adminPort === undefined ? null : checkAdminAddress(o.adminPort, adminHost);
  if (badAdmin !== null) throw new Error(badAdmin);
  const auth = new Auth(o);
  const maxMessage = o.maxMessageBytes ?? 64 * 1024;
  const counters = newCounters();
  // With `authorizeInterval`: open WebSockets, `authorize`d again every interval (reauthorize.ts).
  if (o.authorizeInterval !== undefined && o.authorize === undefined) throw new Error('gateway: authorizeInterval needs an authorize hook');
  const recheck = o.authorize === undefined || o.authorizeInterval === undefined ? null : new Reauthorizer<WebSocket<ClientData>>(o.authorizeInterval, (ws, req) => {
    const g = grantOf(ws.data);
    return g === null || o.authorize!(g, req);
  }, (ws) => {
    counters.authFailures++;
    ws.close(4003, 'forbidden');
  }, () => counters.authorizeErrors++);
  // Open WebSockets whose token has an `exp`: closed with 4001 when it comes (expiry.ts).
  const expiry = new ExpiryWatch<WebSocket<ClientData>>(() => counters.tokenExpiries++);
  // Open WebSockets by user (tokens only), for an operator's request about a user; with NATS
  // such requests are control messages under this prefix (checked here, at start).
  const users = new Users<WebSocket<ClientData>>();
  const control = o.nats === undefined ? '' : controlPrefix(o);
  let reactor: Reactor | undefined;
  let broker: Broker | null = null;
  let rateShare: RateShare | null = null;
  const rate = o.clientPublishRate ?? 100;
  if (!(rate >= 0 && Number.isFinite(rate))) throw new Error(`gateway: clientPublishRate must be a number >= 0 (0: no limit), not ${o.clientPublishRate}`);
  const pubRate = o.clientPublish === true ? new PublishRate(rate) : null;

  const streams = new Streams({ ...o, maxStreams: Math.max(o.maxStreams ?? 100_000, o.pubsub?.maxTopics ?? 100_000) }, (topic) => broker?.interest(topic, false));

  /** Deliver one topic message to this process's subscribers: number it, keep it, send it once. */
  const deliver = (topic: string, data: MessageData, publishedAt: number): Delivered => {
    counters.messagesIn++;
    counters.bytesIn += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    // Standalone with history, a publish to a topic nobody follows starts its stream (history
    // for later subscribers; the ttl sweep drops it); without history there is nothing to
    // keep. With NATS we only hear of topics we have a stream for.
    const s = broker === null && streams.keepsHistory ? streams.open(topic) : streams.get(topic);
    if (s === undefined) return { delivered: 0, seq: null, epoch: null };
    const frame = streams.append(s, (seq) => encodeMsg(topic, seq, data));
    const n = s.active ? wsHandler.publish(topic, frame) : 0;
    if (n > 0) {
      counters.messagesOut++;
      counters.bytesOut += Buffer.byteLength(frame) * n;
      observeLatency((nowMs() - publishedAt) / 1000);
    }
    return { delivered: n, seq: s.seq, epoch: s.epoch };
  };

  const onBrokerMessage = (m: BrokerMessage): void => {
    const data = messageData(m.data, m.contentType);
    if (data === null) return; // claimed JSON and is not: not deliverable
    deliver(m.topic, data, m.publishedAt ?? nowMs());
  };
  /** With NATS and history: the shared history (jetstream.ts); then topics are its feeds, not core subscriptions. */
  let jsh: JetStreamHistory | null = null;
  const onFeedFrame = (topic: string, _seq: number, frame: Frame, publishedAt: number | undefined): void => {
    counters.messagesIn++;
    counters.bytesIn += frame.length;
    const n = wsHandler.publish(topic, frame);
    if (n > 0) {
      counters.messagesOut++;
      counters.bytesOut += Buffer.byteLength(frame) * n;
      observeLatency((nowMs() - (publishedAt ?? nowMs())) / 1000);
    }
  };
  if (o.nats !== undefined) {
    broker = await Broker.connect({ servers: o.nats, prefix: o.natsPrefix, onReconnect: () => void jsh?.reconnected() }, onBrokerMessage);
    for (const action of USER_ACTIONS) {
      broker.control(`${control}${action}`, (data) => {
        const d = parseControl(data, action !== 'disconnect');
        if (d !== null) actOn(action, d);
      });
    }
    // Users' publish rates hold over every gateway on this NATS (rate-share.ts).
    if (pubRate !== null && !auth.open) rateShare = new RateShare(pubRate, broker, `${control}rate`, users, (n) => (counters.rateCharged += n));
    if ((o.history ?? 0) > 0) {
      try {
        jsh = await JetStreamHistory.open(broker.connection, {
          history: o.history!, stream: o.historyStream, storage: o.historyStorage, streamBytes: o.historyStreamBytes, prefix: o.natsPrefix ?? 'c1m.topic.',
          connected: () => broker!.up,
        }, (topic, seq, data, contentType) => {
          const d = messageData(data, contentType);
          return d === null ? null : encodeMsg(topic, seq, d);
        }, onFeedFrame);
      } catch (err) {
        rateShare?.stop();
        await broker.close();
        throw err;
      }
    }
  }

  const onInterest = (topic: string, active: boolean): void => {
    if (jsh !== null) {
      if (active) jsh.hold(topic);
      else jsh.release(topic);
    } else if (active) {
      const s = streams.open(topic)!; // room: maxStreams >= maxTopics, and only inactive streams are evicted
      s.active = true;
      broker?.interest(topic, true);
    } else {
      const s = streams.get(topic);
      if (s !== undefined) streams.left(topic, s);
    }
  };

  // An open gateway without an `authorize` hook accepts every client at once: its welcome and
  // the URL's subscription ack leave with the 101 (one write), and it keeps no per-client data.
  const verifiesNow = auth.open && o.authorize === undefined;
  /**
   * With `verifiesNow`: the `sub` of the URL `onUpgrade` just accepted, for the `onOpen` the
   * WebSocket server runs right after it (synchronously, nothing in between).
   */
  let openSub: Pending['querySub'] = null;

  const wsHandler = createWebSocketHandler<ClientData>({
    pubsub: { ...GATEWAY_PUBSUB_DEFAULTS, ...o.pubsub },
    onTopicInterest: onInterest,
    maxPayload: maxMessage,
    pingInterval: o.pingInterval ?? 30_000,
    shutdownSpread: o.shutdownSpread,
    onUpgrade(req) {
      const query = queryOf(req.target);
      if (verifiesNow) {
        // An open gateway without a hook admits at once: no token read (no header scan per
        // connect) and no per-connection data; what the URL asked waits in `openSub` for onOpen.
        try {
          openSub = parseQuerySub(query);
        } catch {
          return { status: 400 };
        }
        return true;
      }
      const token = query.get('token') ?? bearer(req.headers.find(([n]) => n.toLowerCase() === 'authorization')?.[1]);
      if (!auth.open && !token) {
        counters.authFailures++;
        return { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } };
      }
      let querySub: Pending['querySub'];
      try {
        querySub = parseQuerySub(query);
      } catch {
        return { status: 400 };
      }
      const req2 = o.authorize === undefined ? null : { target: req.target, headers: req.headers };
      return new Pending(token ?? undefined, req2, querySub);
    },
    onOpen(ws) {
      counters.clients++;
      if (verifiesNow) {
        const sub = openSub;
        openSub = null;
        welcome(ws, OPEN_GRANT, sub);
      } else {
        verify(ws, ws.data as Pending).catch(() => ws.terminate());
      }
    },
    onMessage(ws, data, isBinary) {
      // Binary: a binary `pub`, copied: the bytes are the reader's, and it may be served later
      // (its token pending, or behind a `sub` that waits for JetStream).
      const m = isBinary ? Buffer.from(data) : data.toString('utf8');
      const d = ws.data;
      if (d instanceof Pending) {
        const early = (d.early ??= []);
        if (early.length >= MAX_EARLY_MESSAGES) ws.close(1008, 'too many messages before authentication');
        else early.push(m);
        return;
      }
      serve(ws, m);
    },
    onClose(ws) {
      counters.clients--;
      unfile(ws);
      pubRate?.forget(ws.id);
      recheck?.remove(ws.id);
      const g = grantOf(ws.data);
      if (g !== null && g !== OPEN_GRANT) users.remove(g.user, ws);
    },
  });

  async function verify(ws: WebSocket<ClientData>, p: Pending): Promise<void> {
    let grant: Grant;
    try {
      grant = await auth.verify(p.token);
      if (o.authorize !== undefined && !(await o.authorize(grant, p.req!))) {
        counters.authFailures++;
        ws.close(4003, 'forbidden');
        return;
      }
    } catch (err) {
      counters.authFailures++;
      if (err instanceof AuthError) ws.close(4001, `unauthorized: ${err.code}`);
      else ws.close(1011, 'authorization failed');
      return;
    }
    if (ws.readyState !== 'open') return;
    admit(ws, p, grant);
  }

  /** `p` verified with `grant`: welcome it, subscribe what its URL asked, serve what it sent meanwhile. */
  function admit(ws: WebSocket<ClientData>, p: Pending, grant: Grant): void {
    grantTo(ws, grant);
    recheck?.add(ws, p.req!); // (a request is kept whenever there is a hook)
    welcome(ws, grant, p.querySub);
    if (p.early !== null) for (const m of p.early) serve(ws, m);
  }

  /** Welcome an admitted client, then subscribe what its URL asked (`sub`, when it asked). */
  function welcome(ws: WebSocket<ClientData>, grant: Grant, sub: Pending['querySub']): void {
    // Text sent as its UTF-8 bytes when they are made once: no encoding per connect.
    if (grant.user === '') ws.send(OPEN_WELCOME_BYTES, false);
    else ws.send(encodeWelcome(grant.user));
    if (sub === null) return;
    if (jsh === null) subscribe(ws, grant, sub); // what inOrder does then, without its closure
    else inOrder(ws, () => subscribe(ws, grant, sub));
  }

  /** A client's ops waiting for the one before them (op-queues.ts). */
  const queues = new OpQueues();
  /** `fn` after what `ws` has queued (with JetStream), else now. */
  function inOrder(ws: WebSocket<ClientData>, fn: () => void | Promise<void>): void {
    if (jsh === null) return void fn();
    queues.chain(ws, fn);
  }

  /**
   * One client message: JSON text, or the bytes of a binary one (a binary `pub`). Answered in
   * the order sent (a `pub` through NATS aside, see serveNow): served now unless something is
   * queued before it; an op still running when serveNow returns (a `refresh`) holds the rest.
   */
  function serve(ws: WebSocket<ClientData>, m: string | Uint8Array): void {
    if (jsh !== null || queues.waiting(ws.id)) return queues.chain(ws, () => serveNow(ws, m));
    const running = serveNow(ws, m);
    if (running !== undefined) queues.chain(ws, () => running);
  }

  function serveNow(ws: WebSocket<ClientData>, m: string | Uint8Array): void | Promise<void> {
    // Closing (a disconnect, an expired token, a slow subscriber, ...): a peer that goes on
    // sending until the close handshake ends is not served, so it cannot publish meanwhile.
    if (ws.readyState !== 'open') return;
    // The grant now, not when the message came: one queued behind a `refresh` (with the
    // JetStream history ops wait for each other) is held to the token that refresh brought.
    const grant = grantOf(ws.data)!;
    let op: ClientOp;
    try {
      op = typeof m === 'string' ? parseClientOp(m) : parseClientBinary(m);
    } catch (err) {
      ws.send(encodeError(err as OpError));
      return;
    }
    if (op.op === 'ping') ws.send(encodePong(op.id));
    else if (op.op === 'sub') return subscribe(ws, grant, op);
    else if (op.op === 'refresh') return refresh(ws, grant, op);
    else if (op.op === 'pub') {
      const publishing = publishOp(ws, grant, op);
      if (broker === null || jsh !== null) return publishing;
      // Through core NATS its ack comes when NATS confirms: later ops are not held for it.
      publishing.catch(() => ws.terminate());
    } else {
      for (const t of op.topics) ws.unsubscribe(t);
      ws.send(encodeAck(op.id));
    }
  }

  /**
   * `refresh`: a fresh token for the same user replaces the connection's grant (the patterns
   * for later `sub`s, and the expiry: expiry.ts). Subscriptions the new token does not grant
   * end (`unsubscribed`, before the ack): narrowing a user's tokens revokes topics at its next
   * refresh. An invalid or expired token gets an `unauthorized` error and changes nothing;
   * another user's, `forbidden`.
   */
  async function refresh(ws: WebSocket<ClientData>, grant: Grant, op: Extract<ClientOp, { op: 'refresh' }>): Promise<void> {
    let next: Grant;
    try {
      next = await auth.verify(op.token);
    } catch (err) {
      const why = err instanceof AuthError ? err.code : 'invalid';
      if (ws.readyState === 'open') ws.send(encodeError(new OpError('unauthorized', op.id, `the token was refused: ${why}`)));
      return;
    }
    if (ws.readyState !== 'open') return;
    if (next.user !== grant.user) {
      ws.send(encodeError(new OpError('forbidden', op.id, 'the token names another user')));
      return;
    }
    unfile(ws);
    grantTo(ws, next);
    takeOff(ws, ws.getTopics().filter((t) => !allowed(next.topics, t)), REFRESH_REASON);
    ws.send(encodeAck(op.id));
  }

  /**
   * Take `ws` off those of `topics` it is subscribed to, and tell it which (`unsubscribed`
   * `reason`; nothing when none). Returns how many.
   */
  function takeOff(ws: WebSocket<ClientData>, topics: readonly string[], reason: string): number {
    if (ws.readyState !== 'open') return 0;
    const gone = topics.filter((t) => ws.unsubscribe(t));
    if (gone.length === 0) return 0;
    ws.send(encodeUnsubscribed(gone, reason));
    counters.serverUnsubscribes += gone.length;
    return gone.length;
  }

  /** `ws` holds `grant` from now on, and closes when it expires (expiry.ts). */
  function grantTo(ws: WebSocket<ClientData>, grant: Grant): void {
    ws.data = grant === OPEN_GRANT ? undefined : grant;
    if (grant.expires !== undefined) expiry.add(ws, grant.expires);
    if (grant !== OPEN_GRANT) users.add(grant.user, ws);
  }

  /** `ws`'s grant no longer closes it at its expiry (it closed, or holds another grant now). */
  function unfile(ws: WebSocket<ClientData>): void {
    const exp = grantOf(ws.data)?.expires;
    if (exp !== undefined) expiry.remove(ws.id, exp);
  }

  /** The last one-topic ack `subscribe` made, and what it says. */
  let lastAck = { topic: '', epoch: '', seq: -1, id: -1, bytes: Buffer.alloc(0) };

  /** Subscribe `ws` to all of `topics` or none; false (the error sent) when one is refused. */
  function subscribeAll(ws: WebSocket<ClientData>, grant: Grant, op: Extract<ClientOp, { op: 'sub' }>): boolean {
    const forbidden = op.topics.find((t) => !allowed(grant.topics, t));
    if (forbidden !== undefined) {
      ws.send(encodeError(new OpError('forbidden', op.id, 'the token does not grant this topic', forbidden)));
      return false;
    }
    const err = subscribeOrNone(ws, op.topics);
    if (err === null) return true;
    const code = (err as C1mError).code === 'ERR_C1M_PUBSUB_LIMIT' ? 'limit' : 'invalid_topic';
    ws.send(encodeError(new OpError(code, op.id, (err as Error).message)));
    return false;
  }

  /** All of `op`'s topics or none: ack with each topic's position, then what it missed. */
  function subscribe(ws: WebSocket<ClientData>, grant: Grant, op: Extract<ClientOp, { op: 'sub' }>): void | Promise<void> {
    if (jsh !== null) return subscribeShared(ws, grant, op, jsh);
    if (!subscribeAll(ws, grant, op)) return;
    if (op.topics.length === 1 && op.since.size === 0) {
      // The usual connect (`?topics=T`): the ack without its object of states, and in a storm
      // (every client of a topic at the same position) the same text as the last one.
      const t = op.topics[0]!;
      const s = streams.get(t)!;
      const a = lastAck;
      if (s.seq !== a.seq || s.epoch !== a.epoch || op.id !== a.id || t !== a.topic) {
        lastAck = { topic: t, epoch: s.epoch, seq: s.seq, id: op.id, bytes: Buffer.from(encodeAckOne(op.id, t, s.seq, s.epoch)) };
      }
      ws.send(lastAck.bytes, false); // text, as its UTF-8 bytes
      return;
    }
    const states: Record<string, TopicState> = {};
    const missed: Frame[] = [];
    for (const t of op.topics) {
      const s: Stream = streams.get(t)!;
      const state: TopicState = { seq: s.seq, epoch: s.epoch };
      const since = op.since.get(t);
      if (since !== undefined) {
        const r = streams.recover(s, since.seq, since.epoch);
        state.recovered = r.recovered;
        for (const f of r.frames) missed.push(f);
      }
      states[t] = state;
    }
    ws.send(encodeAck(op.id, states));
    for (const f of missed) ws.send(f);
  }

  /**
   * `subscribe` with the JetStream history: hold each topic's feed (so its position is known
   * and it runs), read what `since` missed from the stream, then, in one synchronous step,
   * subscribe, ack, and send the missed frames (joined to what the feed delivered meanwhile),
   * before any live frame. JetStream unreachable: an `unavailable` error, nothing subscribed.
   */
  async function subscribeShared(ws: WebSocket<ClientData>, grant: Grant, op: Extract<ClientOp, { op: 'sub' }>, js: JetStreamHistory): Promise<void> {
    if (op.topics.some((t) => !allowed(grant.topics, t))) return void subscribeAll(ws, grant, op); // its error
    const unavailable = (err: unknown): void => void ws.send(encodeError(new OpError('unavailable', op.id, `the history (NATS JetStream) is unavailable: ${(err as Error).message}`)));
    try {
      await js.acquireAll(op.topics);
    } catch (err) {
      return unavailable(err);
    }
    try {
      const fetched = new Map<string, Fetched>();
      try {
        for (const [t, p] of op.since) fetched.set(t, await js.fetch(t, p.seq, p.epoch));
      } catch (err) {
        return unavailable(err);
      }
      if (ws.readyState !== 'open' || !subscribeAll(ws, grant, op)) return;
      const states: Record<string, TopicState> = {};
      const missed: Frame[] = [];
      for (const t of op.topics) {
        const r = fetched.get(t);
        if (r === undefined) {
          states[t] = positionOf(t);
          continue;
        }
        const j = js.join(t, r);
        states[t] = { seq: j.seq, epoch: js.epoch, recovered: j.recovered };
        for (const f of j.frames) missed.push(f);
      }
      ws.send(encodeAck(op.id, states));
      for (const f of missed) ws.send(f);
    } finally {
      for (const t of op.topics) js.release(t);
    }
  }

  /** Where `topic`'s stream is here (its feed's with the JetStream history): an ack's state of it. */
  function positionOf(topic: string): TopicState {
    if (jsh !== null) return { seq: jsh.position(topic), epoch: jsh.epoch };
    const s = streams.get(topic)!; // (a topic with a local subscriber has its stream)
    return { seq: s.seq, epoch: s.epoch };
  }

  /**
   * `POST /publish/<topic>`: 200 `{delivered, seq, epoch}`; see docs/gateway.md for refusals.
   * Standalone it answers after delivering (synchronous here); with NATS as soon as NATS has
   * the message (core: the flush; JetStream: the stream's ack), before this process's own
   * delivery of it (queued: inbound.ts), so `delivered` is null there.
   */
  async function publish(req: HttpRequest, res: HttpResponse): Promise<void> {
    const refuse = (status: number, message: string, extra?: Record<string, string>): void => {
      counters.publishRefused++;
      answerJson(res, status, { error: message }, extra);
    };
    let topic = '';
    try {
      topic = decodeURIComponent(req.path.slice('/publish/'.length));
    } catch {
      // not a topic: below
    }
    if (!isTopic(topic)) return refuse(404, 'no such topic: a topic is [A-Za-z0-9_-] segments separated by dots');
    const refused = await publishRefusal(auth, req, [topic]);
    if (refused !== null) return refuse(refused[0], String(refused[1].error), refused[2]);
    const data = messageData(req.body, req.header('content-type'));
    if (data === null) return refuse(400, 'the body is not valid JSON (Content-Type says it is)');
    let result: Delivered;
    try {
      result = await publishMessage(topic, data, req.body, req.header('content-type'));
    } catch (err) {
      return refuse(503, `not published: ${(err as Error).message}`, { 'Retry-After': '1' });
    }
    answerJson(res, 200, result);
  }

  /**
   * `POST /broadcast`, body `{"topics":[...],"data":<JSON>}`: one message to each of 1 to
   * `MAX_BROADCAST_TOPICS` topics (a notification to many users' topics in one request), each
   * delivered and numbered as its own publish. All topics must be granted, or none is published.
   * Standalone: 200 `{published, delivered}` after delivery; with NATS once NATS has every one
   * (`delivered` null). NATS failing part way: 503 with `published`, the ones it confirmed
   * (JetStream), or null when not known (core NATS: no confirmation, some may be out).
   */
  async function broadcast(req: HttpRequest, res: HttpResponse): Promise<void> {
    const refuse = ([status, body, extra]: Answer): void => {
      counters.publishRefused++;
      answerJson(res, status, body, extra);
    };
    const b = parseBroadcast(req.body);
    if (Array.isArray(b)) return refuse(b);
    const { topics, data } = b;
    const refused = await publishRefusal(auth, req, topics, true);
    if (refused !== null) return refuse(refused);
    const body = Buffer.from(data);
    if (broker === null) {
      let delivered = 0;
      for (const t of topics) delivered += deliver(t, data, nowMs()).delivered!;
      return answerJson(res, 200, { published: topics.length, delivered });
    }
    const busy = { 'Retry-After': '1' };
    if (!broker.up) return refuse([503, { error: 'not published: NATS is not connected', published: 0 }, busy]);
    if (jsh !== null) {
      const r = await Promise.allSettled(topics.map((t) => jsh!.publish(t, body, 'application/json', nowMs())));
      const failed = r.find((x) => x.status === 'rejected');
      const published = r.filter((x) => x.status === 'fulfilled').length;
      if (failed !== undefined) return refuse([503, { error: `not all published: ${(failed.reason as Error).message}`, published }, busy]);
      return answerJson(res, 200, { published, delivered: null });
    }
    try {
      await broker.publish(topics, body, 'application/json');
    } catch (err) {
      return refuse([503, { error: `not confirmed: ${(err as Error).message}`, published: null }, busy]);
    }
    answerJson(res, 200, { published: topics.length, delivered: null });
  }

  /**
   * Publish one message (an HTTP publish or a client's `pub`; `data` its JSON text or binary
   * bytes, `body`/`contentType` as they go to NATS). Standalone: delivered here now. With NATS: handed
   * over, core NATS once its flush confirms, JetStream once the stream acks (its seq is the
   * message's position on every process); every interested process, this one included,
   * delivers it after. Errors: rejects when NATS is down or does not confirm (nothing was
   * published).
   */
  async function publishMessage(topic: string, data: MessageData, body: Uint8Array, contentType: string | undefined): Promise<Delivered> {
    if (broker === null) return deliver(topic, data, nowMs());
    if (!broker.up) throw new Error('NATS is not connected');
    if (jsh !== null) {
      const { seq, epoch } = await jsh.publish(topic, body, contentType, nowMs());
      return { delivered: null, seq, epoch };
    }
    await broker.publish([topic], body, contentType);
    return { delivered: null, seq: null, epoch: null };
  }

  /**
   * `pub`: a client publishes over its WebSocket (`clientPublish`): with a token, to the topics
   * its `publish` claim grants (on an open gateway, to any), within its `publish_rate` claim or
   * else `clientPublishRate`: per user (all its connections here), per connection on an open
   * gateway (pub-rate.ts).
   * Answered like `POST /publish`: an `ack` with delivered/seq/epoch, or an error (`forbidden`;
   * `limit` over the rate; `unavailable` when NATS is down).
   */
  async function publishOp(ws: WebSocket<ClientData>, grant: Grant, op: Extract<ClientOp, { op: 'pub' }>): Promise<void> {
    const refuse = (code: 'forbidden' | 'limit' | 'unavailable', message: string): void => {
      counters.publishRefused++;
      if (ws.readyState === 'open') ws.send(encodeError(new OpError(code, op.id, message, op.topic)));
    };
    if (o.clientPublish !== true) return refuse('forbidden', 'publishing over the WebSocket is off on this gateway');
    if (grant !== OPEN_GRANT && !allowed(grant.publish, op.topic)) return refuse('forbidden', 'the token does not grant publishing to this topic');
    const perSecond = grant.publishRate ?? rate;
    if (pubRate !== null && !pubRate.take(grant === OPEN_GRANT ? ws.id : grant.user, performance.now(), perSecond)) return refuse('limit', `over ${perSecond} publishes a second`);
    let r: Delivered;
    try {
      const d = op.data;
      r = typeof d === 'string' ? await publishMessage(op.topic, d, Buffer.from(d), 'application/json') : await publishMessage(op.topic, d, d, BINARY_TYPE);
    } catch (err) {
      return refuse('unavailable', `not published: ${(err as Error).message}`);
    }
    if (ws.readyState === 'open') ws.send(encodePubAck(op.id, r.delivered, r.seq, r.epoch));
  }

  /** Close every open WebSocket of `user` in this process with 4009 `reason`; returns how many. */
  function disconnectUser(user: string, reason: string): number {
    let n = 0;
    for (const ws of users.of(user)) {
      if (ws.readyState !== 'open') continue; // already closing: not counted twice
      ws.close(DISCONNECT_CODE, reason);
      n++;
    }
    counters.disconnects += n;
    return n;
  }

  /**
   * `fn` on every open WebSocket of `user` in this process, each after the ops it sent before
   * (a `sub` waiting for JetStream ends first). Returns the sum of what `fn` returned at once
   * (all of it without the JetStream history, where `fn` may wait for the topics' feeds).
   */
  function forUser(user: string, fn: (ws: WebSocket<ClientData>) => number | Promise<number>): number {
    let n = 0;
    for (const ws of users.of(user)) {
      inOrder(ws, () => {
        const r = fn(ws);
        if (typeof r !== 'number') return r.then(() => {});
        n += r;
      });
    }
    return n;
  }

  /**
   * Put `ws` on those of `topics` its token grants and it is not on yet, all or none (one that
   * would pass its topic limit is left as it was), and tell it which with their positions
   * (`subscribed` `reason`). With the JetStream history the topics' feeds run first (their
   * positions known); JetStream unreachable: nothing. Returns how many.
   */
  function putOn(ws: WebSocket<ClientData>, topics: readonly string[], reason: string): number | Promise<number> {
    const grant = grantOf(ws.data);
    if (ws.readyState !== 'open' || grant === null) return 0;
    const add = topics.filter((t) => allowed(grant.topics, t) && !ws.isSubscribed(t));
    if (add.length === 0) return 0;
    const now = (): number => {
      const fresh = add.filter((t) => !ws.isSubscribed(t)); // (with JetStream a sub of its own may have come meanwhile)
      if (ws.readyState !== 'open' || fresh.length === 0 || subscribeOrNone(ws, fresh) !== null) return 0;
      const states: Record<string, TopicState> = {};
      for (const t of fresh) states[t] = positionOf(t);
      ws.send(encodeSubscribed(states, reason));
      counters.serverSubscribes += fresh.length;
      return fresh.length;
    };
    const js = jsh;
    if (js === null) return now();
    return js.acquireAll(add).then(() => {
      try {
        return now();
      } finally {
        for (const t of add) js.release(t);
      }
    }, () => 0);
  }

  /** Do `action` to this process's connections of the user; returns how many connections or subscriptions it changed. */
  function actOn(action: UserAction, { user, reason, topics }: UserControl): number {
    if (action === 'disconnect') return disconnectUser(user, reason);
    return forUser(user, action === 'unsubscribe' ? (ws) => takeOff(ws, topics, reason) : (ws) => putOn(ws, topics, reason));
  }

  /**
   * An operator's request about one user: `POST /disconnect/<user>[?reason=R]` closes every
   * open WebSocket of the user (4009 R); `POST /unsubscribe/<user>?topics=a,b[&reason=R]` takes
   * them off those topics, `POST /subscribe/<user>?topics=a,b[&reason=R]` puts them on those
   * their token grants. On every gateway process and machine with `--nats` (a control
   * message). Only the publish token may; an open gateway has no users. Answers
   * `{"disconnected":n}` / `{"unsubscribed":n}` / `{"subscribed":n}` (standalone: connections
   * closed, subscriptions removed or added), or null once NATS has the message; 503 when NATS
   * is down.
   */
  async function operatorRequest(req: HttpRequest, res: HttpResponse, action: UserAction): Promise<void> {
    const r = parseUserRequest(auth, req, action);
    if (Array.isArray(r)) return answerJson(res, ...r);
    const result = action === 'disconnect' ? 'disconnected' : `${action}d`;
    if (broker === null) return answerJson(res, 200, { [result]: actOn(action, r) });
    try {
      const body = action === 'disconnect' ? { user: r.user, reason: r.reason } : r;
      await broker.publishControl(`${control}${action}`, Buffer.from(JSON.stringify(body)));
    } catch (err) {
      return answerJson(res, 503, { error: `not sent: ${(err as Error).message}` }, { 'Retry-After': '1' });
    }
    answerJson(res, 200, { [result]: null });
  }

  /** Operator requests (`/publish/<topic>`, `/broadcast`, `/disconnect/<user>`, `/unsubscribe/<user>`, `/subscribe/<user>`); 404 for any other path no route took. */
  function onPublishRequest(req: HttpRequest, res: HttpResponse): void | Promise<void> {
    const p = req.path;
    const action = p.startsWith('/publish/') ? 'publish' : p === '/broadcast' ? 'broadcast' : p.startsWith('/disconnect/') ? 'disconnect'
      : p.startsWith('/unsubscribe/') ? 'unsubscribe' : p.startsWith('/subscribe/') ? 'subscribe' : null;
    if (action === null) return void res.status(404).end('Not Found');
    if (req.method !== 'POST') return void res.status(405).setHeader('Allow', 'POST').end('Method Not Allowed');
    return action === 'publish' ? publish(req, res) : action === 'broadcast' ? broadcast(req, res) : operatorRequest(req, res, action);
  }

  const upgrade = wsHandler.upgradeHook();
  const upgradeInPlace = (upgrade as Partial<InPlaceUpgrade>)[UPGRADE_IN_PLACE]!;
  /** An upgrade of any other path: 404, then the HTTP server closes the connection. */
  const noSuchSocket = (conn: Connection): void => {
    conn.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  };
  const opsRoutes = (o.metrics ?? true) ? dashboardRoutes() : {};
  const onlyWs = o.adminPort !== undefined;
  const http = createHttpHandler({
    // A client reconnecting in a storm (every client of a restarted gateway at once) may take
    // many seconds to send its upgrade request: allow what Node's own server allows for a head
    // (its headersTimeout is 60 s), half of it.
    headerTimeout: 30_000,
    maxBodyBytes: maxMessage,
    routes: onlyWs ? {} : opsRoutes,
    onRequest: onlyWs ? (_req, res) => void res.status(404).end('Not Found') : onPublishRequest,
    // The HTTP server hands `/ws` over in place (UPGRADE_IN_PLACE), as it does the WebSocket
    // handler's own hook: the bytes after the head go to it without a copy, and the session
    // that read the request serves the next connection.
    onUpgrade: Object.assign((req: HttpRequest, conn: Connection, head: Buffer) => (req.path === '/ws' ? upgrade(req, conn, head) : noSuchSocket(conn)), {
      [UPGRADE_IN_PLACE]: (req: HttpRequest, conn: Connection) => (req.path === '/ws' ? upgradeInPlace(req, conn) : noSuchSocket(conn)),
      // A plain upgrade of `/ws` as a connection's first bytes: served from them, no parse.
      [UPGRADE_QUICK]: quickUpgradeFor(upgrade, '/ws'),
    }),
  });
  let admin: AdminListener | null = null;
  if (o.adminPort !== undefined) {
    const adminHttp = createHttpHandler({
      maxBodyBytes: maxMessage,
      routes: opsRoutes,
      onRequest: onPublishRequest, // an upgrade request is one too: 404
    });
    try {
      admin = await openAdmin(adminHttp, o.adminPort, adminHost);
    } catch (err) {
      jsh?.close();
      await broker?.close();
      throw err;
    }
  }

  const untrack = await trackGateway(() => {
    const st = wsHandler.pubsubStats;
    counters.subscriptions = st.subscriptions;
    counters.topics = st.topics;
    counters.drops = st.drops;
    counters.slowClosed = st.slowClosed;
    counters.deliveries = st.deliveries;
    counters.brokerSubscriptions = jsh?.consumers ?? broker?.subscriptions ?? 0;
    counters.brokerUp = broker === null || broker.up ? 1 : 0;
    return counters;
  });

  return {
    ...http,
    onReactor(r) {
      reactor = r;
      wsHandler.onReactor?.(r);
      trackReactor(r); // its engine metrics, however the gateway was started (serve does it too)
    },
    onShutdown() {
      // WebSockets get 1001 (at once or spread over shutdownSpread); HTTP connections close
      // after what they are sending.
      const closing = wsHandler.onShutdown();
      // (A WebSocket's tag has bit 0 set; an HTTP connection's never has.)
      for (const conn of reactor?.connections() ?? []) if ((conn.tag & 1) === 0) conn.close();
      // What the WebSockets waiting for their turn are served by stays up until the last is closed.
      const tearDown = (): void => {
        rateShare?.stop();
        expiry.stop();
        recheck?.stop();
        streams.close();
        void admin?.close();
        jsh?.close();
        untrack();
        if (reactor !== undefined) untrackReactor(reactor);
        void broker?.close();
      };
      closing.then(tearDown).catch((err: Error) => process.emitWarning(`c1m gateway: shutdown: ${err.message}`));
    },
  };
}

/** The handler module's entry (`serve` calls it in each thread or process). */
export function createHandler(options: GatewayOptions = {}): Promise<Handler> {
  return createGateway(options);
}
