#!/usr/bin/env bash
# test.sh: what `go tool task test` runs. Starts the dev stack (scripts/stack.sh up, with
# the directory's syncrepl consumer), loads its environment (.dev/env) and runs the Go
# tests with the race detector.
#
#   scripts/test.sh                                   every package
#   scripts/test.sh ./eventstore/... -run TestAppend  arguments go to go test
#
# Without a package argument (./... or mailplane/...) it tests ./... .
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
export MAILPLANE_DEV_DIR=$DEV
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

# The suite tests replication too: start the syncrepl consumer (about 0.1 s).
MAILPLANE_LDAP_REPLICA=1 scripts/stack.sh up
# shellcheck source=/dev/null
. "$DEV/env"

args=("$@")
has_pkg=''
for a in "${args[@]}"; do
	case $a in ./* | mailplane | mailplane/*) has_pkg=1 ;; esac
done
[[ -n $has_pkg ]] || args+=(./...)

echo "go test -race -count=1 -timeout 15m ${args[*]}"
exec go test -race -count=1 -timeout 15m "${args[@]}"
