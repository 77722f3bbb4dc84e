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
- a URL's CRL comes only from the CA whose certificates name it, covers
  every certificate naming the URL (no delta; an issuing distribution point
  only when it names the URL and limits neither reasons nor kinds of
  certificate, and is not indirect) and is never older than a current CRL
  in crl_dir signed by the same key: what an on-path attacker of the
  plain-HTTP download serves instead (another CA's CRL, then the CA's CRL
  from before a revocation, a partial CRL) is refused, on the first
  download of a URL too;
- what is no rollback is installed: a full CRL whose issuing distribution
  point names its URL, a re-keyed CA's CRL numbered below the old key's,
  a rebuilt CA's CRL numbered below its expired predecessor;
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


def _crl(ca, key, number, last_update, next_update, serials=(), idp=None, delta_of=None):
    """A DER CRL of ca signed by key (with its authority key identifier),
    numbered number; idp an IssuingDistributionPoint, delta_of the base CRL
    number of a delta CRL."""
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(last_update).next_update(next_update)
         .add_extension(x509.CRLNumber(number), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                        critical=False))
    if delta_of is not None:
        b = b.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    if idp is not None:
        b = b.add_extension(idp, critical=True)
    for s in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s)
                                      .revocation_date(last_update).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _idp(urls=None, reasons=None, user_only=False, indirect=False):
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(u) for u in urls] if urls else None,
        relative_name=None, only_contains_user_certs=user_only, only_contains_ca_certs=False,
        only_some_reasons=reasons, indirect_crl=indirect, only_contains_attribute_certs=False)


# Kinds of CRL the issuing CA's URL may be served instead of its full CRL,
# each listing nothing and newer than the installed one (CrlServer.mode).
PARTIAL = ("delta", "idp-other-url", "reasons", "user-only", "indirect")


class CrlServer:
    """Serves /root.crl and /int.crl, each signed anew per GET; `revoked`
    (name -> set of serials), `validity` (seconds), `mode` (name -> "ok",
    "error" for a 500, "forged" for a CRL signed by another key, "other"
    for the other CA's current CRL, "stale" for a CRL of an hour ago
    listing nothing, "idp-url" for a full CRL whose issuing distribution
    point names its URL, one of PARTIAL for such a CRL listing nothing),
    `fixed` (path -> DER served as it is), `gets` (path -> count)."""

    def __init__(self, port, pki):
        self.revoked = {"root": set(), "int": set()}
        self.validity = 86400
        self.mode = {"root": "ok", "int": "ok"}
        self.fixed = {}
        self.gets = {}
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                me.gets[self.path] = me.gets.get(self.path, 0) + 1
                name = self.path.strip("/").split(".")[0]
                if self.path in me.fixed:
                    body = me.fixed[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if name not in me.mode or me.mode[name] == "error":
                    self.send_response(500 if name in me.mode else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                mode = me.mode[name]
                if mode == "other":
                    name = "root" if name == "int" else "int"
                body = pki.crl(name, set() if mode == "stale" or mode in PARTIAL
                               else me.revoked[name], me.validity, forged=mode == "forged",
                               age=3600 if mode == "stale" else 0,
                               kind=mode if mode == "idp-url" or mode in PARTIAL else None)
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
        self.base = base
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
        epoch, then too); kind "delta" makes it a delta CRL, "idp-url" gives
        it an issuing distribution point naming its own URL, the others of
        PARTIAL one that names another URL ("idp-other-url"), or its own
        with some reasons only, end-entity certificates only, or indirect."""
        issued = time.time() - age
        now = datetime.datetime.fromtimestamp(int(issued), UTC)
        url = f"{self.base}/{name}.crl"
        idp = {"idp-url": _idp([url]),
               "idp-other-url": _idp([f"{self.base}/{name}-part2.crl"]),
               "reasons": _idp([url], reasons=frozenset([x509.ReasonFlags.key_compromise])),
               "user-only": _idp([url], user_only=True),
               "indirect": _idp([url], indirect=True)}.get(kind)
        return _crl(self.certs[name], self.keys["forger" if forged else name],
                    int(issued * 1000), now, now + datetime.timedelta(seconds=validity + age),
                    serials, idp=idp,
                    delta_of=int(issued * 1000) - 60000 if kind == "delta" else None)


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
    """crls: file name -> DER, put into crl_dir before the daemon starts."""
    def run(interval=2, crls=None, **trust):
        crl_dir = daemon_crl_dir(tmp_path)
        for n, der in (crls or {}).items():
            (crl_dir / n).write_bytes(der)
            (crl_dir / n).chmod(0o644)
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


@pytest.mark.parametrize("kind", ("other",) + PARTIAL)
def test_a_crl_that_would_drop_revocations_is_refused(start, cpki, server, port, kind):
    """At the issuing CA's URL (plain HTTP) whoever is on the path may serve
    the root's current CRL, or a CRL of the issuing CA that does not cover
    every certificate naming the URL: a delta CRL, another partition's, one
    of some reasons only, of end-entity certificates only (a CA certificate
    naming the URL would be left without a CRL), an indirect one. Each
    verifies, and would replace that URL's file, dropping the issuing CA's
    revocations."""
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
    assert {"other": "but this URL is named by certificates of",
            "delta": "naming this URL: a delta CRL",
            "idp-other-url": "its issuing distribution point names other URLs",
            "reasons": "a CRL of some revocation reasons only",
            "user-only": "a CRL of end-entity certificates only",
            "indirect": "an indirect CRL"}[kind] in d.log()


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


def test_a_full_crl_naming_its_url_is_installed_and_used(start, cpki, server, port):
    """Some CAs put an issuing distribution point naming the URL into their
    full CRLs: such a CRL covers every certificate naming the URL, is
    installed and revokes (it used to be refused as a scoped CRL, and the
    daemon never became ready)."""
    server.mode["int"] = "idp-url"
    d = start()
    started(d, cpki)
    url, installed = fetched_file(d, port, "int")
    idp = x509.load_der_x509_crl(installed.read_bytes()).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint).value
    assert idp.full_name == [x509.UniformResourceIdentifier(url)]
    assert outcome(d, cpki, "victim") == "KEY_NOT_APPROVED"
    revoke_victim(d, cpki, server)
    assert outcome(d, cpki, "good") == "KEY_NOT_APPROVED"


def _rekeyed(cpki, tmp_path):
    """The issuing CA again, under its name with a new key, naming
    /int2.crl in its leaf, and an intermediates file holding both."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("CRL Test Issuing CA", key, cpki.certs["root"], cpki.keys["root"], ca=True,
               cdp=f"{cpki.base}/root.crl")
    leaf = _cert("CRL Test rekeyed", ec.generate_private_key(ec.SECP256R1()), ca, key,
                 cdp=f"{cpki.base}/int2.crl")
    d = tmp_path / "rekeyed"
    d.mkdir()
    d.chmod(0o755)
    (d / "int.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                         for c in (cpki.certs["int"], ca)))
    (d / "int.pem").chmod(0o644)
    open_for_daemon_user(d)
    return key, ca, leaf, d / "int.pem"


def test_a_rekeyed_ca_numbering_afresh_is_not_held_to_the_old_key(start, cpki, server, port,
                                                                   tmp_path):
    """Review finding 1 (a): the old key's CRL #10 in crl_dir, the new
    key's CRL #3 at the new key's URL. Only CRLs of the same key are
    compared: #3 is installed and revokes (it used to be refused as lower
    than #10, for as long as the old file stayed)."""
    key, ca, leaf, intermediates = _rekeyed(cpki, tmp_path)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    old = _crl(cpki.certs["int"], cpki.keys["int"], 10, now, now + day)
    server.fixed["/int2.crl"] = _crl(ca, key, 3, now - datetime.timedelta(minutes=5),
                                     now + day)
    d = start(crls={"int-old-key.crl": old}, intermediates_file=intermediates)
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    d.verify(pem)
    url, installed = fetched_file(d, port, "int2")
    assert wait_for(installed.exists), d.log()
    assert installed.read_bytes() == server.fixed["/int2.crl"]
    assert wait_for(lambda: d.verify(pem).json()["outcome"] == "KEY_NOT_APPROVED")
    # The new key's next CRL revokes the leaf; the old key's CRL stays.
    server.fixed["/int2.crl"] = _crl(ca, key, 4, now, now + day, [leaf.serial_number])
    assert wait_for(lambda: d.verify(pem).json()["outcome"] == "CERT_REVOKED")
    assert (d.crl_dir / "int-old-key.crl").read_bytes() == old
    assert "is lower than" not in d.log()


def test_an_expired_crl_does_not_hold_back_a_rebuilt_ca(start, cpki, server, port):
    """Review finding 1 (c): a CA rebuilt under the same name (here with
    the same key) numbers its CRLs from the start again. Its old CRL #10,
    expired, stays in crl_dir; the new #3 is installed (it used to be
    refused as lower, for ever). The same key's older CRL that is still
    current stays refused (test_an_older_crl_of_the_issuer_...)."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    expired = _crl(cpki.certs["int"], cpki.keys["int"], 10, now - 2 * day, now - day)
    server.fixed["/int.crl"] = _crl(cpki.certs["int"], cpki.keys["int"], 3, now, now + day,
                                    [cpki.certs["victim"].serial_number])
    d = start(crls={"int-before-rebuild.crl": expired})
    started(d, cpki)
    url, installed = fetched_file(d, port, "int")
    assert installed.read_bytes() == server.fixed["/int.crl"]
    assert outcome(d, cpki, "victim") == "CERT_REVOKED"
    assert "is lower than" not in d.log()


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
        daemon = certregd(db, trust={"ca_file": d / "root.pem", "intermediates_file": None,
                                     "crl_dir": daemon_crl_dir(tmp_path),
                                     "revocation": "if-available", "crl_fetch": "yes",
                                     "crl_fetch_interval": 3600})
        assert wait_for(lambda: len(state["gets"]) == 6, timeout=20), state
        assert state["most"] <= 2, state
        # Stopped while the last downloads are in flight: each one's state
        # was left behind (LeakSanitizer, make sanitize-integration).
        assert state["now"] > 0, state
        assert daemon.stop() == 0
        daemon.check_clean()
    finally:
        server.shutdown()
        server.server_close()


def fetching_an_hour_ahead(certregd, db, cpki, tmp_path):
    """certregd on a clock an hour ahead (libfaketime, test_clock's Clock),
    fetching cpki's CRLs every 2 s under revocation = require, started:
    (its Clock, to step back; the daemon)."""
    from test_clock import Clock
    clock = Clock(tmp_path, 3600)
    d = clock.daemon(certregd, db, trust={
        "ca_file": cpki.dir / "root.pem", "intermediates_file": cpki.dir / "int.pem",
        "crl_dir": daemon_crl_dir(tmp_path), "revocation": "require", "crl_fetch": "yes",
        "crl_fetch_interval": 2})
    started(d, cpki)
    return clock, d


def test_a_clock_stepped_back_keeps_the_refresh_interval(certregd, db, cpki, server, tmp_path):
    """A daemon whose clock ran an hour ahead, then stepped back by NTP:
    the next download was scheduled on the realtime clock, an hour and
    crl_fetch_interval away, and a revocation at the CA went unseen for
    that hour. Scheduled on the monotonic clock it is one refresh away
    (CRL times are still compared with the realtime clock)."""
    clock, d = fetching_an_hour_ahead(certregd, db, cpki, tmp_path)
    assert outcome(d, cpki, "victim") == "KEY_NOT_APPROVED"
    clock.set(0)
    server.revoked["int"].add(cpki.certs["victim"].serial_number)
    assert wait_for(lambda: outcome(d, cpki, "victim") == "CERT_REVOKED", timeout=10), \
        server.gets


def test_a_clock_stepped_back_still_reports_a_failing_download(certregd, db, cpki, server, port,
                                                                tmp_path):
    """Whether a URL is failing was "its last error is later than its last
    success", two realtime stamps: after a step back of an hour, downloads
    that failed were stamped before the success of the hour ahead, and
    /readyz said nothing of them for that hour (nor certreg-admin check).
    The last outcome decides, whatever the clock did between them."""
    clock, d = fetching_an_hour_ahead(certregd, db, cpki, tmp_path)
    url = f"http://127.0.0.1:{port}/int.crl"
    assert "warnings" not in d.get("/readyz").json()
    clock.set(0)
    server.mode["int"] = "error"
    assert wait_for(lambda: (metric(d, "certreg_crl_fetch_errors_total", url) or 0) >= 2)
    ready = d.get("/readyz")
    assert any(url in w for w in ready.json().get("warnings", [])), ready.body
    # What to alert on, and what certreg-admin check reads.
    assert metric(d, "certreg_crl_fetch_failing", url) == 1
    probe = admin("dbname=unused", "--json", "check", "--url", d.api, check=False)
    assert {c["url"]: c["status"] for c in json.loads(probe.stdout)["crl_downloads"]}[url] \
        == "WARNING", probe.stdout
    server.mode["int"] = "ok"
    assert wait_for(lambda: "warnings" not in d.get("/readyz").json()), d.get("/readyz").body
    assert metric(d, "certreg_crl_fetch_failing", url) == 0
