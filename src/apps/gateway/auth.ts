/**
 * Who may subscribe and publish: JWTs verified with `jose` (HS256 with a shared secret, or
 * RS256 / ES256 with a public key), and the topic patterns their claims grant.
 *
 * A token's claims: `sub` (the user, required), `exp` (checked when present), `topics`
 * (patterns the user may subscribe to) and `publish` (patterns it may publish to over HTTP,
 * or `true` for every topic). Patterns follow NATS subject rules, so a permission reads the
 * same as the subject it guards: topics are `.`-separated segments; a `*` segment matches
 * exactly one segment, a final `>` one or more (`news.*` grants `news.sport`, not
 * `news.sport.live`; `news.>` grants both).
 *
 * Threading: an `Auth` verifies on the thread that made it; verification is asynchronous
 * (WebCrypto), so callers decide what a connection may do before it completes.
 */
import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';

/**
 * A valid topic: 1-128 characters of `[A-Za-z0-9_-]` in `.`-separated non-empty segments (a
 * NATS subject token each; no wildcards).
 */
export const TOPIC_RE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
export const MAX_TOPIC_LENGTH = 128;

export const isTopic = (t: unknown): t is string => typeof t === 'string' && t.length <= MAX_TOPIC_LENGTH && TOPIC_RE.test(t);

/** What a verified token grants. */
export interface Grant {
  /** The user (`sub`). */
  user: string;
  /** Subscribe patterns (`topics` claim). */
  topics: readonly string[];
  /** Publish patterns (`publish` claim; `['>']` for `true`). */
  publish: readonly string[];
  /**
   * `pub`s a second for this token's user (its connections to one gateway together;
   * `publish_rate` claim, 0: no limit), over the gateway's `clientPublishRate`; undefined: the
   * gateway's.
   */
  publishRate?: number;
  /** Seconds since the epoch, or undefined when the token has no `exp`. */
  expires: number | undefined;
  claims: JWTPayload;
}

/** The grant of every client of an open gateway (`noAuth`): one shared, frozen object. */
export const OPEN_GRANT: Grant = Object.freeze({ user: '', topics: Object.freeze(['>']), publish: Object.freeze([]), expires: undefined, claims: Object.freeze({}) });

/** Why a token was refused: a stable code for the wire, and a message. */
export class AuthError extends Error {
  readonly code: 'missing' | 'expired' | 'invalid';
  constructor(code: 'missing' | 'expired' | 'invalid', message: string) {
    super(message);
    this.code = code;
  }
}

/** Does `pattern` (NATS rules, see the module comment) match `topic`? */
export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === topic) return true;
  // `>` alone (every open client's grant) matches every topic: no split per subscription.
  if (pattern === '>') return true;
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>' && i === p.length - 1) return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

export const allowed = (patterns: readonly string[], topic: string): boolean => patterns.some((p) => topicMatches(p, topic));

const patternsOf = (v: unknown, name: string): string[] => {
  if (v === undefined) return [];
  if (v === true) return ['>'];
  if (Array.isArray(v) && v.every((p) => typeof p === 'string')) return v as string[];
  throw new AuthError('invalid', `the ${name} claim must be an array of topic patterns`);
};

/** How the gateway checks tokens. Exactly one of `jwtSecret`, `jwtPublicKey`, `noAuth`. */
export interface AuthOptions {
  /** HS256 shared secret. */
  jwtSecret?: string;
  /** A PEM public key (SPKI or certificate): RSA for RS256, P-256 for ES256. */
  jwtPublicKey?: string;
  /** Accept connections without a token (an open gateway): every topic may be subscribed. */
  noAuth?: boolean;
  /** A static bearer token for `POST /publish/<topic>` (any topic), besides JWTs. */
  publishToken?: string;
}

export class Auth {
  readonly open: boolean;
  readonly #key: Uint8Array | KeyObject | null;
  readonly #algorithms: string[];
  readonly #publishToken: Buffer | null;

  /** Errors: throws a plain Error naming the option when they are inconsistent. */
  constructor(o: AuthOptions) {
    const ways = [o.jwtSecret !== undefined, o.jwtPublicKey !== undefined, o.noAuth === true].filter(Boolean).length;
    if (ways !== 1) throw new Error('gateway auth: give exactly one of jwtSecret, jwtPublicKey, noAuth');
    this.open = o.noAuth === true;
    this.#publishToken = o.publishToken === undefined ? null : digest(o.publishToken);
    if (o.jwtSecret !== undefined) {
      if (o.jwtSecret.length < 16) throw new Error('gateway auth: jwtSecret must be at least 16 characters');
      this.#key = new TextEncoder().encode(o.jwtSecret);
      this.#algorithms = ['HS256'];
    } else if (o.jwtPublicKey !== undefined) {
      const key = createPublicKey(o.jwtPublicKey);
      const type = key.asymmetricKeyType;
      if (type === 'rsa') this.#algorithms = ['RS256'];
      else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') this.#algorithms = ['ES256'];
      else throw new Error(`gateway auth: jwtPublicKey must be an RSA or P-256 public key (got ${type})`);
      this.#key = key;
    } else {
      this.#key = null;
      this.#algorithms = [];
    }
  }

  /** Verify a token. Rejects with an `AuthError`. */
  async verify(token: string | undefined): Promise<Grant> {
    if (this.#key === null) return OPEN_GRANT;
    if (!token) throw new AuthError('missing', 'a token is required');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, { algorithms: this.#algorithms }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthError('expired', 'the token has expired');
      throw new AuthError('invalid', `the token is not valid: ${(err as Error).message}`);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('invalid', 'the token names no user (sub)');
    const rate = payload.publish_rate;
    if (rate !== undefined && !(typeof rate === 'number' && rate >= 0 && Number.isFinite(rate))) {
      throw new AuthError('invalid', 'the publish_rate claim must be a number >= 0 (publishes a second; 0: no limit)');
    }
    return { user: payload.sub, topics: patternsOf(payload.topics, 'topics'), publish: patternsOf(payload.publish, 'publish'), publishRate: rate, expires: payload.exp, claims: payload };
  }

  get hasPublishToken(): boolean {
    return this.#publishToken !== null;
  }

  /** Is `token` the static publish token? Constant time. */
  isPublishToken(token: string): boolean {
    return this.#publishToken !== null && timingSafeEqual(this.#publishToken, digest(token));
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The bearer token of an `Authorization` header value, if any. */
export function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m === null ? undefined : m[1];
}
