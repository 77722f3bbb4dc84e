#!/bin/bash
# deb-check.sh - installs the built Debian packages into a throwaway root,
# checks what they installed, uses them, and purges them (`make deb-check`).
#
# Usage: tests/deb-check.sh DEBDIR   (DEBDIR holds certreg_*.deb and
# certreg-admin_*.deb, as `make deb` leaves them in build/deb/). As root.
#
# The throwaway root is a copy-on-write view of this machine: an overlayfs
# whose lower layer is / and whose upper layer is a tmpfs, mounted in a
# private mount namespace (unshare -m) and entered with chroot. dpkg in it
# sees the machine's real package database, so `dpkg -i` checks the
# packages' dependencies against what is really installed, and the
# maintainer scripts run for real (systemd-sysusers creates the user,
# deb-systemd-helper registers the units, postinst sets owners and modes);
# nothing of it reaches the real system, and all of it vanishes with the
# namespace when the script ends. A debootstrap chroot would do the same
# from scratch in minutes; this takes seconds. With no systemd running in
# the root (its /run is empty), nothing is started.
#
# It also runs a throwaway PostgreSQL cluster in the root: the installed
# certreg-admin migrates a database with the SQL it finds by itself, and
# the database must outlive the purge of both packages.
#
# Prints one "ok -" or "FAIL -" line per check and "deb-check: N passed,
# M failed"; exits 0 only when every check passed.
set -euo pipefail

PROG=deb-check

die() {
	echo "$PROG: $*" >&2
	exit 2
}

# --- outside: the namespace ------------------------------------------------

outer() {
	local debdir=$1 top rc
	[ "$(id -u)" -eq 0 ] || die "must run as root (mounts an overlay, installs packages into it)"
	command -v unshare >/dev/null || die "unshare (util-linux) is missing"
	debdir=$(cd "$debdir" && pwd) || die "no directory $1"
	ls "$debdir"/certreg_*.deb "$debdir"/certreg-admin_*.deb >/dev/null 2>&1 ||
		die "no certreg_*.deb and certreg-admin_*.deb in $debdir (run make deb)"
	top=$(mktemp -d "${TMPDIR:-/tmp}/certreg-deb-check.XXXXXX")
	SECONDS=0
	rc=0
	unshare --mount --propagation private -- bash "$0" --namespace "$debdir" "$top" || rc=$?
	rmdir "$top" 2>/dev/null || true
	echo "$PROG: ${SECONDS}s"
	return $rc
}

# In the private mount namespace: build the root, run the checks in it.
namespace() {
	local debdir=$1 top=$2 root
	mount -t tmpfs -o mode=0700 certreg-deb-check "$top"
	mkdir "$top/upper" "$top/work" "$top/root"
	root=$top/root
	mount -t overlay overlay -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$root" ||
		die "cannot mount an overlay over / (needs CAP_SYS_ADMIN and overlayfs)"
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount --rbind /sys "$root/sys"
	mount -t tmpfs tmpfs "$root/run"
	mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
	mkdir -p "$root/run/lock"
	# Belt and braces: no package script may start a service in the root.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	mkdir "$root/tmp/debs"
	cp "$debdir"/certreg_*.deb "$debdir"/certreg-admin_*.deb "$root/tmp/debs/"
	rm -f "$root"/tmp/debs/*-dbgsym_*
	cp "$0" "$root/tmp/deb-check.sh"
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		bash /tmp/deb-check.sh --root /tmp/debs
}

# --- inside the root: the checks ---------------------------------------------

pass=0
fail=0

ok() {
	echo "ok - $*"
	pass=$((pass + 1))
}

bad() {
	echo "FAIL - $*"
	fail=$((fail + 1))
}

# check DESCRIPTION COMMAND...: one check, passed when COMMAND succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else bad "$desc"; fi
}

# mode_is PATH OWNER:GROUP OCTAL
mode_is() {
	local got
	got=$(stat -c '%U:%G %a' "$1" 2>&1)
	[ "$got" = "$2 $3" ] || {
		echo "  $1: $got, want $2 $3"
		return 1
	}
}

# status_is PACKAGE WANT: dpkg's status word for PACKAGE ("installed",
# "config-files", or "absent").
status_is() {
	local got
	got=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || got=absent
	[ -n "$got" ] && [ "$got" != not-installed ] || got=absent
	[ "$got" = "$2" ] || {
		echo "  $1: $got, want $2"
		return 1
	}
}

absent() {
	local f
	for f in "$@"; do
		[ ! -e "$f" ] || {
			echo "  $f still exists"
			return 1
		}
	done
}

present() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || {
			echo "  $f is missing"
			return 1
		}
	done
}

UNITS="certregd.service certreg-crl-refresh.service certreg-crl-refresh.timer"
PKG_FILES="/usr/sbin/certregd /usr/sbin/certreg-crl-refresh /usr/bin/certreg-admin
/usr/share/certreg/sql/001_schema.sql /usr/lib/sysusers.d/certreg.conf
/lib/systemd/system/certregd.service /lib/systemd/system/certreg-crl-refresh.service
/lib/systemd/system/certreg-crl-refresh.timer /usr/share/man/man8/certregd.8.gz
/usr/share/man/man8/certreg-crl-refresh.8.gz /usr/share/man/man1/certreg-admin.1.gz
/usr/share/locale/zh_CN/LC_MESSAGES/certreg-admin.mo
/usr/share/bash-completion/completions/certreg-admin"

# The installed certreg-admin speaks Chinese under LANG=zh_CN.UTF-8 with its
# packaged catalogue, whether or not a zh_CN locale is generated.
admin_speaks_chinese() {
	local out
	out=$(env -i LANG=zh_CN.UTF-8 certreg-admin --help 2>&1)
	if ! printf '%s\n' "$out" | grep -q '^用法：'; then
		echo "  $out"
		return 1
	fi
	env -i LANG=C certreg-admin --help | grep -q '^Usage:'
}

# The packaged completion offers the commands, sourced as bash-completion does.
admin_completes() {
	bash --norc --noprofile -c 'source /usr/share/bash-completion/completions/certreg-admin &&
		COMP_WORDS=(certreg-admin key s) COMP_CWORD=2 && _certreg_admin &&
		[ "${COMPREPLY[*]}" = "suspend show" ]'
}

units_name_usr_sbin() {
	local u
	for u in certregd.service certreg-crl-refresh.service; do
		grep -q '^ExecStart=/usr/sbin/' "/lib/systemd/system/$u" || {
			echo "  $u: no ExecStart=/usr/sbin/..."
			return 1
		}
	done
	! grep -n '/usr/local\|@SBINDIR@' /lib/systemd/system/certreg*
}

system_user() {
	local line uid shell
	line=$(getent passwd certreg) || {
		echo "  no user certreg"
		return 1
	}
	uid=$(echo "$line" | cut -d: -f3)
	shell=$(echo "$line" | cut -d: -f7)
	if ! getent group certreg >/dev/null || [ "$uid" -ge 1000 ] ||
		[ "$shell" != /usr/sbin/nologin ]; then
		echo "  $line"
		return 1
	fi
}

conffile() {
	dpkg-query -W -f='${Conffiles}\n' certreg | grep -q '^ /etc/certreg/certreg.conf '
}

not_enabled() {
	! ls /etc/systemd/system/*.wants/certreg* 2>/dev/null
}

# The shipped configuration names the site's files, which do not exist yet:
# certregd -t, run as the daemon's user, fails naming the missing one (and
# so could read the configuration itself).
config_check_names_missing_file() {
	local out rc=0 file
	out=$(runuser -u certreg -- certregd -t -c /etc/certreg/certreg.conf 2>&1) || rc=$?
	echo "  certregd -t: $out (exit $rc)"
	# The config file and line of the setting first, then the file it names.
	file=$(printf '%s\n' "$out" | grep -o '/etc/certreg/[A-Za-z0-9._-]*' |
		grep -vx /etc/certreg/certreg.conf | head -n 1)
	[ "$rc" -eq 1 ] && [ -n "$file" ] && [ ! -e "$file" ] &&
		printf '%s\n' "$out" | grep -q '^certregd: error: /etc/certreg/certreg.conf:[0-9]*: \[trust\] ca_file: ' &&
		printf '%s\n' "$out" | grep -q 'No such file'
}

units_verify() {
	local out u
	# verify exits 0 even for unknown keys or bad values: any line about
	# our units is a failure.
	# shellcheck disable=SC2086 # a list of names
	out=$(cd /lib/systemd/system && systemd-analyze verify $UNITS 2>&1) || {
		printf '  %s\n' "$out"
		return 1
	}
	for u in $UNITS; do
		if printf '%s\n' "$out" | grep -q "$u"; then
			printf '  %s\n' "$out"
			return 1
		fi
	done
}

PG=/tmp/pg
PGBIN=
pg() {
	runuser -u postgres -- "$PGBIN/$1" "${@:2}"
}

pg_start() {
	PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[ -x "$PGBIN/initdb" ] || {
		echo "  no PostgreSQL server installed"
		return 1
	}
	install -d -o postgres -g postgres "$PG"
	pg initdb -D "$PG/data" -A trust -U postgres >/dev/null &&
		pg pg_ctl -D "$PG/data" -l "$PG/log" -w \
			-o "-k $PG -c listen_addresses='' -c fsync=off" start >/dev/null &&
		pg createdb -h "$PG" certreg
}

pg_stop() {
	[ -z "$PGBIN" ] || [ ! -e "$PG/data/postmaster.pid" ] ||
		pg pg_ctl -D "$PG/data" -w -m fast stop >/dev/null 2>&1 || true
}

# The installed certreg-admin, with neither --sql-dir nor CERTREG_SQL_DIR,
# finds the packaged SQL and migrates the database.
admin_migrates() {
	local out
	out=$(runuser -u postgres -- env -u CERTREG_SQL_DIR certreg-admin \
		--db "host=$PG dbname=certreg user=postgres" --json db migrate 2>&1) || {
		echo "  $out"
		return 1
	}
	printf '%s\n' "$out" | grep -q '"sql_dir": *"/usr/share/certreg/sql"' || {
		echo "  $out"
		return 1
	}
	out=$(runuser -u postgres -- certreg-admin --db "host=$PG dbname=certreg user=postgres" \
		--json db status 2>&1)
	printf '%s\n' "$out" | grep -q '"pending": *\[\]' || {
		echo "  $out"
		return 1
	}
}

migrations_in_db() {
	pg psql -h "$PG" -d certreg -Atc 'SELECT count(*) FROM certreg_meta.migrations' 2>&1
}

inside() {
	local debdir=$1 nsql out
	trap pg_stop EXIT
	export DEBIAN_FRONTEND=noninteractive

	out=$(dpkg -i "$debdir"/certreg-admin_*.deb "$debdir"/certreg_*.deb 2>&1) || {
		echo "$out"
		bad "dpkg -i certreg certreg-admin"
		echo "$PROG: $pass passed, $fail failed"
		return 1
	}
	ok "dpkg -i certreg certreg-admin (dependencies satisfied, maintainer scripts ran)"
	check "both packages installed" status_is certreg installed
	check "certreg-admin installed" status_is certreg-admin installed
	# shellcheck disable=SC2086 # a list of paths
	check "programs, SQL, units, sysusers entry, man pages in place" present $PKG_FILES
	check "units run /usr/sbin programs, no /usr/local" units_name_usr_sbin
	check "system user certreg (system uid, nologin) and group" system_user
	check "/etc/certreg root:certreg 0750" mode_is /etc/certreg root:certreg 750
	check "/etc/certreg/certreg.conf root:certreg 0640" \
		mode_is /etc/certreg/certreg.conf root:certreg 640
	check "/etc/certreg/crl root:root 0755" mode_is /etc/certreg/crl root:root 755
	check "/var/lib/certreg certreg:certreg 0750" mode_is /var/lib/certreg certreg:certreg 750
	check "/etc/certreg/certreg.conf is a conffile" conffile
	check "no unit enabled by the installation" not_enabled
	check "certregd -t on the shipped config names the missing file" \
		config_check_names_missing_file
	check "installed units pass systemd-analyze verify" units_verify
	check "certreg-crl-refresh --help" eval 'certreg-crl-refresh --help >/dev/null'
	check "certreg-admin in Chinese under LANG=zh_CN.UTF-8" admin_speaks_chinese
	check "certreg-admin's bash completion" admin_completes

	if pg_start; then
		ok "throwaway PostgreSQL cluster"
		check "installed certreg-admin finds /usr/share/certreg/sql and migrates" admin_migrates
	else
		bad "throwaway PostgreSQL cluster"
	fi
	nsql=$(find /usr/share/certreg/sql -maxdepth 1 -name '[0-9]*_*.sql' | wc -l)

	# The administrator's own files in /etc/certreg are theirs.
	echo "operator's CA" >/etc/certreg/ca.pem
	if out=$(dpkg --remove certreg certreg-admin 2>&1); then
		ok "dpkg --remove"
	else
		echo "$out"
		bad "dpkg --remove"
	fi
	check "removed: programs and units gone" absent /usr/sbin/certregd /usr/bin/certreg-admin \
		/lib/systemd/system/certregd.service /usr/share/certreg \
		/usr/share/locale/zh_CN/LC_MESSAGES/certreg-admin.mo \
		/usr/share/bash-completion/completions/certreg-admin
	check "removed: configuration kept" present /etc/certreg/certreg.conf
	check "removed: certreg keeps its conffiles" status_is certreg config-files

	if out=$(dpkg --purge certreg certreg-admin 2>&1); then
		ok "dpkg --purge"
	else
		echo "$out"
		bad "dpkg --purge"
	fi
	check "purged: configuration, CRL and state directories gone" absent \
		/etc/certreg/certreg.conf /etc/certreg/crl /var/lib/certreg
	check "purged: no package left" status_is certreg absent
	check "purged: certreg-admin gone" status_is certreg-admin absent
	check "purged: the operator's /etc/certreg/ca.pem kept" present /etc/certreg/ca.pem
	# Debian never deletes a system user: files it owned may remain.
	check "purged: the system user stays" eval 'getent passwd certreg >/dev/null'
	if [ -n "$PGBIN" ]; then
		check "purged: the database keeps its $nsql migrations" \
			test "$(migrations_in_db)" = "$nsql"
	fi

	echo "$PROG: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}

case ${1:-} in
--namespace) namespace "$2" "$3" ;;
--root) inside "$2" ;;
'' | -*) die "usage: $0 DEBDIR" ;;
*) outer "$1" ;;
esac
