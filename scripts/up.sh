#!/usr/bin/env bash
# up.sh: what `go tool task up` runs. Starts the dev stack, applies the migrations,
# makes sure the first global admin exists, prints how to reach the API, then runs
# `mailplane serve` in the foreground. Ctrl-C stops mailplane; the stack keeps
# running until `go tool task down`. Arguments go to `mailplane serve`, except --replica
# (also MAILPLANE_LDAP_REPLICA=1): start the directory's syncrepl consumer too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${MAILPLANE_DEV_DIR:-$ROOT/.dev}
[[ $DEV == /* ]] || DEV=$PWD/$DEV
export MAILPLANE_DEV_DIR=$DEV
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
cd "$ROOT"

ADMIN_EMAIL=admin@mailplane.test
ADMIN_PASSWORD_FILE=$DEV/admin-password

serve_args=()
for a in "$@"; do
	case $a in
	--replica) export MAILPLANE_LDAP_REPLICA=1 ;;
	*) serve_args+=("$a") ;;
	esac
done

scripts/stack.sh up
# shellcheck source=/dev/null
. "$DEV/env"
# Answer Pebble's HTTP-01 challenges on the port it dials (the API tests use it too: stop this
# serve while they run).
export MAILPLANE_ACME_HTTP_ADDR=${MAILPLANE_ACME_HTTP_ADDR:-127.0.0.1:$MAILPLANE_ACME_HTTP_PORT}

if [[ ! -s $ADMIN_PASSWORD_FILE ]]; then
	(
		umask 077
		openssl rand -base64 18 | tr '+/' '-_' | tr -d '\n' >"$ADMIN_PASSWORD_FILE"
	)
fi
admin_password=$(cat "$ADMIN_PASSWORD_FILE")

# One build for the three runs below; serve then gets signals directly.
echo "up: building ./cmd/mailplane"
go build -o "$DEV/bin/mailplane" ./cmd/mailplane
"$DEV/bin/mailplane" migrate
# Succeeds when that admin already exists, so running up again is fine.
"$DEV/bin/mailplane" admin bootstrap --email "$ADMIN_EMAIL" --password "$admin_password"

cat <<INFO

  admin panel    http://$MAILPLANE_HTTP_ADDR/   (sign in with the admin below)
  mailplane API  http://$MAILPLANE_HTTP_ADDR/api/v1
  admin          $ADMIN_EMAIL
  password       $admin_password   (kept in $ADMIN_PASSWORD_FILE)
  log in         curl -s http://$MAILPLANE_HTTP_ADDR/api/v1/auth/login -d '{"email":"$ADMIN_EMAIL","password":"$admin_password"}'
  mail sent      $MAILPLANE_SMTP_API/messages
  ACME           $MAILPLANE_ACME_DIRECTORY (HTTP-01 answered on $MAILPLANE_ACME_HTTP_ADDR)
  directory      $MAILPLANE_LDAP_URL  base $MAILPLANE_LDAP_BASE_DN
                 writer  $MAILPLANE_LDAP_BIND_DN  $MAILPLANE_LDAP_PASSWORD
                 postfix $MAILPLANE_LDAP_POSTFIX_DN  $MAILPLANE_LDAP_POSTFIX_PASSWORD
                 dovecot $MAILPLANE_LDAP_DOVECOT_DN  $MAILPLANE_LDAP_DOVECOT_PASSWORD
  replica        ${MAILPLANE_LDAP_REPLICA_URL:-none (go tool task up -- --replica starts one)}
  stop           Ctrl-C stops mailplane; go tool task down stops the stack

INFO

# Bootstrap succeeds without a change when the admin exists, possibly with
# another password (say, made from another checkout sharing this database):
# once the API answers, try the login once and say so if it fails.
(
	for _ in $(seq 1 120); do
		if timeout 1 bash -c "exec 3<>/dev/tcp/${MAILPLANE_HTTP_ADDR%:*}/${MAILPLANE_HTTP_ADDR##*:}" 2>/dev/null; then
			sleep 0.5
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$MAILPLANE_HTTP_ADDR/api/v1/auth/login" \
				-H 'Content-Type: application/json' -d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$admin_password\"}") || true
			if [[ $code == 200 ]]; then
				echo "up: logged in as $ADMIN_EMAIL: the credentials above work"
			else
				echo "up: WARNING: logging in as $ADMIN_EMAIL with the password above got HTTP $code." >&2
				echo "up: $ADMIN_EMAIL existed before with another password (bootstrapped from another checkout or .dev?)." >&2
			fi
			exit 0
		fi
		sleep 0.5
	done
) &
exec "$DEV/bin/mailplane" serve "${serve_args[@]}"
