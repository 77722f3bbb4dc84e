"""The newcomer's demo, `make run` (scripts/demo.sh, issue 31).

The demo runs on free ports in a directory of its own (never the checkout's
run/, where someone's demo may be running). `--selftest` runs exactly the
commands the demo prints - an OK login, a KEY_NOT_APPROVED one, the clerk
binding that key by its id, the same certificate OK a second later, a
SIGHUP reload - and checks each answer. The interactive demo must say it is
up only once both listeners answer, and Ctrl-C must stop certregd and the
PostgreSQL cluster.
"""
import os
import queue
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fixtures.cli import BUILD, REPO
from fixtures.daemon import free_port

DEMO = REPO / "scripts/demo.sh"


class Demo:
    """The environment of one demo run: ports, its directory, the build."""

    def __init__(self):
        # Under /tmp with mode 755: as root the demo's cluster and certregd
        # run as nobody, who cannot enter pytest's 0700 tmp_path.
        self.top = Path(tempfile.mkdtemp(prefix="certreg-demo-"))
        self.top.chmod(0o755)
        self.dir = self.top / "run"
        self.api_port, self.tls_port = free_port(), free_port()
        self.env = dict(os.environ,
                        BUILD=str(BUILD),
                        CERTREG_DEMO_DIR=str(self.dir),
                        CERTREG_DEMO_API=f"127.0.0.1:{self.api_port}",
                        CERTREG_DEMO_TLS=f"127.0.0.1:{self.tls_port}",
                        CERTREG_DEMO_PGPORT=str(free_port()))
        self.env.pop("CERTREG_DB", None)

    def log(self):
        p = self.dir / "certregd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def assert_stopped(self):
        """certregd stopped by SIGTERM (its last line), the cluster stopped,
        both ports free again."""
        assert "event=stopped" in self.log(), self.log()
        assert not (self.dir / "pg/data/postmaster.pid").exists()
        for port in (self.api_port, self.tls_port):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def close(self):
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def demo():
    d = Demo()
    yield d
    d.close()


def test_selftest_runs_the_printed_commands_and_stops_cleanly(demo):
    p = subprocess.run([str(DEMO), "--selftest"], env=demo.env, capture_output=True,
                       text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    for step in ("approved key logs in", "unknown key is KEY_NOT_APPROVED",
                 "pending list shows the key", "clerk binds the key by its id",
                 "same certificate OK a second later", "SIGHUP reload, then ready",
                 "the log shows the reload"):
        assert f"demo selftest: ok   {step}\n" in p.stdout, out
    assert "FAIL" not in out and p.stdout.endswith("demo selftest: passed\n"), out
    # The reload really happened, on the signal, and was not a failed one.
    assert re.search(r"event=reloaded trigger=\S*", demo.log()), demo.log()
    assert "event=reload_failed" not in demo.log()
    demo.assert_stopped()


def test_selftest_fails_when_a_printed_command_does_not_give_its_outcome(demo):
    """The self-test can fail: with the issuing CA missing from
    intermediates_file, the leaf-only login of step 2 is CERT_UNTRUSTED."""
    shutil.copy(REPO / "scripts/demo.sh", demo.top / "demo.sh")
    script = (demo.top / "demo.sh").read_text()
    # The copy still finds the checkout's tests/pki through its own path.
    script = script.replace('top=$(cd "$(dirname "$0")/.." && pwd)', f"top={REPO}")
    script = script.replace("intermediates_file = $run/pki/ca/intermediates.pem\n", "")
    (demo.top / "demo.sh").write_text(script)
    p = subprocess.run(["sh", str(demo.top / "demo.sh"), "--selftest"], env=demo.env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "demo selftest: FAIL unknown key is KEY_NOT_APPROVED" in p.stderr
    assert "CERT_UNTRUSTED" in p.stderr
    demo.assert_stopped()


def at_a_terminal():
    """The demo's process as a terminal starts it: a session of its own, and
    SIGINT at its default. A suite started in the background of a
    non-interactive shell (`make check &`) inherits SIGINT ignored, and a
    shell cannot trap a signal it was started ignoring: Ctrl-C would then
    reach nothing the script can act on."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_is_up_only_when_it_answers_and_ctrl_c_stops_everything(demo):
    proc = subprocess.Popen([str(DEMO)], env=demo.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=at_a_terminal)
    lines = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + 120
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "demo exited:\n" + "".join(seen)
            seen.append(line)
            if line.startswith("certreg demo is up"):
                break
        # At the moment it says so, both listeners answer.
        with urllib.request.urlopen(f"http://127.0.0.1:{demo.api_port}/healthz",
                                    timeout=5) as r:
            assert r.status == 200
        socket.create_connection(("127.0.0.1", demo.tls_port), timeout=2).close()
        # Read the rest of the banner, then paste its first command.
        while not seen[-1].startswith("Stop with Ctrl-C"):
            line = lines.get(timeout=10)
            assert line is not None, "".join(seen)
            seen.append(line)
        banner = "".join(seen)
        first = banner.split("# 1. OK", 1)[1].splitlines()[1].strip()
        p = subprocess.run(["sh", "-c", first], capture_output=True, text=True, timeout=30)
        assert '"outcome": "OK"' in p.stdout.replace('":"', '": "'), (first, p.stdout)
        assert "kill -HUP" in banner and "key bind" in banner
        # Ctrl-C: SIGINT to the terminal's whole process group.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    demo.assert_stopped()


as_root = pytest.mark.skipif(os.geteuid() != 0,
                             reason="as root only: the demo runs its cluster as nobody")


@as_root
def test_a_checkout_in_a_private_home_runs_the_demo_under_tmp(demo):
    """`make run` as root from a checkout in root's home (mode 700 on
    Debian): nobody, who runs the cluster and certregd, cannot reach the
    checkout's run/, so the demo runs in a private directory under /tmp and
    removes it when it stops; nothing is written into the checkout."""
    home = Path(tempfile.mkdtemp(prefix="certreg-home-"))  # mode 700
    try:
        checkout = home / "certreg"
        (checkout / "scripts").mkdir(parents=True)
        (checkout / "tests").mkdir()
        shutil.copy(DEMO, checkout / "scripts/demo.sh")
        (checkout / "tests/pki").symlink_to(REPO / "tests/pki")
        env = dict(demo.env)
        del env["CERTREG_DEMO_DIR"]
        p = subprocess.run([str(checkout / "scripts/demo.sh"), "--selftest"], env=env,
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        assert p.stdout.endswith("demo selftest: passed\n"), out
        m = re.search(r"the demo's files are in (/tmp/certreg-demo\.\w+) instead", p.stdout)
        assert m, out
        assert not Path(m.group(1)).exists()
        assert not (checkout / "run").exists()
        assert "Permission denied" not in out, out
    finally:
        shutil.rmtree(home, ignore_errors=True)


@as_root
def test_a_demo_dir_nobody_cannot_reach_is_refused_before_anything_starts(demo):
    private = Path(tempfile.mkdtemp(prefix="certreg-private-"))  # mode 700
    try:
        env = dict(demo.env, CERTREG_DEMO_DIR=str(private / "run"))
        p = subprocess.run([str(DEMO), "--selftest"], env=env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"CERTREG_DEMO_DIR={private}/run: user nobody cannot reach {private}" in p.stderr
        assert list(private.iterdir()) == []
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_make_run_installs_only_what_building_and_the_demo_need():
    """scripts/deps.sh's run group (what `make run` installs): a compiler and
    the libraries, PostgreSQL, the PKI's and the demo's tools; none of the
    test tools, and no nginx (the demo shows certregd alone)."""
    def group(*names):
        p = subprocess.run([str(REPO / "scripts/deps.sh"), "--list", *names],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return set(p.stdout.split())

    run, build = group("run"), group("build")
    assert {"gcc", "make", "pkg-config", "libpq-dev", "libssl-dev", "libevent-dev",
            "postgresql-15", "python3", "openssl", "curl"} <= run
    for pkg in ("valgrind", "clang", "llvm", "libcmocka-dev", "nginx-light",
                "python3-pytest", "python3-psycopg2", "python3-pyflakes", "man-db"):
        assert pkg not in run, pkg
        assert pkg in build, pkg
    assert run <= build
    # make run asks for that group, not for `make deps` (everything).
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/deps.sh run" in recipe and "deps" not in recipe.split("\n")[0]


def test_no_other_local_user_can_reach_the_demo_cluster(demo):
    """The demo's cluster trusts every connection on its socket (initdb
    --auth=trust) as the superuser postgres, who may run programs (COPY ...
    TO PROGRAM) as the cluster's owner: the developer, or nobody under root.
    So the socket is its owner's alone; the directory around it stays open
    (nobody must reach it under root)."""
    proc = subprocess.Popen([str(DEMO)], env=demo.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=at_a_terminal)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("certreg demo is up"):
                break
        assert seen and seen[-1].startswith("certreg demo is up"), "".join(seen)
        sock = demo.dir / "pg/sock" / f".s.PGSQL.{demo.env['CERTREG_DEMO_PGPORT']}"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert sock.stat().st_mode & 0o077 == 0, oct(sock.stat().st_mode)
        if os.geteuid() == 0:
            # A local user of its own, neither root nor nobody.
            pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
            p = subprocess.run(
                ["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", str(pgbin),
                 "-h", str(sock.parent), "-p", demo.env["CERTREG_DEMO_PGPORT"], "-U",
                 "postgres", "-d", "certreg", "-Atc", "SELECT current_user"],
                capture_output=True, text=True, timeout=30, cwd="/")
            assert p.returncode != 0 and "Permission denied" in p.stderr, p.stdout + p.stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
    demo.assert_stopped()
