/**
 * Staging a broadcast in the native send area (the native backend's `broadcast`). A BROADCAST
 * command is a header (`fd` = the id count, `len` = the payload length), the live ids as
 * (fd, gen) records, then the payload, once; native code writes the payload to each id.
 *
 * Model: ids are staged in chunks that fit the area with the payload (flushing when it is
 * full). When the next broadcast names exactly the live ids of the last staged command, in the
 * same order, and nothing was staged after that command, its payload is appended to the
 * command's instead: native code then writes both payloads to each connection with one
 * sendmsg, the way consecutive writes to one connection leave together. So a burst of
 * publishes to one topic costs one send per subscriber, not one per message.
 *
 * Accounting: every byte staged for a connection is added to its `staged` count (what
 * `bufferedAmount` reads until the area is consumed), so a publish later in the same batch
 * sees what the earlier ones queued, the way it sees staged writes.
 *
 * Invariant: only the last staged command is ever extended (`castEnd` equals the staged size
 * exactly while nothing follows it; the reactor sets it to -1 whenever the area is consumed),
 * so every connection receives its bytes in the order they were staged.
 */
import type { Layout } from '../core/layout.js';

const TWO32 = 2 ** 32;

/** The send area as the reactor holds it, and where its last BROADCAST command is. */
export interface BroadcastArea {
  readonly send: Uint8Array;
  readonly sendI32: Int32Array;
  readonly ctl: Int32Array;
  readonly L: Layout;
  /** Bytes in the send area. */
  readonly size: number;
  /** The BROADCAST opcode. */
  readonly op: number;
  /** Byte offset of the last staged BROADCAST command. */
  castAt: number;
  /** The staged size right after it, or -1 once anything else was staged or the area consumed. */
  castEnd: number;
  /** Bytes staged per fd since the area was last consumed (shared with the reactor's writes). */
  readonly staged: Uint32Array;
  /** Fds whose `staged` count went from 0 since then (`touch`; the reactor zeroes them). */
  readonly touched: Int32Array;
  alive(fd: number, gen: number): boolean;
  /** Hand the staged commands to native code now (the area is then empty). */
  flush(): void;
}

/**
 * A list of the fds to zero in `staged`: word 0 holds the count, the fds follow. Past its
 * capacity the count becomes capacity + 1, "zero them all": a broadcast to most of the table
 * is then cleared with one pass instead of scattered stores. A typed array, not a JS array:
 * a push there costs several times this store.
 */
export function touchList(slots: number): Int32Array {
  return new Int32Array(Math.max(256, slots >>> 3) + 1);
}

/** Note that `staged[fd]` went from 0. */
export function touch(t: Int32Array, fd: number): void {
  const n = t[0]!;
  if (n < t.length - 1) {
    t[n + 1] = fd;
    t[0] = n + 1;
  } else {
    t[0] = t.length;
  }
}

/** Zero `staged` where `t` says, and empty `t`. */
export function clearStaged(staged: Uint32Array, t: Int32Array): void {
  const n = t[0]!;
  if (n === 0) return;
  if (n >= t.length) staged.fill(0);
  else for (let i = 1; i <= n; i++) staged[t[i]!] = 0;
  t[0] = 0;
}

/** Stage `bytes` for every live id of `ids`. Returns how many connections it was queued for. */
export function stageBroadcast(a: BroadcastArea, ids: ArrayLike<number>, bytes: Uint8Array): number {
  const { L, sendI32, ctl, staged, touched } = a;
  const len = bytes.length;
  if (a.castEnd === ctl[L.ctlSendUsed]) {
    const end = extend(a, ids, bytes);
    if (end >= 0) {
      ctl[L.ctlSendUsed] = a.castEnd = end;
      return sendI32[(a.castAt >> 2) + L.cmdFd]!;
    }
  }
  // One command per chunk of ids that fits the send area with the payload.
  const hdr = L.cmdBytes, mask = L.cmdAlignMask, idWords = L.idBytes >> 2, n = ids.length;
  let count = 0;
  let i = 0;
  while (i < n) {
    let used = ctl[L.ctlSendUsed]!;
    const payloadRoom = a.size - used - hdr - bytes.length - mask;
    if (payloadRoom < 64) {
      a.flush();
      continue;
    }
    const maxIds = Math.floor(payloadRoom / L.idBytes);
    const base = (used + hdr) >> 2;
    let k = 0;
    for (; i < n && k < maxIds; i++) {
      const id = ids[i]!;
      const fd = id % TWO32, gen = Math.floor(id / TWO32);
      if (!a.alive(fd, gen)) continue;
      const was = staged[fd]!;
      if (was === 0) touch(touched, fd);
      staged[fd] = was + len;
      sendI32[base + idWords * k + L.idFd] = fd;
      sendI32[base + idWords * k + L.idGen] = gen;
      k++;
    }
    if (k === 0) break;
    const h = used >> 2;
    sendI32[h + L.cmdOp] = a.op;
    sendI32[h + L.cmdFd] = k;
    sendI32[h + L.cmdGen] = 0;
    sendI32[h + L.cmdLen] = bytes.length;
    a.send.set(bytes, used + hdr + k * L.idBytes);
    a.castAt = used;
    used += hdr + ((k * L.idBytes + bytes.length + mask) & ~mask);
    ctl[L.ctlSendUsed] = a.castEnd = used;
    count += k;
  }
  return count;
}

/**
 * Append `bytes` to the last staged BROADCAST when `ids` names exactly its live ids in order
 * and the result fits (a payload of at most half the area). Returns the new end of the staged
 * area, or -1 (nothing changed).
 */
function extend(a: BroadcastArea, ids: ArrayLike<number>, bytes: Uint8Array): number {
  const { L, sendI32 } = a;
  const at = a.castAt, h = at >> 2, idWords = L.idBytes >> 2;
  const k = sendI32[h + L.cmdFd]!, len = sendI32[h + L.cmdLen]!;
  const payload = at + L.cmdBytes + k * L.idBytes;
  const end = at + L.cmdBytes + ((k * L.idBytes + len + bytes.length + L.cmdAlignMask) & ~L.cmdAlignMask);
  if (end > a.size || len + bytes.length > a.size / 2) return -1;
  const base = (at + L.cmdBytes) >> 2;
  let j = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const fd = id % TWO32, gen = Math.floor(id / TWO32);
    if (!a.alive(fd, gen)) continue;
    if (j === k || sendI32[base + idWords * j + L.idFd] !== fd || sendI32[base + idWords * j + L.idGen] !== gen) return -1;
    j++;
  }
  if (j !== k) return -1;
  a.send.set(bytes, payload + len);
  sendI32[h + L.cmdLen] = len + bytes.length;
  const { staged, touched } = a;
  for (let i = 0; i < k; i++) {
    const fd = sendI32[base + idWords * i + L.idFd]!;
    const was = staged[fd]!;
    if (was === 0) touch(touched, fd);
    staged[fd] = was + bytes.length;
  }
  return end;
}
