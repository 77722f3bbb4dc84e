"""What an operator installs from deploy/: the systemd units, the sysusers
entry, the example configuration and the CRL refresh script as a program.

The units are templates (deploy/*.service.in, @SBINDIR@ for the installed
sbin directory). They are checked by systemd's own tools (`systemd-analyze
verify` and `security --offline`) on a copy whose binary paths point at
this build, and as `make install` writes them, so a unit that systemd
would warn about fails here. certregd's side of
Type=notify is checked against a real notify socket.
"""
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.daemon import BUILD, open_for_daemon_user

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNITS = ("certregd.service", "certreg-crl-refresh.service", "certreg-crl-refresh.timer")
INSTALLED = {
    "@SBINDIR@/certregd": BUILD / "certregd",
    "@SBINDIR@/certreg-crl-refresh": DEPLOY / "certreg-crl-refresh",
}
# Hardening every long-running certreg unit must keep (issue 7).
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
    "ReadOnlyPaths": "/etc/certreg",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian package systemd)")


def unit_source(name):
    """deploy/NAME.in where the unit is a template, else deploy/NAME."""
    src = DEPLOY / (name + ".in")
    return src if src.exists() else DEPLOY / name


def unit_settings(path):
    """{(section, key): [values]} of a unit file (comments dropped)."""
    out, section = {}, None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


@pytest.fixture
def units(tmp_path):
    """The units with the installed binary paths replaced by this build's,
    and a MANPATH holding docs/man, so every reference resolves."""
    d = tmp_path / "units"
    d.mkdir()
    for name in UNITS:
        text = unit_source(name).read_text()
        for installed, built in INSTALLED.items():
            text = text.replace(installed, str(built))
        (d / name).write_text(text)
    for sec in ("8", "1"):
        man = tmp_path / "man" / f"man{sec}"
        man.mkdir(parents=True)
        for page in (REPO / "docs/man").glob(f"*.{sec}"):
            shutil.copy(page, man)
    return d


def analyze(*args, man=None):
    env = dict(os.environ)
    if man is not None:
        env["MANPATH"] = str(man)
    return subprocess.run(["systemd-analyze", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify_without_warnings(units):
    p = analyze("verify", *(units / n for n in UNITS), man=units.parent / "man")
    # verify exits 0 even for unknown keys or bad values: every line it
    # prints about our units is a failure.
    ours = [l for l in (p.stdout + p.stderr).splitlines()
            if any(n in l for n in UNITS) or str(units) in l]
    assert p.returncode == 0 and not ours, p.stdout + p.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", ["certregd.service", "certreg-crl-refresh.service"])
def test_units_have_a_low_exposure_level(units, unit):
    p = analyze("security", "--offline=yes", units / unit)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    # 0 is a fully locked-down unit, 10 an unrestricted one; a network
    # daemon cannot be below ~1 (it needs sockets).
    assert float(m.group(1)) <= 2.0, p.stdout


def test_certregd_service_runs_unprivileged_with_notify_and_sighup_reload():
    s = unit_settings(unit_source("certregd.service"))
    svc = lambda k: s.get(("Service", k), [None])[-1]  # noqa: E731
    assert svc("Type") == "notify"
    assert svc("User") == "certreg" and svc("Group") == "certreg"
    # Never root: no -u, so certregd never holds root to drop it.
    assert " -u" not in svc("ExecStart") and " -f" in svc("ExecStart")
    assert svc("ExecStart").split()[0] == "@SBINDIR@/certregd"  # make install fills it in
    assert s[("Service", "ExecReload")][-1] == "/bin/kill -HUP $MAINPID"
    assert svc("AmbientCapabilities") == ""
    for key, want in HARDENING.items():
        assert svc(key) == want, f"{key}={svc(key)!r}, want {want!r}"


def test_crl_refresh_unit_writes_only_the_crl_dir():
    s = unit_settings(unit_source("certreg-crl-refresh.service"))
    assert s[("Service", "Type")] == ["oneshot"]
    assert s[("Service", "ProtectSystem")] == ["strict"]
    assert s[("Service", "ReadWritePaths")] == ["/etc/certreg/crl"]
    # Only to SIGHUP certregd, which runs as another user.
    assert s[("Service", "CapabilityBoundingSet")] == ["CAP_KILL"]
    timer = unit_settings(DEPLOY / "certreg-crl-refresh.timer")
    assert timer[("Timer", "Persistent")] == ["true"]
    assert ("Install", "WantedBy") in timer


@needs_systemd_analyze
def test_make_install_writes_units_naming_the_installed_programs(tmp_path):
    """`make install` puts the units, the sysusers entry and the CRL script
    beside the programs, with PREFIX's sbin in every Exec line: the installed
    units pass systemd-analyze verify as they are (the binaries and man
    pages they name exist)."""
    prefix = tmp_path / "prefix"
    p = subprocess.run(["make", "-C", str(REPO), "install", f"PREFIX={prefix}", "DESTDIR="],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    unitdir = prefix / "lib/systemd/system"
    assert sorted(f.name for f in unitdir.iterdir()) == sorted(UNITS)
    for name in UNITS:
        text = (unitdir / name).read_text()
        assert "@SBINDIR@" not in text and "/usr/local" not in text, name
    s = unit_settings(unitdir / "certregd.service")
    assert {v.split()[0] for k, vs in s.items() if k[1].startswith("Exec") for v in vs
            if not v.startswith("/bin/kill")} == {f"{prefix}/sbin/certregd"}
    s = unit_settings(unitdir / "certreg-crl-refresh.service")
    assert s[("Service", "ExecStart")][0].split()[0] == f"{prefix}/sbin/certreg-crl-refresh"
    assert os.access(prefix / "sbin/certreg-crl-refresh", os.X_OK)
    assert (prefix / "lib/sysusers.d/certreg.conf").read_text() == \
        (DEPLOY / "certreg.sysusers").read_text()
    assert (prefix / "share/man/man8/certreg-crl-refresh.8").is_file()
    # The completion is installed once deploy/ has one (the package as well).
    assert (prefix / "share/bash-completion/completions/certreg-admin").is_file() == \
        (DEPLOY / "bash-completion/certreg-admin").is_file()
    p = analyze("verify", *(unitdir / n for n in UNITS), man=prefix / "share/man")
    ours = [l for l in (p.stdout + p.stderr).splitlines()
            if any(n in l for n in UNITS) or str(prefix) in l]
    assert p.returncode == 0 and not ours, p.stdout + p.stderr
    p = subprocess.run(["make", "-C", str(REPO), "uninstall", f"PREFIX={prefix}", "DESTDIR="],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert [str(f) for f in prefix.rglob("*") if f.is_file()] == []


def test_make_deb_reads_the_package_version_after_installing_dpkg_dev(tmp_path):
    """`make deb` on a fresh Debian 12 (README, "Install"): its first step
    installs dpkg-dev, so the version must be read by the recipe, not when
    make parses the Makefile, when dpkg-parsechangelog is not there yet.
    Read then, it was empty: the build put its packages in the parent
    directory, left build/deb/ empty and failed at lintian with
    `certreg__amd64.changes is not a readable file`. Here make runs with a
    PATH that holds no dpkg tool at all, as the fresh machine's parse does,
    and prints (-n) the recipe it would run."""
    p = subprocess.run(["/usr/bin/make", "-n", "-C", str(REPO), "deb"],
                       env={"PATH": str(tmp_path), "LC_ALL": "C"},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "certreg__" not in p.stdout, p.stdout
    assert "$(dpkg-parsechangelog -S Version)" in p.stdout, p.stdout


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None,
                    reason="systemd-sysusers not installed")
def test_sysusers_creates_a_system_user_without_a_shell(tmp_path):
    (tmp_path / "etc").mkdir()
    p = subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                        str(DEPLOY / "certreg.sysusers")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    users = {l.split(":")[0]: l.split(":") for l in
             (tmp_path / "etc/passwd").read_text().splitlines()}
    assert "certreg" in users
    name, _, uid, gid, _, home, shell = users["certreg"]
    assert int(uid) < 1000 and shell == "/usr/sbin/nologin"
    assert "certreg" in (tmp_path / "etc/group").read_text()


def test_example_config_names_every_setting():
    """Every row of common/config.c's settings table appears in the example,
    in its section."""
    table = re.findall(r'\{"(\w+)", "(\w+)", CT_', (REPO / "common/config.c").read_text())
    assert len(table) > 10
    section, seen = None, set()
    for line in (DEPLOY / "certreg.conf.example").read_text().splitlines():
        m = re.match(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
        m = re.match(r";?\s*(\w+)\s*=", line)
        if m and section:
            seen.add((section, m.group(1)))
    assert sorted(set(table) - seen) == []


def test_example_config_is_accepted_by_certregd(tmp_path, pki):
    text = (DEPLOY / "certreg.conf.example").read_text()
    for old, new in (("/etc/certreg/server.pem", pki.path("server/server.pem")),
                     ("/etc/certreg/server.key", pki.path("server/server.key")),
                     ("/etc/certreg/ca.pem", pki.path("ca/trust.pem"))):
        assert old in text
        text = text.replace(old, str(new))
    conf = tmp_path / "certreg.conf"
    conf.write_text(text)
    p = subprocess.run([str(BUILD / "certregd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_crl_refresh_script_is_posix_shell():
    script = DEPLOY / "certreg-crl-refresh"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/bin/sh\n")
    for shell in ("dash", "sh"):
        if shutil.which(shell):
            p = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
    if shutil.which("shellcheck"):
        p = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stdout


def test_crl_refresh_usage_errors_exit_2(tmp_path):
    script = str(DEPLOY / "certreg-crl-refresh")
    p = subprocess.run([script, "--bogus"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown argument" in p.stderr
    p = subprocess.run([script, "-c", str(tmp_path / "absent.conf")], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "give --crl-dir" in p.stderr
    p = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "Usage:" in p.stdout


class NotifySocket:
    """A systemd-style notify socket: collects (pid, message) datagrams."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        os.chmod(path, 0o777)  # certregd sends after dropping privileges
        self.messages = []
        self.pos = 0

    def expect(self, text, timeout=15):
        """Waits for the next message, after the last one expected, that
        contains text."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.pos, len(self.messages)):
                if text in self.messages[i][1]:
                    self.pos = i + 1
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the notify socket: {self.messages}")
            self.sock.settimeout(left)
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(payload[:4], "little")
            self.messages.append((pid, data.decode()))


def test_certregd_speaks_type_notify_from_its_main_process(tmp_path, monkeypatch, db,
                                                          certregd):
    """Type=notify with NotifyAccess=main: READY=1 after start, RELOADING=1
    then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, all from the main PID."""
    sockdir = tmp_path / "notify"
    sockdir.mkdir()
    open_for_daemon_user(sockdir)
    ns = NotifySocket(sockdir / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(ns.path))
    d = certregd(db)
    main = d.proc.pid
    ns.expect("READY=1")
    d.reload()
    ns.expect("RELOADING=1")
    ns.expect("READY=1")
    # Let the new workers install their SIGTERM handler first: a worker
    # signalled between fork() and that point loses the signal and never
    # drains (a supervisor/worker race, reported separately).
    workers = int(d.config["server"]["workers"])
    deadline = time.monotonic() + 15
    while d.log().count("event=worker_started") < 2 * workers:
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.05)
    assert d.stop() == 0
    ns.expect("STOPPING=1")
    senders = {pid for pid, _ in ns.messages}
    assert senders == {main}, f"notifications from {senders}, main PID {main}"
