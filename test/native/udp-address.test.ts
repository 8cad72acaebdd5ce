/**
 * The UDP address entry (a sockaddr_in / sockaddr_in6 in 32 bytes): native code encodes it
 * (udpEncode, inet_pton), JS decodes it through the offsets the addon exports. Every address comes
 * back as Node formats it (net.SocketAddress), port included, so a wrong offset or a formatting
 * slip (RFC 5952 zero runs, IPv4-mapped addresses) fails here.
 */
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import { describe, test } from 'node:test';
import { loadBinding } from '../../src/core/binding.js';
import { formatAddress, readFamily, readPort } from '../../src/core/udp.js';
import { nativeAvailable } from '../helpers/backends.js';

const ADDRESSES = [
  '127.0.0.1', '0.0.0.0', '255.255.255.255', '10.1.200.3',
  '::', '::1', '1::', '2001:db8::1', '2001:db8:0:0:1:0:0:1', '1:0:0:1:0:0:0:1', 'fe80::1:2:3:4',
  '2001:db8:1:2:3:4:5:6', '::ffff:192.0.2.128', '0:0:1::', 'ABCD:EF01::0:1',
];

describe('UDP address entries', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  const b = loadBinding()!;
  const k = b.constants;
  test('the entry holds a sockaddr_in6', () => {
    assert.ok(k.UDP_ADDR_SIZE >= 28 && k.UDP_ADDR_SIZE % 8 === 0);
  });
  for (const address of ADDRESSES) {
    test(`${address}: encoded natively, decoded in JS as Node formats it`, () => {
      const entry = new Uint8Array(k.UDP_ADDR_SIZE + 8).subarray(8); // not at offset 0 of its buffer
      const port = 1 + (address.length * 4099) % 65535;
      assert.equal(b.udpEncode(address, port, entry), 0);
      const family = address.includes(':') ? 'ipv6' : 'ipv4';
      assert.equal(readFamily(k, entry, 0), family === 'ipv6' ? k.AF_INET6 : k.AF_INET);
      assert.equal(readPort(k, entry, 0), port);
      assert.equal(formatAddress(k, entry, 0), new SocketAddress({ address, family }).address);
    });
  }
  test('not an address: -EINVAL', () => {
    assert.ok(b.udpEncode('localhost', 1, new Uint8Array(k.UDP_ADDR_SIZE)) < 0);
  });
});
