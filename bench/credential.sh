#!/usr/bin/env bash
# Benchmarks the credential helpers other tools run on every invocation, on a
# valid token, with hyperfine, each figure as a ratio against a floor
# measured in the same run (as bench/token.sh does for latch token):
#  1. `latch credential kubernetes` (kubectl's exec plugin): against
#     bench/keyringread (one Secret Service read: what the keyring vault
#     costs at least). Target <= 1.3x.
#  2. `latch credential git get` (git's credential helper), its request on
#     stdin: against keyringread, both started through bench/withstdin (which
#     feeds stdin from a file and execs the command: hyperfine 1.15 cannot),
#     so that the floor pays the same. Target <= 1.3x.
# Each with the file vault unlocked (the key and the access token in the
# kernel keyring) and with the keyring vault (the access token cached).
# Needs hyperfine, curl, python3, keyctl support in the kernel, and a Secret
# Service: it starts gnome-keyring under dbus-run-session when there is no
# session bus. Everything runs on 127.0.0.1; results go to stdout and
# bench/out/credential.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ -z "${LATCH_BENCH_IN_SESSION:-}" ]; then
  exec dbus-run-session -- env LATCH_BENCH_IN_SESSION=1 sh -c \
    'export XDG_DATA_HOME=$(mktemp -d); printf latch-bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; sleep 0.5; exec bash bench/credential.sh'
fi
for tool in hyperfine curl python3; do
  command -v $tool >/dev/null || { echo "bench/credential.sh needs $tool (apt-get install hyperfine curl python3)" >&2; exit 1; }
done
PORT=${PORT:-18183}
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
out=bench/out/credential.txt
: >"$out"
say() { echo "$*" | tee -a "$out"; }

go build -o "$work/latch" .
go build -o "$work/keyringread" ./bench/keyringread
go build -o "$work/withstdin" ./bench/withstdin
base=http://127.0.0.1:$PORT
unset LATCH_VAULT_PASSPHRASE LATCH_VAULT_IDENTITY LATCH_VAULT_IDENTITY_FILE LATCH_VAULT_CACHE LATCH_VAULT_SCRYPT_WORK_FACTOR KUBERNETES_EXEC_INFO
pw="correct horse battery staple"
vpw="bench vault passphrase"

"$work/latch" serve --dev --addr 127.0.0.1:$PORT --access-ttl 1h --rate-ip 0 --rate-account 0 --log-level error 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -fsS $base/healthz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS $base/healthz >/dev/null || { echo "latch serve did not start" >&2; exit 1; }

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
mean() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(r[int(sys.argv[2])]["mean"])' "$@"; }
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / sum(map(float, sys.argv[2:]))))' "$@"; }

kh=$(home keyring)
fh=$(home file)
service="latch:$kh"
"$work/keyringread" "$service" profile/default/tokens >/dev/null
printf 'protocol=http\nhost=127.0.0.1:%s\n\n' "$PORT" >"$work/git.in"
kube="$work/latch credential kubernetes"
git="$work/withstdin $work/git.in $work/latch credential git --host $base get"
floor="$work/keyringread '$service' profile/default/tokens"
floorin="$work/withstdin $work/git.in $work/keyringread '$service' profile/default/tokens"

# Both helpers must answer with a token, or the figures mean nothing; the
# git helper (a separate piece) is benchmarked only once it answers.
for h in "$fh:file" "$kh:keyring"; do
  LATCH_HOME=${h%:*} LATCH_VAULT=${h##*:} $kube | grep -q '"token":"' || { echo "latch credential kubernetes gave no token (${h##*:} vault)" >&2; exit 1; }
done
gitok=1
for h in "$fh:file" "$kh:keyring"; do
  LATCH_HOME=${h%:*} LATCH_VAULT=${h##*:} $git 2>/dev/null | grep -q '^password=' || gitok=
done
[ -n "$gitok" ] || say "latch credential git get gave no password: benchmarking kubernetes only"

for v in file keyring; do
  h=$fh; label="file vault, unlocked"
  [ $v = keyring ] && { h=$kh; label="keyring vault, access token cached"; }
  args=(-n "latch credential kubernetes ($label)" "$kube"
    -n "floor: one Secret Service read (keyringread)" "$floor")
  [ -n "$gitok" ] && args+=(-n "latch credential git get ($label, via withstdin)" "$git"
    -n "floor: keyringread via withstdin" "$floorin")
  LATCH_HOME=$h LATCH_VAULT=$v hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/$v.json" "${args[@]}" | tee -a "$out"
  say "valid, $label: credential kubernetes / keyringread = $(ratio "$(mean "$work/$v.json" 0)" "$(mean "$work/$v.json" 1)")x (target <= 1.3x)"
  [ -n "$gitok" ] && say "valid, $label: credential git get / keyringread (both via withstdin) = $(ratio "$(mean "$work/$v.json" 2)" "$(mean "$work/$v.json" 3)")x (target <= 1.3x)"
done
