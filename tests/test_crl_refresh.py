"""deploy/certreg-crl-refresh: fetch, verify, compare, install, reload.

CRLs are served over HTTP on loopback from the test PKI's CRL sets. The
script reads ca_file, intermediates_file and crl_dir from a certregd
configuration, as it does in production. Each CRL set of the PKI differs
from crl/ only in int's CRL: crl-old/ is an older one (number 5) that does
not list `revoked`, crl-badsig/ a forged one (number 17).
"""
import base64
import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fixtures.daemon import open_for_daemon_user

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy/certreg-crl-refresh"


class CrlServer:
    """http.server over a directory on 127.0.0.1, in a thread, stopped at
    teardown; every request is bounded by a socket timeout."""

    def __init__(self, root):
        class Handler(http.server.SimpleHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path, pki):
    """The PKI's CRL sets, plus anything a test writes, over HTTP."""
    root = tmp_path / "www"
    root.mkdir()
    for name in ("crl", "crl-old", "crl-badsig", "crl-der"):
        shutil.copytree(pki.path(name), root / name)
    srv = CrlServer(root)
    srv.root = root
    yield srv
    srv.close()


@pytest.fixture
def crl_dir(tmp_path):
    d = tmp_path / "crl"
    d.mkdir()
    d.chmod(0o755)
    return d


def write_conf(tmp_path, pki, crl_dir, intermediates=True):
    conf = tmp_path / "certreg.conf"
    lines = ["[trust]", f"ca_file = {pki.path('ca/trust.pem')}   ; the roots",
             f"crl_dir = {crl_dir}"]
    if intermediates:
        lines.append(f"intermediates_file = {pki.path('ca/intermediates.pem')}")
    conf.write_text("\n".join(lines) + "\n")
    return conf


def fake_systemctl(tmp_path, main_pid):
    """A PATH directory whose systemctl answers `show --property MainPID
    --value certregd.service` with main_pid, as systemd would."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    tool = bindir / "systemctl"
    tool.write_text("#!/bin/sh\n"
                    f'echo "$*" >>{tmp_path / "systemctl.args"}\n'
                    f"echo {main_pid}\n")
    tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def refresh(tmp_path, conf, *sources, reload_cmd=None, extra=(), env=None):
    """Runs the script on SOURCES ("NAME URL" lines); returns the process.
    The default reload command leaves a marker, so tests see whether it
    ran; reload_cmd=False runs the script's own reload (SIGHUP to
    certregd.service's main PID)."""
    src = tmp_path / "crl-sources"
    src.write_text("# name url\n\n" + "\n".join(sources) + "\n")
    if reload_cmd is None:
        reload_cmd = f"touch {tmp_path / 'reloaded'}"
    reload = [] if reload_cmd is False else ["--reload-cmd", reload_cmd]
    p = subprocess.run([str(SCRIPT), "-c", str(conf), "-s", str(src), *reload, *extra],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    p.events = re.findall(r"event=(\w+) name=([\w.-]+)", p.stderr)
    return p


def der_of(path):
    """DER of a PEM or DER CRL file."""
    data = Path(path).read_bytes()
    if data.startswith(b"-----"):
        body = re.search(rb"-----BEGIN X509 CRL-----(.*?)-----END X509 CRL-----", data, re.S)
        return base64.b64decode(b"".join(body.group(1).split()))
    return data


def snapshot(d):
    """Name -> (bytes, mtime_ns) of every file in d, dotfiles included
    (a staged temp file left behind would show here)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.iterdir())
            if p.name != ".certreg-crl-refresh.lock"}


def test_newer_crl_is_installed_and_certregd_then_revokes(tmp_path, pki, served, crl_dir,
                                                          db, certregd):
    for f in pki.path("crl-old").iterdir():
        shutil.copy(f, crl_dir)
    open_for_daemon_user(crl_dir)
    d = certregd(db, trust={"crl_dir": crl_dir, "revocation": "require",
                            "intermediates_file": pki.path("ca/intermediates.pem")})
    before = d.verify(pki.read("revoked")).json()
    assert before["outcome"] == "KEY_NOT_APPROVED"  # crl-old/ does not list it

    # The script's own reload: SIGHUP to certregd.service's MainPID.
    p = refresh(tmp_path, d.conf_path, f"int {served.url}/crl/int.crl.pem",
                reload_cmd=False, env=fake_systemctl(tmp_path, d.proc.pid))
    assert p.returncode == 0, p.stderr
    assert p.events == [("installed", "int")], p.stderr
    assert "number=0x10" in p.stderr
    assert f"event=reloaded installed=1 unit=certregd.service pid={d.proc.pid}" in p.stderr
    assert (tmp_path / "systemctl.args").read_text() == \
        "show --property MainPID --value certregd.service\n"
    assert der_of(crl_dir / "int.crl.pem") == der_of(pki.path("crl/int.crl.pem"))
    assert (crl_dir / "int.crl.pem").stat().st_mode & 0o777 == 0o644

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = d.verify(pki.read("revoked")).json()
        if after["outcome"] != before["outcome"]:
            break
        time.sleep(0.2)
    assert after["outcome"] == "CERT_REVOKED", d.log()
    assert "event=reloaded trigger=sighup" in d.log()
    settle(d)


def settle(d):
    """Waits until every reload's workers have started, so that stopping
    the daemon at teardown does not signal a worker still between fork()
    and its SIGTERM handler (a supervisor race, reported separately)."""
    workers = int(d.config["server"]["workers"])
    deadline = time.monotonic() + 15
    while True:
        log = d.log()
        if log.count("event=worker_started") >= workers * (1 + log.count("event=reloaded ")):
            return
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def test_no_reload_when_certregd_is_not_running(tmp_path, pki, served, crl_dir):
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"root {served.url}/crl/root.crl.pem", reload_cmd=False,
                env=fake_systemctl(tmp_path, 0))
    assert p.returncode == 0 and "event=reload_skipped" in p.stderr, p.stderr
    assert (crl_dir / "root.crl.pem").exists()


def test_crl_with_a_bad_signature_is_refused_and_the_old_one_kept(tmp_path, pki, served,
                                                                 crl_dir):
    shutil.copy(pki.path("crl/int.crl.pem"), crl_dir)
    before = snapshot(crl_dir)
    # Higher number (17), int's name and key id: only the signature is wrong.
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl-badsig/int.crl.pem")
    assert p.returncode == 1
    assert p.events == [("refused", "int")], p.stderr
    assert "signature does not verify" in p.stderr
    assert snapshot(crl_dir) == before
    assert not (tmp_path / "reloaded").exists()


def test_crl_with_an_older_number_is_refused_and_the_old_one_kept(tmp_path, pki, served,
                                                                  crl_dir):
    shutil.copy(pki.path("crl/int.crl.pem"), crl_dir)
    before = snapshot(crl_dir)
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl-old/int.crl.pem")
    assert p.returncode == 1
    assert p.events == [("refused", "int")], p.stderr
    assert "CRL number 0x5 is lower than the installed 0x10" in p.stderr
    assert snapshot(crl_dir) == before


def test_the_same_crl_again_changes_nothing(tmp_path, pki, served, crl_dir):
    shutil.copy(pki.path("crl/int.crl.pem"), crl_dir)
    before = snapshot(crl_dir)
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl/int.crl.pem")
    assert p.returncode == 0 and p.events == [("unchanged", "int")], p.stderr
    assert snapshot(crl_dir) == before
    assert not (tmp_path / "reloaded").exists()  # nothing changed: no reload


def test_der_crl_is_verified_and_installed_as_pem(tmp_path, pki, served, crl_dir):
    shutil.copy(pki.path("crl-old/int.crl.pem"), crl_dir)
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl-der/int.crl.der")
    assert p.returncode == 0 and p.events == [("installed", "int")], p.stderr
    installed = (crl_dir / "int.crl.pem").read_bytes()
    assert installed.startswith(b"-----BEGIN X509 CRL-----")
    assert der_of(crl_dir / "int.crl.pem") == pki.path("crl-der/int.crl.der").read_bytes()
    assert (tmp_path / "reloaded").exists()
    assert sorted(p.name for p in crl_dir.iterdir()) == [".certreg-crl-refresh.lock",
                                                         "int.crl.pem"]


def test_crl_of_another_issuer_is_refused(tmp_path, pki, served, crl_dir):
    shutil.copy(pki.path("crl-old/int.crl.pem"), crl_dir)
    before = snapshot(crl_dir)
    # root's CRL is validly signed and numbered 16 > 5, but it is not int's.
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl/root.crl.pem")
    assert p.returncode == 1 and "issuer differs" in p.stderr
    assert snapshot(crl_dir) == before


def test_crl_of_an_issuer_outside_the_trust_store_is_refused(tmp_path, pki, served, crl_dir):
    # Without intermediates_file the trust store holds only the roots, so
    # nothing can vouch for int's signature.
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir, intermediates=False),
                f"int {served.url}/crl/int.crl.pem")
    assert p.returncode == 1 and p.events == [("refused", "int")], p.stderr
    assert list(crl_dir.glob("*.pem")) == []
    # --ca-file adds signers.
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir, intermediates=False),
                f"int {served.url}/crl/int.crl.pem",
                extra=["--ca-file", str(pki.path("ca/int.pem"))])
    assert p.returncode == 0 and p.events == [("installed", "int")], p.stderr


def test_sm2_crl_is_verified_with_the_gmt_0009_id(tmp_path, pki, served, crl_dir):
    genuine = pki.path("crl/sm2-int.crl.pem")
    # The limitation worked around: openssl crl cannot verify it ...
    p = subprocess.run(["openssl", "crl", "-in", str(genuine), "-noout", "-CAfile",
                        str(pki.path("ca/sm2-int.pem"))], capture_output=True, text=True)
    assert "verify OK" not in p.stderr
    # ... the script can, and refuses a forgery.
    der = bytearray(der_of(genuine))
    der[-1] ^= 0x01  # last octet of s in the SM2 signature, still valid DER
    (served.root / "sm2-forged.crl").write_bytes(bytes(der))
    conf = write_conf(tmp_path, pki, crl_dir)
    p = refresh(tmp_path, conf, f"sm2-int {served.url}/sm2-forged.crl")
    assert p.returncode == 1 and p.events == [("refused", "sm2-int")], p.stderr
    assert not (crl_dir / "sm2-int.crl.pem").exists()
    p = refresh(tmp_path, conf, f"sm2-int {served.url}/crl/sm2-int.crl.pem")
    assert p.returncode == 0 and p.events == [("installed", "sm2-int")], p.stderr
    assert der_of(crl_dir / "sm2-int.crl.pem") == der_of(genuine)


def test_each_crl_is_handled_on_its_own(tmp_path, pki, served, crl_dir):
    """A source that fails does not stop the others; one line per CRL."""
    shutil.copy(pki.path("crl-old/int.crl.pem"), crl_dir)
    (served.root / "page.html").write_text("<html>not a CRL</html>")
    (served.root / "huge.crl").write_bytes(b"0" * 200_000)
    before = (crl_dir / "int.crl.pem").read_bytes()
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"gone {served.url}/no-such.crl",
                f"page {served.url}/page.html",
                f"huge {served.url}/huge.crl",
                f"root {served.url}/crl/root.crl.pem",
                f"int {served.url}/crl-badsig/int.crl.pem",
                extra=["--max-size", "100000"])
    assert p.returncode == 1, p.stderr
    assert p.events == [("fetch_failed", "gone"), ("refused", "page"),
                        ("fetch_failed", "huge"), ("installed", "root"),
                        ("refused", "int")], p.stderr
    assert len(p.stderr.strip().splitlines()) == 6  # five CRLs and the reload
    assert (crl_dir / "int.crl.pem").read_bytes() == before
    assert sorted(x.name for x in crl_dir.glob("*.pem")) == ["int.crl.pem", "root.crl.pem"]
    assert (tmp_path / "reloaded").exists()


def test_a_password_in_a_source_url_is_not_logged(tmp_path, pki, served, crl_dir):
    (served.root / "page.html").write_text("<html>not a CRL</html>")
    netloc = served.url.split("://", 1)[1]
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"gone http://crl:s3cret@{netloc}/no-such.crl",
                f"page http://s3cret@{netloc}/page.html")
    assert p.events == [("fetch_failed", "gone"), ("refused", "page")], p.stderr
    assert "s3cret" not in p.stderr
    assert f'url="http://***@{netloc}/no-such.crl"' in p.stderr
    assert f'url="http://***@{netloc}/page.html"' in p.stderr


def test_reload_failure_is_exit_3_after_installing(tmp_path, pki, served, crl_dir):
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"root {served.url}/crl/root.crl.pem", reload_cmd="exit 7")
    assert p.returncode == 3 and "event=reload_failed" in p.stderr
    assert (crl_dir / "root.crl.pem").exists()


def test_bad_source_lines_are_reported(tmp_path, pki, served, crl_dir):
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                "../evil http://127.0.0.1:1/x", "only-a-name")
    assert p.returncode == 1
    assert p.stderr.count("event=bad_source") == 2, p.stderr
    assert list(tmp_path.glob("evil*")) == [] and list(crl_dir.glob("*.pem")) == []


def test_a_crl_dir_another_user_can_change_is_refused(tmp_path, pki, served, crl_dir):
    """With crl_fetch = yes crl_dir belongs to certregd's user. That user
    can put a symbolic link under any name there, e.g. the name the script
    stages a CRL under (.NAME.crl.pem.tmp.PID, the PID guessed by planting
    a range), and the script, run as root, would write through it and
    chmod what it points at. So it refuses, before writing anything, a
    crl_dir that another user owns or that its group or others may write."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(crl_dir, 4242, 4242)  # certregd's user, say
    else:
        crl_dir.chmod(0o777)
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(last + 1, last + 3000):
        pid = pid if pid <= pid_max else pid - pid_max + 300
        (crl_dir / f".int.crl.pem.tmp.{pid}").symlink_to(victim)
    p = refresh(tmp_path, write_conf(tmp_path, pki, crl_dir),
                f"int {served.url}/crl/int.crl.pem")
    assert victim.read_text() == "precious\n" and victim.stat().st_mode & 0o777 == 0o600
    assert p.returncode == 2, p.stderr
    assert f"crl_dir {crl_dir} may be changed by another user" in p.stderr, p.stderr
    assert not (crl_dir / "int.crl.pem").exists()
    assert not (crl_dir / ".certreg-crl-refresh.lock").exists()


def test_a_crl_dir_under_a_directory_another_user_can_change_is_refused(tmp_path, pki, served):
    """crl_dir itself may be root's and safe, but whoever may write the
    directory above it can rename crl_dir away while the script downloads
    and put a directory of their own, with a link under the staging name,
    in its place: root then writes through the link and chmods what it
    points at. (Here the swap happens when the CRL is requested, and the
    script's PID is known, as `ps` shows it to anyone.) So every
    directory above crl_dir must be root's or the user's running the
    script, and writable by nobody else unless sticky."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    state = tmp_path / "state"  # certregd's own, e.g. /var/lib/certreg
    state.mkdir()
    crl_dir = state / "crl"
    crl_dir.mkdir()
    crl_dir.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(state, 4242, 4242)
    else:
        state.chmod(0o777)
    script = {}

    class Swapping(http.server.SimpleHTTPRequestHandler):
        timeout = 10

        def log_message(self, *args):
            pass

        def do_GET(self):
            crl_dir.rename(state / "crl.moved")
            crl_dir.mkdir()
            (crl_dir / f".int.crl.pem.tmp.{script['pid']}").symlink_to(victim)
            super().do_GET()

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Swapping, directory=str(served.root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        src = tmp_path / "crl-sources"
        src.write_text(f"int http://127.0.0.1:{srv.server_address[1]}/crl/int.crl.pem\n")
        proc = subprocess.Popen([str(SCRIPT), "-c", str(write_conf(tmp_path, pki, crl_dir)),
                                 "-s", str(src), "--reload-cmd", ""],
                                stderr=subprocess.PIPE, text=True)
        script["pid"] = proc.pid
        _, err = proc.communicate(timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    assert victim.read_text() == "precious\n" and victim.stat().st_mode & 0o777 == 0o600
    assert proc.returncode == 2, err
    assert f"crl_dir {crl_dir} may be replaced by another user: {state}" in err, err
    assert not (state / "crl.moved").exists()
    assert not (crl_dir / ".certreg-crl-refresh.lock").exists()
