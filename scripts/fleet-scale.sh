#!/usr/bin/env bash
# Scale figures for the live fleet (docs/benchmarks.md): `meshdeck status` over N contexts of a
# simulated fleet of N x PODS pods (time from start to all synced, peak RSS), against a shell loop
# of `kubectl get pods -A --context X` over the same contexts.
# Usage: scripts/fleet-scale.sh [CLUSTERS] [PODS_PER_CLUSTER]   (needs a release build and kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."
clusters=${1:-20}
pods=${2:-5000}
bin=${MESHDECK_BIN:-$PWD/target/release/meshdeck}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export HOME="$work"
"$bin" sim serve --clusters "$clusters" --pods-per-cluster "$pods" --kubeconfig "$work/kc" >"$work/out" 2>"$work/err" &
pid=$!
until grep -q ready "$work/out" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/err"; exit 1; }
  sleep 0.1
done
export KUBECONFIG="$work/kc"
contexts=$(kubectl config get-contexts -o name | grep -Ev -- '-(viewer|bookstore-dev)$' | paste -sd, -)
echo "contexts: $contexts"
/usr/bin/time -f "meshdeck status: %e s wall, %M KiB peak RSS" \
  "$bin" status --context "$contexts" --wait-synced 120 >"$work/status.txt" 2>"$work/time.txt" || true
tail -1 "$work/time.txt"
grep -ho 'fleet snapshot ready.*' "$work"/.local/state/meshdeck/meshdeck.log 2>/dev/null | tail -1 || true
head -3 "$work/status.txt"
grep -c ' synced ' "$work/status.txt" | sed 's/^/clusters synced: /'
s=$(date +%s%N)
for c in ${contexts//,/ }; do kubectl get pods -A --context "$c" >/dev/null; done
e=$(date +%s%N)
echo "kubectl get pods -A loop over $clusters contexts: $(( (e - s) / 1000000 )) ms"
