#!/bin/sh
# make run: the demo. A throwaway PostgreSQL cluster (as an unprivileged
# user when started as root), a fresh demo PKI, demo data, then certregd.
# Once certregd answers on both listeners it prints ready-to-paste commands
# (an OK login, a KEY_NOT_APPROVED one, the clerk binding that key, the same
# login OK a second later, a SIGHUP reload) and waits; Ctrl-C stops
# certregd and the cluster.
#
#   scripts/demo.sh              the demo (make run)
#   scripts/demo.sh --selftest   the same set-up, then runs exactly the printed
#                                commands, checks each answer and stops;
#                                exit 0 when every step passed, 1 otherwise
#                                (make demo-check, tests/test_demo.py)
#
# Environment: BUILD (default build; relative to the checkout or absolute),
# CERTREG_DEMO_API (127.0.0.1:8080), CERTREG_DEMO_TLS (127.0.0.1:8443),
# CERTREG_DEMO_PGPORT (54329), CERTREG_DEMO_DIR (the checkout's run/; the
# directory is emptied first), CERTREG_DEMO_WAIT (seconds to wait for
# certregd to answer, 30).
set -eu

selftest=no
case "${1:-}" in
--selftest) selftest=yes ;;
"") ;;
*) echo "usage: $0 [--selftest]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
case "${BUILD:-build}" in
/*) build=$BUILD ;;
*) build=$top/${BUILD:-build} ;;
esac
run=${CERTREG_DEMO_DIR:-$top/run}
api=${CERTREG_DEMO_API:-127.0.0.1:8080}
tls=${CERTREG_DEMO_TLS:-127.0.0.1:8443}
pgport=${CERTREG_DEMO_PGPORT:-54329}
wait_s=${CERTREG_DEMO_WAIT:-30}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "demo: PostgreSQL server binaries not found (make deps)" >&2; exit 1; }
for prog in certregd certreg-admin; do
	[ -x "$build/$prog" ] || { echo "demo: $build/$prog not built (make)" >&2; exit 1; }
done

# Run a command as the unprivileged cluster owner when we are root.
if [ "$(id -u)" -eq 0 ]; then
	as_owner() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
	daemon_user="-u nobody"
else
	as_owner() { "$@"; }
	daemon_user=""
fi

# As root the cluster and certregd run as nobody, who must be able to reach
# the demo's directory. A checkout in root's home (mode 700 on Debian) is out
# of its reach: then the demo's files go to a private directory under /tmp,
# removed when the demo stops. A CERTREG_DEMO_DIR out of reach is an error.
tmp_run=""
mkdir -p "$(dirname "$run")"
if ! as_owner test -x "$(dirname "$run")"; then
	if [ -n "${CERTREG_DEMO_DIR:-}" ]; then
		echo "demo: error: CERTREG_DEMO_DIR=$run: user nobody cannot reach" \
			"$(dirname "$run") (a private directory on its path?)" >&2
		exit 1
	fi
	tmp_run=$(mktemp -d /tmp/certreg-demo.XXXXXX)
	echo "demo: user nobody cannot reach $top (a private home directory?);" \
		"the demo's files are in $tmp_run instead, removed when it stops"
	run=$tmp_run
	# nobody's programs start where we are, in the checkout it cannot enter.
	cd /
fi

daemon_pid=""
stop_pg() { as_owner "$pgbin/pg_ctl" -D "$run/pg/data" -m fast stop >/dev/null 2>&1 || true; }
# certregd first (SIGTERM drains and exits), then the cluster it uses.
stop_all() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
		daemon_pid=""
	fi
	stop_pg
	[ -z "$tmp_run" ] || rm -rf "$tmp_run"
}

# From here on every way out stops what was started (the EXIT trap also
# runs on these exits, in dash as in bash).
trap 'stop_all' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# The checkout's run/ is emptied; a fresh mktemp directory is used as it
# is (removing and recreating a name under /tmp would let another user take it).
if [ -z "$tmp_run" ]; then
	[ -f "$run/pg/data/postmaster.pid" ] && stop_pg
	rm -rf "$run"
fi
mkdir -p "$run/pg/sock" "$run/crl"
chmod 755 "$run"

echo "demo: making a demo PKI in $run/pki"
/usr/bin/python3 "$top/tests/pki/mkpki.py" "$run/pki" >/dev/null
cp "$run/pki/crl-all/"* "$run/crl/"

echo "demo: starting PostgreSQL in $run/pg (socket only, port $pgport)"
[ "$(id -u)" -eq 0 ] && chown -R nobody:nogroup "$run/pg" "$run/crl"
as_owner "$pgbin/initdb" -D "$run/pg/data" -U postgres --auth=trust -E UTF8 \
	--locale=C.UTF-8 >"$run/pg/initdb.log" 2>&1
# Trust authentication makes whoever can connect the superuser postgres,
# who can run programs as the cluster's owner (COPY ... TO PROGRAM): the
# socket is the owner's alone (root, running the demo's commands, passes).
as_owner "$pgbin/pg_ctl" -D "$run/pg/data" -l "$run/pg/server.log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories='$run/pg/sock' -c unix_socket_permissions=0700 -p $pgport -c fsync=off" \
	start >/dev/null

super="host=$run/pg/sock port=$pgport user=postgres"
"$pgbin/createdb" -h "$run/pg/sock" -p "$pgport" -U postgres certreg
db="$super dbname=certreg"
adm() { "$build/certreg-admin" --db "$db" "$@"; }
adm db migrate >/dev/null
"$pgbin/psql" -q -h "$run/pg/sock" -p "$pgport" -U postgres -d certreg \
	-c "CREATE ROLE certregd LOGIN IN ROLE certreg_daemon" >/dev/null
adm office add DC01 --name "东城管理部" --address "北京市东城区示例路1号" --phone "010-12345678" >/dev/null
adm unit add 110100000001 --name "北京示例科技有限公司" --office DC01 >/dev/null
adm key bind --cert "$run/pki/leaf/ec-ok.pem" --unit 110100000001 --ticket DEMO-1 >/dev/null
adm key bind --cert "$run/pki/leaf/sm2-ok.pem" --unit 110100000001 --ticket DEMO-3 >/dev/null

# intermediates_file: a client (or nginx, which passes only the leaf) need
# not send the issuing CA; without it such a leaf is CERT_UNTRUSTED.
cat >"$run/certreg.conf" <<CONF
[server]
listen_api = $api
listen_tls = $tls
tls_cert = $run/pki/server/server.pem
tls_key = $run/pki/server/server.key
workers = auto

[trust]
ca_file = $run/pki/ca/trust.pem
intermediates_file = $run/pki/ca/intermediates.pem
crl_dir = $run/crl
revocation = require

[database]
conninfo = host=$run/pg/sock port=$pgport dbname=certreg user=certregd
timeout_ms = 2000
CONF
# As the daemon's user too: its reloads read every file as that user.
# shellcheck disable=SC2086
"$build/certregd" -t $daemon_user -c "$run/certreg.conf"

# certregd in the background, its log in a file: the commands printed below
# stay readable, and the self-test reads the log. In a session of its own:
# Ctrl-C reaches only this script, whose trap stops certregd; sent to both,
# certregd could end first and the wait below take that for a crash.
log=$run/certregd.log
# shellcheck disable=SC2086
setsid "$build/certregd" -f $daemon_user -c "$run/certreg.conf" >"$log" 2>&1 &
daemon_pid=$!

# Ready means /healthz answers on the API listener and the TLS listener
# completes a handshake (the refusal page for no certificate is an answer).
ready=no
deadline=$(($(date +%s) + wait_s))
while [ "$(date +%s)" -lt "$deadline" ]; do
	if ! kill -0 "$daemon_pid" 2>/dev/null; then
		wait "$daemon_pid" 2>/dev/null || true
		daemon_pid=""
		echo "demo: error: certregd exited at start; its log ($log):" >&2
		sed 's/^/  /' "$log" >&2
		exit 1
	fi
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$api/healthz")" = 200 ] &&
		curl -s -o /dev/null --max-time 2 --cacert "$run/pki/ca/server-ca.pem" \
			"https://$tls/v1/login"; then
		ready=yes
		break
	fi
	sleep 0.2
done
if [ "$ready" != yes ]; then
	echo "demo: error: certregd did not answer on http://$api/healthz and https://$tls" \
		"within $wait_s s (CERTREG_DEMO_WAIT); its log ($log):" >&2
	sed 's/^/  /' "$log" >&2
	exit 1
fi

# The commands, once: printed for the reader and run as printed by the
# self-test. The key id is the one counter staff read from `pending list`.
p=$run/pki/leaf
adm_cmd="$build/certreg-admin --db \"$db\""
key_new=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["leaves"]["rsa-ok"]["key_id"])' \
	"$run/pki/manifest.json")
cmd_ok="curl -s --cacert $run/pki/ca/server-ca.pem --cert $p/ec-ok.chain.pem --key $p/ec-ok.key https://$tls/v1/login"
cmd_new="curl -s --cacert $run/pki/ca/server-ca.pem --cert $p/rsa-ok.pem --key $p/rsa-ok.key https://$tls/v1/login"
cmd_pending="$adm_cmd pending list"
cmd_bind="$adm_cmd key bind $key_new --unit 110100000001 --ticket DEMO-2"
cmd_again="sleep 1; $cmd_new"
cmd_expired="curl -s -H 'Content-Type: application/pem-certificate-chain' --data-binary @$p/expired.pem http://$api/v1/verify"
cmd_page="curl -s -H 'Accept: text/html' --cacert $run/pki/ca/server-ca.pem --cert $p/expired.pem --key $p/expired.key https://$tls/v1/login"
cmd_english="curl -s -H 'Accept-Language: en' -H 'Content-Type: application/pem-certificate-chain' --data-binary @$p/expired.pem http://$api/v1/verify"
cmd_check="$build/certreg-admin cert check --cert $p/expired.pem --config $run/certreg.conf"
# A signed-challenge login as the CA's browser plugin makes it (SOF_SignData):
# an SM2 key signs the challenge's bytes with SM3 and the default id.
cmd_signed="c=\$(curl -s -X POST http://$api/v1/challenge | sed -n 's/.*\"challenge\": *\"\\([^\"]*\\)\".*/\\1/p'); \\
  s=\$(printf %s \"\$c\" | openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678 -inkey $p/sm2-ok.key | base64 -w0); \\
  curl -s http://$api/v1/login/signed -H 'Content-Type: application/json' \\
    -d \"{\\\"certificate\\\": \\\"\$(base64 -w0 $p/sm2-ok.der)\\\", \\\"challenge\\\": \\\"\$c\\\", \\\"signature\\\": \\\"\$s\\\"}\""
# Waits (up to 10 s) for the reload to be logged and the new workers ready:
# a fixed second was not always enough for the self-test on a loaded machine.
cmd_hup="kill -HUP $daemon_pid; for i in \$(seq 50); do sleep 0.2; grep -q event=reloaded $log \\
  && curl -sf -o /dev/null http://$api/readyz && break; done; \\
  curl -s -o /dev/null -w 'readyz %{http_code}\\n' http://$api/readyz; grep event=reloaded $log"

if [ "$selftest" = no ]; then
	cat <<MSG

certreg demo is up (certregd pid $daemon_pid; API http://$api, TLS https://$tls).
Its log: tail -f $log
In another terminal, try:

  # 1. OK: an approved key logs in over the TLS client-auth listener (/v1/login)
  $cmd_ok

  # 2. KEY_NOT_APPROVED: a valid certificate nobody has associated yet (it
  #    sends only its leaf: certregd completes the chain from intermediates_file)
  $cmd_new

  # 3. The counter clerk finds the waiting key and binds it by its key id
  $cmd_pending
  $cmd_bind

  # 4. The same certificate a second later: OK (a change is in force within one second)
  $cmd_again

  # CERT_EXPIRED, asked by the portal back end on the API listener; the page a
  # browser sees (Chinese); the answer in English; the counter's offline check
  $cmd_expired
  $cmd_page
  $cmd_english
  $cmd_check

  # 5. An SM2 USB key (no TLS for SM2 in OpenSSL 3.0) logs in by signing a
  #    challenge, as the CA's browser plugin does: OK
  $cmd_signed

  # Reload config, trust anchors and CRLs without dropping connections
  $cmd_hup

  curl -s http://$api/readyz ; curl -s http://$api/metrics | head

Stop with Ctrl-C.
MSG
	# Until Ctrl-C (the traps stop certregd and the cluster) or certregd ends.
	rc=0
	wait "$daemon_pid" || rc=$?
	daemon_pid=""
	echo "demo: certregd exited (status $rc); its log: $log" >&2
	exit 1
fi

# --selftest: each step is the printed command, run by sh as pasted.
failed=0
step() { # NAME EXIT-STATUS PATTERN COMMAND
	rc=0
	out=$(sh -c "$4" 2>&1) || rc=$?
	if [ "$rc" -eq "$2" ] && printf '%s\n' "$out" | grep -Eq -- "$3"; then
		echo "demo selftest: ok   $1"
	else
		echo "demo selftest: FAIL $1: wanted exit $2 and /$3/, got exit $rc from: $4" >&2
		printf '%s\n' "$out" | sed 's/^/  /' >&2
		failed=1
	fi
}
outcome() { printf '"outcome": *"%s"' "$1"; }
step "approved key logs in" 0 "$(outcome OK)" "$cmd_ok"
step "unknown key is KEY_NOT_APPROVED" 0 "$(outcome KEY_NOT_APPROVED)" "$cmd_new"
# The refusal recorded the pending registration; the clerk sees it.
step "pending list shows the key" 0 "$(printf %.16s "$key_new")" "$cmd_pending"
step "clerk binds the key by its id" 0 "$key_new" "$cmd_bind"
step "same certificate OK a second later" 0 "$(outcome OK)" "$cmd_again"
step "expired certificate via /v1/verify" 0 "$(outcome CERT_EXPIRED)" "$cmd_expired"
step "the browser page is Chinese" 0 "证书已过期" "$cmd_page"
step "the answer in English" 0 "The certificate has expired" "$cmd_english"
step "the counter's offline check" 1 "^outcome: +CERT_EXPIRED" "$cmd_check"
step "SM2 signed-challenge login" 0 "$(outcome OK)" "$cmd_signed"
step "SIGHUP reload, then ready" 0 "^readyz 200\$" "$cmd_hup"
step "the log shows the reload" 0 "event=reloaded trigger=" "grep event=reloaded $log"
if ! kill -0 "$daemon_pid" 2>/dev/null; then
	echo "demo selftest: FAIL certregd is no longer running" >&2
	failed=1
fi
if [ "$failed" -ne 0 ]; then
	echo "demo selftest: FAILED; certregd's log ($log):" >&2
	sed 's/^/  /' "$log" >&2
	exit 1
fi
echo "demo selftest: passed"
