#!/usr/bin/env bash
# Build the addon with AddressSanitizer (in a scratch directory, leaving build/ alone) and run
# the native-backend tests against it. Run for every change to native/.
#   npm run test:asan            # all integration + native contract tests
#   npm run test:asan -- FILE..  # chosen compiled test files
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch=$(mktemp -d /tmp/c1m-asan.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cp -r binding.gyp native "$scratch/"
args=(rebuild)
[ -f /usr/include/node/node_api.h ] && args+=(--nodedir=/usr)
gyp=${npm_config_node_gyp:-$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}
(cd "$scratch" && C1M_ASAN=1 node "$gyp" "${args[@]}" >/dev/null)
libasan=$(gcc -print-file-name=libasan.so)
npm run build >/dev/null
files=("$@")
# Explicit file list: node 20's --test on a directory would also run fixtures and helpers.
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find build-test/test/integration build-test/test/native -name '*.test.js' | sort)
echo "c1m: running ${files[*]} with the AddressSanitizer addon ($scratch/build/Release/c1m.node)"
# Node itself is not instrumented: leak checking would report the runtime's own allocations.
C1M_ADDON_PATH="$scratch/build/Release/c1m.node" C1M_TEST_BACKENDS=native C1M_REQUIRE_NATIVE=1 \
  LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0 \
  node --test --test-concurrency=1 "${files[@]}"
