#!/usr/bin/env bash
# Bytes the console writes to its terminal per second (docs/benchmarks.md): `meshdeck demo`
# in a tmux pane of COLSxROWS, recorded by script(1) for SECS seconds after it settles, at
# idle (no churn) and with one change per cluster per second on CLUSTERS clusters.
# Usage: scripts/wire-bytes.sh [CLUSTERS] [COLS] [ROWS] [SECS] [VIEW]   (a release build, tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
clusters=${1:-20}
cols=${2:-80}
rows=${3:-24}
secs=${4:-30}
view=${5:-clusters}
bin=${MESHDECK_BIN:-$PWD/target/release/meshdeck}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'tmux kill-session -t wire 2>/dev/null || true; rm -rf "$work"' EXIT
measure() {
  local churn=$1 label=$2
  tmux kill-session -t wire 2>/dev/null || true
  tmux new -d -s wire -x "$cols" -y "$rows" \
    "env HOME=$work TERM=xterm-256color LANG=C.UTF-8 script -q -f -c '$bin demo --clusters $clusters --churn-ms $churn -c $view' $work/out-$label"
  sleep 12   # start, sync, settle
  local a b
  a=$(stat -c %s "$work/out-$label")
  sleep "$secs"
  b=$(stat -c %s "$work/out-$label")
  echo "$label: $(( (b - a) / secs )) bytes/s over ${secs}s (${cols}x${rows}, $clusters clusters, :$view)"
  tmux send-keys -t wire C-c
  sleep 1
}
measure 0 idle
measure 1000 churn
