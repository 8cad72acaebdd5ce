// A line-based chat: every line a client sends goes to every connected client, with one
// broadcast() per line (one crossing, whatever the number of receivers).
// Run: node examples/chat.mjs [port], then several `nc 127.0.0.1 9001`.
import { listen } from 'c1m';

const members = new Set(); // connection ids: handles are values, ids are what we keep
const NL = 0x0a;

const server = await listen(
  {
    onOpen(conn) {
      members.add(conn.id);
      conn.write(`welcome, you are #${members.size}\n`);
    },
    onData(conn, data) {
      // Consume whole lines only: the partial tail stays in the engine and comes back,
      // followed by the next bytes, on the next call.
      let start = 0;
      for (let nl = data.indexOf(NL); nl !== -1; nl = data.indexOf(NL, start)) {
        const line = data.subarray(start, nl + 1);
        if (line.length > 1) server.reactor.broadcast([...members], Buffer.concat([Buffer.from(`${conn.remotePort}: `), line]));
        start = nl + 1;
      }
      return start;
    },
    onClose(conn) {
      members.delete(conn.id);
    },
  },
  { port: Number(process.argv[2] ?? 9001), host: '127.0.0.1', maxInboundBytes: 4096 },
);
console.log(`chat listening on ${server.address.host}:${server.address.port}`);
process.once('SIGINT', () => server.close().then(() => process.exit(0)));
