#!/bin/bash
# Issue 12 closing A/B, in one sitting: this tree against the previous commit (b0e0da5),
# a checkout of the previous commit ($OLD, through C1M_BIN), each run with refserver for ratios; targets alternate inside runs.
cd "$(dirname "$0")/../.."
O=bench/results/ab-2026-12-05
mkdir -p $O
run() { local label=$1 bin=$2; shift 2; echo "== $(date -u +%T) $label $*" >&2
  if [ -n "$bin" ]; then C1M_BIN=$bin node "$@"; else node "$@"; fi; }
OLD=${OLD:?set OLD to the bin/c1m.js of a checkout of the previous commit (git worktree add ../old b0e0da5; npm run build there)}
D=${D:-6}
for rep in 1 2; do
  run new "" bench/echo.mjs --mode ws --targets refserver,c1m-native --reps 1 --duration $D --warmup 2 --retries 1 --out $O/ws-echo-new-$rep.json
  run old $OLD bench/echo.mjs --mode ws --targets refserver,c1m-native --reps 1 --duration $D --warmup 2 --retries 1 --out $O/ws-echo-old-$rep.json
done
run new "" bench/echo.mjs --targets refserver,c1m-native,node-net --reps 1 --duration $D --warmup 2 --retries 1 --out $O/echo-new-1.json
run old $OLD bench/echo.mjs --targets refserver,c1m-native --reps 1 --duration $D --warmup 2 --retries 1 --out $O/echo-old-1.json
run new "" bench/http.mjs --targets c1m-native,node-http --reps 1 --duration $D --warmup 2 --retries 1 --out $O/http-new-1.json
run old $OLD bench/http.mjs --targets c1m-native --reps 1 --duration $D --warmup 2 --retries 1 --out $O/http-old-1.json
run new "" bench/idle-memory.mjs --mode ws --no-gc --targets refserver,c1m-native --reps 2 --out $O/ws-idle-nogc-new.json
run old $OLD bench/idle-memory.mjs --mode ws --no-gc --targets c1m-native --reps 1 --out $O/ws-idle-nogc-old.json
run new "" bench/idle-memory.mjs --no-gc --targets c1m-native --reps 1 --out $O/tcp-idle-nogc-new.json
echo "== $(date -u +%T) done" >&2
