#!/usr/bin/env bash
# The set-up of scripts/setup.sh plus the tools only the benchmarks use
# (bench/sched_pipe.ts runs perf and bpftrace; stress-ng loads the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
CGVIEW_EXTRA_PKGS="linux-perf bpftrace stress-ng" exec scripts/setup.sh
