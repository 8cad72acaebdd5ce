/**
 * The UDP echo handler behind `c1m serve udp-echo`: every datagram is sent back to its sender.
 * A handler module (default export) so that every reactor of a multi-core server can load it.
 *
 * Hot path: one batch per poll; the answers are staged in the send area and leave in sendmmsg
 * calls when the batch ends. `from` is answered directly (no address object per datagram).
 */
import type { UdpHandler } from '../core/index.js';

const udpEcho: UdpHandler = {
  onMessage(sock, data, from) {
    sock.send(from, data);
  },
};

export default udpEcho;
