#!/usr/bin/env bash
# The whole test suite: set-up (packages, bpffs, npm ci, builds), lint, then
# every test file, one at a time (they share the kernel: cgroups, bpffs, inotify).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npx biome check src test bench
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
