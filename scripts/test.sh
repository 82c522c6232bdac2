#!/usr/bin/env bash
# test.sh: what `go tool task test` runs. Starts the dev stack (scripts/stack.sh up, with
# the directory's syncrepl consumer), loads its environment (.dev/env) and runs the Go
# tests with the race detector.
#
#   scripts/test.sh                                   every package
#   scripts/test.sh ./eventstore/... -run TestAppend  arguments go to go test
#
# Without a package argument (./... or mailplane/...) it tests ./... and then runs the fuzz
# smoke (scripts/fuzz.sh, FUZZSMOKE per target, default 2s).
#
# TEST_HOLD_HORIZON=N (go tool task test-horizon) keeps a transaction with a transaction id open
# in the server's `postgres` database for N seconds of every N+2 while the tests run. Transaction
# ids are cluster-wide, so this holds back the gap-safe horizon of every test database: the
# projections, anchors and rebuilds of all tests wait, as they would behind another database's
# long transaction on a shared CI server. A test that fails only under it assumes they never wait.
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

if [[ -n ${TEST_HOLD_HORIZON:-} ]]; then
	hold=$TEST_HOLD_HORIZON
	[[ $hold =~ ^[0-9]+$ ]] || { echo "test.sh: TEST_HOLD_HORIZON must be whole seconds" >&2; exit 2; }
	base=${TEST_DATABASE_URL%%\?*}
	admin_url=${base%/*}/postgres
	(
		while :; do
			psql "$admin_url" -qc "BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep($hold); COMMIT;" >/dev/null 2>&1 || true
			sleep 2
		done
	) &
	holder=$!
	trap 'pkill -P "$holder" 2>/dev/null; kill "$holder" 2>/dev/null || true' EXIT
	echo "test.sh: holding the cluster's horizon back ${hold} s of every $((hold + 2)) s (pid $holder)"
fi

echo "go test -race -count=1 -timeout 15m ${args[*]}"
if [[ -n $has_pkg && -z ${TEST_HOLD_HORIZON:-} ]]; then
	exec go test -race -count=1 -timeout 15m "${args[@]}"
fi
go test -race -count=1 -timeout 15m "${args[@]}"
# The whole suite ends with a fuzz smoke: every target for a few seconds (the seeds themselves
# already ran above, as tests). FUZZSMOKE=0 leaves it out.
if [[ -z $has_pkg && ${FUZZSMOKE:-2s} != 0 ]]; then
	FUZZTIME=${FUZZSMOKE:-2s} scripts/fuzz.sh
fi
