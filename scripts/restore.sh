#!/usr/bin/env bash
# The runbook of docs/operations.md, "Backup and restore", for a logical dump restored into
# another cluster:
#
#   scripts/restore.sh SOURCE_URL DIR     dump the database at SOURCE_URL (pg_dump -Fc), start a
#                                         new private cluster in DIR, restore the dump into it,
#                                         rewrite the transaction order and reset the
#                                         checkpoints (mailplane after-restore), rebuild every
#                                         projection, the directory included (rebuild all)
#   scripts/restore.sh stop DIR           stop the cluster in DIR
#
# The directory written is MAILPLANE_LDAP_URL / _BIND_DN / _PASSWORD / _BASE_DN: give it a
# fresh base (or a fresh slapd) — the old cluster's directory holds a checkpoint in the old
# order. MAILPLANE_MASTER_KEY_FILE must be the installation's key. MAILPLANE names the command
# to run for mailplane (default: mailplane on PATH, else go run ./cmd/mailplane).
#
# On success the last line is DATABASE_URL=… of the restored database; start serve with it.
# Timings of each step go to stderr and to DIR/timings (name seconds). Never touches the
# cluster of SOURCE_URL beyond reading it.
set -euo pipefail

say() { printf 'restore: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

pg_bindir() {
	local d
	d=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[[ -n $d && -x $d/initdb ]] || d=$(pg_config --bindir 2>/dev/null) || true
	[[ -n $d && -x $d/initdb ]] || die "no initdb found (apt-get install postgresql)"
	REPLY=$d
}

# as_pg COMMAND...: initdb and pg_ctl refuse root; run them as the postgres user then.
as_pg() {
	if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [[ ${1:-} == stop ]]; then
	[[ $# -eq 2 ]] || die "usage: $0 stop DIR"
	pg_bindir
	if [[ -f $2/pg/PG_VERSION ]]; then
		as_pg "$REPLY/pg_ctl" -D "$2/pg" -m fast -w stop >/dev/null 2>&1 || true
	fi
	exit 0
fi
[[ $# -eq 2 ]] || die "usage: $0 SOURCE_URL DIR | $0 stop DIR"
source_url=$1
dir=$2
[[ -n ${MAILPLANE_MASTER_KEY_FILE:-} ]] || die "MAILPLANE_MASTER_KEY_FILE is not set (the installation's master key)"
read -r -a mailplane <<<"${MAILPLANE:-}"
if [[ ${#mailplane[@]} -eq 0 ]]; then
	if command -v mailplane >/dev/null; then mailplane=(mailplane); else mailplane=(go run ./cmd/mailplane); fi
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
: >"$dir/timings"
step() { # step NAME COMMAND...: run it, timed
	local name=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	printf '%s %s\n' "$name" "$secs" >>"$dir/timings"
	say "$name: ${secs}s"
}

# 1. The dump: one consistent snapshot, custom format (pg_restore can reorder and parallelize).
step dump pg_dump --format=custom --no-owner --file="$dir/mailplane.dump" "$source_url"

# 2. Another cluster: a private one of our own on a free loopback port.
pg_bindir
bindir=$REPLY
data=$dir/pg sock=$dir/run
mkdir -p "$sock"
if [[ $EUID -eq 0 ]]; then
	chown postgres: "$dir" "$sock"
	runuser -u postgres -- test -w "$dir" ||
		die "the postgres user cannot reach $dir (a folder above it is not world-searchable)"
fi
[[ ! -e $data ]] || die "$data exists: restore into a new folder"
step initdb as_pg "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
port=$(free_port)
touch "$dir/postgres.log"
[[ $EUID -ne 0 ]] || chown postgres: "$dir/postgres.log"
as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
	-o "-p $port -k '$sock' -c listen_addresses=127.0.0.1" start >/dev/null
target=postgres://postgres@127.0.0.1:$port/mailplane?sslmode=disable
psql "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" -Xq -v ON_ERROR_STOP=1 -c 'CREATE DATABASE mailplane' >/dev/null

# 3. The restore. The events keep their old transaction ids here: nothing may read them yet.
step restore pg_restore --no-owner --exit-on-error --dbname="$target" "$dir/mailplane.dump"

# 4. The transaction order rewritten, the checkpoints reset (and pending migrations applied).
export DATABASE_URL=$target
step after-restore "${mailplane[@]}" after-restore >&2

# 5. Every projection rebuilt from position 0: the Postgres read models through shadow tables
#    checked by readcheck, then the directory.
step rebuild "${mailplane[@]}" rebuild all >&2

# 6. The chains and anchors still hold (their hashes leave the transaction ids out).
step verify "${mailplane[@]}" verify >&2

say "restored into $target (cluster in $data; stop it with: $0 stop $dir)"
echo "DATABASE_URL=$target"
