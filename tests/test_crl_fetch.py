"""CRLs fetched by certregd itself: `crl_fetch = yes`, `crl_fetch_interval`.

A PKI of its own (`cryptography`): a root, an issuing CA whose CRL
distribution point names the root's CRL, and leaves whose distribution
point names the issuing CA's CRL, both on a loopback HTTP server in the
test that signs a fresh CRL for every GET (so a test changes what is
revoked, how long a CRL is valid, or makes the server fail or forge). The
daemons start with an empty crl_dir and `revocation = require`: until the
daemon has fetched the CRLs it is not ready and refuses with
CERT_REVOCATION_UNKNOWN.

What each test guards:
- the CRLs of the configured CAs' and the seen certificates' distribution
  points are fetched, installed in crl_dir and applied; a certificate
  revoked at the CA is refused within one refresh;
- a CRL valid for a few seconds is fetched again before its nextUpdate, so
  the daemon never stops being ready;
- a failed download (HTTP error, a forged CRL) keeps the installed CRL and
  is reported in /metrics, in /readyz's warnings and by certreg-admin check;
- a URL's CRL comes only from the CA whose certificates name it, complete
  (no delta, no issuing distribution point) and never older than a CRL of
  that CA in crl_dir: what an on-path attacker of the plain-HTTP download
  serves instead (another CA's CRL, then the CA's CRL from before a
  revocation) is refused, on the first download of a URL too;
- at most two downloads run at a time (each body is held whole), the
  others wait their turn;
- `certregd -t` refuses crl_fetch when the daemon's user cannot write
  crl_dir.
"""
import datetime
import hashlib
import json
import http.server
import os
import pwd
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fixtures.cli import admin
from fixtures.daemon import BUILD, free_port, open_for_daemon_user

UTC = datetime.timezone.utc


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certreg CRL fetch test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer=None, issuer_key=None, ca=False, cdp=None):
    now = datetime.datetime.now(UTC)
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer.subject if issuer else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, ca, ca, False, False),
                        critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    if cdp:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(cdp)], None, None, None)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


class CrlServer:
    """Serves /root.crl and /int.crl, each signed anew per GET; `revoked`
    (name -> set of serials), `validity` (seconds), `mode` (name -> "ok",
    "error" for a 500, "forged" for a CRL signed by another key, "other"
    for the other CA's current CRL, "stale" for a CRL of an hour ago
    listing nothing, "delta" for a delta CRL and "scoped" for a CRL with an
    issuing distribution point, both newer and listing nothing), `gets`
    (path -> count)."""

    def __init__(self, port, pki):
        self.revoked = {"root": set(), "int": set()}
        self.validity = 86400
        self.mode = {"root": "ok", "int": "ok"}
        self.gets = {}
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                me.gets[self.path] = me.gets.get(self.path, 0) + 1
                name = self.path.strip("/").split(".")[0]
                if name not in me.mode or me.mode[name] == "error":
                    self.send_response(500 if name in me.mode else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                mode = me.mode[name]
                if mode == "other":
                    name = "root" if name == "int" else "int"
                body = pki.crl(name, set() if mode in ("stale", "delta", "scoped")
                               else me.revoked[name], me.validity, forged=mode == "forged",
                               age=3600 if mode == "stale" else 0,
                               kind=mode if mode in ("delta", "scoped") else None)
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Pki:
    def __init__(self, d, port):
        base = f"http://127.0.0.1:{port}"
        self.dir = d
        self.keys = {n: ec.generate_private_key(ec.SECP256R1())
                     for n in ("root", "int", "good", "victim", "forger")}
        self.certs = {"root": _cert("CRL Test Root", self.keys["root"], ca=True)}
        self.certs["int"] = _cert("CRL Test Issuing CA", self.keys["int"], self.certs["root"],
                                  self.keys["root"], ca=True, cdp=f"{base}/root.crl")
        for n in ("good", "victim"):
            self.certs[n] = _cert(f"CRL Test {n}", self.keys[n], self.certs["int"],
                                  self.keys["int"], cdp=f"{base}/int.crl")
        for n in ("root", "int"):
            (d / f"{n}.pem").write_bytes(self.certs[n].public_bytes(serialization.Encoding.PEM))
            (d / f"{n}.pem").chmod(0o644)
        open_for_daemon_user(d)

    def pem(self, name):
        return self.certs[name].public_bytes(serialization.Encoding.PEM).decode()

    def crl(self, name, serials, validity, forged=False, age=0, kind=None):
        """A CRL issued `age` seconds ago (its number, milliseconds since the
        epoch, then too); kind "delta" or "scoped" adds a delta CRL
        indicator or an issuing distribution point."""
        issued = time.time() - age
        now = datetime.datetime.fromtimestamp(int(issued), UTC)
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.certs[name].subject)
             .last_update(now).next_update(now + datetime.timedelta(seconds=validity + age))
             .add_extension(x509.CRLNumber(int(issued * 1000)), critical=False))
        if kind == "delta":
            b = b.add_extension(x509.DeltaCRLIndicator(int(issued * 1000) - 60000),
                                critical=True)
        elif kind == "scoped":
            b = b.add_extension(x509.IssuingDistributionPoint(
                full_name=None, relative_name=None, only_contains_user_certs=True,
                only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=False,
                only_contains_attribute_certs=False), critical=True)
        for s in serials:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s)
                                          .revocation_date(now).build())
        key = self.keys["forger" if forged else name]
        return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def port():
    return free_port()


@pytest.fixture(scope="module")
def cpki(tmp_path_factory, port):
    d = tmp_path_factory.mktemp("crlfetch-pki")
    d.chmod(0o755)
    return Pki(d, port)


@pytest.fixture
def server(port, cpki):
    s = CrlServer(port, cpki)
    yield s
    s.close()


def daemon_crl_dir(tmp_path):
    """An empty crl_dir the daemon's user owns (it writes there)."""
    d = tmp_path / "fetched-crls"
    d.mkdir()
    d.chmod(0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        os.chown(d, pw.pw_uid, pw.pw_gid)
    open_for_daemon_user(d)
    return d


@pytest.fixture
def start(certregd, db, cpki, tmp_path):
    def run(interval=2, **trust):
        crl_dir = daemon_crl_dir(tmp_path)
        d = certregd(db, trust={"ca_file": cpki.dir / "root.pem",
                                "intermediates_file": cpki.dir / "int.pem",
                                "crl_dir": crl_dir, "revocation": "require",
                                "crl_fetch": "yes", "crl_fetch_interval": interval, **trust})
        d.crl_dir = crl_dir
        return d
    return run


def started(d, pki):
    """The issuing CA's CRL is named only in the leaves: the first leaf the
    daemon verifies (refused for want of that CRL) makes it fetch it."""
    assert outcome(d, pki, "good") == "CERT_REVOCATION_UNKNOWN"
    assert wait_for(lambda: d.get("/readyz").status == 200), d.get("/readyz").body


def wait_for(what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.2)
    return False


def outcome(d, pki, name):
    return d.verify(pki.pem(name)).json()["outcome"]


def metric(d, name, url):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith(f'{name}{{url="{url}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_fetched_applied_and_a_revocation_within_one_refresh(start, cpki, server, port):
    d = start()
    started(d, cpki)
    files = sorted(p.name for p in d.crl_dir.iterdir())
    assert len(files) == 2 and all(f.startswith("fetched-") for f in files), files
    assert outcome(d, cpki, "victim") == "KEY_NOT_APPROVED"
    for path in ("root", "int"):
        url = f"http://127.0.0.1:{port}/{path}.crl"
        assert metric(d, "certreg_crl_fetch_last_success_timestamp_seconds", url) > 0
        assert metric(d, "certreg_crl_fetch_next_update_timestamp_seconds", url) > time.time()
    assert "event=crl_fetched" in d.log() and "trigger=crl_fetched" in d.log()

    server.revoked["int"].add(cpki.certs["victim"].serial_number)
    t0 = time.monotonic()
    assert wait_for(lambda: outcome(d, cpki, "victim") == "CERT_REVOKED", timeout=10)
    # One refresh is crl_fetch_interval (2 s), plus the reload.
    assert time.monotonic() - t0 < 6
    assert outcome(d, cpki, "good") == "KEY_NOT_APPROVED"


def test_refreshed_before_next_update(start, cpki, server):
    server.validity = 6
    d = start(interval=3600)
    started(d, cpki)
    first = server.gets.get("/int.crl", 0)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        r = d.get("/readyz")
        assert r.status == 200, r.body  # never past a nextUpdate
        time.sleep(0.5)
    # Every 6-second CRL is fetched again in its last quarter's start.
    assert server.gets["/int.crl"] - first >= 2


@pytest.mark.parametrize("failure", ["error", "forged"])
def test_failed_fetch_keeps_the_installed_crl(start, cpki, server, port, failure):
    d = start()
    started(d, cpki)
    url = f"http://127.0.0.1:{port}/int.crl"
    # The issuing CA's file (the root's is replaced by each newer CRL).
    installed = d.crl_dir / f"fetched-{hashlib.sha256(url.encode()).hexdigest()[:16]}.crl"
    before = installed.read_bytes()
    server.mode["int"] = failure
    server.revoked["int"].add(cpki.certs["victim"].serial_number)  # never seen
    assert wait_for(lambda: (metric(d, "certreg_crl_fetch_errors_total", url) or 0) >= 2)
    assert installed.read_bytes() == before
    ready = d.get("/readyz")
    assert ready.status == 200, ready.body
    assert any(url in w for w in ready.json()["warnings"]), ready.body
    assert outcome(d, cpki, "victim") == "KEY_NOT_APPROVED"
    assert ("event=crl_fetch_refused" if failure == "forged" else "event=crl_fetch_failed") \
        in d.log()
    probe = admin("dbname=unused", "--json", "check", "--url", d.api, check=False)
    assert probe.returncode == 1, probe.stdout + probe.stderr
    got = json.loads(probe.stdout)
    assert url in got["message"]
    assert {c["url"]: c["status"] for c in got["crl_downloads"]}[url] == "WARNING"
    if failure == "forged":
        assert "not signed by a configured CA" in d.log()
    # Back to normal: the warning goes, the revocation arrives.
    server.mode["int"] = "ok"
    assert wait_for(lambda: outcome(d, cpki, "victim") == "CERT_REVOKED")
    assert wait_for(lambda: "warnings" not in d.get("/readyz").json())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run certregd -t -u nobody")
def test_check_refuses_a_crl_dir_the_daemon_cannot_write(tmp_path, cpki):
    crl_dir = tmp_path / "root-owned"
    crl_dir.mkdir()
    crl_dir.chmod(0o755)
    open_for_daemon_user(crl_dir)
    conf = tmp_path / "c.conf"
    conf.write_text(f"[server]\nlisten_tls =\n[trust]\nca_file = {cpki.dir / 'root.pem'}\n"
                    f"crl_dir = {crl_dir}\ncrl_fetch = yes\n")
    conf.chmod(0o644)
    open_for_daemon_user(tmp_path)
    p = subprocess.run([str(BUILD / "certregd"), "-t", "-u", "nobody", "-c", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "crl_fetch = yes needs it owned and writable" in p.stdout + p.stderr


def fetched_file(d, port, name):
    url = f"http://127.0.0.1:{port}/{name}.crl"
    return url, d.crl_dir / f"fetched-{hashlib.sha256(url.encode()).hexdigest()[:16]}.crl"


def downloads(server, path, n=2):
    """Waits for n more downloads of path: all but the last were answered
    (one source downloads one at a time), refused ones included (retried
    within crl_fetch_interval, 2 s)."""
    first = server.gets.get(path, 0)
    assert wait_for(lambda: server.gets.get(path, 0) >= first + n), server.gets


def revoke_victim(d, cpki, server):
    server.revoked["int"].add(cpki.certs["victim"].serial_number)
    assert wait_for(lambda: outcome(d, cpki, "victim") == "CERT_REVOKED")


@pytest.mark.parametrize("kind", ["other", "delta", "scoped"])
def test_a_crl_that_would_drop_revocations_is_refused(start, cpki, server, port, kind):
    """At the issuing CA's URL (plain HTTP) whoever is on the path may serve
    the root's current CRL, or a delta or a scoped CRL of the issuing CA:
    each verifies, and each used to replace that URL's file, dropping the
    issuing CA's revocations."""
    d = start()
    started(d, cpki)
    revoke_victim(d, cpki, server)
    url, installed = fetched_file(d, port, "int")
    before = installed.read_bytes()
    errors = metric(d, "certreg_crl_fetch_errors_total", url)
    server.mode["int"] = kind
    downloads(server, "/int.crl")
    assert installed.read_bytes() == before
    assert outcome(d, cpki, "victim") == "CERT_REVOKED"
    assert metric(d, "certreg_crl_fetch_errors_total", url) > errors
    assert "event=crl_fetch_refused" in d.log()
    assert ("but this URL is named by certificates of" if kind == "other"
            else "is a delta CRL or has an issuing distribution point") in d.log()


def test_an_older_crl_of_the_issuer_is_refused_wherever_the_newer_one_is(start, cpki, server,
                                                                          port):
    """The review's attack: the root's CRL at the issuing CA's URL, then the
    issuing CA's CRL of an hour ago (still current, from before the
    revocation), which used to be installed because it was compared only
    with the root's. It is refused, and still when the newer CRL is in
    another file of crl_dir and the URL's own file is gone."""
    d = start()
    started(d, cpki)
    revoke_victim(d, cpki, server)
    url, installed = fetched_file(d, port, "int")
    server.mode["int"] = "other"
    downloads(server, "/int.crl")
    server.mode["int"] = "stale"
    downloads(server, "/int.crl")
    assert outcome(d, cpki, "victim") == "CERT_REVOKED"
    assert "is lower than" in d.log()
    os.rename(installed, d.crl_dir / "int-by-hand.crl")
    downloads(server, "/int.crl")
    assert not installed.exists()
    assert outcome(d, cpki, "victim") == "CERT_REVOKED"
    assert d.get("/readyz").status == 200


def test_first_download_takes_only_the_issuer_that_names_the_url(start, cpki, server, port):
    """Nothing installed yet for the issuing CA's URL: its CRL must still be
    the issuing CA's, the CA whose certificates named the URL."""
    server.mode["int"] = "other"
    d = start()
    assert outcome(d, cpki, "good") == "CERT_REVOCATION_UNKNOWN"  # names int.crl
    url, installed = fetched_file(d, port, "int")
    downloads(server, "/int.crl")
    assert not installed.exists()
    assert "but this URL is named by certificates of" in d.log()
    server.mode["int"] = "ok"
    assert wait_for(lambda: d.get("/readyz").status == 200), d.get("/readyz").body
    assert installed.exists()


def test_at_most_two_downloads_at_a_time(certregd, db, tmp_path):
    """A root naming six distribution points, on a server that answers each
    GET after 1.5 s: all six are fetched, never more than two at once (each
    body up to 32 MiB is held until its download ends)."""
    port = free_port()
    key = ec.generate_private_key(ec.SECP256R1())
    urls = [f"http://127.0.0.1:{port}/root-{n}.crl" for n in range(6)]
    now = datetime.datetime.now(UTC)
    root = (x509.CertificateBuilder().subject_name(_name("CRL Slow Root"))
            .issuer_name(_name("CRL Slow Root")).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(u) for u in urls], None, None, None)]),
                critical=False)
            .sign(key, hashes.SHA256()))
    d = tmp_path / "slow-pki"
    d.mkdir()
    (d / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (d / "root.pem").chmod(0o644)
    open_for_daemon_user(d)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(root.subject)
           .last_update(now).next_update(now + datetime.timedelta(days=1))
           .add_extension(x509.CRLNumber(1), critical=False)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    lock = threading.Lock()
    state = {"now": 0, "most": 0, "gets": set()}

    class Slow(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
                state["gets"].add(self.path)
            time.sleep(1.5)
            with lock:
                state["now"] -= 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(crl)))
            self.end_headers()
            self.wfile.write(crl)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        certregd(db, trust={"ca_file": d / "root.pem", "intermediates_file": None,
                            "crl_dir": daemon_crl_dir(tmp_path), "revocation": "if-available",
                            "crl_fetch": "yes", "crl_fetch_interval": 3600})
        assert wait_for(lambda: len(state["gets"]) == 6, timeout=20), state
        assert state["most"] <= 2, state
    finally:
        server.shutdown()
        server.server_close()
