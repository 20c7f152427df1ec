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
# the requests by what asked: the kinds' lists and watches (what the fault makes meshdeck retry),
# the sidecar scrapes of the golden signals (pod proxy), the pings and the rest
printf '%8s %10s %8s %12s %8s %6s %6s %8s\n' "t (s)" "requests" "per s" "lists+watches" "scrapes" "pings" "other" "RSS MiB"
t=0
ctl clear-requests us-east >/dev/null
while (( t < secs )); do
  sleep "$step"
  t=$(( t + step ))
  ctl requests us-east >"$work/req"
  ctl clear-requests us-east >/dev/null
  python3 - "$work/req" "$t" "$step" "$(rss)" <<'PY'
import json, sys
path, t, step, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = lw = sc = pi = 0
for line in open(path):
    r = json.loads(line)
    n += 1
    p = r["path"]
    if "/proxy" in p:
        sc += 1
    elif p == "/version":
        pi += 1
    elif r["method"] == "GET" and "/apis/" in p or p.startswith("/api/v1/"):
        lw += 1
print(f"{t:8d} {n:10d} {n / step:8.2f} {lw:12d} {sc:8d} {pi:6d} {n - lw - sc - pi:6d} {rss:8d}")
PY
done
grep -o 'VmHWM.*' "/proc/$pid/status" | tr -s ' '
tmux send-keys -t "$session" ':ctx' Enter
sleep 1
tmux capture-pane -p -t "$session" | grep -E 'eu-west|us-east' | head -4
