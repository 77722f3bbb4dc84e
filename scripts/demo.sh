#!/bin/sh
# make run: the demo. A throwaway PostgreSQL cluster under run/ (as an
# unprivileged user when started as root), a fresh demo PKI, demo data,
# then certregd in the foreground. Ctrl-C stops certregd and the cluster.
#
# Environment: BUILD (default build), CERTREG_DEMO_API (127.0.0.1:8080),
# CERTREG_DEMO_TLS (127.0.0.1:8443), CERTREG_DEMO_PGPORT (54329).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/${BUILD:-build}
run=$top/run
api=${CERTREG_DEMO_API:-127.0.0.1:8080}
tls=${CERTREG_DEMO_TLS:-127.0.0.1:8443}
pgport=${CERTREG_DEMO_PGPORT:-54329}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "demo: PostgreSQL server binaries not found (make deps)" >&2; exit 1; }

# Run a command as the unprivileged cluster owner when we are root.
if [ "$(id -u)" -eq 0 ]; then
	as_owner() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
	daemon_user="-u nobody"
else
	as_owner() { "$@"; }
	daemon_user=""
fi

stop_pg() { as_owner "$pgbin/pg_ctl" -D "$run/pg/data" -m fast stop >/dev/null 2>&1 || true; }
[ -f "$run/pg/data/postmaster.pid" ] && stop_pg
rm -rf "$run"
mkdir -p "$run/pg/sock" "$run/crl"
chmod 755 "$run"

echo "demo: making a demo PKI in run/pki"
/usr/bin/python3 "$top/tests/pki/mkpki.py" "$run/pki" >/dev/null
cp "$run/pki/crl-all/"* "$run/crl/"

echo "demo: starting PostgreSQL in run/pg (socket only, port $pgport)"
[ "$(id -u)" -eq 0 ] && chown -R nobody:nogroup "$run/pg" "$run/crl"
as_owner "$pgbin/initdb" -D "$run/pg/data" -U postgres --auth=trust -E UTF8 \
	--locale=C.UTF-8 >"$run/pg/initdb.log" 2>&1
as_owner "$pgbin/pg_ctl" -D "$run/pg/data" -l "$run/pg/server.log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories='$run/pg/sock' -p $pgport -c fsync=off" \
	start >/dev/null
trap 'stop_pg' EXIT INT TERM

super="host=$run/pg/sock port=$pgport user=postgres"
"$pgbin/createdb" -h "$run/pg/sock" -p "$pgport" -U postgres certreg
db="$super dbname=certreg"
adm() { "$build/certreg-admin" --db "$db" "$@"; }
adm db migrate
"$pgbin/psql" -q -h "$run/pg/sock" -p "$pgport" -U postgres -d certreg \
	-c "CREATE ROLE certregd LOGIN IN ROLE certreg_daemon" >/dev/null
adm office add DC01 --name "东城管理部" --address "北京市东城区示例路1号" --phone "010-12345678" >/dev/null
adm unit add 110100000001 --name "北京示例科技有限公司" --office DC01 >/dev/null
adm key bind --cert "$run/pki/leaf/ec-ok.pem" --unit 110100000001 --ticket DEMO-1 >/dev/null

cat >"$run/certreg.conf" <<CONF
[server]
listen_api = $api
listen_tls = $tls
tls_cert = $run/pki/server/server.pem
tls_key = $run/pki/server/server.key
workers = auto

[trust]
ca_file = $run/pki/ca/trust.pem
crl_dir = $run/crl
revocation = require

[database]
conninfo = host=$run/pg/sock port=$pgport dbname=certreg user=certregd
timeout_ms = 2000
CONF
# As the daemon's user too: its reloads read every file as that user.
# shellcheck disable=SC2086
"$build/certregd" -t $daemon_user -c "$run/certreg.conf"

p=$run/pki/leaf
cat <<MSG

certreg demo is up. In another terminal, try:

  # OK: an approved key, over the TLS client-auth listener (/v1/login)
  curl -s --cacert $run/pki/ca/server-ca.pem --cert $p/ec-ok.chain.pem --key $p/ec-ok.key \\
       https://localhost:${tls##*:}/v1/login

  # KEY_NOT_APPROVED: a valid certificate nobody has associated yet
  curl -s --cacert $run/pki/ca/server-ca.pem --cert $p/rsa-ok.chain.pem --key $p/rsa-ok.key \\
       https://localhost:${tls##*:}/v1/login

  # CERT_EXPIRED: the portal back end asks through the API listener
  curl -s -H 'Content-Type: application/pem-certificate-chain' \\
       --data-binary @$p/expired.chain.pem http://$api/v1/verify

  # The same as a browser sees it (Chinese page), and in English:
  curl -s -H 'Accept: text/html' --cacert $run/pki/ca/server-ca.pem \\
       --cert $p/rsa-ok.chain.pem --key $p/rsa-ok.key https://localhost:${tls##*:}/v1/login
  curl -s -H 'Accept-Language: en' -H 'Content-Type: application/pem-certificate-chain' \\
       --data-binary @$p/expired.chain.pem http://$api/v1/verify

  # Counter staff associate the waiting key (then the second command says OK):
  $build/certreg-admin --db "$db" pending list
  $build/certreg-admin --db "$db" key bind --cert $p/rsa-ok.pem --unit 110100000001 --ticket DEMO-2

  curl -s http://$api/readyz ; curl -s http://$api/metrics | head

Stop with Ctrl-C.
MSG
# Not exec: the EXIT trap must stop the cluster when certregd ends.
# shellcheck disable=SC2086
"$build/certregd" -f $daemon_user -c "$run/certreg.conf"
