# Shared by the console scripts (source it): the release binary, a private HOME in $work, a
# tmux session name, cleanup on exit, and `start_sim ARGS...`, which runs `meshdeck sim serve
# ARGS --control 127.0.0.1:0 --kubeconfig $work/kc` until it is ready and sets $sim and $control.
bin=${MESHDECK_BIN:-$PWD/target/release/meshdeck}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
session="${SESSION_PREFIX:-sim}$$"
sim=""
trap 'tmux kill-session -t "$session" 2>/dev/null || true; [ -n "$sim" ] && kill "$sim" 2>/dev/null; rm -rf "$work"' EXIT
export HOME="$work"
start_sim() {
  "$bin" sim serve "$@" --control 127.0.0.1:0 --kubeconfig "$work/kc" >"$work/out" 2>"$work/err" &
  sim=$!
  until grep -q ready "$work/out" 2>/dev/null; do
    kill -0 "$sim" 2>/dev/null || { cat "$work/err"; exit 1; }
    sleep 0.1
  done
  control=$(grep -o 'control=[0-9.:]*' "$work/out" | head -1 | cut -d= -f2)
}
ctl() { "$bin" sim ctl --control "$control" "$@"; }
