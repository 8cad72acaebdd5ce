/**
 * Multicast sending options (`setMulticastTTL`, `setMulticastLoopback`, `setMulticastInterface`)
 * on every backend: argument errors and the IPv6 forms here; delivery in a network namespace
 * of its own with two multicast links (needs root, `unshare` and `ip` with veth; skipped, saying
 * why, without them), see test/fixtures/udp-multicast.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { createReactor } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD } from '../helpers/net.js';

const fixture = fileURLToPath(new URL('../fixtures/udp-multicast.js', import.meta.url));
const SETUP = 'ip link set lo up multicast on && ip link add v0 type veth peer name v1 && ' +
  'ip addr add 192.0.2.1/24 dev v0 && ip link set v0 up multicast on && ip link set v1 up';

function canUnshare(): string {
  if (process.getuid?.() !== 0) return 'needs root for a network namespace';
  const r = spawnSync('unshare', ['-n', 'sh', '-c', SETUP], { encoding: 'utf8' });
  return r.status === 0 ? '' : `unshare/ip/veth unavailable: ${(r.stderr || r.error?.message || '').trim()}`;
}
const why = canUnshare();

const invalid = (field: string) => (e: unknown): boolean => (e as { code?: string }).code === 'ERR_C1M_INVALID_OPTION' && (e as Error).message.includes(field);

for (const backend of backends) {
  describe(`udp multicast options (${backend})`, () => {
    test('argument errors', GUARD, async () => {
      const reactor = createReactor({}, { backend });
      try {
        const s4 = await reactor.udp({ host: '127.0.0.1' }, {});
        assert.throws(() => s4.setMulticastTTL(256), invalid('ttl'));
        assert.throws(() => s4.setMulticastTTL(-1), invalid('ttl'));
        assert.throws(() => s4.setMulticastTTL(1.5), invalid('ttl'));
        assert.throws(() => s4.setMulticastInterface('::%lo'), invalid('iface'));
        assert.throws(() => s4.setMulticastInterface('lo'), invalid('iface'));
        // no interface has this address (a documentation address): the kernel says so
        assert.throws(() => s4.setMulticastInterface('192.0.2.77'), (e: unknown) => (e as { code?: string }).code === 'EADDRNOTAVAIL');
        s4.setMulticastTTL(0);
        s4.setMulticastTTL(255);
        s4.setMulticastLoopback(false);
        s4.setMulticastInterface('127.0.0.1');
        s4.setMulticastInterface('0.0.0.0');
        const s6 = await reactor.udp({ host: '::1' }, {});
        assert.throws(() => s6.setMulticastInterface('127.0.0.1'), invalid('iface'));
        assert.throws(() => s6.setMulticastInterface('::%no-such-if'), invalid('no network interface called "no-such-if"'));
        s6.setMulticastTTL(8);
        s6.setMulticastLoopback(true);
        s6.setMulticastInterface('::%lo');
        s6.setMulticastInterface('::%1');
        s6.setMulticastInterface('::');
        s4.close();
        assert.throws(() => s4.setMulticastTTL(1));
      } finally {
        await reactor.close(1000);
      }
    });

    test('delivery: loopback on and off, the interface chosen by address', { ...GUARD, skip: why || false }, () => {
      const r = spawnSync('unshare', ['-n', 'sh', '-c', `${SETUP} && exec "$0" "$1" "$2"`, process.execPath, fixture, backend], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.deepEqual(out.errors, []);
      assert.equal(out.looped, 5, 'loopback on: the local member gets every datagram');
      assert.equal(out.unlooped, 0, 'loopback off: the local member gets none');
      assert.equal(out.byLo, 0, 'sent by lo, which did not join: the receiver on v0 gets none');
    });
  });
}
