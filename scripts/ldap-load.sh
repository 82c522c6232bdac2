#!/usr/bin/env bash
# ldap-load.sh: replace a slapd database with an LDIF, safely (docs/directory.md, "Rebuilding the
# directory"). slapadd -q is fast, but an interrupted -q load leaves its database unusable, so the
# LDIF goes into a fresh folder beside the live one, and the folders are swapped only once the
# load succeeded.
#
#   scripts/ldap-load.sh SLAPD_CONF LDIF     slapadd -q -w the LDIF into DIR.new, where DIR is
#                                            the `directory` of SLAPD_CONF's (only) mdb database;
#                                            slapd may keep running on DIR meanwhile. On failure
#                                            DIR.new is removed and DIR is untouched.
#   scripts/ldap-load.sh --swap SLAPD_CONF   with slapd stopped (its pidfile names no running
#                                            process): DIR -> DIR.old (the previous DIR.old is
#                                            removed), DIR.new -> DIR. Start slapd afterwards.
#   scripts/ldap-load.sh --back SLAPD_CONF   with slapd stopped: undo the last swap.
#
# SLAPD_CONF is a slapd.conf (-f); a cn=config installation (slapd.d) does the same steps by hand
# (docs/directory.md). Run it as the user slapd runs as (or chown -R the folder afterwards):
# slapadd creates the files with its own owner.
set -euo pipefail

die() {
	printf 'ldap-load: error: %s\n' "$*" >&2
	exit 1
}
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

# conf_value CONF KEY: the value of the first "KEY value" line.
conf_value() {
	awk -v k="$2" '$1 == k { $1 = ""; sub(/^[ \t]+/, ""); gsub(/^"|"$/, ""); print; exit }' "$1"
}

# slapd_running CONF: the process in CONF's pidfile runs.
slapd_running() {
	local pidfile pid
	pidfile=$(conf_value "$1" pidfile)
	[[ -n $pidfile && -s $pidfile ]] || return 1
	pid=$(head -n 1 "$pidfile")
	pid=${pid//[^0-9]/}
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

mode=load
case ${1:-} in
--swap) mode=swap && shift ;;
--back) mode=back && shift ;;
esac
conf=${1:-}
[[ -n $conf && -f $conf ]] || die "usage: $0 SLAPD_CONF LDIF | --swap SLAPD_CONF | --back SLAPD_CONF"
[[ $(grep -c '^database[[:space:]]' "$conf") == 1 ]] || die "$conf must have exactly one database"
db=$(conf_value "$conf" directory)
[[ -n $db && -d $db ]] || die "$conf: no existing database directory ($db)"
db=${db%/}

case $mode in
load)
	ldif=${2:-}
	[[ -n $ldif && -f $ldif ]] || die "no LDIF file '$ldif'"
	new=$db.new
	rm -rf "${new:?}"
	mkdir -m 700 "$new"
	# The same configuration with the fresh folder as the database's directory.
	tmpconf=$(mktemp "${TMPDIR:-/tmp}/ldap-load.XXXXXX.conf")
	trap 'rm -f "$tmpconf"' EXIT
	awk -v d="$new" '$1 == "directory" { print "directory " d; next } { print }' "$conf" >"$tmpconf"
	t0=$(date +%s.%N)
	# -w writes the contextCSN, which syncrepl consumers compare with theirs.
	if ! slapadd -q -w -f "$tmpconf" -l "$ldif"; then
		rm -rf "${new:?}"
		die "slapadd failed; $db is untouched"
	fi
	t1=$(date +%s.%N)
	printf 'ldap-load: loaded %s into %s in %s s\n' "$ldif" "$new" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	;;
swap)
	[[ -d $db.new ]] || die "no $db.new: load it first ($0 $conf LDIF)"
	! slapd_running "$conf" || die "slapd runs (pidfile $(conf_value "$conf" pidfile)): stop it first"
	rm -rf "${db:?}.old"
	mv "$db" "$db.old"
	mv "$db.new" "$db"
	printf 'ldap-load: %s is the new database (the previous one is %s.old)\n' "$db" "$db"
	;;
back)
	[[ -d $db.old ]] || die "no $db.old to go back to"
	! slapd_running "$conf" || die "slapd runs: stop it first"
	rm -rf "${db:?}.new"
	mv "$db" "$db.new"
	mv "$db.old" "$db"
	printf 'ldap-load: %s is the previous database again (the rebuilt one is %s.new)\n' "$db" "$db"
	;;
esac
