#!/usr/bin/env bash
# A second cgview daemon on this machine, from this repository, with its own
# socket, state, bpffs tree and private directory: N cgroups (default 5,000)
# under one temporary cgroup, each with two inherited views (default `info`
# and `sched_lat`: 10,000 pins and a collector). The test suite must pass
# beside it (issue 7 point 11: tests assert only on what they made).
#
#   scripts/foreign-daemon.sh start [N]   # returns once every pin is in place
#   scripts/foreign-daemon.sh status      # the daemon's `cgview status`
#   scripts/foreign-daemon.sh stop        # stops it and removes all it made
#
# Root; after scripts/setup.sh. Names start with `cgvf-`, never the test
# suite's `cgvt-`. The two views are VIEW1 and VIEW2 (environment; default
# info and sched_lat).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

NAME=cgvf-foreign
WORK=/run/$NAME                      # state, socket, pid, log
CG2=$(awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2" && $4 == "/") { print $5; exit } break }}' /proc/self/mountinfo)
BPF=$(awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "bpf") { print $5; exit } break }}' /proc/self/mountinfo)
CGROOT=$CG2/$NAME
BPFDIR=$BPF/$NAME                     # holds tree/ and tree-private/
VIEW1=${VIEW1:-info}
VIEW2=${VIEW2:-sched_lat}

say() { printf '[foreign] %s\n' "$*" >&2; }
cli() { node "$REPO/bin/cgview" "$@" --socket "$WORK/sock"; }

start() {
  local n=${1:-5000}
  [ -n "$CG2" ] && [ -n "$BPF" ] || { say "no cgroup2 or bpffs mount"; exit 1; }
  if [ -e "$WORK/pid" ] && kill -0 "$(cat "$WORK/pid")" 2>/dev/null; then
    say "already running (pid $(cat "$WORK/pid"))"
    exit 1
  fi
  mkdir -p "$WORK" "$BPFDIR"
  mkdir -p "$CGROOT"
  # Two levels, parents first: 50 parents with (n/50 - 1) children each.
  local per=$(((n + 49) / 50)) made=0 dirs=()
  for ((p = 0; p < 50 && made < n; p++)); do
    dirs+=("$CGROOT/p$p"); made=$((made + 1))
    for ((c = 1; c < per && made < n; c++)); do dirs+=("$CGROOT/p$p/c$c"); made=$((made + 1)); done
  done
  mkdir -p "${dirs[@]}"
  say "made $made cgroups under $CGROOT"
  # The tree is asked for in the state file, as a restart finds it: the start mirrors it at once.
  cat >"$WORK/state.json" <<JSON
{"version":1,"initialized":true,"roots":[{"dir":"$BPFDIR/tree","cgroup":"$CGROOT","mode":"auto",
 "inherit":[{"view":"$VIEW1","name":"$VIEW1","fileMode":288},{"view":"$VIEW2","name":"$VIEW2","fileMode":288}],
 "local":{}}]}
JSON
  setsid node "$REPO/bin/cgview" daemon --bpffs "$BPFDIR/tree" --state "$WORK/state.json" \
    --socket "$WORK/sock" --no-default-views </dev/null >>"$WORK/log" 2>&1 &
  echo $! >"$WORK/pid"
  say "daemon pid $(cat "$WORK/pid"), log $WORK/log"
  local want=$(((made + 1) * 2)) pins=0
  for ((i = 0; i < 600; i++)); do
    pins=$(cli status --json 2>/dev/null | node -e \
      'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).roots[0].pins)}catch{console.log(0)}})') || pins=0
    [ "$pins" -ge "$want" ] && break
    kill -0 "$(cat "$WORK/pid")" 2>/dev/null || { say "the daemon exited:"; tail -5 "$WORK/log" >&2; exit 1; }
    sleep 0.5
  done
  [ "$pins" -ge "$want" ] || { say "only $pins of $want pins after 300 s"; exit 1; }
  say "ready: $pins pins ($VIEW1 and $VIEW2 in $((made + 1)) directories) in $BPFDIR/tree"
}

stop() {
  if [ -e "$WORK/pid" ]; then
    local pid
    pid=$(cat "$WORK/pid")
    # Only the daemon this script started: its pid, and its command line names our socket.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$WORK/sock"; then
      kill -TERM "$pid"
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  fi
  # bpffs and cgroupfs need unlink/rmdir bottom-up; a pin goes with its file.
  if [ -d "$BPFDIR" ]; then find "$BPFDIR" -depth -delete; fi
  if [ -d "$CGROOT" ]; then find "$CGROOT" -depth -type d -delete; fi
  rm -rf "$WORK"
  say "stopped and cleaned up"
}

case "${1:-}" in
  start) start "${2:-5000}" ;;
  stop) stop ;;
  status) cli status ;;
  *) echo "usage: $0 start [N] | status | stop" >&2; exit 2 ;;
esac
