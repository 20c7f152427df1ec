#!/usr/bin/env bash
# Scale figures for the simulated fleet (docs/benchmarks.md):
#   time to ready, RSS after ready, latency of listing 5,000 pods of one cluster (raw HTTPS),
#   and `kubectl get pods -A` over the same cluster.
# Usage: scripts/sim-scale.sh [CLUSTERS] [PODS_PER_CLUSTER]     (needs a release build, curl, kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."
clusters=${1:-20}
pods=${2:-5000}
bin=./target/release/meshdeck
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export HOME="$work"
"$bin" sim serve --clusters "$clusters" --pods-per-cluster "$pods" --kubeconfig "$work/kc" >"$work/out" 2>"$work/err" &
pid=$!
t0=$(date +%s%N)
until grep -q ready "$work/out" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/err"; exit 1; }
  sleep 0.05
done
t1=$(date +%s%N)
echo "ready line: $(cat "$work/out")"
echo "wall time to ready: $(( (t1 - t0) / 1000000 )) ms"
sleep 1
echo "RSS after ready: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$pid/status)"
export KUBECONFIG="$work/kc"
ctx=$(kubectl config current-context)
server=$(kubectl config view --raw -o jsonpath="{.clusters[?(@.name==\"$ctx\")].cluster.server}")
kubectl config view --raw -o jsonpath="{.clusters[?(@.name==\"$ctx\")].cluster.certificate-authority-data}" | base64 -d >"$work/ca.pem"
token=$(kubectl config view --raw -o jsonpath="{.users[?(@.name==\"$ctx-admin\")].user.token}")
count=$(curl -s --cacert "$work/ca.pem" -H "Authorization: Bearer $token" "$server/api/v1/pods" | grep -o '"kind":"Pod"' | wc -l)
echo "pods listed from $ctx: $count"
times=()
for _ in $(seq 1 11); do
  times+=("$(curl -s -o /dev/null --cacert "$work/ca.pem" -H "Authorization: Bearer $token" -w '%{time_total}' "$server/api/v1/pods")")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "list %s pods over HTTPS (curl, 11 runs): min %.1f ms, median %.1f ms, max %.1f ms\n", "'"$count"'", a[1]*1000, a[6]*1000, a[NR]*1000}'
s=$(date +%s%N); kubectl get pods -A --context "$ctx" >/dev/null; e=$(date +%s%N)
echo "kubectl get pods -A --context $ctx: $(( (e - s) / 1000000 )) ms"
echo "RSS after the lists: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$pid/status)"
