#!/usr/bin/env bash
# Scale figures for the console (docs/benchmarks.md): the TUI in a tmux pty at 160x48 over N
# contexts of a simulated fleet of N x PODS pods, with one random change per cluster every CHURN_MS
# (restarts, scaling, rollouts). Prints: when the first pod rows were on screen and when the header
# said every cluster was synced (from launch), then the console's CPU time (user+system, from
# /proc/PID/stat) and RSS over SECS seconds of churn, and over SECS seconds of rest (the same fleet
# with the churn stopped: `sim ctl` pauses it).
# PERF_OUT=FILE records a perf profile of the churn interval there (PERF_PHASE=rest: of the rest).
# SETTLE=S waits S seconds after the churn stops before the rest is measured (default 3).
# BOOKMARK_SECS=S: the simulated API servers' watch bookmark interval (default 60, what a real
# kube-apiserver's watch cache sends: one per watch per minute; the simulator's own default is 5 s,
# which at 20 clusters x 25 watches is 100 bookmarks a second).
# Usage: scripts/console-scale.sh [CLUSTERS] [PODS_PER_CLUSTER] [CHURN_MS] [SECS]
#        (needs a release build, tmux and kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."
clusters=${1:-20}
pods=${2:-5000}
churn=${3:-1000}
secs=${4:-30}
SESSION_PREFIX=scale
. scripts/sim-lib.sh
start_sim --clusters "$clusters" --pods-per-cluster "$pods" --churn-ms "$churn" --bookmark-secs "${BOOKMARK_SECS:-60}"
export KUBECONFIG="$work/kc"
contexts=$(kubectl config get-contexts -o name | grep -Ev -- '-(viewer|bookstore-dev)$' | paste -sd, -)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
start=$(ms)
tmux new-session -d -s "$session" -x 160 -y 48 \
  "exec env HOME=$work KUBECONFIG=$work/kc NO_COLOR=1 ${CONSOLE_ENV:-} $bin --context $contexts -c pods"
pid=$(tmux list-panes -t "$session" -F '#{pane_pid}')
first="" synced=""
while [ -z "$synced" ]; do
  screen=$(tmux capture-pane -p -t "$session" 2>/dev/null || true)
  now=$(ms)
  if [ -z "$first" ] && grep -q 'Running' <<<"$screen"; then first=$(( now - start )); fi
  if grep -q "clusters $clusters/$clusters synced" <<<"$screen"; then synced=$(( now - start )); fi
  (( now - start > 120000 )) && { echo "not synced after 120 s"; echo "$screen"; exit 1; }
  sleep 0.05
done
echo "console: first pod rows on screen ${first} ms, all $clusters clusters synced ${synced} ms"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
sleep 3
c0=$(cpu)
if [ -n "${PERF_OUT:-}" ] && [ "${PERF_PHASE:-churn}" = churn ]; then perf record -q ${PERF_ARGS:--g} -o "$PERF_OUT" -p "$pid" -- sleep "$secs" 2>/dev/null; else sleep "$secs"; fi
c1=$(cpu)
echo "churn (1 change per cluster per ${churn} ms), ${secs} s: CPU $(awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN {printf "%.2f", d / hz}') s, RSS $(rss) MiB"
if [ -n "$control" ]; then
  "$bin" sim ctl --control "$control" churn stop >/dev/null 2>&1 || { echo "(the simulator cannot pause its churn)"; exit 0; }
  sleep "${SETTLE:-3}"
  c0=$(cpu)
  if [ -n "${PERF_OUT:-}" ] && [ "${PERF_PHASE:-churn}" = rest ]; then perf record -q ${PERF_ARGS:--g} -o "$PERF_OUT" -p "$pid" -- sleep "$secs" 2>/dev/null; else sleep "$secs"; fi
  c1=$(cpu)
  echo "at rest, ${secs} s: CPU $(awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN {printf "%.2f", d / hz}') s, RSS $(rss) MiB"
fi
grep -o 'VmHWM.*' "/proc/$pid/status" | tr -s ' '
# the console's own figures (glibc heap in use, anonymous RSS) once synced and 10 s later
grep -h 'console: ' "$work"/.local/state/meshdeck/meshdeck.log 2>/dev/null | sed 's/^.*INFO [^ ]* //' || true
# LOG_OUT=FILE keeps the console's log (with CONSOLE_ENV=MESHDECK_LOG=debug, every board's run)
if [ -n "${LOG_OUT:-}" ]; then cp "$work"/.local/state/meshdeck/meshdeck.log "$LOG_OUT" 2>/dev/null || true; fi
