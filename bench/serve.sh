#!/usr/bin/env bash
# Benchmarks `latch serve` over loopback HTTP with wrk:
#  1. the login bound: argon2id hashes/s of one core (Go benchmark) × cores;
#     and the ceiling: as many hashes at once as cores, with no server;
#  2. login throughput at 8 concurrent clients, against both;
#  3. refresh throughput and latency (p50/p99) at 64 concurrent clients,
#     each rotating its own session;
#  4. 2 and 3 with auditing on and off (--audit=false), alternating for
#     ROUNDS (2) rounds, and the ratios of the best figures of each.
# Needs wrk (apt-get install wrk). Every run is bounded by -d; the server is
# stopped on exit. Results go to stdout and bench/out/serve.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
PORT=${PORT:-18181}
CLIENTS=${CLIENTS:-64}
command -v wrk >/dev/null || { echo "bench/serve.sh needs wrk: apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p bench/out
out=bench/out/serve.txt
: >"$out"
say() { echo "$*" | tee -a "$out"; }

go build -o "$work/latch" .
cores=$(nproc)
go test -c -o "$work/server.test" ./server/
hashes() { "$work/server.test" -test.run '^$' -test.bench "^$1\$" -test.benchtime 4s "${@:2}" |
  awk '{for (i=1;i<=NF;i++) if ($(i+1)=="hashes/s") print $i}'; }
per_core=$(hashes BenchmarkArgon2idHash -test.cpu 1)
bound=$(awk -v a="$per_core" -v n="$cores" 'BEGIN{printf "%.1f", a*n}')
ceiling=$(hashes BenchmarkArgon2idHashParallel)
say "argon2id (m=19MiB,t=2,p=1): $per_core hashes/s on one core x $cores cores = bound $bound logins/s"
say "argon2id, $cores hashes at once, no server: $ceiling hashes/s = $(awk -v a="$ceiling" -v b="$bound" 'BEGIN{printf "%.2f", a/b}') of the bound"

# One server per mode: auditing on (the default) and off (the hidden
# --audit=false, for this comparison only). Each mode runs login, then
# refresh; the ratios on/off are the cost of the audit log (target >= 0.90).
run_mode() { # name, extra serve flags…
  local mode=$1; shift
  rm -f "$work/latch.db"*
  "$work/latch" serve --addr 127.0.0.1:$PORT --db "$work/latch.db" --rate-ip 0 --rate-account 0 --log-level error "$@" &
  pid=$!
  base=http://127.0.0.1:$PORT
  for _ in $(seq 100); do curl -fsS $base/healthz >/dev/null 2>&1 && break; sleep 0.1; done

  curl -fsS --json "{\"username\":\"bench\",\"email\":\"bench@example.com\",\"password\":\"$LATCH_BENCH_PASSWORD\"}" $base/auth/register >/dev/null

  wrk -t2 -c8 -d"$DURATION" -s bench/login.lua $base >"$work/login-$mode.txt"
  cat "$work/login-$mode.txt" >>"$out"
  if grep -q 'Non-2xx' "$work/login-$mode.txt"; then echo "login run ($mode) had failures" >&2; exit 1; fi
  local logins
  logins=$(awk '/Requests\/sec/ {print $2}' "$work/login-$mode.txt")
  best logins_$mode "$logins"
  say "[$mode] login: $logins logins/s at 8 clients = $(awk -v a="$logins" -v b="$bound" 'BEGIN{printf "%.2f", a/b}') of the bound (target >= 0.90)," \
    "$(awk -v a="$logins" -v b="$ceiling" 'BEGIN{printf "%.2f", a/b}') of the parallel-hash ceiling"

  : >"$work/tokens"
  for _ in $(seq "$CLIENTS"); do
    curl -fsS --json "{\"identifier\":\"bench\",\"password\":\"$LATCH_BENCH_PASSWORD\"}" $base/auth/login |
      sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' >>"$work/tokens"
  done
  export LATCH_BENCH_TOKENS="$work/tokens"
  wrk -t"$CLIENTS" -c"$CLIENTS" -d"$DURATION" --latency -s bench/refresh.lua $base >"$work/refresh-$mode.txt"
  cat "$work/refresh-$mode.txt" >>"$out"
  if grep -q 'Non-2xx' "$work/refresh-$mode.txt"; then echo "refresh run ($mode) had failures" >&2; exit 1; fi
  local refreshes
  refreshes=$(awk '/Requests\/sec/ {print $2}' "$work/refresh-$mode.txt")
  best refreshes_$mode "$refreshes"
  say "[$mode] refresh: $refreshes refreshes/s at $CLIENTS clients," \
    "p50 $(awk '$1=="50%" {print $2}' "$work/refresh-$mode.txt"), p99 $(awk '$1=="99%" {print $2}' "$work/refresh-$mode.txt")"
  curl -fsS $base/metrics | grep -E '^latch_(logins|refreshes)_total' >>"$out"
  kill $pid; wait $pid 2>/dev/null || true
}

# best VAR VALUE keeps the highest figure of the rounds: other load on the
# machine only ever lowers a figure, so the best of alternating rounds is the
# fairest comparison.
best() { if [ -z "${!1:-}" ] || awk -v a="$2" -v b="${!1}" 'BEGIN{exit !(a>b)}'; then printf -v "$1" %s "$2"; fi; }

export LATCH_BENCH_PASSWORD="correct horse battery staple"
for _ in $(seq "${ROUNDS:-2}"); do
  run_mode audit_on
  run_mode audit_off --audit=false
done
say "best of ${ROUNDS:-2} alternating rounds: login $logins_audit_on (on) / $logins_audit_off (off)," \
  "refresh $refreshes_audit_on (on) / $refreshes_audit_off (off)"
say "audit on/off: login $(awk -v a="$logins_audit_on" -v b="$logins_audit_off" 'BEGIN{printf "%.3f", a/b}')," \
  "refresh $(awk -v a="$refreshes_audit_on" -v b="$refreshes_audit_off" 'BEGIN{printf "%.3f", a/b}') (target >= 0.90 each)"
