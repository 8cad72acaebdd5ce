/**
 * UDP sends that need a link other than this machine's loopback, each in a network namespace of
 * its own (needs root and `unshare`, `ip`, `tc`; skipped, saying why, without them):
 * - backpressure on every backend: EAGAIN from a full socket buffer queues datagrams up to
 *   `sendQueueBytes`, drops past it are counted, `send` returns false while the queue holds
 *   datagrams, and `onDrain` follows once it empties. A plain loopback never says EAGAIN to a UDP
 *   sender, so the loopback gets a slow qdisc (tbf);
 * - GSO fallback (native): with a loopback MTU of 1280 the kernel refuses a GSO run of 1400-byte
 *   datagrams, and the engine sends them one by one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { backends } from '../helpers/backends.js';
import { GUARD } from '../helpers/net.js';

const fixture = fileURLToPath(new URL('../fixtures/udp-slow-link.js', import.meta.url));
const mtuFixture = fileURLToPath(new URL('../fixtures/udp-small-mtu.js', import.meta.url));
const SETUP = 'ip link set lo up && tc qdisc add dev lo root tbf rate 8mbit burst 4kb limit 1000000';

function canUnshare(): string {
  if (process.getuid?.() !== 0) return 'needs root for a network namespace';
  const r = spawnSync('unshare', ['-n', 'sh', '-c', SETUP], { encoding: 'utf8' });
  return r.status === 0 ? '' : `unshare/ip/tc unavailable: ${(r.stderr || r.error?.message || '').trim()}`;
}
const why = canUnshare();

for (const backend of backends) {
  describe(`udp backpressure (${backend})`, () => {
    test('EAGAIN: a bounded queue, drops counted, send returns false, onDrain follows', { ...GUARD, skip: why || false }, () => {
      const r = spawnSync('unshare', ['-n', 'sh', '-c', `${SETUP} && exec "$0" "$1" "$2"`, process.execPath, fixture, backend], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.deepEqual(out.errors, []);
      // the burst overflowed the socket buffer: datagrams wait in the send queue
      assert.ok(out.afterBurst.queuedBytes > 0, `queued after the burst: ${JSON.stringify(out.afterBurst)}`);
      // (native: the bound holds within the burst too; portable: node:dgram hands one tick's sends
      // to libuv before it reports a queue, so the bound applies from the next tick on)
      if (backend === 'native') assert.ok(out.afterBurst.queuedBytes <= out.queueBound && out.afterBurst.drops > 0, JSON.stringify(out.afterBurst));
      assert.equal(out.backpressure, true, 'send returns false while the queue holds datagrams');
      // past the bound, datagrams are dropped and counted: the queue does not grow
      assert.ok(out.afterSecond.drops > out.afterBurst.drops, `drops: ${JSON.stringify(out.afterSecond)}`);
      assert.ok(out.afterSecond.queuedBytes <= Math.max(out.queueBound, out.afterBurst.queuedBytes), `bounded: ${JSON.stringify(out.afterSecond)}`);
      assert.ok(out.drains >= 1, 'onDrain after the queue emptied');
      assert.equal(out.drained.queuedBytes, 0);
      // every datagram is accounted for: sent (and received by the peer) or dropped
      assert.equal(out.drained.sent + out.drained.drops + out.drained.sendErrors, out.calls);
      assert.equal(out.peerGot, out.drained.sent);
    });
  });
}

if (backends.includes('native')) {
  describe('udp GSO fallback (native)', () => {
    test('a GSO run the kernel refuses (segment above the MTU) leaves datagram by datagram', { ...GUARD, skip: why || false }, () => {
      const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up mtu 1280 && exec "$0" "$1"', process.execPath, mtuFixture], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.deepEqual(out.errors, []);
      assert.equal(out.received, 20);
      assert.equal(out.intact, true, 'the same datagrams, in order');
      assert.equal(out.stats.sent, 20);
      assert.equal(out.stats.gsoSent, 0, 'none left in a GSO run');
      assert.equal(out.stats.sendErrors, 0);
    });
  });
}
