#!/usr/bin/env bash
# Benchmarks `latch serve` over loopback HTTP with wrk:
#  1. the login bound: argon2id hashes/s of one core (Go benchmark) × cores;
#     and the ceiling: as many hashes at once as cores, with no server;
#  2. login throughput at 8 concurrent clients, against both;
#  3. refresh throughput and latency (p50/p99) at 64 concurrent clients,
#     each rotating its own session;
#  4. 2 and 3 with auditing on and off (--audit=false), alternating for
#     ROUNDS (2) rounds, and the ratios of the best figures of each;
#  5. 2 and 3 (latency of both) on one instance on SQLite, one on PostgreSQL,
#     and two on one PostgreSQL database (sharing this machine's cores),
#     wrk's threads spread over the instances (bench/spread.lua), with the
#     rate limits on but never reached, so that PostgreSQL's shared limits
#     are paid for; PG_ROUNDS (2) alternating rounds of PG_DURATION (5s).
#     The floors, measured in the same run: the argon2id bound for login,
#     one instance on SQLite for both.
# PARTS picks the parts: "audit pg" (default), "audit" (1–4) or "pg" (1, 5).
# Part 5 uses the cluster LATCH_TEST_POSTGRES names (a superuser URL, as the
# tests do; a database is made per run and dropped) or starts a throwaway one
# with .ci/postgres and stops it. Needs wrk (apt-get install wrk) and psql.
# Every run is bounded by -d; the servers are stopped on exit. Results go to
# stdout and bench/out/serve.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
PORT=${PORT:-18181}
CLIENTS=${CLIENTS:-64}
PARTS=${PARTS:-audit pg}
PG_DURATION=${PG_DURATION:-5s}
command -v wrk >/dev/null || { echo "bench/serve.sh needs wrk: apt-get install wrk" >&2; exit 1; }
case " $PARTS " in *" pg "*) command -v psql >/dev/null || { echo "bench/serve.sh needs psql: apt-get install postgresql-client" >&2; exit 1; } ;; esac

work=$(mktemp -d)
pid=
pids=()
dbs=()
pg_stop=
cleanup() {
  for p in $pid "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${dbs[@]}"; do
    psql "$LATCH_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  [ -z "$pg_stop" ] || eval "$pg_stop"
  rm -rf "$work"
}
trap cleanup EXIT
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
if [[ " $PARTS " == *" audit "* ]]; then
  for _ in $(seq "${ROUNDS:-2}"); do
    run_mode audit_on
    run_mode audit_off --audit=false
  done
  say "best of ${ROUNDS:-2} alternating rounds: login $logins_audit_on (on) / $logins_audit_off (off)," \
    "refresh $refreshes_audit_on (on) / $refreshes_audit_off (off)"
  say "audit on/off: login $(awk -v a="$logins_audit_on" -v b="$logins_audit_off" 'BEGIN{printf "%.3f", a/b}')," \
    "refresh $(awk -v a="$refreshes_audit_on" -v b="$refreshes_audit_off" 'BEGIN{printf "%.3f", a/b}') (target >= 0.90 each)"
fi
[[ " $PARTS " == *" pg "* ]] || exit 0

# 5. SQLite, PostgreSQL, two instances on PostgreSQL.
if [ -z "${LATCH_TEST_POSTGRES:-}" ]; then
  eval "$(bash .ci/postgres)"
  pg_stop=$LATCH_TEST_POSTGRES_STOP
fi
# pg_url NAME is LATCH_TEST_POSTGRES with its database replaced by NAME.
pg_url() {
  local base=${LATCH_TEST_POSTGRES%%\?*} q=
  [[ $LATCH_TEST_POSTGRES != *\?* ]] || q="?${LATCH_TEST_POSTGRES#*\?}"
  echo "${base%/*}/$1$q"
}
# Limits on (shared in the database on PostgreSQL) but never reached.
NOLIMIT=100000000

# wrk_latency FILE PERCENT is wrk's latency at that percentile.
wrk_latency() { awk -v p="$2" '$1==p {print $2}' "$1"; }

# keep SETUP WHAT FILE keeps wrk's figures of FILE as the setup's WHAT
# (login or refresh) when its throughput is the best of the rounds so far.
keep() {
  local rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$3")
  local var=${2}_$1
  if [ -z "${!var:-}" ] || awk -v a="$rps" -v b="${!var}" 'BEGIN{exit !(a>b)}'; then
    printf -v "$var" %s "$rps"
    printf -v "${var}_p50" %s "$(wrk_latency "$3" 50%)"
    printf -v "${var}_p99" %s "$(wrk_latency "$3" 99%)"
  fi
}

# run_setup NAME DB N [RATE]: N instances of latch serve on DB (a file, or a
# PostgreSQL URL), started after a --check-db as a deploy would; login and
# refresh spread over them. RATE is --rate-ip and --rate-account: never
# reached by default, 0 for no limits at all.
run_setup() {
  local name=$1 db=$2 n=$3 rate=${4:-$NOLIMIT} i addrs= port
  local key="$work/secret-$name.key"
  "$work/latch" serve --db "$db" --secret-key-file "$key" --check-db 2>>"$out"
  pids=()
  for i in $(seq 0 $((n - 1))); do
    port=$((PORT + i))
    "$work/latch" serve --addr 127.0.0.1:$port --db "$db" --secret-key-file "$key" --issuer http://127.0.0.1:$PORT \
      --rate-ip "$rate" --rate-account "$rate" --log-level error &
    pids+=($!)
    addrs+=" 127.0.0.1:$port"
  done
  for a in $addrs; do
    for _ in $(seq 100); do curl -fsS "http://$a/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "http://$a/healthz" >>"$out" || { echo "instance $a of $name did not come up" >&2; exit 1; }
    echo >>"$out"
  done
  local base=http://127.0.0.1:$PORT
  curl -fsS --json "{\"username\":\"bench\",\"email\":\"bench@example.com\",\"password\":\"$LATCH_BENCH_PASSWORD\"}" $base/auth/register >/dev/null
  export LATCH_BENCH_ADDRS=$addrs

  LATCH_BENCH_SCRIPT=$PWD/bench/login.lua wrk -t2 -c8 -d"$PG_DURATION" --latency -s bench/spread.lua $base >"$work/login-$name.txt"
  cat "$work/login-$name.txt" >>"$out"
  if grep -q 'Non-2xx' "$work/login-$name.txt"; then echo "login run ($name) had failures" >&2; exit 1; fi
  keep "$name" login "$work/login-$name.txt"

  : >"$work/tokens"
  for i in $(seq "$CLIENTS"); do
    curl -fsS --json "{\"identifier\":\"bench\",\"password\":\"$LATCH_BENCH_PASSWORD\"}" "http://127.0.0.1:$((PORT + i % n))/auth/login" |
      sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' >>"$work/tokens"
  done
  export LATCH_BENCH_TOKENS="$work/tokens"
  LATCH_BENCH_SCRIPT=$PWD/bench/refresh.lua wrk -t"$CLIENTS" -c"$CLIENTS" -d"$PG_DURATION" --latency -s bench/spread.lua $base \
    >"$work/refresh-$name.txt"
  cat "$work/refresh-$name.txt" >>"$out"
  if grep -q 'Non-2xx' "$work/refresh-$name.txt"; then echo "refresh run ($name) had failures" >&2; exit 1; fi
  keep "$name" refresh "$work/refresh-$name.txt"
  say "[$name] login $(awk '/Requests\/sec/ {print $2}' "$work/login-$name.txt")/s," \
    "refresh $(awk '/Requests\/sec/ {print $2}' "$work/refresh-$name.txt")/s"
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  pids=()
}

round=0
for _ in $(seq "${PG_ROUNDS:-2}"); do
  round=$((round + 1))
  rm -f "$work/latch.db"*
  run_setup sqlite "$work/latch.db" 1
  # pg0: one instance on PostgreSQL without limits, to tell what the
  # shared limits cost from what the database does.
  for setup in pg1:1 pg2:2 pg0:1:0; do
    IFS=: read -r name n rate <<<"$setup"
    db=latch_bench_$$_${round}_$name
    psql "$LATCH_TEST_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
    dbs+=("$db")
    run_setup "$name" "$(pg_url "$db")" "$n" "${rate:-$NOLIMIT}"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
say ""
say "best of ${PG_ROUNDS:-2} alternating rounds of $PG_DURATION; login at 8 clients, refresh at $CLIENTS clients" \
  "(each its own session), spread over the instances; rate limits on, never reached"
say "| setup | login/s | login p50 / p99 | of the argon2id bound | refresh/s | refresh p50 / p99 | login, refresh vs 1× SQLite |"
say "|---|---|---|---|---|---|---|"
for s in sqlite:"1× SQLite" pg1:"1× PostgreSQL" pg2:"2× PostgreSQL (one database)" pg0:"1× PostgreSQL, no rate limits"; do
  k=${s%%:*}
  l=login_$k r=refresh_$k lp50=login_${k}_p50 lp99=login_${k}_p99 rp50=refresh_${k}_p50 rp99=refresh_${k}_p99
  say "| ${s#*:} | ${!l} | ${!lp50} / ${!lp99} | $(ratio "${!l}" "$bound") | ${!r} | ${!rp50} / ${!rp99} |" \
    "$(ratio "${!l}" "$login_sqlite"), $(ratio "${!r}" "$refresh_sqlite") |"
done
