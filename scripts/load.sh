#!/usr/bin/env bash
# load.sh: what `go tool task load` runs (issue 13, "Sustained load"; docs/benchmarks.md).
#
#   1. pgbench's single-row INSERT (baselines.md, 8 clients) in this run: the baseline.
#   2. mailplane serve (with the LDAP projection, into a directory base of its own) on a fresh
#      database; account creation at full rate (loaddriver -mode hash, 16 clients) with the
#      projections' backlog sampled every second: the rate against pgbench and whether the
#      Postgres projection keeps up (backlog of the first and last third).
#   3. The mixed load (loaddriver -mode sustained: creates, modifies, aliases, list members,
#      usage reports, reads, GAL searches) at fixed rates, LOAD_STEP_SECONDS each, going up
#      LOAD_RATES until a step misses p99 <= 50 ms (or has errors or missed requests); then
#      LOAD_SECONDS at the highest rate that held, sampling lag and RSS every LOAD_SAMPLE; if that
#      misses p99 <= 50 ms, again one held step lower (LOAD_LONG_TRIES long runs at most, 3).
#   4. The same (pgbench, steps, LOAD_SECONDS) with two serve processes on the database, the
#      requests spread over both.
#   5. mailplane verify --read-models on the database.
# A report (markdown table, ratios to this run's pgbench) goes to .dev/load/<stamp>.md, the whole
# output to .dev/load/<stamp>.txt.
#
# Sizes: LOAD_SECONDS (300), LOAD_STEP_SECONDS (30), LOAD_RATES ("150 250 400 600 850"),
# LOAD_RATES2 (two processes; default: the rate chosen for one, then 1.25× and 1.5× it),
# LOAD_SAMPLE (5s), LOAD_CREATE_N (20000), LOAD_CLIENTS (16: account creation), LOAD_WORKERS (64:
# requests in flight at most in the mixed load), LOAD_PGBENCH_SECONDS (20), LOAD_P99_MS (50),
# LOAD_BEFORE (a git ref: the account-creation figure is also measured with that commit's
# mailplane, right before this tree's, on a database of its own: before/after in one run),
# LOAD_PROFILE (0: seconds of CPU profile to take from the first serve during the long run,
# written next to the report), LOAD_CREATE_PROFILE (0: the same, from 1 s into the account
# creations; keep it shorter than they last), LOAD_TWO (1: 0 skips step 4), LOAD_SETTLE_SECONDS (30: the pause
# between the creations and the first step), LOAD_DATABASE_URL (the stack's test cluster: another
# cluster's URL, for example one started with pg_stat_statements to see where its time goes). A short run:
#   LOAD_SECONDS=60 LOAD_STEP_SECONDS=10 LOAD_CREATE_N=5000 go tool task load
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
export MAILPLANE_DEV_DIR=$DEV
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

SECONDS_LONG=${LOAD_SECONDS:-300}
STEP_SECONDS=${LOAD_STEP_SECONDS:-30}
RATES=${LOAD_RATES:-150 250 400 600 850}
SAMPLE=${LOAD_SAMPLE:-5s}
CREATE_N=${LOAD_CREATE_N:-20000}
CLIENTS=${LOAD_CLIENTS:-16}
WORKERS=${LOAD_WORKERS:-64}
PGBENCH_SECONDS=${LOAD_PGBENCH_SECONDS:-20}
P99_MS=${LOAD_P99_MS:-50}
PROFILE=${LOAD_PROFILE:-0}
CREATE_PROFILE=${LOAD_CREATE_PROFILE:-0}
TWO=${LOAD_TWO:-1}
SETTLE=${LOAD_SETTLE_SECONDS:-30}
LONG_TRIES=${LOAD_LONG_TRIES:-3}

scripts/stack.sh up >/dev/null
# shellcheck source=/dev/null
. "$DEV/env"

mkdir -p "$DEV/load"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$DEV/load/$STAMP.txt
REPORT=$DEV/load/$STAMP.md
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mailplane-load.XXXXXX")
ID=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
DB=mailplane_sload_$ID
BENCH_DB=mailplane_sload_${ID}_pgbench
BASE="ou=load-$ID,$MAILPLANE_LDAP_BASE_DN"
DB_BEFORE=${DB}_before
PIDS=()
URLS=()

# shellcheck source=scripts/lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"
PG_URL=${LOAD_DATABASE_URL:-${TEST_DATABASE_URL:-$DATABASE_URL}}
ADMIN_URL=$(url_with_db "$PG_URL" postgres)
DB_URL=$(url_with_db "$PG_URL" "$DB")
BENCH_URL=$(url_with_db "$PG_URL" "$BENCH_DB")
psql_admin() { psql "$ADMIN_URL" -XqtA -v ON_ERROR_STOP=1 "$@"; }
ldap_admin() { "$@" -x -H "$MAILPLANE_LDAP_URL" -D "$MAILPLANE_LDAP_BIND_DN" -w "$MAILPLANE_LDAP_PASSWORD"; }

stop_servers() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	PIDS=()
	URLS=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_servers
	if [[ -z ${LOAD_KEEP:-} ]]; then
		psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
		ldap_admin ldapdelete -r "$BASE" >/dev/null 2>&1 || true
		for i in 1 2 3 4; do
			psql_admin -c "DROP DATABASE IF EXISTS ${DB_BEFORE}_$i WITH (FORCE)" >/dev/null 2>&1 || true
			ldap_admin ldapdelete -r "ou=load-$ID-before-$i,$MAILPLANE_LDAP_BASE_DN" >/dev/null 2>&1 || true
		done
	else
		echo "load: kept database $DB and directory base $BASE (LOAD_KEEP)"
	fi
	psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$TMP"
	[[ $rc == 0 ]] || echo "load: failed (exit $rc); output so far in $OUT" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exec > >(tee "$OUT") 2>&1

section() { printf '\n=== %s (load average %s) ===\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

section "mailplane sustained load $STAMP"
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+dirty')"
MACHINE="$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "commit   $COMMIT"
echo "machine  $MACHINE, load average $(cut -d' ' -f1-3 /proc/loadavg)"
AUTOVACUUM=$(psql_admin -c 'SHOW autovacuum')
echo "postgres $(psql_admin -c 'SHOW server_version'), synchronous_commit=$(psql_admin -c 'SHOW synchronous_commit'), autovacuum=$AUTOVACUUM, max_wal_size=$(psql_admin -c 'SHOW max_wal_size')"
if [[ $AUTOVACUUM != on ]]; then
	# Found on this machine's own cluster: without it the read models' tables are never analysed
	# as they grow from empty and never vacuumed, and a 5-minute run degrades where 30 s did not.
	echo "load: WARNING: autovacuum is off on this cluster; the long runs measure its absence (LOAD_DATABASE_URL: a cluster of its own)" >&2
fi
echo "sizes    LOAD_SECONDS=$SECONDS_LONG LOAD_STEP_SECONDS=$STEP_SECONDS LOAD_RATES='$RATES' LOAD_CREATE_N=$CREATE_N LOAD_SAMPLE=$SAMPLE"

section "build"
go build -o "$TMP/mailplane" ./cmd/mailplane
go build -o "$TMP/loaddriver" ./cmd/loaddriver
BEFORE=${LOAD_BEFORE:-}
n=0
for ref in $BEFORE; do
	n=$((n + 1))
	# Built once per commit and kept: a tree of its own compiles from scratch.
	bin=$DEV/load/mailplane-$(git rev-parse --short "$ref")
	if [[ ! -x $bin ]]; then
		mkdir -p "$TMP/before-src-$n"
		git archive "$ref" | tar -x -C "$TMP/before-src-$n"
		(cd "$TMP/before-src-$n" && go build -o "$bin" ./cmd/mailplane)
	fi
	cp "$bin" "$TMP/mailplane-before-$n"
	echo "before binary $n: $ref ($(git rev-parse --short "$ref")), $bin"
done

# load_pgbench NAME: the pgbench baseline in a new database of its own; prints tx/s.
load_pgbench() {
	psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
	psql_admin -c "CREATE DATABASE $BENCH_DB" >/dev/null
	pgbench_insert "$BENCH_URL" "$PGBENCH_SECONDS" "$TMP" "$1"
}

SERVE_ENV=(DATABASE_URL="$DB_URL" MAILPLANE_LDAP_BASE_DN="$BASE" MAILPLANE_POLICY_ADDR=off MAILPLANE_ACME_HTTP_ADDR=)

# start_serve LOG: one more mailplane serve on the database (free ports; pprof on loopback).
start_serve() {
	local log=$1 pid url='' pprof=(--pprof 127.0.0.1:0)
	[[ -z ${SERVE_BIN:-} ]] || pprof=() # an older binary may not have the flag
	env "${SERVE_ENV[@]}" "${SERVE_BIN:-$TMP/mailplane}" serve --addr 127.0.0.1:0 "${pprof[@]}" >"$log" 2>&1 &
	pid=$!
	PIDS+=("$pid") # stopped on exit even if it never answers
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || {
			cat "$log"
			echo "load: mailplane serve exited" >&2
			exit 1
		}
		url=$(grep -o 'serving the API" url=http://[0-9.:]*' "$log" | head -n 1 | sed 's/.*url=//' || true)
		[[ -n $url ]] && curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && break
		url=''
		sleep 0.1
	done
	[[ -n $url ]] || {
		cat "$log"
		echo "load: mailplane serve did not answer" >&2
		exit 1
	}
	URLS+=("$url")
	echo "mailplane serve pid $pid at $url, pprof $(grep -o 'serving pprof" url=[^ ]*' "$log" | head -n 1 | sed 's/.*url=//')"
}

# caught_up: wait (up to 10 minutes) until every projection's lag is 0 events; prints seconds.
caught_up() {
	local t0 t1 lag
	t0=$(date +%s.%N)
	for _ in $(seq 1 6000); do
		lag=$(curl -fsS "${URLS[0]}/metrics" | awk '/^mailplane_projection_lag_events\{/ { s += $NF } END { print s + 0 }')
		[[ $lag == 0 ]] && break
		sleep 0.1
	done
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

joined_urls() { local IFS=,; echo "${URLS[*]}"; }
joined_pids() { local IFS=,; echo "${PIDS[*]}"; }

sustained() { # FILE RATE SECONDS
	"$TMP/loaddriver" -mode sustained -url "$(joined_urls)" -email "$ADMIN_EMAIL" -password "$ADMIN_PASSWORD" \
		-domain "$DOMAIN" -c "$WORKERS" -rate "$2" -duration "${3}s" -sample "$SAMPLE" \
		-watch-pids "$(joined_pids)" -timeout 30s | tee "$1"
}

# step_ok FILE: the step held (p99 within the bound, no errors, nothing missed).
step_ok() {
	awk -v p="$(result "$1" p99_ms)" -v e="$(result "$1" errors)" -v m="$(result "$1" missed)" -v t="$P99_MS" \
		'BEGIN { exit !(p != "" && p + 0 <= t + 0 && e + 0 == 0 && m + 0 == 0) }'
}

ROWS=()
row() { ROWS+=("| $* |"); }

# phase LABEL RATES: the rate steps, then the long run at the highest that held; if the long
# run does not hold, it is run again one held step lower (and so on down), since a step is
# short and a 5-minute run meets what a step does not (a checkpoint, grown tables); sets CHOSEN.
phase() {
	local label=$1 rates=$2 r f held='' all_held=''
	for r in $rates; do
		f=$TMP/step-$label-$r.txt
		section "$label: step at $r requests/s for ${STEP_SECONDS}s"
		DOMAIN=s$r-$label.load.test sustained "$f" "$r" "$STEP_SECONDS"
		echo "projections caught up $(caught_up) s after the step"
		if step_ok "$f"; then
			held=$r
			all_held="$r $all_held"
			echo "step $r/s: held (p99 $(result "$f" p99_ms) ms, errors $(result "$f" errors), missed $(result "$f" missed))"
		else
			echo "step $r/s: did not hold (p99 $(result "$f" p99_ms) ms, errors $(result "$f" errors), missed $(result "$f" missed))"
			break
		fi
	done
	if [[ -z $held ]]; then
		held=${rates%% *}
		echo "no step held; the long run uses the lowest rate, $held/s"
	fi
	[[ -n $all_held ]] || all_held=$held
	LONG_TRIED=()
	local tries=0
	for CHOSEN in $all_held; do
		tries=$((tries + 1))
		[[ $tries -le $LONG_TRIES ]] || break
		f=$TMP/long-$label-$CHOSEN.txt
		section "$label: $CHOSEN requests/s for ${SECONDS_LONG}s"
		local prof=''
		if [[ $PROFILE != 0 ]]; then
			local pp
			pp=$(grep -o 'serving pprof" url=[^ ]*' "$TMP/serve-1.log" | head -n 1 | sed 's/.*url=//')
			(sleep 20 && curl -fsS -o "$DEV/load/$STAMP-$label-$CHOSEN.cpu.pprof" "${pp}profile?seconds=$PROFILE" &&
				echo "cpu profile of serve 1 written to $DEV/load/$STAMP-$label-$CHOSEN.cpu.pprof") &
			prof=$!
		fi
		DOMAIN=long-$CHOSEN-$label.load.test sustained "$f" "$CHOSEN" "$SECONDS_LONG"
		# Only the profile's subshell: a bare wait would also wait for the tee of the output.
		[[ -z $prof ]] || wait "$prof" || true
		echo "projections caught up $(caught_up) s after the long run"
		LONG=$f
		if step_ok "$f"; then
			echo "$label: ${SECONDS_LONG}s at $CHOSEN/s held (p99 $(result "$f" p99_ms) ms)"
			break
		fi
		LONG_TRIED+=("$CHOSEN/s: p99 $(result "$f" p99_ms) ms, errors $(result "$f" errors), missed $(result "$f" missed)")
		echo "$label: ${SECONDS_LONG}s at $CHOSEN/s did not hold (${LONG_TRIED[-1]}); one held step lower next"
	done
}

report_phase() { # LABEL FILE PGBENCH TRIED...
	local label=$1 f=$2 pg=$3 k t
	shift 3
	for t in "$@"; do
		row "$label: ${SECONDS_LONG}s at a higher rate did not hold | $t | | FAIL; the next held step was tried"
	done
	local what="rate held (p99 ≤ $P99_MS ms)"
	step_ok "$f" || what="no rate held (p99 ≤ $P99_MS ms); the last tried"
	row "$label: $what, requests/s | $(result "$f" rate) | $(ratio "$(result "$f" rate)" "$pg") | $(result "$f" target_rate) asked; errors $(result "$f" errors), missed $(result "$f" missed)"
	row "$label: all kinds p50 / p99 ms | $(result "$f" p50_ms) / $(result "$f" p99_ms) | | $(awk -v p="$(result "$f" p99_ms)" -v t="$P99_MS" 'BEGIN { print (p + 0 <= t + 0) ? "PASS" : "FAIL" }') (≤ $P99_MS)"
	for k in create modify alias list_members usage read gal; do
		row "$label: $k p50 / p99 ms (n) | $(result "$f" "p50_ms_$k") / $(result "$f" "p99_ms_$k") ($(result "$f" "n_$k")) | |"
	done
	for k in postgres_admin postgres_gal ldap; do
		row "$label: $k lag p99 events / seconds (max) | $(result "$f" "lag_ev_p99_$k") / $(result "$f" "lag_s_p99_$k") ($(result "$f" "lag_ev_max_$k") / $(result "$f" "lag_s_max_$k")) | | backlog first/last third $(result "$f" "backlog_first_$k") / $(result "$f" "backlog_last_$k")"
	done
	row "$label: serve RSS MiB first / last / max | $(result "$f" rss_first_mib) / $(result "$f" rss_last_mib) / $(result "$f" rss_max_mib) | |"
}

section "pgbench baseline: single-row INSERT, -n -c 8 -j 2 -T $PGBENCH_SECONDS"
PGBENCH1=$(load_pgbench one)
echo "pgbench: $PGBENCH1 tx/s"

# prepare DB BASE BIN: a fresh database (migrated, an admin) and a directory base for it.
prepare() {
	local db=$1 base=$2 bin=$3 ou
	ou=${base%%,*}
	ou=${ou#ou=}
	psql_admin -c "CREATE DATABASE $db" >/dev/null
	ldap_admin ldapadd >/dev/null <<LDIF
dn: $base
objectClass: organizationalUnit
ou: $ou

dn: ou=domains,$base
objectClass: organizationalUnit
ou: domains

dn: ou=accounts,$base
objectClass: organizationalUnit
ou: accounts

dn: ou=lists,$base
objectClass: organizationalUnit
ou: lists

dn: ou=resources,$base
objectClass: organizationalUnit
ou: resources

dn: ou=projections,$base
objectClass: organizationalUnit
ou: projections
LDIF
	env "${SERVE_ENV[@]}" DATABASE_URL="$(url_with_db "$PG_URL" "$db")" MAILPLANE_LDAP_BASE_DN="$base" "$bin" migrate >"$TMP/migrate.log" 2>&1 || {
		cat "$TMP/migrate.log"
		exit 1
	}
	env "${SERVE_ENV[@]}" DATABASE_URL="$(url_with_db "$PG_URL" "$db")" MAILPLANE_LDAP_BASE_DN="$base" "$bin" admin bootstrap \
		--email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" >"$TMP/bootstrap.log" 2>&1 || {
		cat "$TMP/bootstrap.log"
		exit 1
	}
}

# cpu_ticks PID...: user + system CPU of the processes, in clock ticks (1/100 s).
cpu_ticks() {
	local p t=0
	for p in "$@"; do
		[[ -r /proc/$p/stat ]] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
db_backends() { psql_admin -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"; }
slapd_pids() { pgrep -f "slapd -d none -f $DEV/ldap" || true; }

# create_figure FILE LOG DB: account creation at full rate against a serve just started (log
# LOG) on database DB. Besides the driver's RESULT line it prints a CPU line: the CPU the serve
# process, the PostgreSQL backends of DB (the serve's pool: the database is the run's own), the
# stack's slapd processes (primary and replica) and the driver spent on the creations, in ms
# per account: where the two CPUs go, since the rate is CPU-bound.
create_figure() {
	local serve0 pg0 ldap0 ticks n
	for _ in $(seq 1 300); do
		grep -q 'ldap projection running' "$2" && break
		sleep 0.1
	done
	serve0=$(cpu_ticks "${PIDS[0]}")
	# shellcheck disable=SC2046 # one pid a word
	pg0=$(cpu_ticks $(db_backends "$3"))
	# shellcheck disable=SC2046
	ldap0=$(cpu_ticks $(slapd_pids))
	local prof=''
	if [[ $CREATE_PROFILE != 0 && -z ${SERVE_BIN:-} ]]; then
		local pp
		pp=$(grep -o 'serving pprof" url=[^ ]*' "$2" | head -n 1 | sed 's/.*url=//')
		(sleep 1 && curl -fsS -o "$DEV/load/$STAMP-create.cpu.pprof" "${pp}profile?seconds=$CREATE_PROFILE" &&
			echo "cpu profile of serve during the creations written to $DEV/load/$STAMP-create.cpu.pprof") &
		prof=$!
	fi
	"$TMP/loaddriver" -url "${URLS[0]}" -email "$ADMIN_EMAIL" -password "$ADMIN_PASSWORD" -c "$CLIENTS" \
		-domain create.load.test -n "$CREATE_N" -mode hash -progress \
		-metrics-url "${URLS[0]}/metrics" -sample 1s -watch-pids "${PIDS[0]}" | tee "$1"
	[[ -z $prof ]] || wait "$prof" || true
	echo "projections caught up $(caught_up) s after the creations"
	# The backends are read at the end: the pool opens more under the load, and a backend that
	# ended during the run (none should) is missed.
	# shellcheck disable=SC2046
	ticks="$(($(cpu_ticks "${PIDS[0]}") - serve0)) $(($(cpu_ticks $(db_backends "$3")) - pg0)) $(($(cpu_ticks $(slapd_pids)) - ldap0))"
	n=$CREATE_N
	awk -v t="$ticks" -v n="$n" -v d="$(grep -o 'elapsed_s=[0-9.]*' "$1" | cut -d= -f2)" 'BEGIN {
		split(t, a, " "); total = a[1] + a[2] + a[3]
		printf "CPU serve_ms_per_account=%.3f postgres_ms_per_account=%.3f slapd_ms_per_account=%.3f sum_ms_per_account=%.3f cpu_seconds=%.1f wall_seconds=%s\n",
			a[1] * 10 / n, a[2] * 10 / n, a[3] * 10 / n, total * 10 / n, total / 100, d }' | tee -a "$1"
}

ADMIN_EMAIL=admin@load.test
ADMIN_PASSWORD=load-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
n=0
for ref in $BEFORE; do
	n=$((n + 1))
	section "before $n ($ref): account creation at full rate: $CREATE_N accounts, -mode hash, $CLIENTS clients"
	prepare "${DB_BEFORE}_$n" "ou=load-$ID-before-$n,$MAILPLANE_LDAP_BASE_DN" "$TMP/mailplane-before-$n"
	SAVED_ENV=("${SERVE_ENV[@]}")
	SERVE_ENV+=(DATABASE_URL="$(url_with_db "$PG_URL" "${DB_BEFORE}_$n")" MAILPLANE_LDAP_BASE_DN="ou=load-$ID-before-$n,$MAILPLANE_LDAP_BASE_DN")
	SERVE_BIN=$TMP/mailplane-before-$n start_serve "$TMP/serve-before-$n.log"
	create_figure "$TMP/create-before-$n.txt" "$TMP/serve-before-$n.log" "${DB_BEFORE}_$n"
	stop_servers
	SERVE_ENV=("${SAVED_ENV[@]}")
	psql_admin -c "DROP DATABASE IF EXISTS ${DB_BEFORE}_$n WITH (FORCE)" >/dev/null 2>&1 || true
	ldap_admin ldapdelete -r "ou=load-$ID-before-$n,$MAILPLANE_LDAP_BASE_DN" >/dev/null 2>&1 || true
done

section "setup: database $DB, directory base $BASE"
prepare "$DB" "$BASE" "$TMP/mailplane"
start_serve "$TMP/serve-1.log"
section "account creation at full rate: $CREATE_N accounts, -mode hash, $CLIENTS clients, backlog every second"
create_figure "$TMP/create.txt" "$TMP/serve-1.log" "$DB"
C=$TMP/create.txt
CREATE_RATE=$(result "$C" rate)

# What the creations leave running (autovacuum of the new rows, the replica catching up) would
# count against the first step.
section "settling for ${SETTLE}s after the creations"
sleep "$SETTLE"
phase one "$RATES"
ONE=$LONG
ONE_RATE=$CHOSEN
ONE_TRIED=("${LONG_TRIED[@]}")

if [[ $TWO == 1 ]]; then
	section "pgbench baseline again, before two processes"
	PGBENCH2=$(load_pgbench two)
	echo "pgbench: $PGBENCH2 tx/s"
	start_serve "$TMP/serve-2.log"
	RATES2=${LOAD_RATES2:-"$ONE_RATE $((ONE_RATE * 5 / 4)) $((ONE_RATE * 3 / 2))"}
	phase two "$RATES2"
	TWO_FILE=$LONG
	TWO_TRIED=("${LONG_TRIED[@]}")
fi

stop_servers
section "mailplane verify --read-models"
VERIFY=PASS
env "${SERVE_ENV[@]}" "$TMP/mailplane" verify --read-models >"$TMP/verify.txt" 2>&1 || VERIFY=FAIL
tail -n 5 "$TMP/verify.txt"
echo "verify --read-models: $VERIFY"
ERRORS=$(cat "$TMP"/serve-*.log | grep -c 'level=ERROR' || true)
if [[ $ERRORS != 0 ]]; then
	echo "the servers logged $ERRORS errors (first 10):"
	grep -h 'level=ERROR' "$TMP"/serve-*.log | cut -c1-400 | head -n 10
fi

row "pgbench single-row INSERT, 8 clients (baseline) | $PGBENCH1 tx/s | 1 |"
create_rows() { # LABEL FILE
	local label=$1 f=$2 k first last flat v rate
	rate=$(result "$f" rate)
	row "$label HTTP account creation, -mode hash, $CLIENTS clients, $CREATE_N accounts | $rate accounts/s | $(ratio "$rate" "$PGBENCH1") | $(awk -v r="$(ratio "$rate" "$PGBENCH1")" 'BEGIN { print (r + 0 >= 0.25) ? "PASS" : "FAIL" }') (≥ 0.25)"
	row "$label … p50 / p99 ms | $(result "$f" p50_ms) / $(result "$f" p99_ms) | |"
	row "$label … CPU per account, ms: serve / PostgreSQL backends / slapd (sum) | $(result "$f" serve_ms_per_account CPU) / $(result "$f" postgres_ms_per_account CPU) / $(result "$f" slapd_ms_per_account CPU) ($(result "$f" sum_ms_per_account CPU)) | | $(result "$f" cpu_seconds CPU) CPU s in $(result "$f" wall_seconds CPU) s"
	for k in postgres_admin postgres_gal ldap; do
		first=$(result "$f" "backlog_first_$k")
		last=$(result "$f" "backlog_last_$k")
		flat=$(awk -v a="$first" -v b="$last" 'BEGIN { print (b + 0 <= a + 100) ? "PASS" : "FAIL" }')
		v="(info)"
		[[ $k == postgres_admin || $k == postgres_gal ]] && v="$flat (flat: last ≤ first + 100)"
		row "$label … $k backlog mean first / last third, at the end (max) | $first / $last, $(result "$f" "backlog_end_$k") ($(result "$f" "lag_ev_max_$k")) events | | $v"
	done
}
n=0
for ref in $BEFORE; do
	n=$((n + 1))
	create_rows "before $n ($ref $(git rev-parse --short "$ref")):" "$TMP/create-before-$n.txt"
done
create_rows "this tree:" "$C"
report_phase "one serve" "$ONE" "$PGBENCH1" "${ONE_TRIED[@]}"
if [[ $TWO == 1 ]]; then
	row "pgbench again, before two processes | $PGBENCH2 tx/s | 1 |"
	report_phase "two serves" "$TWO_FILE" "$PGBENCH2" "${TWO_TRIED[@]}"
fi
row "verify --read-models after the run | $VERIFY | |"
row "server log errors | $ERRORS | |"

{
	echo "Run \`$STAMP\`, commit $COMMIT, $MACHINE, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Command: LOAD_SECONDS=$SECONDS_LONG LOAD_STEP_SECONDS=$STEP_SECONDS LOAD_RATES='$RATES' LOAD_CREATE_N=$CREATE_N go tool task load"
	echo "Load averages seen at each section: $(grep -o 'load average [0-9., ]*' "$OUT" | awk '{ print $3 }' | tr -d , | tr '\n' ' ')"
	echo
	echo "| figure | measured | ratio to pgbench | target / note |"
	echo "|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
} >"$REPORT"
section "report ($REPORT)"
cat "$REPORT"
