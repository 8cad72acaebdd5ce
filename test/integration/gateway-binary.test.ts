/**
 * Binary messages through the gateway (docs/gateway.md, "Binary messages"), standalone: a body
 * published as `application/octet-stream` reaches subscribers as a binary `msg` (topic, seq,
 * the bytes unchanged) among the JSON ones, in order, numbered in the same stream; the history
 * keeps and recovers it; a client's binary `pub` is acked like a JSON one and delivered the
 * same way; a malformed binary message gets an error and the connection stays; with
 * `clientPublish` off a binary `pub` is refused like a JSON one. (Through NATS and JetStream:
 * gateway-jetstream.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gatewayClient, promValue, publishHttp, scrape, withGateway, type GatewayClient } from '../helpers/gateway.js';
import { GUARD, waitFor } from '../helpers/net.js';

const PUB = { Authorization: 'Bearer pt' };
const OCTETS = { ...PUB, 'Content-Type': 'application/octet-stream' };

type State = { seq: number; epoch: string; recovered?: boolean };
const ackOf = async (c: GatewayClient, id: number): Promise<Record<string, unknown>> => c.next((m) => (m.op === 'ack' || m.op === 'error') && m.id === id, `answer ${id}`);

describe('gateway: binary messages', () => {
  test('an octet-stream publish is a binary msg among the JSON ones, numbered in the same stream, kept and recovered', GUARD, async () => {
    await withGateway({ noAuth: true, publishToken: 'pt', history: 10 }, async (port, track) => {
      const sub = track(await gatewayClient(port, '?topics=dev.1'));
      const { epoch } = ((await ackOf(sub, 0)).topics as Record<string, State>)['dev.1']!;
      const bytes = Buffer.from([0x00, 0x01, 0x7b, 0x22, 0xff, 0xfe, 0x0a]); // not UTF-8, not JSON
      assert.deepEqual((await publishHttp(port, 'dev.1', bytes, OCTETS)).body, { delivered: 1, seq: 1, epoch });
      assert.deepEqual((await publishHttp(port, 'dev.1', '{"t":21.5}', { ...PUB, 'Content-Type': 'application/json' })).body, { delivered: 1, seq: 2, epoch });
      assert.equal((await publishHttp(port, 'dev.1', new Uint8Array(0), OCTETS)).body.seq, 3, 'empty binary data');
      const want = [
        { op: 'msg', topic: 'dev.1', seq: 1, binary: bytes },
        { op: 'msg', topic: 'dev.1', seq: 2, data: { t: 21.5 } },
        { op: 'msg', topic: 'dev.1', seq: 3, binary: Buffer.alloc(0) },
      ];
      await waitFor(() => sub.deliveries().length === 3, 'three deliveries');
      assert.deepEqual(sub.deliveries(), want);
      const late = track(await gatewayClient(port, `?topics=dev.1&since=dev.1:0:${epoch}`));
      assert.deepEqual(((await ackOf(late, 0)).topics as Record<string, State>)['dev.1'], { seq: 3, epoch, recovered: true });
      await waitFor(() => late.deliveries().length === 3, 'the recovered frames');
      assert.deepEqual(late.deliveries(), want, 'recovery sends the very frames, binary ones as binary');
      const m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_messages_in_total'), 3);
      assert.equal(promValue(m, 'c1m_gateway_bytes_in_total'), bytes.length + '{"t":21.5}'.length);
    });
  });

  test('a binary pub: acked like a JSON one and delivered as a binary msg; malformed ones get errors; refused when off', GUARD, async () => {
    await withGateway({ noAuth: true, clientPublish: true }, async (port, track) => {
      const reader = track(await gatewayClient(port, '?topics=room.1'));
      const writer = track(await gatewayClient(port));
      const { epoch } = ((await ackOf(reader, 0)).topics as Record<string, State>)['room.1']!;
      const data = Buffer.from('\u00ff\u0000binary', 'latin1');
      writer.sendBinaryPub(7, 'room.1', data);
      assert.deepEqual(await ackOf(writer, 7), { op: 'ack', id: 7, delivered: 1, seq: 1, epoch });
      writer.send({ op: 'pub', id: 8, topic: 'room.1', data: 'then JSON' });
      assert.equal((await ackOf(writer, 8)).seq, 2);
      await waitFor(() => reader.deliveries().length === 2, 'two deliveries');
      assert.deepEqual(reader.deliveries(), [
        { op: 'msg', topic: 'room.1', seq: 1, binary: data },
        { op: 'msg', topic: 'room.1', seq: 2, data: 'then JSON' },
      ]);
      // Malformed: not a pub, a topic past the end, a bad topic. Each answered; the connection stays.
      writer.ws.send(Buffer.from([0x07, 1, 2, 3, 4, 5, 6]));
      assert.deepEqual(await ackOf(writer, 0), { op: 'error', id: 0, code: 'bad_request', message: 'a binary message is a pub: 0x02, id (u32), topic length (u8), topic, data' });
      writer.ws.send(Buffer.from([0x02, 0, 0, 0, 9, 200, 0x61]));
      assert.equal((await ackOf(writer, 9)).code, 'bad_request');
      writer.sendBinaryPub(10, 'room..1', data);
      assert.equal((await ackOf(writer, 10)).code, 'invalid_topic');
      writer.send({ op: 'ping', id: 11 });
      await writer.next((m) => m.op === 'pong' && m.id === 11, 'pong');
      assert.equal(reader.deliveries().length, 2, 'nothing malformed was delivered');
    });
    await withGateway({ noAuth: true }, async (port, track) => {
      const c = track(await gatewayClient(port, '?topics=room.1'));
      await ackOf(c, 0);
      c.sendBinaryPub(3, 'room.1', Buffer.from([1]));
      assert.equal((await ackOf(c, 3)).code, 'forbidden');
      assert.equal(promValue(await scrape(port), 'c1m_gateway_publish_refused_total'), 1);
      assert.equal(c.deliveries().length, 0);
    });
  });
});
