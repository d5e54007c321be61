#!/usr/bin/env bash
# Benchmarks `latch token` with hyperfine:
#  1. cached path: a valid access token in the real system keyring, against
#     the floor — bench/keyringread, a minimal Go program doing the same single
#     keyring read and printing it. Target: latch ≤ 1.3× the floor.
#  2. expired path: every run finds the access token expired, refreshes it at
#     a local `latch serve` and saves the rotated tokens to the keyring;
#     against curl doing the same refresh (one POST /auth/refresh).
# Needs hyperfine, curl, and a Secret Service: run it inside a desktop
# session, or it starts one with dbus-run-session + gnome-keyring-daemon.
# Everything runs on 127.0.0.1; results go to stdout and bench/out/token.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ -z "${LATCH_BENCH_IN_SESSION:-}" ]; then
  exec dbus-run-session -- env LATCH_BENCH_IN_SESSION=1 sh -c \
    'export XDG_DATA_HOME=$(mktemp -d); printf latch-bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; sleep 0.5; exec bash bench/token.sh'
fi
command -v hyperfine >/dev/null || { echo "bench/token.sh needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
PORT=${PORT:-18182}
RUNS=${RUNS:-200}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p bench/out
out=bench/out/token.txt
: >"$out"
say() { echo "$*" | tee -a "$out"; }

go build -o "$work/latch" .
go build -o "$work/keyringread" ./bench/keyringread
base=http://127.0.0.1:$PORT
export LATCH_HOME=$work/home LATCH_VAULT=auto
unset LATCH_VAULT_PASSPHRASE
pw="correct horse battery staple"

start_server() { # $1: access-token TTL
  [ -n "$pid" ] && { kill $pid; wait $pid 2>/dev/null || true; }
  "$work/latch" serve --dev --addr 127.0.0.1:$PORT --access-ttl "$1" --rate-ip 0 --rate-account 0 --log-level error 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -fsS $base/healthz >/dev/null 2>&1 && return; sleep 0.1; done
  echo "latch serve did not start" >&2; exit 1
}

# 1. Cached path.
start_server 1h
rm -rf "$LATCH_HOME"
printf '%s\n' "$pw" | "$work/latch" signup --server $base -u bench --email bench@example.com --password-stdin >/dev/null 2>&1
"$work/latch" status | grep -q 'vault: keyring' || { echo "the keyring is not in use:" >&2; "$work/latch" status >&2; exit 1; }
service="latch:$(cd "$LATCH_HOME" && pwd)"
"$work/keyringread" "$service" profile/default/tokens >/dev/null
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/cached.json" \
  -n "latch token (cached)" "$work/latch token" \
  -n "floor: one keyring read" "$work/keyringread '$service' profile/default/tokens" | tee -a "$out"
ratio=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.2f" % (r[0]["mean"]/r[1]["mean"]))' "$work/cached.json")
say "cached latch token / floor = ${ratio}x (target <= 1.3x)"

# 2. Expired path: a 1 s access token, slept past before every run.
start_server 1s
rm -rf "$LATCH_HOME"
printf '%s\n' "$pw" | "$work/latch" signup --server $base -u bench2 --email bench2@example.com --password-stdin >/dev/null 2>&1
login() { # a fresh refresh token for curl, outside the timing
  curl -fsS -H 'Content-Type: application/json' -d "{\"identifier\":\"bench2\",\"password\":\"$pw\"}" $base/auth/login |
    python3 -c 'import json,sys; print(json.dumps({"refresh_token": json.load(sys.stdin)["refresh_token"]}))' >"$work/rt.json"
}
export -f login; export base pw work
hyperfine -N --runs 20 --export-json "$work/expired.json" \
  --prepare 'sleep 1.05' -n "latch token (expired: refresh + keyring write)" "$work/latch token" \
  --prepare 'bash -c login' -n "curl: the same refresh" "curl -fsS -o /dev/null -H 'Content-Type: application/json' -d @$work/rt.json $base/auth/refresh" |
  tee -a "$out"
"$work/latch" status | grep rotation | tee -a "$out"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("expired latch token / curl refresh = %.2fx" % (r[0]["mean"]/r[1]["mean"]))' "$work/expired.json" | tee -a "$out"
