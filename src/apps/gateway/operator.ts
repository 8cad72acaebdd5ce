/**
 * The gateway's operator requests, read and checked (docs/gateway.md): who may publish to
 * which topics (`POST /publish/<topic>`, `POST /broadcast`), a broadcast's body, the requests
 * about one user (`POST /disconnect|unsubscribe|subscribe/<user>`) and their NATS control
 * messages, and the control subjects' prefix. Pure functions of the request and the gateway's
 * `Auth`: what a request then does to connections lives with them (index.ts).
 *
 * A refusal is an `Answer` (status, JSON body, headers) for the caller to send; nothing here
 * writes to the response except `answerJson`.
 */
import type { HttpRequest, HttpResponse } from '../../protocols/http1/index.js';
import { allowed, bearer, isTopic, type Auth, type Grant } from './auth.js';
import { MAX_TOPICS_PER_OP, topicList, type OpError } from './protocol.js';

/** Longest reason of a disconnect (a close frame holds 123 bytes), an unsubscribe or a subscribe. */
export const MAX_REASON_BYTES = 100;
/** Most topics of one `POST /broadcast`. */
export const MAX_BROADCAST_TOPICS = 1000;

/** An answer to send: status, JSON body, extra headers. */
export type Answer = [status: number, body: Record<string, unknown>, headers?: Record<string, string>];

/** What an operator may do to one user's connections. */
export type UserAction = 'disconnect' | 'unsubscribe' | 'subscribe';

/** A request about one user, as the HTTP request or a NATS control message carries it. */
export interface UserControl {
  user: string;
  reason: string;
  /** An unsubscribe's or a subscribe's topics (a disconnect has none: empty). */
  topics: string[];
}

/** Answer an operator request with `body` as JSON, and `extra` headers. */
export function answerJson(res: HttpResponse, status: number, body: unknown, extra?: Record<string, string>): void {
  res.status(status).setHeader('Content-Type', 'application/json');
  for (const [k, v] of Object.entries(extra ?? {})) res.setHeader(k, v);
  res.end(JSON.stringify(body));
}

/**
 * The control prefix for `o` (see `natsControlPrefix`). Errors: throws naming the options when
 * the control subjects could be a topic's, or the prefix is not a plain subject prefix.
 */
export function controlPrefix(o: { natsPrefix?: string; natsControlPrefix?: string }): string {
  const topics = o.natsPrefix ?? 'c1m.topic.';
  const control = o.natsControlPrefix ?? (topics === 'c1m.topic.' ? 'c1m.control.' : `c1m.control.${topics}`);
  if (!/^(?:[^\s.*>]+\.)+$/.test(control)) {
    throw new Error(`gateway: natsControlPrefix must be subject tokens each followed by a dot (no spaces or wildcards), not ${JSON.stringify(control)}`);
  }
  if (control.startsWith(topics) || topics.startsWith(control)) {
    throw new Error(`gateway: the NATS control prefix ${JSON.stringify(control)} and the topic prefix ${JSON.stringify(topics)} overlap: a topic's subject could be a control subject; give --nats-control-prefix outside --nats-prefix`);
  }
  return control;
}

/** A NATS control message's JSON. Errors: throws a SyntaxError when it is not JSON. */
export function controlJson(data: Uint8Array): unknown {
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
}

/**
 * A control message from NATS: `{"user","reason"}` (a disconnect), with `"topics"` (1 to 100
 * topic names) when `withTopics` (an unsubscribe or a subscribe). Null when malformed: it is
 * dropped.
 */
export function parseControl(data: Uint8Array, withTopics: boolean): UserControl | null {
  try {
    const m = controlJson(data) as { user?: unknown; reason?: unknown; topics?: unknown };
    const { user, reason } = m;
    if (typeof user !== 'string' || user.length === 0) return null;
    if (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_REASON_BYTES) return null;
    return { user, reason, topics: withTopics ? topicList(m.topics, 0) : [] };
  } catch {
    return null; // not JSON, or topics that are not a list of topics (topicList's OpError)
  }
}

/**
 * Why `req` may not publish to `topics`, or null when it may: the publish token; else a JWT
 * whose `publish` claim grants every topic; an open gateway without a publish token lets
 * anyone publish. A 403 names the topic refused when `name` (a broadcast's).
 */
export async function publishRefusal(auth: Auth, req: HttpRequest, topics: readonly string[], name = false): Promise<Answer | null> {
  const token = bearer(req.header('authorization'));
  if (token !== undefined && auth.isPublishToken(token)) return null;
  if (auth.open) return auth.hasPublishToken ? [401, { error: 'the publish token is required' }, { 'WWW-Authenticate': 'Bearer' }] : null;
  if (token === undefined) return [401, { error: 'a bearer token is required' }, { 'WWW-Authenticate': 'Bearer' }];
  let grant: Grant;
  try {
    grant = await auth.verify(token);
  } catch (err) {
    return [401, { error: (err as Error).message }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }];
  }
  const forbidden = topics.find((t) => !allowed(grant.publish, t));
  if (forbidden === undefined) return null;
  return [403, { error: name ? `the token does not grant publishing to ${JSON.stringify(forbidden)}` : 'the token does not grant publishing to this topic' }];
}

/**
 * A `POST /broadcast` body, `{"topics":[...],"data":<JSON>}`: its distinct topics and the data's
 * JSON text, or the 400 answer.
 */
export function parseBroadcast(body: Uint8Array): { topics: string[]; data: string } | Answer {
  try {
    const m = JSON.parse(Buffer.from(body).toString('utf8')) as { topics?: unknown; data?: unknown };
    if (typeof m !== 'object' || m === null || Array.isArray(m) || m.data === undefined) throw new Error('no data');
    if (!Array.isArray(m.topics) || m.topics.length === 0 || m.topics.length > MAX_BROADCAST_TOPICS) {
      return [400, { error: `topics must be an array of 1 to ${MAX_BROADCAST_TOPICS} topics` }];
    }
    const bad = m.topics.find((t) => !isTopic(t));
    if (bad !== undefined) return [400, { error: `not a topic: ${JSON.stringify(bad)}` }];
    return { topics: [...new Set(m.topics as string[])], data: JSON.stringify(m.data) };
  } catch {
    return [400, { error: 'the body must be JSON: {"topics":["a","b"],"data":<any JSON value>}' }];
  }
}

/**
 * `POST /<action>/<user>[?topics=a,b][&reason=R]`, checked: only the publish token may, an
 * open gateway has no users, the user is the path's rest (percent-encoded), the reason at most
 * `MAX_REASON_BYTES` (default: the action's past tense), topics (not for a disconnect) 1 to
 * `MAX_TOPICS_PER_OP` topic names. The request, or the answer refusing it.
 */
export function parseUserRequest(auth: Auth, req: HttpRequest, action: UserAction): UserControl | Answer {
  if (auth.open) return [400, { error: `an open gateway has no users to ${action}` }];
  if (!auth.hasPublishToken) return [403, { error: `POST /${action} needs the publish token (--publish-token), and this gateway has none` }];
  const token = bearer(req.header('authorization'));
  if (token === undefined || !auth.isPublishToken(token)) return [401, { error: 'the publish token is required' }, { 'WWW-Authenticate': 'Bearer' }];
  let user: string | null = null;
  let reason: string | null = action === 'disconnect' ? 'disconnected' : `${action}d`;
  let q = new URLSearchParams();
  try {
    user = decodeURIComponent(req.path.slice(action.length + 2));
    q = new URLSearchParams(req.query);
    if (q.has('reason')) reason = q.get('reason');
  } catch {
    user = null;
  }
  if (user === null || user.length === 0) return [404, { error: `no user: POST /${action}/<user>, the user percent-encoded` }];
  if (reason === null || Buffer.byteLength(reason) > MAX_REASON_BYTES) return [400, { error: `the reason is at most ${MAX_REASON_BYTES} bytes` }];
  if (action === 'disconnect') return { user, reason, topics: [] };
  const list = q.get('topics');
  try {
    return { user, reason, topics: topicList(list ? list.split(',') : [], 0) };
  } catch (err) {
    const bad = (err as OpError).topic;
    return [400, { error: bad === undefined ? `topics=a,b names 1 to ${MAX_TOPICS_PER_OP} topics` : `not a topic: ${JSON.stringify(bad)}` }];
  }
}
