// A TCP echo server on one reactor. Run: node examples/echo.mjs [port]
import { listen } from 'c1m';

const server = await listen(
  {
    onData(conn, data) {
      conn.write(data); // data is only valid during this call; write() copies it
    },
  },
  { port: Number(process.argv[2] ?? 9000), host: '127.0.0.1' },
);
console.log(`echo listening on ${server.address.host}:${server.address.port} (${server.reactor.backend})`);
process.once('SIGINT', () => server.close().then(() => process.exit(0)));
process.once('SIGTERM', () => server.close().then(() => process.exit(0)));
