#!/usr/bin/env bash
# supervise.sh COMMAND...: runs COMMAND in the foreground and starts it again when it crashes
# (dies of SIGSEGV, SIGABRT, SIGBUS or SIGFPE), as systemd's Restart=on-abnormal would. Any other
# end — a clean exit after SIGTERM to it or to this script, an error at start, SIGKILL — ends
# this script too. The dev stack runs slapd under it: slapd 2.5.13 can crash
# on RFC 5805 transactions (docs/directory.md), and its mdb database is safe across a crash, so
# starting it again is all it takes; the LDAP projection redials and writes the lost
# transaction again.
set -u
child=0
stopping=''
stop() {
	stopping=1
	if ((child > 0)); then kill -TERM "$child" 2>/dev/null; fi
}
trap stop TERM INT
while :; do
	"$@" &
	child=$!
	code=0
	wait "$child" || code=$?
	# A trapped signal interrupts wait; wait again until the child is really gone.
	while kill -0 "$child" 2>/dev/null; do
		code=0
		wait "$child" || code=$?
	done
	[[ -n $stopping ]] && exit 0
	case $code in
	134 | 135 | 136 | 139) ;; # 128 + ABRT, BUS, FPE, SEGV
	*) exit "$code" ;;
	esac
	echo "supervise: $1 exited with status $code at $(date -u +%FT%TZ); starting it again" >&2
	sleep 0.5
done
