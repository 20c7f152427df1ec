#!/usr/bin/env bash
# Requests a minute at rest (issue #31, docs/benchmarks.md): the console in a tmux pty on one
# simulated cluster of PODS pods with one change a second; once synced and settled, the API
# server's request log over SECS seconds, by kind of request. SIGNALS=prometheus gives the
# console a Prometheus (an address where none answers: its queries go there, never to the API
# server, as with a real one); SIGNALS=sidecars (the default) leaves the sidecar fallback, which
# scrapes through the API server's pod proxy. Then: the time back to synced after the cluster
# returns (`fault down`, 10 s, `fault up`), from the simulator's `up` to the header's synced.
# Usage: scripts/rest-requests.sh [PODS] [SECS]   (needs a release build and tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-5000}
secs=${2:-60}
signals=${SIGNALS:-sidecars}
SESSION_PREFIX=rest
. scripts/sim-lib.sh
start_sim --clusters 1 --pods-per-cluster "$pods" --churn-ms 1000 --bookmark-secs 60
mkdir -p "$work/.config/meshdeck"
if [ "$signals" = prometheus ]; then
  echo 'prometheus: http://127.0.0.1:9' >"$work/.config/meshdeck/config.yaml"
fi
tmux new-session -d -s "$session" -x 160 -y 48 \
  "exec env HOME=$work MESHDECK_CONFIG_DIR=$work/.config/meshdeck KUBECONFIG=$work/kc NO_COLOR=1 $bin --context eu-west -c svc"
synced() { tmux capture-pane -p -t "$session" 2>/dev/null | grep -q "clusters 1/1 synced"; }
until synced; do sleep 0.1; done
sleep 20
ctl clear-requests eu-west >/dev/null
sleep "$secs"
ctl requests eu-west >"$work/req"
n=$(wc -l <"$work/req")
echo "signals: $signals; $pods pods, one change a second; ${secs} s at rest after the sync:"
echo "  $n requests to the API server: $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n * 60 / s}') a minute"
python3 - "$work/req" <<'PY'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    watch = any(kv in ("watch=true", "watch=1") for kv in r.get("query", "").split("&"))
    p = r["path"]
    kind = "pod proxy (sidecar scrape)" if "/proxy" in p and "/pods/" in p else \
        "service proxy" if "/proxy" in p else \
        "/version (ping)" if p == "/version" else \
        ("watch " if watch else "") + (r["method"] + " " + p.split("/")[-1])
    c[kind] += 1
for k, v in c.most_common(12):
    print(f"  {v:6d}  {k}")
PY
# back to synced after the cluster returns
ctl fault eu-west down >/dev/null
until tmux capture-pane -p -t "$session" | grep -qE "stale|unreachable"; do sleep 0.1; done
sleep 10
t0=$(date +%s%N)
ctl fault eu-west up >/dev/null
until synced; do sleep 0.02; done
t1=$(date +%s%N)
echo "back to synced $(( (t1 - t0) / 1000000 )) ms after the cluster returned"
