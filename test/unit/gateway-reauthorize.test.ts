/**
 * Re-running `authorize` on open connections (reauthorize.ts): each round checks every filed
 * open connection once, at most 64 at a time, and rounds never overlap (a slow check delays
 * the next round); a refused connection is handed to `refused`; a throwing check keeps its
 * connection and is counted; closed and removed connections are not checked; nothing runs
 * once nothing is filed or after `stop`; a bad interval is refused.
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
  }, (ws) => void (ws.readyState = 'closing'));
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

test('a throwing check keeps the connection and is counted; stop ends the rounds; an empty one schedules none', async () => {
  let checks = 0;
  const refused: number[] = [];
  const r = new Reauthorizer<FakeWs>(5, () => {
    checks++;
    throw new Error('backend down');
  }, (ws) => void refused.push(ws.id));
  r.add({ id: 1, readyState: 'open' }, REQ);
  await waitFor(() => r.errors >= 2, 'two failed checks');
  assert.deepEqual(refused, []);
  r.stop();
  const after = checks;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(checks <= after + 1, 'at most the round already under way after stop');
  r.remove(1);
  assert.equal(r.size, 0);
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new Reauthorizer<FakeWs>(bad, () => true, () => {}), RangeError, String(bad));
  }
});
