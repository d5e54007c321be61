#!/usr/bin/env bash
# Time to first frame of `latch` (the interface), in tmux at 80×24: from the
# exec of latch to the moment its first full frame, with the profile list
# read, reaches the terminal. Target: ≤ 50 ms.
#
# Each run starts a pane whose shell waits, then records the time and execs
# latch; tmux pipe-pane streams everything latch writes to a reader that
# records the time it sees the profile row ("logged out"). The home holds one
# profile and the memory vault, so the figure is latch's own start-up (Go
# runtime, config, first render), not a keyring's.
#
# Needs tmux. Usage: bench/first_frame.sh [RUNS]; writes bench/out/first_frame.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "bench/first_frame.sh needs tmux: apt-get install tmux" >&2; exit 1; }
RUNS=${1:-30}
work=$(mktemp -d)
sock="$work/tmux.sock"
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p bench/out "$work/home"
out=bench/out/first_frame.txt

go build -o "$work/latch" .
printf '{"current":"demo","profiles":[{"name":"demo","server":"http://127.0.0.1:8080","username":"alice","kind":"account"}]}\n' \
  >"$work/home/config.json"

# The pane and the reader are scripts: tmux would expand %s in a command.
cat >"$work/pane" <<EOF
read _
date +%s%N >"$work/t0"
LATCH_HOME="$work/home" LATCH_VAULT=memory exec "$work/latch"
EOF
cat >"$work/reader" <<EOF
grep -a -m1 -q "logged out" && date +%s%N >"$work/t1"
EOF

times=()
for i in $(seq "$RUNS"); do
  rm -f "$work/t0" "$work/t1"
  tmux -S "$sock" -f /dev/null new-session -d -s ff -x 80 -y 24 "sh '$work/pane'"
  tmux -S "$sock" pipe-pane -t ff "exec sh '$work/reader'"
  tmux -S "$sock" send-keys -t ff Enter
  for _ in $(seq 500); do [ -s "$work/t1" ] && break; sleep 0.01; done
  [ -s "$work/t1" ] || { echo "run $i: no frame within 5 s" >&2; tmux -S "$sock" capture-pane -p -t ff >&2; exit 1; }
  times+=($(( ($(cat "$work/t1") - $(cat "$work/t0")) / 1000 )))
  tmux -S "$sock" kill-server
done

sorted=($(printf '%s\n' "${times[@]}" | sort -n))
pick() { echo "scale=1; ${sorted[$(( (${#sorted[@]} - 1) * $1 / 100 ))]} / 1000" | bc; }
{
  echo "latch time to first frame in tmux 80x24 ($RUNS runs, $(date -u +%F), $(nproc) cores)"
  echo "min $(pick 0) ms  median $(pick 50) ms  p90 $(pick 90) ms  max $(pick 100) ms"
} | tee "$out"
