/**
 * The Buffers a backend hands to `onData`: views of a range of a shared area (the native
 * backend's receive area), and their area read back without the `buffer` getter.
 *
 * Why: `area.subarray(...)` on a Buffer goes through the species lookup and `Buffer()`, which
 * ends in `Buffer.from(area, offset, length)`: calling that directly makes the same Buffer
 * (about 37 ns a view against 43 ns, once per DATA record). A view's `buffer` getter is a C++
 * builtin call in V8 (about 24 ns), and `byteOffset` is a generic property load (about 15 ns; in
 * V8 11 only `length` of a view's accessors is inlined); the WebSocket framing needs both once
 * per read. So the last view made here is remembered with its area and offset, and `areaOf` /
 * `offsetOf` answer for it with one comparison.
 *
 * Invariants: a view is an ordinary Buffer (nothing of its own, same prototype); `areaOf(b)`
 * is `b.buffer` and `offsetOf(b)` is `b.byteOffset` for every `b` (a view's buffer and offset
 * never change: the areas are never detached or resized).
 * Threading: module state, per isolate; any reactor's views may be asked about.
 */

let lastView: Uint8Array | null = null;
let lastArea: ArrayBufferLike | null = null;
let lastOffset = 0;

/** A Buffer over `area[offset, offset + length)`, as `Buffer.from(area, offset, length)`. */
export function areaView(area: ArrayBuffer, offset: number, length: number): Buffer {
  const view = Buffer.from(area, offset, length);
  lastView = view;
  lastArea = area;
  lastOffset = offset;
  return view;
}

/** `bytes.buffer`, without the getter for the view `areaView` made last. */
export function areaOf(bytes: Uint8Array): ArrayBufferLike {
  return bytes === lastView ? lastArea! : bytes.buffer;
}

/** `bytes.byteOffset`, without the getter for the view `areaView` made last. */
export function offsetOf(bytes: Uint8Array): number {
  return bytes === lastView ? lastOffset : bytes.byteOffset;
}
