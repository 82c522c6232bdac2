#!/usr/bin/env bash
# stack.sh: mailplane's development and test stack.
#
#   scripts/stack.sh up       start what is not running (PostgreSQL, slapd, Pebble, SMTP sink);
#                             with MAILPLANE_LDAP_REPLICA=1 also a syncrepl consumer of slapd
#   scripts/stack.sh down     stop what up started; data stays
#   scripts/stack.sh status   one line per component; exit 1 if any is down
#   scripts/stack.sh env      print the environment file (export lines)
#   scripts/stack.sh stop slapd|pebble|smtpsink
#   scripts/stack.sh start slapd|pebble|smtpsink
#                             stop one component (an outage: go tool task chaos -- -mode outage),
#                             or start it again on its ports, with its data
#   scripts/stack.sh ldap-load FILE
#                             replace slapd's database with the LDIF FILE (mailplane rebuild
#                             ldap --offline --load 'scripts/stack.sh ldap-load'): slapadd -q
#                             into a fresh folder while slapd runs, then stop, swap, start; a
#                             running consumer is restarted (it refills from the new database)
#
# Everything lives under $MAILPLANE_DEV_DIR (default: .dev in the repository):
#   env          export lines for mailplane and the tests      ports   the chosen ports
#   log/NAME.log each component's log (the previous run's in NAME.log.1)
#   pg/          the private PostgreSQL cluster, when DATABASE_URL does not answer
#   ldap/        slapd.conf, the mdb database, the passwords of the admin (rootdn) and
#                of the service DNs (NAME-password: postfix, dovecot, replicator)
#   ldap-replica/ the syncrepl consumer's slapd.conf and database
#   pebble/      the CA and certificate Pebble serves with, its config
#   smtpsink/    .eml copies of the mail the sink received
#   master.key   the 32-byte master key
# Every service listens on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
LOG=$DEV/log
PORTS=$DEV/ports
ENV_FILE=$DEV/env

DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/mailplane?sslmode=disable'
LDAP_SUFFIX='dc=mailplane,dc=test'
LDAP_ROOTDN="cn=admin,$LDAP_SUFFIX"
LDAP_SCHEMA_DIR=$ROOT/projections/ldap/schema
LDAP_SYSTEM_SCHEMA_DIR=${LDAP_SYSTEM_SCHEMA_DIR:-/etc/ldap/schema}
LDAP_MODULE_PATH=${LDAP_MODULE_PATH:-/usr/lib/ldap}

PG_DIR=$DEV/pg
LDAP_DIR=$DEV/ldap
LDAP_REPLICA_DIR=$DEV/ldap-replica
PEBBLE_DIR=$DEV/pebble
SINK_DIR=$DEV/smtpsink

# ---------------------------------------------------------------------------
# output

say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: warning: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

# fail_log NAME MESSAGE: print MESSAGE and the end of NAME's log, then exit 1.
fail_log() {
	local log=$LOG/$1.log
	printf 'stack: error: %s\n' "$2" >&2
	if [[ -s $log ]]; then
		printf -- '--- last lines of %s ---\n' "$log" >&2
		tail -n 40 "$log" >&2
		printf -- '---\n' >&2
	fi
	exit 1
}

# rotate_log NAME: keep the previous run's log as NAME.log.1 and start a new one.
rotate_log() {
	local log=$LOG/$1.log
	if [[ -s $log ]]; then mv -f "$log" "$log.1"; fi
	: >"$log"
}

# ---------------------------------------------------------------------------
# packages

APT_UPDATED=

# apt_install PKG...: install Debian packages as root, or say how to.
apt_install() {
	local cmd="apt-get install -y -qq $*"
	if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "missing packages: $*
  install them as root, then run this again:
    sudo sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive $cmd'"
	fi
	mkdir -p "$LOG"
	say "installing $* (apt-get; log in $LOG/apt.log)"
	# Package scripts must not start system services: Debian's slapd would listen
	# on every interface. policy-rc.d answering 101 forbids it during the install.
	local policy=/usr/sbin/policy-rc.d created='' rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# put here by mailplane scripts/stack.sh during apt-get install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created=1
	fi
	if [[ " $* " == *" slapd "* ]]; then
		# No default directory of its own; ours is configured by this script.
		echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
	fi
	if [[ " $* " == *" postfix "* ]]; then
		# Only postmap is used (tests, docs/postfix): no main.cf, no mail system. Without
		# an answer the install would ask which mail system to configure.
		echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	fi
	{
		if [[ -z $APT_UPDATED ]]; then
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && APT_UPDATED=1
		fi && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
	} >>"$LOG/apt.log" 2>&1 || rc=$?
	if [[ -n $created ]]; then rm -f "$policy"; fi
	((rc == 0)) || fail_log apt "apt-get install $* failed (exit $rc)"
	# The packages enable their units even though nothing started them; on a systemd
	# host they would start at the next boot. Left to the administrator: the stack does
	# not change the system's configuration.
	if [[ -d /run/systemd/system && " $* " =~ \ (slapd|postfix|dovecot-core)\  ]]; then
		warn "the packages enabled their system services (slapd, postfix, dovecot), which the stack does not use;
  to keep them from starting at boot: systemctl disable slapd postfix dovecot"
	fi
}

# ensure_cmds CMD:PACKAGE...: install the packages whose command is missing. A CMD
# that starts with / is a file that must exist (a module, say).
ensure_cmds() {
	local item what missing=()
	for item in "$@"; do
		what=${item%%:*}
		if [[ $what == /* ]]; then
			[[ -e $what ]] || missing+=("${item#*:}")
		else
			command -v "$what" >/dev/null 2>&1 || missing+=("${item#*:}")
		fi
	done
	((${#missing[@]})) || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	apt_install "${missing[@]}"
}

# Postfix's and Dovecot's LDAP drivers, for the tests of docs/postfix and docs/dovecot.
# Neither daemon is started, by apt or by the stack: the tests run postmap, and a
# private Dovecot each.
POSTFIX_LDAP_MODULE=/usr/lib/postfix/postfix-ldap.so
DOVECOT_LDAP_MODULE=/usr/lib/dovecot/modules/auth/libauthdb_ldap.so

ensure_tools() {
	ensure_cmds openssl:openssl curl:curl ss:iproute2 setsid:util-linux flock:util-linux \
		psql:postgresql-client pg_isready:postgresql-client \
		slapd:slapd slaptest:slapd slappasswd:slapd slapindex:slapd \
		ldapsearch:ldap-utils ldapadd:ldap-utils ldapwhoami:ldap-utils \
		pebble:pebble pebble-challtestsrv:pebble \
		postmap:postfix "$POSTFIX_LDAP_MODULE:postfix-ldap" \
		dovecot:dovecot-core doveadm:dovecot-core "$DOVECOT_LDAP_MODULE:dovecot-ldap" \
		/usr/bin/chromium:chromium
	command -v go >/dev/null 2>&1 || die "go is not on PATH (expected /usr/local/go/bin/go)"
}

# axe-core, the accessibility checker the panel's browser tests inject (web/). Fetched once
# from the npm registry with curl (no Node needed) and checked against the registry's sha512
# integrity of this version; kept under $DEV/cache.
AXE_VERSION=4.14.1
AXE_SHA512=FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_JS=$DEV/cache/axe-core-$AXE_VERSION/axe.min.js

axe_fetch() {
	[[ -s $AXE_JS ]] && return 0
	local dir tgz sum
	dir=$(dirname "$AXE_JS")
	mkdir -p "$dir"
	tgz=$(mktemp "$DEV/cache/axe.XXXXXX")
	say "fetching axe-core $AXE_VERSION from registry.npmjs.org"
	curl -fsSL --retry 3 -o "$tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz" ||
		{ rm -f "$tgz"; die "could not fetch axe-core $AXE_VERSION"; }
	sum=$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)
	if [[ $sum != "$AXE_SHA512" ]]; then
		rm -f "$tgz"
		die "axe-core $AXE_VERSION: checksum mismatch (got sha512-$sum)"
	fi
	tar -xzf "$tgz" -C "$dir" --strip-components=1 package/axe.min.js package/LICENSE
	rm -f "$tgz"
}

# ---------------------------------------------------------------------------
# ports and processes

# port_get NAME: the port remembered for NAME, or nothing.
port_get() {
	[[ -f $PORTS ]] || return 0
	sed -n "s/^$1=//p" "$PORTS" | tail -n 1
}

port_set() {
	local tmp
	tmp=$(mktemp "$DEV/.ports.XXXXXX")
	{
		grep -v "^$1=" "$PORTS" 2>/dev/null || true
		echo "$1=$2"
	} >"$tmp"
	mv -f "$tmp" "$PORTS"
}

# port_in_use PORT: something listens on PORT (TCP or UDP, any address).
port_in_use() {
	[[ -n $(ss -Htuln "sport = :$1" 2>/dev/null) ]]
}

# tcp_answers PORT: a TCP connection to 127.0.0.1:PORT succeeds.
tcp_answers() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Stacks of other checkouts on this machine (git worktrees, each with its own .dev) remember
# their ports in their own files; a port nobody listens on yet (the HTTP-01 port Pebble dials,
# which a test opens only while it runs) would look free to each of them. So every stack also
# notes its ports here, and none picks a port another stack's directory has noted.
PORT_REGISTRY=${MAILPLANE_PORT_REGISTRY:-${TMPDIR:-/tmp}/mailplane-stack-ports}

# port_claimed PORT: another stack's directory, still there, has noted PORT.
port_claimed() {
	local dev name port
	[[ -f $PORT_REGISTRY ]] || return 1
	while read -r dev name port; do
		[[ $dev != "$DEV" && $port == "$1" && -d $dev ]] && return 0
	done <"$PORT_REGISTRY"
	return 1
}

# ports_register: note every port this stack remembers (its running components' too).
ports_register() {
	local line
	[[ -f $PORTS ]] || return 0
	while IFS= read -r line; do
		[[ $line == *=* ]] && port_register "${line%%=*}" "${line#*=}"
	done <"$PORTS"
}

# port_register NAME PORT: note NAME's PORT for this stack's directory.
port_register() {
	local tmp
	tmp=$(mktemp "$PORT_REGISTRY.XXXXXX")
	{
		awk -v dev="$DEV" -v n="$1" '!($1 == dev && $2 == n)' "$PORT_REGISTRY" 2>/dev/null || true
		echo "$DEV $1 $2"
	} >"$tmp"
	mv -f "$tmp" "$PORT_REGISTRY"
}

# pick_port NAME FIRST: set REPLY to NAME's remembered port if it is free and no other stack
# has noted it, else to the first such port from FIRST that no other component remembers.
pick_port() {
	local name=$1 first=$2 p
	p=$(port_get "$name")
	if [[ -n $p ]] && ! port_in_use "$p" && ! port_claimed "$p"; then
		port_register "$name" "$p"
		REPLY=$p
		return 0
	fi
	[[ -z $p ]] || say "port $p ($name) is taken by another program or stack; choosing another"
	for ((p = first; p < first + 500; p++)); do
		port_in_use "$p" && continue
		port_claimed "$p" && continue
		grep -q "=$p\$" "$PORTS" 2>/dev/null && continue
		port_set "$name" "$p"
		port_register "$name" "$p"
		REPLY=$p
		return 0
	done
	die "no free port in $first-$((first + 499)) for $name"
}

# proc_running PID: the process exists and is not a zombie.
proc_running() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[[ $state != Z ]]
}

# pid_alive PIDFILE [PATTERN]: the pid in PIDFILE runs, and its command line
# contains PATTERN (so a recycled pid is not taken for ours).
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(head -n 1 "$1")
	pid=${pid//[^0-9]/}
	proc_running "$pid" || return 1
	[[ -z ${2:-} ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# start_bg NAME PIDFILE COMMAND...: run COMMAND in its own session (so a
# Ctrl-C in the terminal that ran up does not reach it), logging to NAME.log.
start_bg() {
	local name=$1 pidfile=$2
	shift 2
	rotate_log "$name"
	# 9>&-: the daemon must not inherit (and so keep holding) the stack's lock.
	setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 9>&- &
	echo "$!" >"$pidfile"
}

# stop_pid NAME PIDFILE PATTERN: stop the process (TERM, then KILL after 10 s).
stop_pid() {
	local name=$1 pidfile=$2 pattern=$3 pid i
	if ! pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(head -n 1 "$pidfile")
	pid=${pid//[^0-9]/}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		proc_running "$pid" || break
		sleep 0.1
	done
	if proc_running "$pid"; then
		warn "$name (pid $pid) ignored SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	say "$name stopped"
}

# wait_for NAME PIDFILE SECONDS COMMAND...: poll COMMAND until it succeeds;
# fail with NAME's log if the process in PIDFILE dies or time runs out. (Only
# the pid is checked: just after start_bg its command line is still bash's.)
wait_for() {
	local name=$1 pidfile=$2 secs=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if ! pid_alive "$pidfile"; then
			sleep 0.2 # let the last words reach the log
			fail_log "$name" "$name exited while starting"
		fi
		((SECONDS < deadline)) || fail_log "$name" "$name did not answer within ${secs}s"
		sleep 0.2
	done
}

# sed_quote STRING: STRING made safe as a sed s||| replacement.
sed_quote() {
	printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# new_secret FILE: write a random password (no newline) into FILE once.
new_secret() {
	[[ -s $1 ]] && return 0
	(
		umask 077
		openssl rand -hex 16 | tr -d '\n' >"$1"
	)
}

# ---------------------------------------------------------------------------
# PostgreSQL

PG_URL=''      # the URL mailplane uses
PG_TEST_URL='' # the URL the tests use
PG_MODE=''     # external or private

# pg_url_with_db URL DB: set REPLY to URL with its database replaced by DB.
pg_url_with_db() {
	local re='^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$'
	[[ $1 =~ $re ]] || die "cannot read DATABASE_URL '$1' (expected postgres://user@host:port/db?params)"
	REPLY="${BASH_REMATCH[1]}/$2${BASH_REMATCH[4]}"
}

# pg_url_db URL: set REPLY to URL's database name (mailplane when it has none).
pg_url_db() {
	local re='^postgres(ql)?://[^/?]*/([^?]+)'
	if [[ $1 =~ $re ]]; then REPLY=${BASH_REMATCH[2]}; else REPLY=mailplane; fi
	[[ $REPLY =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "database name '$REPLY' in DATABASE_URL: use letters, digits and _"
}

# pg_ready URL: the server behind URL accepts connections (waits out a start-up).
pg_ready() {
	local i rc
	for ((i = 0; i < 50; i++)); do
		rc=0
		pg_isready -q -t 3 -d "$1" || rc=$?
		case $rc in
		0) return 0 ;;
		1) sleep 0.2 ;; # rejecting connections: starting up or shutting down
		*) return 1 ;;
		esac
	done
	return 1
}

# pg_ensure_db URL: create URL's database if it does not exist.
pg_ensure_db() {
	local url=$1 db admin exists can
	pg_url_db "$url"
	db=$REPLY
	pg_url_with_db "$url" postgres
	admin=$REPLY
	psql "$admin" -XqtA -c 'SELECT 1' >/dev/null 2>&1 || {
		pg_url_with_db "$url" template1
		admin=$REPLY
	}
	exists=$(psql "$admin" -XqtA -v ON_ERROR_STOP=1 -c "SELECT 1 FROM pg_database WHERE datname = '$db'" 2>&1) ||
		die "cannot query $admin: $exists"
	if [[ $exists != 1 ]]; then
		psql "$admin" -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null 2>&1 ||
			[[ $(psql "$admin" -XqtA -c "SELECT 1 FROM pg_database WHERE datname = '$db'") == 1 ]] ||
			die "cannot create database $db through $admin"
		say "postgres: created database $db"
	fi
	can=$(psql "$admin" -XqtA -c 'SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user')
	[[ $can == t ]] || warn "the role in $url may not CREATE DATABASE; tests that make their own databases will fail"
}

pg_bindir() {
	local d
	d=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[[ -n $d && -x $d/initdb ]] && REPLY=$d
}

# as_pg COMMAND...: run as the postgres user when root (initdb and pg_ctl refuse root).
as_pg() {
	if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_private_running() {
	[[ -f $PG_DIR/data/PG_VERSION ]] && pg_bindir && as_pg "$REPLY/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

pg_private_start() {
	local bindir data=$PG_DIR/data sock=$PG_DIR/run port
	if ! pg_bindir || { [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; }; then
		apt_install postgresql
		pg_bindir || die "postgresql is installed but no /usr/lib/postgresql/*/bin/initdb was found"
	fi
	bindir=$REPLY
	mkdir -p "$PG_DIR" "$sock"
	if [[ $EUID -eq 0 ]]; then
		chown postgres: "$PG_DIR" "$sock"
		runuser -u postgres -- test -w "$PG_DIR" ||
			die "the postgres user cannot reach $PG_DIR (a folder above it is not world-searchable, e.g. under /root); set MAILPLANE_DEV_DIR to a folder it can reach"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		say "postgres: initdb $data"
		as_pg "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >>"$LOG/postgres.log" 2>&1 ||
			fail_log postgres "initdb failed"
	fi
	pick_port pg 15432
	port=$REPLY
	rotate_log postgres
	[[ $EUID -ne 0 ]] || chown postgres: "$LOG/postgres.log"
	say "postgres: starting a private cluster on 127.0.0.1:$port"
	as_pg "$bindir/pg_ctl" -D "$data" -l "$LOG/postgres.log" -w -t 60 \
		-o "-p $port -k '$sock' -c listen_addresses=127.0.0.1" start >/dev/null 9>&- ||
		fail_log postgres "the private PostgreSQL cluster did not start"
	REPLY=$port
}

pg_up() {
	local url=${DATABASE_URL:-$DEFAULT_DATABASE_URL} db port
	pg_url_with_db "$url" x # validates the URL
	if pg_ready "$url"; then
		PG_MODE=external
		PG_URL=$url
		if pg_private_running; then
			warn "postgres: DATABASE_URL answers, so the private cluster in $PG_DIR is running but unused"
		fi
	else
		pg_url_db "$url"
		db=$REPLY
		if pg_private_running; then
			port=$(port_get pg)
			say "postgres: nothing answers at $url; reusing the private cluster on 127.0.0.1:$port"
		else
			say "postgres: nothing answers at $url"
			pg_private_start
			port=$REPLY
		fi
		PG_MODE=private
		PG_URL="postgres://postgres@127.0.0.1:$port/$db?sslmode=disable"
		pg_ready "$PG_URL" || fail_log postgres "the private cluster does not answer at $PG_URL"
	fi
	pg_ensure_db "$PG_URL"
	pg_url_db "$PG_URL"
	pg_url_with_db "$PG_URL" "${REPLY}_test"
	PG_TEST_URL=$REPLY
	pg_ensure_db "$PG_TEST_URL"
	say "postgres: $PG_MODE, $PG_URL"
}

pg_down() {
	if pg_private_running; then
		as_pg "$REPLY/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
		say "postgres (private cluster) stopped"
	fi
}

# ---------------------------------------------------------------------------
# OpenLDAP slapd: the provider the projection writes (.dev/ldap), and, when asked for
# (MAILPLANE_LDAP_REPLICA=1), a syncrepl consumer that readers can use (.dev/ldap-replica).

LDAP_REPLICA='' # set when the consumer runs

ldap_url() { echo "ldap://127.0.0.1:$(port_get ldap)/"; }
ldap_replica_url() { echo "ldap://127.0.0.1:$(port_get ldap_replica)/"; }

# ldap_service_dn NAME: the DN a reader (postfix, dovecot) or the replicator binds as.
ldap_service_dn() { echo "cn=$1,ou=services,$LDAP_SUFFIX"; }

ldap_answers() {
	ldapsearch -x -H "$1" -o nettimeout=2 -LLL -s base -b '' dn >/dev/null 2>&1
}

# ldap_as_admin URL CMD ARGS...: run an OpenLDAP client as the rootdn.
ldap_as_admin() {
	local url=$1 cmd=$2
	shift 2
	"$cmd" -x -H "$url" -o nettimeout=5 -D "$LDAP_ROOTDN" -y "$LDAP_DIR/admin-password" "$@"
}

# ldap_config_sum ROLE DIR PORT: a digest of everything a rendered slapd.conf depends
# on. (The rendered file itself differs at every render: the rootpw hash is salted.)
ldap_config_sum() {
	{
		printf '%s\n' "$@" "$LDAP_SUFFIX" "$LDAP_SYSTEM_SCHEMA_DIR" "$LDAP_MODULE_PATH" "$(ldap_url)"
		cat "$LDAP_SCHEMA_DIR"/* "$LDAP_DIR/admin-password" "$LDAP_DIR/replicator-password"
	} | sha256sum | cut -d' ' -f1
}

# ldap_render_conf ROLE DIR: DIR/slapd.conf for ROLE (provider or replica).
ldap_render_conf() {
	local role=$1 dir=$2 other hash tmpl=$LDAP_SCHEMA_DIR/slapd.conf.tmpl
	[[ -f $tmpl ]] || die "missing $tmpl"
	case $role in
	provider) other=replica ;;
	replica) other=provider ;;
	esac
	hash=$(slappasswd -h '{SSHA}' -T "$LDAP_DIR/admin-password")
	(
		umask 077
		sed -e "/^#$other: /d" -e "s/^#$role: //" \
			-e "s|@SYSTEM_SCHEMA_DIR@|$(sed_quote "$LDAP_SYSTEM_SCHEMA_DIR")|g" \
			-e "s|@SCHEMA_DIR@|$(sed_quote "$LDAP_SCHEMA_DIR")|g" \
			-e "s|@MODULE_PATH@|$(sed_quote "$LDAP_MODULE_PATH")|g" \
			-e "s|@DIR@|$(sed_quote "$dir")|g" \
			-e "s|@SUFFIX@|$(sed_quote "$LDAP_SUFFIX")|g" \
			-e "s|@ROOTPW@|$(sed_quote "$hash")|g" \
			-e "s|@PROVIDER_URL@|$(sed_quote "$(ldap_url)")|g" \
			-e "s|@REPLICATOR_PW@|$(sed_quote "$(cat "$LDAP_DIR/replicator-password")")|g" \
			"$tmpl" >"$dir/slapd.conf"
	)
}

# ldap_instance_running DIR PORTNAME: the slapd of DIR answers on its port and takes
# the admin password on file (one started with another password is restarted).
ldap_instance_running() {
	local url
	[[ -n $(port_get "$2") ]] || return 1
	url="ldap://127.0.0.1:$(port_get "$2")/"
	pid_alive "$1/slapd.pid" "$1/slapd.conf" && ldap_answers "$url" &&
		ldap_as_admin "$url" ldapwhoami >/dev/null 2>&1
}

# ldap_current ROLE DIR PORTNAME: it runs, with the configuration this checkout renders.
ldap_current() {
	ldap_instance_running "$2" "$3" &&
		[[ $(cat "$2/config.sum" 2>/dev/null) == "$(ldap_config_sum "$1" "$2" "$(port_get "$3")")" ]]
}

ldap_running() { ldap_instance_running "$LDAP_DIR" ldap; }
ldap_replica_running() { ldap_instance_running "$LDAP_REPLICA_DIR" ldap_replica; }

# ldap_start NAME ROLE DIR PORTNAME FIRSTPORT: (re)start the slapd of DIR with a
# freshly rendered configuration.
ldap_start() {
	local name=$1 role=$2 dir=$3 portname=$4 first=$5 port url sum
	mkdir -p "$dir/db"
	if pid_alive "$dir/slapd.pid" "$dir/slapd.conf"; then
		say "$name: configuration, schema or password changed; restarting"
	fi
	stop_pid "$name" "$dir/slapd.pid" "$dir/slapd.conf" >/dev/null
	pick_port "$portname" "$first"
	port=$REPLY
	url="ldap://127.0.0.1:$port/"
	ldap_render_conf "$role" "$dir"
	rotate_log "$name"
	slaptest -u -f "$dir/slapd.conf" >>"$LOG/$name.log" 2>&1 ||
		fail_log "$name" "slaptest rejected $dir/slapd.conf (template: $LDAP_SCHEMA_DIR/slapd.conf.tmpl)"
	if [[ $role == replica ]]; then
		# A consumer is disposable: it starts empty and syncrepl refills it, so it can
		# never keep what the provider no longer has (a wiped .dev/ldap, say).
		rm -rf "${dir:?}/db" && mkdir -p "$dir/db"
	else
		# An index added to an existing database needs slapindex: when the index lines or
		# the schema (its comments aside) changed.
		sum=$(cat <(grep -h '^index' "$LDAP_SCHEMA_DIR/slapd.conf.tmpl") <(grep -hv '^#' "$LDAP_SCHEMA_DIR"/*.schema) |
			sha256sum | cut -d' ' -f1)
		if [[ -f $dir/db/data.mdb && $sum != "$(cat "$dir/schema.sum" 2>/dev/null)" ]]; then
			say "$name: indexes or schema changed; reindexing"
			slapindex -f "$dir/slapd.conf" >>"$LOG/$name.log" 2>&1 || fail_log "$name" "slapindex failed"
		fi
		echo "$sum" >"$dir/schema.sum"
	fi
	say "$name: starting on $url"
	start_bg "$name" "$dir/slapd.pid" "$ROOT/scripts/supervise.sh" slapd -d none -f "$dir/slapd.conf" -h "$url"
	wait_for "$name" "$dir/slapd.pid" 30 ldap_answers "$url"
	ldap_config_sum "$role" "$dir" "$port" >"$dir/config.sum"
}

# ldap_ensure ENTRY_DN LDIF: add the entry unless it exists.
ldap_ensure() {
	local url rc=0
	url=$(ldap_url)
	ldap_as_admin "$url" ldapsearch -LLL -s base -b "$1" dn >/dev/null 2>&1 || rc=$?
	case $rc in
	0) return 0 ;;
	32) ;; # no such object
	*) fail_log slapd "ldapsearch for $1 failed (exit $rc)" ;;
	esac
	printf '%s\n' "$2" | ldap_as_admin "$url" ldapadd >>"$LOG/slapd.log" 2>&1 ||
		fail_log slapd "could not add $1"
	say "slapd: added $1"
}

# ldap_service NAME DESCRIPTION: the service's entry exists and takes the password in
# .dev/ldap/NAME-password (generated once).
ldap_service() {
	local name=$1 dn url pw
	dn=$(ldap_service_dn "$name")
	url=$(ldap_url)
	pw=$LDAP_DIR/$name-password
	new_secret "$pw"
	ldap_ensure "$dn" "dn: $dn
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: $name
description: $2
userPassword: $(slappasswd -h '{SSHA}' -T "$pw")"
	if ! ldapwhoami -x -H "$url" -o nettimeout=5 -D "$dn" -y "$pw" >/dev/null 2>&1; then
		printf 'dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n' \
			"$dn" "$(slappasswd -h '{SSHA}' -T "$pw")" | ldap_as_admin "$url" ldapmodify >>"$LOG/slapd.log" 2>&1 ||
			fail_log slapd "could not set the password of $dn"
		say "slapd: set the password of $dn"
	fi
}

ldap_up() {
	mkdir -p "$LDAP_DIR/db"
	new_secret "$LDAP_DIR/admin-password"
	# The consumer's configuration holds it, so it exists before the first render.
	new_secret "$LDAP_DIR/replicator-password"
	if ldap_current provider "$LDAP_DIR" ldap; then
		say "slapd: running at $(ldap_url) (pid $(head -n 1 "$LDAP_DIR/slapd.pid"))"
	else
		ldap_start slapd provider "$LDAP_DIR" ldap 13890
	fi
	ldap_ensure "$LDAP_SUFFIX" "dn: $LDAP_SUFFIX
objectClass: dcObject
objectClass: organization
dc: mailplane
o: mailplane"
	local ou
	for ou in domains accounts lists resources projections services; do
		ldap_ensure "ou=$ou,$LDAP_SUFFIX" "dn: ou=$ou,$LDAP_SUFFIX
objectClass: organizationalUnit
ou: $ou"
	done
	# Older stacks made an ou=aliases nothing ever wrote to (aliases are mailLocalAddress
	# values of their account). Removed only while empty.
	if ldap_as_admin "$(ldap_url)" ldapdelete "ou=aliases,$LDAP_SUFFIX" >/dev/null 2>&1; then
		say "slapd: removed the unused ou=aliases,$LDAP_SUFFIX"
	fi
	ldap_service postfix "Postfix: reads ou=domains, accounts, lists and resources"
	ldap_service dovecot "Dovecot: reads ou=domains, accounts, lists and resources"
	ldap_service replicator "syncrepl consumers: read everything"
}

# ldap_context_csn URL: the contextCSN values of the suffix, sorted, on one line.
ldap_context_csn() {
	ldap_as_admin "$1" ldapsearch -LLL -s base -b "$LDAP_SUFFIX" contextCSN 2>/dev/null |
		sed -n 's/^contextCSN: //p' | sort | tr '\n' ' '
}

# ldap_replica_synced: the consumer has caught up with the provider.
ldap_replica_synced() {
	local p
	p=$(ldap_context_csn "$(ldap_url)")
	[[ -n $p && $p == "$(ldap_context_csn "$(ldap_replica_url)")" ]]
}

ldap_replica_up() {
	if ldap_current replica "$LDAP_REPLICA_DIR" ldap_replica; then
		say "slapd-replica: running at $(ldap_replica_url) (pid $(head -n 1 "$LDAP_REPLICA_DIR/slapd.pid"))"
		return 0
	fi
	ldap_start slapd-replica replica "$LDAP_REPLICA_DIR" ldap_replica 13990
	local deadline=$((SECONDS + 30))
	until ldap_replica_synced; do
		if ((SECONDS >= deadline)); then
			warn "slapd-replica: not in sync with the provider after 30 s (log: $LOG/slapd-replica.log)"
			return 0
		fi
		sleep 0.05
	done
	say "slapd-replica: in sync with $(ldap_url)"
}

ldap_down() {
	stop_pid slapd-replica "$LDAP_REPLICA_DIR/slapd.pid" "$LDAP_REPLICA_DIR/slapd.conf"
	stop_pid slapd "$LDAP_DIR/slapd.pid" "$LDAP_DIR/slapd.conf"
}

# ---------------------------------------------------------------------------
# Pebble (ACME) and pebble-challtestsrv (its DNS)

# pebble_certs: a CA and a leaf for 127.0.0.1/localhost, made once and renewed
# when the leaf has less than 30 days left. Clients trust ca.pem.
pebble_certs() {
	local d=$PEBBLE_DIR
	if [[ -s $d/ca.pem && -s $d/cert.pem ]] && openssl x509 -checkend 2592000 -noout -in "$d/cert.pem" >/dev/null 2>&1 &&
		openssl verify -CAfile "$d/ca.pem" "$d/cert.pem" >/dev/null 2>&1; then
		return 0
	fi
	say "pebble: generating a CA and a certificate for 127.0.0.1 in $d"
	(
		umask 077
		if ! openssl x509 -checkend 31536000 -noout -in "$d/ca.pem" >/dev/null 2>&1; then
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
				-keyout "$d/ca.key" -out "$d/ca.pem" -subj '/CN=mailplane dev CA' \
				-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
		fi
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/cert.key" -out "$d/cert.csr" -subj '/CN=localhost'
		printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'extendedKeyUsage=serverAuth' \
			'keyUsage=critical,digitalSignature' 'basicConstraints=critical,CA:FALSE' >"$d/cert.ext"
		openssl x509 -req -in "$d/cert.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
			-days 825 -extfile "$d/cert.ext" -out "$d/cert.pem"
		rm -f "$d/cert.csr" "$d/cert.ext"
		chmod 644 "$d/ca.pem" "$d/cert.pem"
	) >"$LOG/pebble-certs.log" 2>&1 || fail_log pebble-certs "openssl could not make Pebble's certificates"
}

pebble_dir_url() { echo "https://127.0.0.1:$(port_get pebble)/dir"; }

pebble_answers() {
	curl -fsS --max-time 2 --cacert "$PEBBLE_DIR/ca.pem" "$(pebble_dir_url)" >/dev/null 2>&1
}

challtestsrv_pattern() { echo "-management 127.0.0.1:$(port_get challtestsrv)"; }

# PEBBLE_ENV is the environment Pebble runs with. NOSLEEP: validate at once (no 0-4 s nap).
# AUTHZREUSE=0: validate nearly every order (a reused authorization would let a failure test
# pass). Not every one: Pebble 2.4.0 makes a new authorization when rand.Intn(100) > percent, so
# it still reuses a valid one 1 time in 100; a test that expects a host validated before to fail
# now must leave no valid authorization to reuse (TestACMERenewal drops the ACME account).
# ALTERNATE_ROOTS=1: a second chain to a second root, which lets tests ask for an alternate chain
# by its root's name (lego's PreferredChain, what "chain": "short" uses); the default chain
# stays the first root's.
PEBBLE_ENV=(PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_ALTERNATE_ROOTS=1)

# pebble_env_current: the running Pebble has PEBBLE_ENV (an older one is restarted by up).
pebble_env_current() {
	local pid v
	pid=$(head -n 1 "$PEBBLE_DIR/pebble.pid" 2>/dev/null) || return 1
	pid=${pid//[^0-9]/}
	for v in "${PEBBLE_ENV[@]}"; do
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "$v" || return 1
	done
}

pebble_running() {
	[[ -n $(port_get pebble) && -n $(port_get challtestsrv) && -n $(port_get acme_http) ]] &&
		pid_alive "$PEBBLE_DIR/challtestsrv.pid" "$(challtestsrv_pattern)" &&
		tcp_answers "$(port_get challtestsrv)" &&
		pid_alive "$PEBBLE_DIR/pebble.pid" "$PEBBLE_DIR/pebble.json" &&
		pebble_env_current &&
		! port_claimed "$(port_get acme_http)" && ! port_claimed "$(port_get acme_tls)" &&
		pebble_answers
}

pebble_up() {
	local acme mgmt http tls cmgmt dns
	mkdir -p "$PEBBLE_DIR"
	pebble_certs
	if pebble_running; then
		say "pebble: running at $(pebble_dir_url) (pid $(head -n 1 "$PEBBLE_DIR/pebble.pid"))"
		return 0
	fi
	pebble_down >/dev/null
	pick_port challtestsrv 18055
	cmgmt=$REPLY
	pick_port challtestsrv_dns 18053
	dns=$REPLY
	pick_port pebble 14000
	acme=$REPLY
	pick_port pebble_mgmt 15000
	mgmt=$REPLY
	pick_port acme_http 15002
	http=$REPLY
	pick_port acme_tls 15001
	tls=$REPLY

	say "pebble: starting challtestsrv (management 127.0.0.1:$cmgmt, DNS 127.0.0.1:$dns)"
	# -defaultIPv6 "": pebble asks AAAA first and would dial [::1], where nothing listens.
	start_bg challtestsrv "$PEBBLE_DIR/challtestsrv.pid" pebble-challtestsrv \
		-management "127.0.0.1:$cmgmt" -dns01 "127.0.0.1:$dns" \
		-http01 '' -https01 '' -tlsalpn01 '' -defaultIPv6 ''
	wait_for challtestsrv "$PEBBLE_DIR/challtestsrv.pid" 20 tcp_answers "$cmgmt"

	cat >"$PEBBLE_DIR/pebble.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$acme",
    "managementListenAddress": "127.0.0.1:$mgmt",
    "certificate": "$PEBBLE_DIR/cert.pem",
    "privateKey": "$PEBBLE_DIR/cert.key",
    "httpPort": $http,
    "tlsPort": $tls,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "certificateValidityPeriod": 7776000
  }
}
EOF
	say "pebble: starting on https://127.0.0.1:$acme/dir (HTTP-01 port $http, TLS-ALPN-01 port $tls)"
	start_bg pebble "$PEBBLE_DIR/pebble.pid" env "${PEBBLE_ENV[@]}" \
		pebble -config "$PEBBLE_DIR/pebble.json" -dnsserver "127.0.0.1:$dns"
	wait_for pebble "$PEBBLE_DIR/pebble.pid" 30 grep -q 'ACME directory available at' "$LOG/pebble.log"
	wait_for pebble "$PEBBLE_DIR/pebble.pid" 10 pebble_answers
}

pebble_down() {
	stop_pid pebble "$PEBBLE_DIR/pebble.pid" "$PEBBLE_DIR/pebble.json"
	stop_pid challtestsrv "$PEBBLE_DIR/challtestsrv.pid" pebble-challtestsrv
}

# ---------------------------------------------------------------------------
# SMTP sink (cmd/smtpsink)

sink_api() { echo "http://127.0.0.1:$(port_get smtpsink_http)"; }

sink_answers() { curl -fsS --max-time 2 "$(sink_api)/messages" >/dev/null 2>&1; }

sink_running() {
	[[ -n $(port_get smtpsink_http) ]] && pid_alive "$SINK_DIR/smtpsink.pid" "$DEV/bin/smtpsink" && sink_answers
}

sink_up() {
	local smtp http
	mkdir -p "$SINK_DIR" "$DEV/bin"
	if sink_running; then
		say "smtpsink: running at 127.0.0.1:$(port_get smtpsink), API $(sink_api) (pid $(head -n 1 "$SINK_DIR/smtpsink.pid"))"
		return 0
	fi
	stop_pid smtpsink "$SINK_DIR/smtpsink.pid" "$DEV/bin/smtpsink" >/dev/null
	rotate_log smtpsink
	(cd "$ROOT" && go build -buildvcs=false -o "$DEV/bin/smtpsink" ./cmd/smtpsink) >>"$LOG/smtpsink.log" 2>&1 ||
		fail_log smtpsink "go build ./cmd/smtpsink failed"
	pick_port smtpsink 12525
	smtp=$REPLY
	pick_port smtpsink_http 18025
	http=$REPLY
	say "smtpsink: starting (SMTP 127.0.0.1:$smtp, API http://127.0.0.1:$http)"
	start_bg smtpsink "$SINK_DIR/smtpsink.pid" "$DEV/bin/smtpsink" \
		-smtp "127.0.0.1:$smtp" -http "127.0.0.1:$http" -dir "$SINK_DIR/mail"
	wait_for smtpsink "$SINK_DIR/smtpsink.pid" 20 sink_answers
}

sink_down() {
	stop_pid smtpsink "$SINK_DIR/smtpsink.pid" "$DEV/bin/smtpsink"
}

# ---------------------------------------------------------------------------
# mailplane's own settings

# http_port: 8080 if free (or held by a mailplane process), else a free port;
# remembered, so mailplane keeps its address across runs.
http_port() {
	local p owner
	p=$(port_get http)
	if [[ -n $p ]]; then
		owner=$(ss -Htlnp "sport = :$p" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -n 1)
		if ! port_in_use "$p" || [[ $owner == mailplane* ]]; then
			REPLY=$p
			return 0
		fi
	fi
	pick_port http 8080
}

master_key() {
	local key=$DEV/master.key
	if [[ ! -s $key ]]; then
		(
			umask 077
			head -c 32 /dev/urandom >"$key"
		)
		say "master key: generated $key"
	fi
	[[ $(stat -c %s "$key") -eq 32 ]] || die "$key is not 32 bytes long"
	chmod 600 "$key"
}

# env_line NAME VALUE: one export line, single-quoted.
env_line() {
	[[ $2 != *"'"* ]] || die "value of $1 contains a single quote: $2"
	printf "export %s='%s'\n" "$1" "$2"
}

write_env() {
	local tmp http
	http_port
	http=$REPLY
	tmp=$(mktemp "$DEV/.env.XXXXXX")
	{
		echo "# Written by scripts/stack.sh up. Load with: . $ENV_FILE"
		env_line MAILPLANE_DEV_DIR "$DEV"
		env_line DATABASE_URL "$PG_URL"
		env_line TEST_DATABASE_URL "$PG_TEST_URL"
		env_line MAILPLANE_HTTP_ADDR "127.0.0.1:$http"
		env_line MAILPLANE_LDAP_URL "$(ldap_url)"
		env_line MAILPLANE_LDAP_BIND_DN "$LDAP_ROOTDN"
		env_line MAILPLANE_LDAP_PASSWORD "$(cat "$LDAP_DIR/admin-password")"
		env_line MAILPLANE_LDAP_BASE_DN "$LDAP_SUFFIX"
		env_line MAILPLANE_LDAP_POSTFIX_DN "$(ldap_service_dn postfix)"
		env_line MAILPLANE_LDAP_POSTFIX_PASSWORD "$(cat "$LDAP_DIR/postfix-password")"
		env_line MAILPLANE_LDAP_DOVECOT_DN "$(ldap_service_dn dovecot)"
		env_line MAILPLANE_LDAP_DOVECOT_PASSWORD "$(cat "$LDAP_DIR/dovecot-password")"
		if [[ -n $LDAP_REPLICA ]]; then env_line MAILPLANE_LDAP_REPLICA_URL "$(ldap_replica_url)"; fi
		env_line MAILPLANE_SMTP_ADDR "127.0.0.1:$(port_get smtpsink)"
		env_line MAILPLANE_SMTP_API "$(sink_api)"
		env_line MAILPLANE_MAIL_FROM 'mailplane@mailplane.test'
		env_line MAILPLANE_ACME_DIRECTORY "$(pebble_dir_url)"
		env_line MAILPLANE_ACME_EMAIL 'hostmaster@mailplane.test'
		env_line MAILPLANE_ACME_CA_FILE "$PEBBLE_DIR/ca.pem"
		env_line MAILPLANE_ACME_HTTP_PORT "$(port_get acme_http)"
		env_line MAILPLANE_ACME_TLS_PORT "$(port_get acme_tls)"
		env_line MAILPLANE_ACME_DNS_SERVER "127.0.0.1:$(port_get challtestsrv_dns)"
		env_line MAILPLANE_CHALLTESTSRV_URL "http://127.0.0.1:$(port_get challtestsrv)"
		env_line MAILPLANE_PEBBLE_MANAGEMENT_URL "https://127.0.0.1:$(port_get pebble_mgmt)"
		env_line MAILPLANE_MASTER_KEY_FILE "$DEV/master.key"
		env_line MAILPLANE_CHROMIUM /usr/bin/chromium
		env_line MAILPLANE_AXE_JS "$AXE_JS"
	} >"$tmp"
	chmod 600 "$tmp"
	mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------
# commands

lock() {
	mkdir -p "$DEV" "$LOG"
	exec 9>"$DEV/.lock"
	flock -w 300 9 || die "another stack.sh holds $DEV/.lock"
}

cmd_up() {
	lock
	ensure_tools
	pg_up
	ldap_up
	# A consumer that runs stays (a second up reuses whatever runs); its config is
	# brought up to date like the provider's.
	if [[ ${MAILPLANE_LDAP_REPLICA:-} == 1 ]] || ldap_replica_running; then
		ldap_replica_up
		LDAP_REPLICA=1
	fi
	pebble_up
	sink_up
	master_key
	axe_fetch
	ports_register
	write_env
	say "ready; environment in $ENV_FILE (scripts/stack.sh env)"
}

cmd_down() {
	[[ -d $DEV ]] || return 0
	lock
	sink_down
	pebble_down
	ldap_down
	pg_down
}

# status_line NAME STATE DETAIL
status_line() { printf '%-13s %-5s %s\n' "$1" "$2" "$3"; }

cmd_status() {
	local down=0 url='' detail
	if [[ -f $ENV_FILE ]]; then url=$(sed -n "s/^export DATABASE_URL='\(.*\)'$/\1/p" "$ENV_FILE"); fi
	if pg_private_running; then
		status_line postgres up "private cluster $PG_DIR on 127.0.0.1:$(port_get pg)"
	elif [[ -n $url ]] && pg_isready -q -t 2 -d "$url"; then
		status_line postgres up "$url (not started by the stack)"
	else
		status_line postgres down "${url:-no $ENV_FILE yet}"
		down=1
	fi
	if ldap_running; then
		detail=''
		ldap_current provider "$LDAP_DIR" ldap || detail=' (configuration out of date: run up)'
		status_line slapd up "$(ldap_url) pid $(head -n 1 "$LDAP_DIR/slapd.pid")$detail"
	else
		status_line slapd down "log: $LOG/slapd.log"
		down=1
	fi
	# The consumer runs only when asked for, so its absence is not a failure.
	if ldap_replica_running; then
		detail=''
		ldap_current replica "$LDAP_REPLICA_DIR" ldap_replica || detail=' (configuration out of date: run up)'
		status_line slapd-replica up "$(ldap_replica_url) pid $(head -n 1 "$LDAP_REPLICA_DIR/slapd.pid")$detail"
	elif [[ -e $LDAP_REPLICA_DIR/slapd.conf ]]; then
		status_line slapd-replica off "start it with MAILPLANE_LDAP_REPLICA=1 scripts/stack.sh up"
	fi
	if [[ -n $(port_get challtestsrv) ]] && pid_alive "$PEBBLE_DIR/challtestsrv.pid" "$(challtestsrv_pattern)" && tcp_answers "$(port_get challtestsrv)"; then
		status_line challtestsrv up "http://127.0.0.1:$(port_get challtestsrv) DNS 127.0.0.1:$(port_get challtestsrv_dns) pid $(head -n 1 "$PEBBLE_DIR/challtestsrv.pid")"
	else
		status_line challtestsrv down "log: $LOG/challtestsrv.log"
		down=1
	fi
	if [[ -n $(port_get pebble) ]] && pid_alive "$PEBBLE_DIR/pebble.pid" "$PEBBLE_DIR/pebble.json" && pebble_answers; then
		status_line pebble up "$(pebble_dir_url) pid $(head -n 1 "$PEBBLE_DIR/pebble.pid")"
	else
		status_line pebble down "log: $LOG/pebble.log"
		down=1
	fi
	if sink_running; then
		status_line smtpsink up "smtp 127.0.0.1:$(port_get smtpsink) api $(sink_api) pid $(head -n 1 "$SINK_DIR/smtpsink.pid")"
	else
		status_line smtpsink down "log: $LOG/smtpsink.log"
		down=1
	fi
	return "$down"
}

# cmd_ldap_load FILE: the dev stack's side of an offline rebuild (docs/directory.md,
# "Rebuilding the directory"). The careful part is scripts/ldap-load.sh, which production uses
# too; here slapd is stopped and started the way this script runs it, polling finely: the
# directory is away only for the stop, the swap and the start (about 0.1 s).
cmd_ldap_load() {
	local file=${1:-} pid replica="" t0 t1 t2 url i
	[[ -n $file && -f $file ]] || die "usage: $0 ldap-load LDIF_FILE"
	[[ $file == /* ]] || file=$PWD/$file
	lock
	[[ -f $LDAP_DIR/slapd.conf ]] || die "no $LDAP_DIR/slapd.conf: run scripts/stack.sh up first"
	t0=$(date +%s.%N)
	"$ROOT/scripts/ldap-load.sh" "$LDAP_DIR/slapd.conf" "$file" || die "the load failed; slapd still serves the previous database"
	t1=$(date +%s.%N)
	if ldap_replica_running; then replica=1; fi
	stop_pid slapd-replica "$LDAP_REPLICA_DIR/slapd.pid" "$LDAP_REPLICA_DIR/slapd.conf" >/dev/null
	if pid_alive "$LDAP_DIR/slapd.pid" "$LDAP_DIR/slapd.conf"; then
		pid=$(head -n 1 "$LDAP_DIR/slapd.pid")
		kill -TERM "$pid"
		for ((i = 0; i < 1000; i++)); do
			proc_running "$pid" || break
			sleep 0.01
		done
		proc_running "$pid" && die "slapd (pid $pid) did not stop within 10 s; the new database waits in $LDAP_DIR/db.new"
		rm -f "$LDAP_DIR/slapd.pid"
	fi
	"$ROOT/scripts/ldap-load.sh" --swap "$LDAP_DIR/slapd.conf" >/dev/null
	url=$(ldap_url)
	start_bg slapd "$LDAP_DIR/slapd.pid" "$ROOT/scripts/supervise.sh" slapd -d none -f "$LDAP_DIR/slapd.conf" -h "$url"
	for ((i = 0; i < 1500; i++)); do
		ldap_answers "$url" && break
		pid_alive "$LDAP_DIR/slapd.pid" || fail_log slapd "slapd exited while starting on the new database (back to the previous one: scripts/ldap-load.sh --back $LDAP_DIR/slapd.conf)"
		sleep 0.02
	done
	ldap_answers "$url" || fail_log slapd "slapd did not answer within 30 s"
	t2=$(date +%s.%N)
	say "slapd: serving the database loaded from $file (load $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, away $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s; the previous database is in $LDAP_DIR/db.old)"
	if [[ -n $replica ]]; then
		ldap_replica_up
	fi
}

# cmd_stop NAME, cmd_start NAME: one component down and up again, as an outage does to it.
cmd_stop() {
	lock
	case ${1:-} in
	slapd) stop_pid slapd "$LDAP_DIR/slapd.pid" "$LDAP_DIR/slapd.conf" ;;
	pebble) pebble_down ;;
	smtpsink) sink_down ;;
	*) die "usage: $0 stop slapd|pebble|smtpsink" ;;
	esac
}

cmd_start() {
	lock
	case ${1:-} in
	slapd) ldap_up ;;
	pebble) pebble_up ;;
	smtpsink) sink_up ;;
	*) die "usage: $0 start slapd|pebble|smtpsink" ;;
	esac
}

cmd_env() {
	[[ -f $ENV_FILE ]] || die "no $ENV_FILE yet: run scripts/stack.sh up"
	cat "$ENV_FILE"
}

main() {
	# Debian keeps slapd and friends in /usr/sbin, Go in /usr/local/go/bin.
	case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
	command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
	export PATH
	case ${1:-} in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env) cmd_env ;;
	ldap-load) cmd_ldap_load "${2:-}" ;;
	stop) cmd_stop "${2:-}" ;;
	start) cmd_start "${2:-}" ;;
	*)
		echo "usage: $0 up|down|status|env|ldap-load FILE|stop NAME|start NAME" >&2
		exit 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
