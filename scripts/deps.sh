#!/bin/sh
# Installs the Debian 12 packages certreg needs, by group (the arguments):
#   run    build the programs and run the demo (`make run`): a C compiler,
#          make, pkg-config and the libraries' -dev packages, the PostgreSQL
#          server (the demo's throwaway cluster), python3 and openssl (the
#          demo PKI), curl (the demo's readiness wait and its commands),
#          util-linux (setpriv and setsid for the demo), gettext (msgfmt builds
#          certreg-admin's Chinese catalogue). No test tools: the demo
#          shows certregd alone, so no nginx either.
#   build  run, plus everything the tests need (`make deps`, which
#          `make check` depends on; the default): clang and LLVM (fuzzing),
#          clang-format (`make lint` checks the C formatting), valgrind,
#          cmocka, pytest, psycopg2, pyflakes, nginx (the nginx tests) and
#          its stream module (the TCP balancer of `make bench`),
#          linux-perf (`make flamegraph`), iproute2, procps, systemd,
#          man-db, faketime (tests/test_clock.py runs certregd on a
#          clock off the database's) and python3-prometheus-client
#          (tests/test_monitoring.py reads /metrics with a strict parser)
#   deb    build and check the Debian packages (`make deb`, `make deb-check`):
#          debhelper, lintian, and systemd for systemd-analyze and
#          systemd-sysusers in the installed-package checks
# A no-op when everything is present; otherwise apt-get, non-interactive.
# `deps.sh --list GROUP...` prints the groups' packages and installs nothing.
set -eu

list=no
if [ "${1:-}" = --list ]; then
	list=yes
	shift
fi

PKGS_run="gcc libc6-dev make pkg-config
libevent-dev libpq-dev libssl-dev libjansson-dev libinih-dev
libsystemd-dev libjemalloc-dev libcurl4-openssl-dev
postgresql-15 postgresql-contrib
python3 openssl curl util-linux gettext"
PKGS_build="$PKGS_run build-essential clang llvm clang-format libclang-rt-14-dev valgrind libcmocka-dev
python3-pytest python3-psycopg2 python3-pyflakes python3-jwt python3-cryptography
python3-prometheus-client
nginx-light libnginx-mod-stream linux-perf procps iproute2 systemd man-db faketime"
PKGS_deb="$PKGS_build debhelper dpkg-dev fakeroot lintian systemd"

PKGS=""
for group in "${@:-build}"; do
	case $group in
	run) PKGS="$PKGS $PKGS_run" ;;
	build) PKGS="$PKGS $PKGS_build" ;;
	deb) PKGS="$PKGS $PKGS_deb" ;;
	*) echo "deps: unknown group '$group' (run, build, deb)" >&2; exit 2 ;;
	esac
done

if [ "$list" = yes ]; then
	# shellcheck disable=SC2086
	printf '%s\n' $PKGS | sort -u
	exit 0
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run 'sudo $0 ${*:-build}' (or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# The postgresql package would start a system cluster; the demo and the tests
# run their own throwaway clusters, so keep package scripts from starting one.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
