#!/bin/bash
# bench/epollnest/run.sh [PROCS] [ROUNDS]: PROCS copies of epollnest at once (default 16), plain
# then nested (-N), alternating for ROUNDS rounds (default 2). One JSON line per round and mode:
# the wall time of the whole set and each copy's ns per ADD+DEL pair. Box time per pair is
# wall_s * cores / (PROCS * pairs).
set -euo pipefail
cd "$(dirname "$0")"
make -s epollnest
procs=${1:-16}
rounds=${2:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  for mode in plain nested; do
    flag=""; [ "$mode" = nested ] && flag="-N"
    t0=$(date +%s%N)
    for p in $(seq 1 "$procs"); do ./epollnest $flag > "$out/$p" & done
    wait
    t1=$(date +%s%N)
    per=$(cat "$out"/* | sed -e 's/.*"ns_per_pair":\([0-9]*\).*/\1/' | sort -n | paste -sd, -)
    echo "{\"round\":$r,\"mode\":\"$mode\",\"procs\":$procs,\"cores\":$(nproc),\"pairs_per_proc\":200000,\"wall_s\":$(( (t1 - t0) / 1000000 ))e-3,\"ns_per_pair\":[$per]}"
  done
done
