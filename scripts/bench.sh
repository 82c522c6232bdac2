#!/usr/bin/env bash
# bench.sh: what `go tool task bench` runs. Measures the event store and account creation over
# HTTP, each as a ratio to a raw baseline measured in this same run (docs/benchmarks.md), and
# prints a summary table. The whole output is kept in .dev/bench/<timestamp>.txt.
#
#   scripts/bench.sh            everything (about 8 minutes)
#   scripts/bench.sh store      the event store only: (a) pgbench, (b) appends, (c) batches,
#                               (d) ReadAll vs psql \copy, projection delivery
#   scripts/bench.sh api        account creation over HTTP only (pgbench again for the ratio)
#   scripts/bench.sh certs      ACME issuance end to end against Pebble, and lego's bare Obtain
#   scripts/bench.sh quick      everything with small sizes and short runs (a smoke test; its
#                               figures mean little)
#
# Sizes can be changed with BENCH_PGBENCH_SECONDS (20), BENCH_APPEND_SECONDS (20), BENCH_ROUNDS (2:
# rounds of (b), each followed by pgbench),
# BENCH_BATCH_EVENTS (400000), BENCH_READ_EVENTS (500000), BENCH_READ_PASSES (3: timed passes
# over them per page size), BENCH_DELIVERY_EVENTS (100000),
# BENCH_ACCOUNTS (20000), BENCH_RYW_ACCOUNTS (5000), BENCH_PASSWORD_ACCOUNTS (500),
# BENCH_CLIENTS (16), BENCH_CERT_ISSUES (20: issuances per variant of the certs part).
#
# Scratch databases mailplane_bench and mailplane_load are created on the dev stack's server and
# dropped on exit, as is the mailplane server this script starts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
export MAILPLANE_DEV_DIR=$DEV
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

parts=store,api,certs
quick=''
for a in "$@"; do
	case $a in
	store | api | certs) parts=$a ;;
	all) parts=store,api,certs ;;
	quick) quick=1 ;;
	*)
		echo "usage: scripts/bench.sh [store|api|certs|all] [quick]" >&2
		exit 2
		;;
	esac
done
want() { [[ ,$parts, == *,$1,* ]]; }

if [[ -n $quick ]]; then
	: "${BENCH_PGBENCH_SECONDS:=5}" "${BENCH_APPEND_SECONDS:=3}" "${BENCH_BATCH_EVENTS:=50000}"
	: "${BENCH_READ_EVENTS:=100000}" "${BENCH_DELIVERY_EVENTS:=20000}" "${BENCH_ACCOUNTS:=2000}"
	: "${BENCH_RYW_ACCOUNTS:=500}" "${BENCH_PASSWORD_ACCOUNTS:=100}" "${BENCH_CERT_ISSUES:=3}"
fi
CERT_ISSUES=${BENCH_CERT_ISSUES:-20}
PGBENCH_SECONDS=${BENCH_PGBENCH_SECONDS:-20}
APPEND_SECONDS=${BENCH_APPEND_SECONDS:-20}
BATCH_EVENTS=${BENCH_BATCH_EVENTS:-400000}
READ_EVENTS=${BENCH_READ_EVENTS:-500000}
READ_PASSES=${BENCH_READ_PASSES:-3}
DELIVERY_EVENTS=${BENCH_DELIVERY_EVENTS:-100000}
ACCOUNTS=${BENCH_ACCOUNTS:-20000}
RYW_ACCOUNTS=${BENCH_RYW_ACCOUNTS:-5000}
PASSWORD_ACCOUNTS=${BENCH_PASSWORD_ACCOUNTS:-500}
CLIENTS=${BENCH_CLIENTS:-16}
ROUNDS=${BENCH_ROUNDS:-2}

scripts/stack.sh up >/dev/null
# shellcheck source=/dev/null
. "$DEV/env"

mkdir -p "$DEV/bench"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$DEV/bench/$STAMP.txt
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mailplane-bench.XXXXXX")
BENCH_DB=mailplane_bench
LOAD_DB=mailplane_load
SERVER_PID=''

# One run at a time: the scratch databases have fixed names.
exec 9>"$DEV/bench/.lock"
if ! flock -n 9; then
	echo "bench: another bench.sh is running (lock $DEV/bench/.lock)" >&2
	exit 1
fi

# url_with_db URL DB: URL with its database replaced by DB.
url_with_db() {
	local re='^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$'
	[[ $1 =~ $re ]] || {
		echo "bench: cannot read database URL '$1'" >&2
		exit 1
	}
	printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$2" "${BASH_REMATCH[4]}"
}
PG_URL=${TEST_DATABASE_URL:-$DATABASE_URL}
ADMIN_URL=$(url_with_db "$PG_URL" postgres)
BENCH_URL=$(url_with_db "$PG_URL" "$BENCH_DB")
LOAD_URL=$(url_with_db "$PG_URL" "$LOAD_DB")

psql_admin() { psql "$ADMIN_URL" -XqtA -v ON_ERROR_STOP=1 "$@"; }
drop_db() { psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true; }
create_db() {
	drop_db "$1"
	psql_admin -c "CREATE DATABASE $1" >/dev/null
}

stop_server() {
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=''
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_server
	drop_db "$BENCH_DB"
	drop_db "$LOAD_DB"
	rm -rf "$TMP"
	[[ $rc == 0 ]] || echo "bench: failed (exit $rc); output so far in $OUT" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exec > >(tee "$OUT") 2>&1

# Summary rows: figure|measured|unit|baseline|ratio|target|verdict
SUMMARY=()
# row FIGURE VALUE UNIT BASELINE TARGET-KIND TARGET: add a summary row. TARGET-KIND is
# ratio-min (value/baseline >= target), value-min (value >= target), value-max (value <= target)
# or info.
row() {
	local fig=$1 val=$2 unit=$3 base=$4 kind=$5 target=${6:-} ratio='-' verdict='-' tshow='-'
	[[ -n $val ]] || val='?'
	if [[ $base != - && -n $base ]]; then
		ratio=$(awk -v v="$val" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", v / b; else print "-" }')
	fi
	case $kind in
	ratio-min)
		tshow="ratio >= $target"
		verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r != "-" && r + 0 >= t + 0) ? "PASS" : "FAIL" }')
		;;
	value-min)
		tshow=">= $target"
		verdict=$(awk -v v="$val" -v t="$target" 'BEGIN { print (v + 0 >= t + 0) ? "PASS" : "FAIL" }')
		;;
	value-max)
		tshow="<= $target"
		verdict=$(awk -v v="$val" -v t="$target" 'BEGIN { print (v + 0 <= t + 0) ? "PASS" : "FAIL" }')
		;;
	esac
	SUMMARY+=("$fig|$(num "$val")|$unit|$(num "$base")|$ratio|$tshow|$verdict")
}

# num X: X rounded for the table (whole numbers from 100 up, two decimals below).
num() {
	awk -v x="$1" 'BEGIN { if (x !~ /^[0-9]*\.[0-9]+$/) print x; else if (x + 0 >= 100) printf "%.0f\n", x; else printf "%.2f\n", x }'
}

# metric FILE UNIT [LINE-PATTERN]: the value before UNIT on the first benchmark line matching.
metric() {
	awk -v unit="$2" -v pat="${3:-^Benchmark}" '$0 ~ pat { for (i = 2; i <= NF; i++) if ($i == unit) { print $(i - 1); exit } }' "$1"
}

# result FILE KEY: KEY's value on the loaddriver's RESULT line.
result() {
	awk -v key="$2" '/^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) { print substr($i, length(key) + 2); exit } } }' "$1"
}

section() { printf '\n=== %s (load average %s) ===\n' "$*" "$(cut -d' ' -f1 /proc/loadavg)"; }

# pgbench_insert: figure (a), single-row INSERTs into bench_events from 8 clients; prints tx/s.
pgbench_insert() {
	local log=$TMP/pgbench.$1.txt
	psql "$BENCH_URL" -Xq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
drop table if exists bench_events;
create table bench_events (
  position bigserial primary key,
  stream_id text not null,
  stream_version int not null,
  event_type text not null,
  data jsonb not null,
  metadata jsonb not null,
  transaction_id xid8 not null default pg_current_xact_id(),
  recorded_at timestamptz not null default now(),
  unique (stream_id, stream_version));
create index on bench_events (transaction_id, position);
checkpoint;
SQL
	cat >"$TMP/insert.sql" <<'SQL'
\set s random(1, 1000000000000000)
insert into bench_events (stream_id, stream_version, event_type, data, metadata)
values ('account-' || :s || '-' || :client_id, 1, 'AccountCreated',
 '{"address":"user@example.test","display_name":"A User","quota":1073741824}',
 '{"actor":"admin@example.test","request_id":"r1","source_ip":"127.0.0.1"}');
SQL
	pgbench -n -c 8 -j 2 -T "$PGBENCH_SECONDS" -f "$TMP/insert.sql" "$BENCH_URL" >"$log" 2>&1 || {
		cat "$log" >&2
		return 1
	}
	grep -E '^(number of transactions actually processed|latency average|tps)' "$log" >&2
	awk '/^tps = / { print $3; exit }' "$log"
}

section "mailplane benchmarks $STAMP"
echo "commit   $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (working tree has changes)')"
echo "machine  $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres $(psql_admin -c 'SHOW server_version'), synchronous_commit=$(psql_admin -c 'SHOW synchronous_commit'), shared_buffers=$(psql_admin -c 'SHOW shared_buffers')"
go version
echo "parts    $parts${quick:+ (quick)}; output saved to $OUT"

section "build"
go build -o "$TMP/mailplane" ./cmd/mailplane
go build -o "$TMP/loaddriver" ./cmd/loaddriver
go test -c -o "$TMP/eventstore.test" ./eventstore
go test -c -o "$TMP/loaddriver.test" ./cmd/loaddriver
echo "built mailplane, loaddriver and the benchmark binaries in $TMP"
create_db "$BENCH_DB"

# Runs a compiled benchmark binary from its package directory; output to FILE and the terminal.
gobench() {
	local bin=$1 dir=$2 file=$3
	shift 3
	(cd "$dir" && "$bin" -test.run '^$' -test.benchmem=false -test.timeout 60m "$@") 2>&1 | tee "$file"
}

if want store; then
	section "(a) pgbench: single-row INSERT into bench_events, -n -c 8 -j 2 -T $PGBENCH_SECONDS"
	# The machine is noisy, so pgbench and (b) alternate, A B A B A, and (b) is compared with
	# the mean of the pgbench runs around it.
	PGBENCH_RUNS=("$(pgbench_insert store)")
	echo "pgbench: ${PGBENCH_RUNS[0]} tx/s"
	B_RUNS=()
	for ((r = 1; r <= ROUNDS; r++)); do
		section "(b) Append, one event per call, 8 goroutines, ${APPEND_SECONDS}s (round $r of $ROUNDS)"
		gobench "$TMP/eventstore.test" eventstore "$TMP/b.$r.txt" -test.bench '^BenchmarkAppendSingle$' -test.benchtime "${APPEND_SECONDS}s"
		B_RUNS+=("$(metric "$TMP/b.$r.txt" events/s)")
		section "(a) pgbench again, after round $r of (b)"
		PGBENCH_RUNS+=("$(pgbench_insert store)")
		echo "pgbench: ${PGBENCH_RUNS[$r]} tx/s"
	done
	mean() { printf '%s\n' "$@" | awk '{ s += $1; n++ } END { if (n) printf "%.1f", s / n }'; }
	PGBENCH_A=$(mean "${PGBENCH_RUNS[@]}")
	B=$(mean "${B_RUNS[@]}")
	echo "pgbench runs: ${PGBENCH_RUNS[*]} tx/s (mean $PGBENCH_A); Append runs: ${B_RUNS[*]} events/s (mean $B)"
	row "(a) pgbench single-row INSERT, 8 clients, mean of $((ROUNDS + 1))" "$PGBENCH_A" "tx/s" - info
	row "(b) Append 1 event, new stream (NoStream), mean of $ROUNDS" "$B" "events/s" "$PGBENCH_A" ratio-min 0.7

	section "(b) variants, $((APPEND_SECONDS / 2 + 1))s each"
	gobench "$TMP/eventstore.test" eventstore "$TMP/b2.txt" -test.bench '^BenchmarkAppendSingle(OwnStream|Autocommit)$' -test.benchtime "$((APPEND_SECONDS / 2 + 1))s"
	row "(b') Append 1 event, own stream (Exact)" "$(metric "$TMP/b2.txt" events/s OwnStream)" "events/s" "$PGBENCH_A" info
	row "what-if: Append 1 event without BEGIN/COMMIT" "$(metric "$TMP/b2.txt" events/s Autocommit)" "events/s" "$PGBENCH_A" info

	section "(c) Append, 100 events per call, 8 goroutines, $BATCH_EVENTS events"
	gobench "$TMP/eventstore.test" eventstore "$TMP/c.txt" -test.bench '^BenchmarkAppendBatch100$' -test.benchtime "${BATCH_EVENTS}x"
	row "(c) Append 100-event batches" "$(metric "$TMP/c.txt" events/s)" "events/s" - value-min 40000

	section "(d) ReadAll from position 0 vs psql \\copy, $READ_EVENTS events in $BENCH_DB"
	DATABASE_URL=$BENCH_URL "$TMP/mailplane" migrate >"$TMP/migrate.log" 2>&1 || {
		cat "$TMP/migrate.log"
		exit 1
	}
	export MAILPLANE_BENCH_READ_URL=$BENCH_URL MAILPLANE_BENCH_READ_EVENTS=$READ_EVENTS MAILPLANE_BENCH_DELIVERY_EVENTS=$DELIVERY_EVENTS
	gobench "$TMP/eventstore.test" eventstore "$TMP/d.txt" -test.bench '^BenchmarkReadAll$' -test.benchtime "${READ_PASSES}x"
	ROWS=$(psql "$BENCH_URL" -XqtA -c 'SELECT count(*) FROM events')
	COPY_SQL='\copy (select * from events order by transaction_id, position) to /dev/null'
	psql "$BENCH_URL" -Xq -c "$COPY_SQL" >/dev/null # warm-up, as the Go benchmark had its seeding
	COPY_TIMES=()
	for _ in 1 2 3; do
		t0=$(date +%s.%N)
		psql "$BENCH_URL" -Xq -c "$COPY_SQL" >/dev/null
		t1=$(date +%s.%N)
		COPY_TIMES+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	done
	COPY_S=$(printf '%s\n' "${COPY_TIMES[@]}" | sort -n | sed -n 2p)
	COPY_RATE=$(awk -v n="$ROWS" -v s="$COPY_S" 'BEGIN { printf "%.0f", n / s }')
	echo "psql \\copy of $ROWS rows: ${COPY_TIMES[*]} s (median $COPY_S s) = $COPY_RATE events/s"
	row "(d) raw psql \\copy of $ROWS rows" "$COPY_RATE" "events/s" - info
	row "(d) ReadAll, pages of 1,000" "$(metric "$TMP/d.txt" events/s 'ReadAll/page=1000')" "events/s" "$COPY_RATE" ratio-min 0.5
	row "(d) ReadAll, pages of 5,000" "$(metric "$TMP/d.txt" events/s 'ReadAll/page=5000')" "events/s" "$COPY_RATE" ratio-min 0.5

	section "projection delivery: runner + no-op projection over $DELIVERY_EVENTS events"
	gobench "$TMP/eventstore.test" eventstore "$TMP/e.txt" -test.bench '^BenchmarkProjectionDelivery$' -test.benchtime 1x
	row "projection delivery, batch 100" "$(metric "$TMP/e.txt" events/s batch=100)" "events/s" - value-min 2000
	row "projection delivery, batch 1000" "$(metric "$TMP/e.txt" events/s batch=1000)" "events/s" - value-min 2000
	unset MAILPLANE_BENCH_READ_URL MAILPLANE_BENCH_READ_EVENTS MAILPLANE_BENCH_DELIVERY_EVENTS
fi

if want api; then
	section "API: mailplane serve on a fresh database ($LOAD_DB)"
	create_db "$LOAD_DB"
	ADMIN_EMAIL=admin@bench.test
	ADMIN_PASSWORD=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	DATABASE_URL=$LOAD_URL "$TMP/mailplane" admin bootstrap --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" \
		>"$TMP/bootstrap.log" 2>&1 || {
		cat "$TMP/bootstrap.log"
		exit 1
	}
	DATABASE_URL=$LOAD_URL "$TMP/mailplane" serve --addr 127.0.0.1:0 >"$TMP/serve.log" 2>&1 &
	SERVER_PID=$!
	API_URL=''
	for _ in $(seq 1 300); do
		kill -0 "$SERVER_PID" 2>/dev/null || {
			cat "$TMP/serve.log"
			echo "bench: mailplane serve exited" >&2
			exit 1
		}
		API_URL=$(grep -o 'url=http://[0-9.:]*' "$TMP/serve.log" | head -n 1 | cut -d= -f2 || true)
		[[ -n $API_URL ]] && curl -fsS -o /dev/null "$API_URL/healthz" 2>/dev/null && break
		API_URL=''
		sleep 0.1
	done
	[[ -n $API_URL ]] || {
		cat "$TMP/serve.log"
		echo "bench: mailplane serve did not answer" >&2
		exit 1
	}
	echo "mailplane serve (pid $SERVER_PID) at $API_URL; admin $ADMIN_EMAIL"

	section "(a) pgbench again, right before the HTTP runs"
	if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'") ]]; then
		create_db "$BENCH_DB"
	fi
	PGBENCH_API=$(pgbench_insert api)
	echo "pgbench: $PGBENCH_API tx/s"
	row "(a) pgbench again, before the HTTP runs" "$PGBENCH_API" "tx/s" - info

	# projection_lag: events the server's slowest projection has not handled yet.
	projection_lag() {
		psql "$LOAD_URL" -XqtA -c "SELECT coalesce(max((SELECT count(*) FROM events e
			WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position))), 0) FROM projection_checkpoints c"
	}
	# catch_up LABEL: report the projections' backlog after a mix and wait until it is handled,
	# so that the next mix does not share the machine with it.
	catch_up() {
		local lag t0 t1
		lag=$(projection_lag)
		t0=$(date +%s.%N)
		for _ in $(seq 1 3000); do
			[[ $(projection_lag) == 0 ]] && break
			sleep 0.1
		done
		t1=$(date +%s.%N)
		echo "projection backlog after $1: $lag events, handled in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
		row "projection backlog right after $1" "$lag" "events" - info
	}

	driver() {
		"$TMP/loaddriver" -url "$API_URL" -email "$ADMIN_EMAIL" -password "$ADMIN_PASSWORD" -c "$CLIENTS" "$@"
	}
	for mode in hash none; do
		section "mix (a): $ACCOUNTS accounts, -mode $mode, $CLIENTS clients"
		# -progress prints each second's creations: a rate that sinks as the tables grow is the
		# server's doing, a dip that recovers is usually the rest of the machine.
		driver -domain "$mode.load.test" -n "$ACCOUNTS" -mode "$mode" -progress | tee "$TMP/api-$mode.txt"
		f=$TMP/api-$mode.txt
		row "HTTP create, -mode $mode: accounts/s" "$(result "$f" rate)" "accounts/s" "$PGBENCH_API" value-min 2000
		row "HTTP create, -mode $mode: p50" "$(result "$f" p50_ms)" "ms" - info
		row "HTTP create, -mode $mode: p99" "$(result "$f" p99_ms)" "ms" - value-max 25
		row "HTTP create, -mode $mode: errors" "$(result "$f" errors)" "" - value-max 0
		catch_up "-mode $mode"
	done

	section "read-your-writes: $RYW_ACCOUNTS accounts, -mode none -ryw, $CLIENTS clients"
	driver -domain ryw.load.test -n "$RYW_ACCOUNTS" -mode none -ryw | tee "$TMP/api-ryw.txt"
	f=$TMP/api-ryw.txt
	row "read-your-writes GET: p50" "$(result "$f" ryw_p50_ms)" "ms" - info
	row "read-your-writes GET: p99" "$(result "$f" ryw_p99_ms)" "ms" - value-max 50
	row "read-your-writes GET: missed" "$(result "$f" ryw_missed)" "" - value-max 0
	catch_up "-ryw"

	section "mix (b): bare argon2id (m=19456 t=2 p=1) on $(nproc) goroutines"
	gobench "$TMP/loaddriver.test" cmd/loaddriver "$TMP/argon2.txt" -test.bench '^BenchmarkArgon2id$' -test.benchtime 300x
	ARGON=$(metric "$TMP/argon2.txt" hashes/s)
	row "(b) raw argon2id hashes, $(nproc) goroutines" "$ARGON" "hashes/s" - info

	section "mix (b): $PASSWORD_ACCOUNTS accounts, -mode password (the server hashes), $CLIENTS clients"
	driver -domain password.load.test -n "$PASSWORD_ACCOUNTS" -mode password -watch-pid "$SERVER_PID" | tee "$TMP/api-password.txt"
	f=$TMP/api-password.txt
	row "HTTP create, -mode password: accounts/s" "$(result "$f" rate)" "accounts/s" "$ARGON" ratio-min 0.8
	row "HTTP create, -mode password: p99" "$(result "$f" p99_ms)" "ms" - info
	row "server RSS during -mode password: min" "$(result "$f" rss_min_mib)" "MiB" - info
	row "server RSS during -mode password: max" "$(result "$f" rss_max_mib)" "MiB" - info
	row "server RSS during -mode password: at the end" "$(result "$f" rss_end_mib)" "MiB" - info
	row "HTTP create, -mode password: errors" "$(result "$f" errors)" "" - value-max 0

	stop_server
	if grep -q 'level=ERROR' "$TMP/serve.log"; then
		echo
		echo "the server logged errors (first 10):"
		grep 'level=ERROR' "$TMP/serve.log" | head -n 10
	fi
fi

if want certs; then
	section "certificates: ACME issuance, mailplane end to end vs lego's bare Obtain (Pebble, PEBBLE_VA_NOSLEEP=1), ${CERT_ISSUES}x each"
	go test -c -o "$TMP/api.test" ./api
	gobench "$TMP/api.test" api "$TMP/acme.txt" -test.bench '^BenchmarkACMEIssuance$' -test.benchtime "${CERT_ISSUES}x"
	for v in retry-after=1 pebble-as-is; do
		row "ACME issuance ($v): mailplane end to end, ratio to bare lego Obtain" \
			"$(metric "$TMP/acme.txt" s/issuance "$v/mailplane")" "s" "$(metric "$TMP/acme.txt" s/issuance "$v/lego")" info
	done
fi

section "summary $STAMP, $(nproc) CPUs"
{
	echo "figure|measured|unit|baseline|ratio|target|verdict"
	printf '%s\n' "${SUMMARY[@]}"
} | column -t -s '|'
echo
echo "full output: $OUT"
