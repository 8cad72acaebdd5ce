/**
 * Re-running `authorize` on open connections (reauthorize.ts): each round checks every filed
 * open connection once, at most 64 at a time, and rounds never overlap (a slow check delays
 * the next round); a refused connection is handed to `refused`; a throwing check, or one that
 * never settles (timed out at the interval), keeps its connection, is counted, and does not stop
 * the rounds; a check that timed out holds its slot until it settles, so a backend that hangs
 * never has more than 64 checks in flight; closed and removed connections are not checked;
 * nothing runs after `stop`, and nothing is filed after it; a bad interval is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Reauthorizer } from '../../src/apps/gateway/reauthorize.js';
import { waitFor } from '../helpers/net.js';

interface FakeWs {
  id: number;
  readyState: string;
}

const REQ = { target: '/ws', headers: [] as const };

test('a round checks each open connection once, at most 64 at a time, and the next round waits for it', async () => {
  let inFlight = 0, most = 0, done = false;
  const seen: number[] = [];
  const release: (() => void)[] = [];
  const r = new Reauthorizer<FakeWs>(10, async (ws) => {
    seen.push(ws.id);
    inFlight++;
    most = Math.max(most, inFlight);
    if (!done) await new Promise<void>((resolve) => release.push(resolve));
    inFlight--;
    return ws.id !== 7;
  }, (ws) => void (ws.readyState = 'closing'), () => {}, 60_000); // no check times out here, however slow the box
  const all = Array.from({ length: 150 }, (_, i) => ({ id: i, readyState: 'open' }));
  for (const ws of all) r.add(ws, REQ);
  all[3]!.readyState = 'closing'; // closed before the round
  r.remove(4);
  try {
    // Release checks as they come, slowly enough for a second round to have started if rounds overlapped.
    while (seen.length < 148) {
      await waitFor(() => release.length > 0, 'a check');
      await new Promise((resolve) => setTimeout(resolve, 1));
      release.splice(0).forEach((f) => f());
    }
    assert.equal(new Set(seen.slice(0, 148)).size, 148, 'no connection checked twice in the first 148 checks: one round at a time');
    assert.ok(most <= 64, `at most 64 in flight, saw ${most}`);
    assert.equal(most, 64, 'and 64 when there are that many');
    assert.ok(!seen.includes(3) && !seen.includes(4), 'a closed and a removed connection are not checked');
    await waitFor(() => all[7]!.readyState === 'closing', 'the refused one handed over');
    assert.equal(all.filter((w) => w.readyState === 'closing').length, 2, 'only it (and the one closed before)');
  } finally {
    r.stop();
    done = true;
    release.splice(0).forEach((f) => f());
  }
});

test('a throwing check and one that never settles keep their connections, are counted, and the rounds go on; stop ends them', async () => {
  let checks = 0, failed = 0;
  const refused: number[] = [];
  const r = new Reauthorizer<FakeWs>(20, (ws) => {
    checks++;
    if (ws.id === 1) throw new Error('backend down');
    return new Promise<boolean>(() => {}); // a backend that never answers
  }, (ws) => void refused.push(ws.id), () => failed++);
  r.add({ id: 1, readyState: 'open' }, REQ);
  r.add({ id: 2, readyState: 'open' }, REQ);
  await waitFor(() => failed >= 6, 'three rounds of two failed checks (the hung one timed out each time)');
  assert.deepEqual(refused, []);
  r.stop();
  const after = checks;
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(checks <= after + 2, 'at most the round already under way after stop');
  r.add({ id: 3, readyState: 'open' }, REQ);
  assert.equal(r.size, 2, 'nothing filed after stop');
  r.remove(1);
  r.remove(2);
  assert.equal(r.size, 0);
});

test('a backend that hangs has at most 64 checks in flight: timed-out ones keep their slots', async () => {
  let started = 0, failed = 0;
  const r = new Reauthorizer<FakeWs>(5, () => {
    started++;
    return new Promise<boolean>(() => {}); // never answers
  }, () => {}, () => failed++);
  for (let id = 0; id < 100; id++) r.add({ id, readyState: 'open' }, REQ);
  try {
    await waitFor(() => failed >= 64, 'the first 64 timed out');
    await new Promise((resolve) => setTimeout(resolve, 100)); // rounds would have started more by now
    assert.equal(started, 64, 'no check starts while 64 hang');
  } finally {
    r.stop();
  }
});

test('an interval that is not a number of ms from 1 to 2^31 - 1 is refused', () => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
    assert.throws(() => new Reauthorizer<FakeWs>(bad, () => true, () => {}), RangeError, String(bad));
  }
});
