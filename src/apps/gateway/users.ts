/**
 * The open WebSockets of each user (a token's `sub`), for a disconnect (`POST /disconnect/<user>`
 * and its NATS control message): closing every connection of a user must not scan the
 * process's connections.
 *
 * Memory: one Map entry per user with open connections (the connection itself, a Map by id
 * only from a second one on), only on a gateway with tokens: an open gateway's clients have no user and are never filed. A connection is filed
 * when its token is verified and unfiled when it closes; a `refresh` keeps the user.
 *
 * Threading: one gateway (one reactor thread), like the connections it holds.
 */
export class Users<W extends { readonly id: number }> {
  /**
   * A user's one connection, or its connections by id from a second one on (most users have
   * one). Keyed by id: a connection's WebSocket handles are not one object across callbacks.
   */
  readonly #byUser = new Map<string, W | Map<number, W>>();

  /** File `ws` under `user` (again: nothing changes). */
  add(user: string, ws: W): void {
    const v = this.#byUser.get(user);
    if (v === undefined) this.#byUser.set(user, ws);
    else if (v instanceof Map) v.set(ws.id, ws);
    else if (v.id !== ws.id) this.#byUser.set(user, new Map([[v.id, v], [ws.id, ws]]));
  }

  /** Unfile `ws` (closed). */
  remove(user: string, ws: W): void {
    const v = this.#byUser.get(user);
    if (v === undefined) return;
    if (!(v instanceof Map)) {
      if (v.id === ws.id) this.#byUser.delete(user);
    } else if (v.delete(ws.id) && v.size === 1) {
      this.#byUser.set(user, v.values().next().value!);
    }
  }

  /** The connections of `user` now (a copy: closing them may unfile them). */
  of(user: string): W[] {
    const v = this.#byUser.get(user);
    return v === undefined ? [] : v instanceof Map ? [...v.values()] : [v];
  }

  /** Users with open connections. */
  get size(): number {
    return this.#byUser.size;
  }
}
