#!/usr/bin/env bash
# chaos.sh: what `go tool task chaos` runs (issue 13, "Faults": crash, failover and outages). Starts the
# dev stack, builds mailplane, the load driver and the chaos runner, and runs the runner
# (cmd/chaos) against a database and a directory base of its own; both are dropped afterwards
# (--keep leaves them). Arguments go to the runner, e.g.
#   go tool task chaos -- -n 2000 -kills 2 -mode crash
#   go tool task chaos -- -mode outage      # PostgreSQL, slapd, SMTP sink, Pebble (docs/reliability.md)
# Loopback only; bounded by -n (default 20,000 commands a run), -kills and -settle.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
export MAILPLANE_DEV_DIR=$DEV
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

scripts/stack.sh up >&2
# shellcheck source=/dev/null
. "$DEV/env"

BIN=$DEV/chaos-bin
mkdir -p "$BIN"
echo "chaos: building mailplane, loaddriver, chaos and smtpsink into $BIN" >&2
go build -o "$BIN/mailplane" ./cmd/mailplane
go build -o "$BIN/loaddriver" ./cmd/loaddriver
go build -o "$BIN/chaos" ./cmd/chaos
go build -o "$BIN/smtpsink" ./cmd/smtpsink
echo "chaos: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+dirty'), $(nproc) CPUs, $(uname -sr)" >&2
exec "$BIN/chaos" -bin "$BIN" -stack "$ROOT/scripts/stack.sh" "$@"
