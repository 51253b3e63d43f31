#!/usr/bin/env bash
# Sets up everything cgview needs on a Debian machine, idempotently:
# Debian packages, bpffs at /sys/fs/bpf, npm ci, BPF objects, TypeScript,
# and a check of the hand-written kernel ABI against the headers.
# Quick when everything is already there. Needs root for the first two steps.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

# What the main job and the tests need: the BPF tool chain; python3 runs the
# gauntlet's unprivileged attacker; prometheus (with promtool) scrapes the
# exporter; runc and busybox-static make a real container; chromium is the
# dashboard tests' browser; tmux drives `cgview top`; systemd brings
# systemd-cgtop (top's baseline); openssl makes the TLS tests' certificates.
# Benchmark tools come from scripts/setup-bench.sh, through CGVIEW_EXTRA_PKGS.
PKGS=(clang llvm libbpf-dev libbpf1 bpftool make python3-minimal
  prometheus runc busybox-static chromium tmux systemd openssl)
read -r -a extra <<<"${CGVIEW_EXTRA_PKGS:-}"
PKGS+=("${extra[@]}")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# mountinfo: the filesystem type follows the "-" separator (optional fields vary in number).
if ! awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "bpf" && $5 == "/sys/fs/bpf") f = 1; break }} END {exit !f}' /proc/self/mountinfo; then
  say "mounting bpffs at /sys/fs/bpf"
  mkdir -p /sys/fs/bpf
  # mode 0755: readable for the delegated users of view trees (S7), writable by root only
  mount -t bpf -o mode=0755 bpf /sys/fs/bpf
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "building BPF objects"
make -s -C bpf
say "building TypeScript"
rm -rf dist
npx tsc -p tsconfig.json
# The syscall numbers and struct layouts written in src/kernel/abi.ts must be
# those of the installed headers and of this kernel's BTF: a mismatch fails the build.
say "checking the kernel ABI tables against C"
node scripts/check-abi.mjs
