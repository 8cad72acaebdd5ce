/**
 * The UDP sink behind `c1m serve udp-sink`: every datagram is received and dropped. What it
 * received is the socket's `stats.received`, summed over the workers in the server's metrics
 * (`--metrics-port`: `c1m_udp_received_datagrams`). A handler module (default export) so that
 * every reactor of a multi-core server can load it.
 *
 * Hot path: one `onMessages` call per poll, and nothing done per datagram.
 */
import type { UdpHandler } from '../core/index.js';

const udpSink: UdpHandler = {
  onMessages() {
    // counted by the engine (stats.received); nothing to do
  },
};

export default udpSink;
