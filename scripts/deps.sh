#!/bin/sh
# Installs the Debian 12 packages certreg needs, by group (the arguments):
#   build  build, test and run the demo (the default; `make deps`, which
#          `make run` and `make check` depend on)
#   deb    build and check the Debian packages (`make deb`, `make deb-check`):
#          debhelper, lintian, and systemd for systemd-analyze and
#          systemd-sysusers in the installed-package checks
# A no-op when everything is present; otherwise apt-get, non-interactive.
set -eu

PKGS_build="build-essential pkg-config clang llvm libclang-rt-14-dev valgrind
libevent-dev libpq-dev libssl-dev libjansson-dev libinih-dev libcmocka-dev
libsystemd-dev libjemalloc-dev libcurl4-openssl-dev
postgresql-15 postgresql-contrib
python3 python3-pytest python3-psycopg2 python3-pyflakes
openssl curl nginx-light procps util-linux iproute2 systemd man-db gettext"
PKGS_deb="$PKGS_build debhelper dpkg-dev fakeroot lintian systemd"

PKGS=""
for group in "${@:-build}"; do
	case $group in
	build) PKGS="$PKGS $PKGS_build" ;;
	deb) PKGS="$PKGS $PKGS_deb" ;;
	*) echo "deps: unknown group '$group' (build, deb)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run 'make deps' as root (or: sudo apt-get install$missing)" >&2
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
