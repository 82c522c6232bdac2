# Sourced by scripts/bench.sh and scripts/load.sh: what both need, among it the PostgreSQL
# baseline both measure, so that their figures stay comparable with docs/benchmarks.md's.

# url_with_db URL DB: URL with its database replaced by DB.
url_with_db() {
	local re='^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$' me=${0##*/}
	[[ $1 =~ $re ]] || {
		echo "${me%.sh}: cannot read database URL '$1'" >&2
		exit 1
	}
	printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$2" "${BASH_REMATCH[4]}"
}

# result FILE KEY [TAG]: KEY's value on the loaddriver's RESULT line (or on the line tagged TAG).
result() {
	awk -v key="$2" -v tag="${3:-RESULT}" '$1 == tag { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) { print substr($i, length(key) + 2); exit } } }' "$1"
}

# pgbench_insert URL SECONDS DIR NAME: single-row INSERTs into a new bench_events table (the
# events table's shape) of URL's database from 8 clients for SECONDS; pgbench's output is kept in
# DIR/pgbench.NAME.txt, its summary goes to stderr and the tx/s to stdout.
pgbench_insert() {
	local url=$1 seconds=$2 dir=$3 log=$3/pgbench.$4.txt
	psql "$url" -Xq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
set client_min_messages = warning;
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
	cat >"$dir/insert.sql" <<'SQL'
\set s random(1, 1000000000000000)
insert into bench_events (stream_id, stream_version, event_type, data, metadata)
values ('account-' || :s || '-' || :client_id, 1, 'AccountCreated',
 '{"address":"user@example.test","display_name":"A User","quota":1073741824}',
 '{"actor":"admin@example.test","request_id":"r1","source_ip":"127.0.0.1"}');
SQL
	pgbench -n -c 8 -j 2 -T "$seconds" -f "$dir/insert.sql" "$url" >"$log" 2>&1 || {
		cat "$log" >&2
		return 1
	}
	grep -E '^(number of transactions actually processed|latency average|tps)' "$log" >&2
	awk '/^tps = / { print $3; exit }' "$log"
}
