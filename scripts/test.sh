#!/usr/bin/env bash
# The whole test suite: set-up (packages, bpffs, npm ci, builds), lint, then
# every test file, one at a time (they share the kernel: cgroups, bpffs, inotify).
# CGVIEW_TEST_RUN names this run: every temporary name carries it (test/helpers.ts
# uniq()), so test/zz-leftovers.test.ts checks what this run left and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npx biome check src test bench web
CGVIEW_TEST_RUN="r$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export CGVIEW_TEST_RUN
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
