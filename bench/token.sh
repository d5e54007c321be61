#!/usr/bin/env bash
# Benchmarks `latch token` with hyperfine, each figure as a ratio against a
# floor measured in the same run:
#  1. valid token, file vault unlocked (the key in the kernel keyring, the
#     access token cached there): against bench/keyringread (one Secret
#     Service read: what the keyring vault costs at least) and
#     bench/keyctlread (one kernel keyring read). Target <= 1.3x keyringread.
#  2. valid token, keyring vault with the access-token cache: against
#     keyringread. Target <= 1.0x.
#  2b. a locked vault: exit 5, without the server. Target <= 100 ms.
#  3. expired token (refresh at a local latch serve + save), file vault and
#     keyring vault: against keyringread + curl doing the same refresh.
#     Target <= 1.5x.
#  4. 50 `latch token` at once on an expired token, file vault at the
#     DEFAULT scrypt work factor: failures, rotations at the server, each
#     process's peak RSS, wall time. Target: 0, exactly 1, <= 30 MB, <= 2 s.
# Needs hyperfine, curl, python3, GNU time, keyctl support in the kernel, and
# a Secret Service: it starts gnome-keyring under dbus-run-session when there
# is no session bus. Everything runs on 127.0.0.1; results go to stdout and
# bench/out/token.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ -z "${LATCH_BENCH_IN_SESSION:-}" ]; then
  exec dbus-run-session -- env LATCH_BENCH_IN_SESSION=1 sh -c \
    'export XDG_DATA_HOME=$(mktemp -d); printf latch-bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; sleep 0.5; exec bash bench/token.sh'
fi
for tool in hyperfine curl python3 /usr/bin/time; do
  command -v $tool >/dev/null || { echo "bench/token.sh needs $tool (apt-get install hyperfine curl python3 time)" >&2; exit 1; }
done
PORT=${PORT:-18182}
RUNS=${RUNS:-200}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill $pid 2>/dev/null
  wait 2>/dev/null || true
  for h in "$work"/h-*; do [ -d "$h" ] && LATCH_HOME=$h "$work/latch" vault lock >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/out
out=bench/out/token.txt
: >"$out"
say() { echo "$*" | tee -a "$out"; }

go build -o "$work/latch" .
go build -o "$work/keyringread" ./bench/keyringread
go build -o "$work/keyctlread" ./bench/keyctlread
base=http://127.0.0.1:$PORT
unset LATCH_VAULT_PASSPHRASE LATCH_VAULT_IDENTITY LATCH_VAULT_IDENTITY_FILE LATCH_VAULT_CACHE LATCH_VAULT_SCRYPT_WORK_FACTOR
pw="correct horse battery staple"
vpw="bench vault passphrase"

start_server() { # $1: access-token TTL
  [ -n "$pid" ] && { kill $pid; wait $pid 2>/dev/null || true; }
  "$work/latch" serve --dev --addr 127.0.0.1:$PORT --access-ttl "$1" --rate-ip 0 --rate-account 0 --log-level error 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -fsS $base/healthz >/dev/null 2>&1 && return; sleep 0.1; done
  echo "latch serve did not start" >&2; exit 1
}

# home VAULT: a fresh latch home with a signed-up user, the file vault
# unlocked first when VAULT is file; prints the home.
home() {
  local h n
  h=$(mktemp -d "$work/h-$1-XXXXXX")
  n=$(basename "$h" | tr -cd 'a-zA-Z0-9')
  if [ "$1" = file ]; then
    printf '%s\n' "$vpw" | LATCH_HOME=$h LATCH_VAULT=file "$work/latch" vault unlock --passphrase-stdin >/dev/null
  fi
  printf '%s\n' "$pw" | LATCH_HOME=$h LATCH_VAULT=$1 "$work/latch" signup --server $base -u "bench$n" --email "bench$n@example.com" --password-stdin >/dev/null 2>&1
  grep -q "vault: $1" <<<"$(LATCH_HOME=$h LATCH_VAULT=$1 "$work/latch" status)" || { echo "the $1 vault is not in use, or the signup failed" >&2; exit 1; }
  echo "$h"
}
scope() { tr -d '\n' <"$1/cache-id"; } # the home's session-cache scope
mean() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(r[int(sys.argv[2])]["mean"])' "$@"; }
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / sum(map(float, sys.argv[2:]))))' "$@"; }
rotations() { curl -fsS $base/metrics | awk -F' ' '/^latch_refreshes_total\{result="rotated"\}/ {print $2}' | grep . || echo 0; }

# 1 and 2. Valid token.
start_server 1h
kh=$(home keyring)
fh=$(home file)
service="latch:$kh"
"$work/keyringread" "$service" profile/default/tokens >/dev/null
at="latch:$(scope "$fh"):at/default"
"$work/keyctlread" "$at" >/dev/null
LATCH_HOME=$fh LATCH_VAULT=file hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/file.json" \
  -n "latch token (file vault, unlocked)" "$work/latch token" \
  -n "floor: one Secret Service read (keyringread)" "$work/keyringread '$service' profile/default/tokens" \
  -n "floor: one kernel keyring read (keyctlread)" "$work/keyctlread $at" | tee -a "$out"
LATCH_HOME=$kh LATCH_VAULT=keyring hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/keyring.json" \
  -n "latch token (keyring vault, access token cached)" "$work/latch token" \
  -n "floor: one Secret Service read (keyringread)" "$work/keyringread '$service' profile/default/tokens" | tee -a "$out"
say "valid, file vault unlocked / keyringread = $(ratio "$(mean "$work/file.json" 0)" "$(mean "$work/file.json" 1)")x (target <= 1.3x); / keyctlread = $(ratio "$(mean "$work/file.json" 0)" "$(mean "$work/file.json" 2)")x"
say "valid, keyring vault + access-token cache / keyringread = $(ratio "$(mean "$work/keyring.json" 0)" "$(mean "$work/keyring.json" 1)")x (target <= 1.0x)"

# Locked: exit 5 without the server (target: within 100 ms).
lh=$(home file)
LATCH_HOME=$lh "$work/latch" vault lock >/dev/null
LATCH_HOME=$lh LATCH_VAULT=file hyperfine -N -i --warmup 5 --runs 50 --export-json "$work/locked.json" \
  -n "latch token (file vault locked: exit 5)" "$work/latch token" | tee -a "$out"
say "locked vault: latch token exits 5 in $(python3 -c 'import sys; print("%.1f" % (float(sys.argv[1]) * 1000))' "$(mean "$work/locked.json" 0)") ms (target <= 100 ms)"

# 3. Expired path: a 1 s access token, slept past before every run.
start_server 1s
kh=$(home keyring)
fh=$(home file)
service="latch:$kh"
login() { # a fresh refresh token for curl, outside the timing
  curl -fsS -H 'Content-Type: application/json' -d "{\"identifier\":\"curl\",\"password\":\"$pw\"}" $base/auth/login |
    python3 -c 'import json,sys; print(json.dumps({"refresh_token": json.load(sys.stdin)["refresh_token"]}))' >"$work/rt.json"
}
curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "{\"username\":\"curl\",\"email\":\"curl@example.com\",\"password\":\"$pw\"}" $base/auth/register
export -f login; export base pw work
hyperfine -N --runs 20 --export-json "$work/expired.json" \
  --prepare 'sleep 1.05' -n "latch token (expired, file vault)" "env LATCH_HOME=$fh LATCH_VAULT=file $work/latch token" \
  --prepare 'sleep 1.05' -n "latch token (expired, keyring vault)" "env LATCH_HOME=$kh LATCH_VAULT=keyring $work/latch token" \
  --prepare 'true' -n "floor: env + keyringread" "env A=1 $work/keyringread '$service' profile/default/tokens" \
  --prepare 'bash -c login' -n "floor: curl, the same refresh" "curl -fsS -o /dev/null -H 'Content-Type: application/json' -d @$work/rt.json $base/auth/refresh" |
  tee -a "$out"
floor2="$(mean "$work/expired.json" 2) $(mean "$work/expired.json" 3)"
say "expired, file vault / (keyringread + curl) = $(ratio "$(mean "$work/expired.json" 0)" $floor2)x (target <= 1.5x)"
say "expired, keyring vault / (keyringread + curl) = $(ratio "$(mean "$work/expired.json" 1)" $floor2)x (target <= 1.5x)"

# 4. 50 at once on an expired token, file vault, default work factor (18).
# A 5 s token: latch keeps expiry times in whole seconds, so a 1 s token can
# look spent the moment it arrives and set off a second rotation.
start_server 5s
fh=$(home file)
grep -q '"state": "unlocked"' <<<"$(LATCH_HOME=$fh "$work/latch" vault status --json)"
sleep 5.1
before=$(rotations)
start=$(date +%s%N)
for i in $(seq 50); do
  LATCH_HOME=$fh LATCH_VAULT=file /usr/bin/time -f '%M %x' -o "$work/p$i.time" "$work/latch" token >"$work/p$i.out" 2>"$work/p$i.err" &
done
wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
wall=$(( ($(date +%s%N) - start) / 1000000 ))
after=$(rotations)
fails=0; maxrss=0; tokens=$(cat "$work"/p*.out | sort -u | wc -l)
for i in $(seq 50); do
  read -r rss code <"$work/p$i.time"
  [ "$code" = 0 ] || fails=$((fails + 1))
  [ "$rss" -gt "$maxrss" ] && maxrss=$rss
done
say "50 x latch token at once, expired, file vault (work factor 18): $fails failed, $((after - before)) rotation(s), $tokens distinct token(s), peak RSS max $((maxrss / 1024)) MB, wall ${wall} ms (targets: 0, 1, <= 30 MB, <= 2000 ms)"
