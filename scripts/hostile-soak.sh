#!/usr/bin/env bash
# The hostile-server soak (issue #31, docs/benchmarks.md): the console in a tmux pty on two
# simulated clusters, one answering every watch with a 410 ERROR event (`watch-error=410`: an etcd
# compaction storm, a proxy that breaks streaming) and one healthy. Every STEP seconds for SECS
# seconds it prints the requests the failing cluster received in that step (from the simulator's
# request log), their rate, and the console's RSS; at the end the healthy cluster's state.
# FAULT=SPEC soaks another fault (e.g. garbage-watch, watch-error=500, retry-after=3600).
# Usage: scripts/hostile-soak.sh [SECS] [STEP]   (needs a release build and tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
step=${2:-60}
fault=${FAULT:-watch-error=410}
SESSION_PREFIX=soak
. scripts/sim-lib.sh
start_sim --clusters 2
ctl fault us-east "$fault" >/dev/null
tmux new-session -d -s "$session" -x 120 -y 30 \
  "exec env HOME=$work KUBECONFIG=$work/kc NO_COLOR=1 $bin --context eu-west,us-east"
pid=$(tmux list-panes -t "$session" -F '#{pane_pid}')
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
echo "fault on us-east: $fault; the console (pid $pid) on eu-west and us-east; a line every ${step} s"
printf '%8s %10s %10s %8s\n' "t (s)" "requests" "per s" "RSS MiB"
t=0
ctl clear-requests us-east >/dev/null
while (( t < secs )); do
  sleep "$step"
  t=$(( t + step ))
  n=$(ctl requests us-east | wc -l)
  ctl clear-requests us-east >/dev/null
  printf '%8d %10d %10.2f %8d\n' "$t" "$n" "$(awk -v n="$n" -v s="$step" 'BEGIN {print n / s}')" "$(rss)"
done
grep -o 'VmHWM.*' "/proc/$pid/status" | tr -s ' '
tmux send-keys -t "$session" ':ctx' Enter
sleep 1
tmux capture-pane -p -t "$session" | grep -E 'eu-west|us-east' | head -4
