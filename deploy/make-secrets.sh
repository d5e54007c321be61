#!/usr/bin/env bash
# Makes the three secret files compose.yaml mounts, in ./secrets beside this
# script, unless they exist (run it again safely: it never replaces a key,
# since a new server key cannot open what the old one sealed):
#   postgres_password  the database password, read by the postgres image
#   latch_pgpass       the same password as a libpq passfile, for latch
#   latch_secret_key   the server key, 32 bytes in hex, shared by every instance
# Each is made 0600 (umask). latch runs as uid 65532 in its image and
# refuses a key file that others can read, so its two files are given to
# that uid (this needs root: it is done with sudo when the script is not).
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
if [ ! -e secrets/postgres_password ]; then
  # Hex: no character that a passfile would need to escape (: and \).
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >secrets/postgres_password
fi
if [ ! -e secrets/latch_pgpass ]; then
  # host:port:database:user:password, as in compose.yaml's --db URL.
  printf 'postgres:5432:latch:latch:%s\n' "$(cat secrets/postgres_password)" >secrets/latch_pgpass
fi
if [ ! -e secrets/latch_secret_key ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >secrets/latch_secret_key
  echo >>secrets/latch_secret_key
fi
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo chown 65532:65532 secrets/latch_pgpass secrets/latch_secret_key
echo "secrets in $(pwd)/secrets; back up latch_secret_key: without it the database's sealed secrets are lost"
