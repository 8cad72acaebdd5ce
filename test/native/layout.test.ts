/**
 * The shared-memory layout: every field JS names in src/core/layout.ts is the C field of
 * native/include/c1m.h that native code reads. Each field is written through the JS layout
 * with a distinct value and read back by the addon (layoutProbe) by its C name, so a drift in
 * either half (a reordered struct, a wrong index, a size change) fails here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBinding } from '../../src/core/binding.js';
import { ctlBytes, layoutOf, type Layout } from '../../src/core/layout.js';
import { nativeAvailable } from '../helpers/backends.js';

type Area = 'slot' | 'event' | 'cmd' | 'id' | 'ctl';

/** JS layout field -> [area, C field]. Event fields with a per-kind name map to a, b or c. */
const FIELDS: Record<string, [Area, string]> = {
  slotGen: ['slot', 'gen'],
  slotFlags: ['slot', 'flags'],
  slotOutLen: ['slot', 'out_len'],
  slotDeadline: ['slot', 'deadline'],
  slotTimeoutTicks: ['slot', 'timeout_ticks'],
  slotInLen: ['slot', 'in_len'],
  evKind: ['event', 'kind'],
  evFd: ['event', 'fd'],
  evGen: ['event', 'gen'],
  dataOffset: ['event', 'a'],
  dataLength: ['event', 'b'],
  dataConsumed: ['event', 'c'],
  openFrom: ['event', 'a'],
  closeReason: ['event', 'a'],
  closeErrno: ['event', 'b'],
  acceptErrno: ['event', 'a'],
  acceptPaused: ['event', 'b'],
  errorWhat: ['event', 'a'],
  errorErrno: ['event', 'b'],
  errorDetail: ['event', 'c'],
  udpMsgOffset: ['event', 'a'],
  udpMsgLength: ['event', 'b'],
  udpMsgAddr: ['event', 'c'],
  udpErrorErrno: ['event', 'a'],
  udpErrorWhat: ['event', 'b'],
  udpErrorCount: ['event', 'c'],
  cmdOp: ['cmd', 'op'],
  cmdFd: ['cmd', 'fd'],
  cmdGen: ['cmd', 'gen'],
  cmdLen: ['cmd', 'len'],
  idFd: ['id', 'fd'],
  idGen: ['id', 'gen'],
  ctlSendUsed: ['ctl', 'send_used'],
  ctlConns: ['ctl', 'conns'],
  ctlTick: ['ctl', 'tick'],
  ctlAcceptPauses: ['ctl', 'accept_pauses'],
  ctlQuietOpens: ['ctl', 'quiet_opens'],
  ctlMaxFd: ['ctl', 'max_fd'],
  ctlErrors: ['ctl', 'errors'],
  ctlErrorsLost: ['ctl', 'errors_lost'],
};

/** Sizes and derived values, checked by the size test rather than field by field. */
const SIZES = ['slotBytes', 'slotWords', 'liveFlags', 'evBytes', 'evWords', 'cmdBytes', 'cmdAlign', 'cmdAlignMask', 'idBytes', 'ctlWords'];

describe('shared-memory layout', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  const b = loadBinding()!;
  const L = layoutOf(b.constants);
  const bytesOf = (area: Area): number =>
    ({ slot: L.slotBytes, event: L.evBytes, cmd: L.cmdBytes, id: L.idBytes, ctl: ctlBytes(L) })[area];

  test('every field of the JS layout is covered here', () => {
    const known = new Set([...Object.keys(FIELDS), ...SIZES]);
    for (const key of Object.keys(L)) assert.ok(known.has(key), `layout field ${key} has no check`);
  });

  test('sizes: a slot is 32 bytes; records are whole words; commands stay aligned', () => {
    assert.equal(L.slotBytes, 32); // a million connections in 32 MB
    assert.equal(L.slotWords * 4, L.slotBytes);
    assert.equal(L.evWords * 4, L.evBytes);
    assert.equal(L.cmdBytes % L.cmdAlign, 0);
    assert.equal(L.idBytes % 4, 0);
    assert.equal(L.cmdAlign & L.cmdAlignMask, 0, 'alignment is a power of two');
    assert.ok(L.cmdAlign >= 4);
    assert.equal(L.liveFlags, b.constants.F_OPEN | b.constants.F_CONNECTING);
  });

  for (const area of ['slot', 'event', 'cmd', 'id', 'ctl'] as const) {
    test(`${area}: each field written from JS is read by native code from the same C field`, () => {
      const names = Object.keys(FIELDS).filter((n) => FIELDS[n]![0] === area);
      // One JS name per C field for the write (per-kind aliases are checked one at a time below).
      for (const name of names) {
        const mem = new ArrayBuffer(bytesOf(area));
        const words = new Int32Array(mem);
        const idx = L[name as keyof Layout];
        assert.ok(Number.isInteger(idx) && idx >= 0 && idx < words.length, `${name} = ${idx} is inside the ${area}`);
        // every other word gets a decoy, so a probe of the wrong word cannot match
        words.fill(-7);
        words[idx] = 1000 + idx;
        const seen = b.layoutProbe(area, mem);
        const cField = FIELDS[name]![1];
        assert.equal(seen[cField], 1000 + idx, `${name} (word ${idx}) is C field ${area}.${cField}`);
        for (const [f, v] of Object.entries(seen)) if (f !== cField) assert.equal(v >>> 0, -7 >>> 0, `${area}.${f} untouched by ${name}`);
      }
      // distinct C fields have distinct words
      const byField = new Map<string, number>();
      for (const name of names) {
        const f = FIELDS[name]![1], idx = L[name as keyof Layout];
        if (byField.has(f)) assert.equal(byField.get(f), idx, `${name} aliases ${area}.${f}`);
        byField.set(f, idx);
      }
      assert.equal(new Set(byField.values()).size, byField.size, `${area}: two C fields share a word`);
      // and the probe lists no C field the JS layout does not name
      const all = b.layoutProbe(area, new ArrayBuffer(bytesOf(area)));
      assert.deepEqual(Object.keys(all).sort(), [...byField.keys()].sort(), `${area}: C fields without a JS name`);
    });
  }
});
