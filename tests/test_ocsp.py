"""OCSP (RFC 6960) for the leaf: `ocsp = off | soft | require`, `ocsp_url`.

A small PKI of its own (built here with `cryptography`, so the shared test
PKI stays as it is): a root, an issuing CA, a delegated OCSP responder
certificate (id-kp-OCSPSigning, issued by the issuing CA), an "unauthorised"
signer issued by the same CA without that usage, and leaves whose AIA names
a responder on a loopback port. That port is a small Python HTTP server that
counts the requests, can delay its answers, and answers as a real
`openssl ocsp` responder (its -index mode, run once per request) or with
canned answers built at fixed times (an expired one, one with a foreign
nonce). CRLs are off in these daemons, so only OCSP decides
revocation: a leaf that passes every certificate check is KEY_NOT_APPROVED
(no association in the database).

What each test guards:
- good / revoked / unknown answers, under soft and require;
- a responder that is down: soft falls back, require refuses, and /readyz
  and /metrics say so;
- an answer signed by a key the issuer did not authorise, an expired
  answer and a foreign nonce are no usable answer (each beside a control
  that the same path accepts); so is an answer without nextUpdate whose
  thisUpdate is a year old (a replay), while a fresh one is used;
- one responder request for many decisions, across workers (shared cache)
  and for concurrent decisions in one worker (one ask);
- a responder that takes 2 s does not hold up other decisions of the same
  single worker;
- ocsp_url overrides the AIA, and a leaf without AIA has no responder;
- `certreg-admin check` warns, naming it, of a responder whose last ask
  failed;
- a login on the TLS listener takes the same step.
"""
import datetime
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fixtures.cli import admin
from fixtures.daemon import free_port, open_for_daemon_user

UTC = datetime.timezone.utc


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certreg OCSP test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer=None, issuer_key=None, ca=False, eku=None, aia=None, days=365):
    now = datetime.datetime.now(UTC)
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn))
         .issuer_name(issuer.subject if issuer else _name(cn))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True,
                                          False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if aia:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(aia))]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Pki:
    """The certificates, keys and files of this module's PKI in `dir`."""

    def __init__(self, d, aia_port):
        self.dir = d
        self.aia = f"http://127.0.0.1:{aia_port}/"
        self.keys = {}
        self.certs = {}
        k = self._key("root")
        self.certs["root"] = _cert("OCSP Test Root", k, ca=True, days=3650)
        self._issue("int", "root", ca=True)
        self._issue("responder", "int", eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
        # Issued by the same CA, but not for OCSP signing.
        self._issue("rogue", "int", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        for name in ("good", "good2", "revoked", "unknown", "slow"):
            self._issue(name, "int", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], aia=self.aia)
        self._issue("noaia", "int", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        for name, cert in self.certs.items():
            (d / f"{name}.pem").write_text(_pem(cert))
            (d / f"{name}.key").write_bytes(self.keys[name].private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            (d / f"{name}.pem").chmod(0o644)
        self._index()
        open_for_daemon_user(d)

    def _key(self, name):
        self.keys[name] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[name]

    def _issue(self, name, issuer, **kw):
        self.certs[name] = _cert(f"OCSP Test {name}", self._key(name), self.certs[issuer],
                                 self.keys[issuer], **kw)

    def _index(self):
        """openssl ca's index: good* and slow valid, revoked revoked,
        unknown absent (the responder answers "unknown")."""
        def line(name, status, revoked=""):
            c = self.certs[name]
            serial = format(c.serial_number, "X")
            serial = "0" * (len(serial) % 2) + serial
            exp = c.not_valid_after.strftime("%y%m%d%H%M%SZ")
            subj = "/C=CN/O=certreg OCSP test/CN=" + c.subject.get_attributes_for_oid(
                NameOID.COMMON_NAME)[0].value
            return f"{status}\t{exp}\t{revoked}\t{serial}\tunknown\t{subj}\n"
        rev = (datetime.datetime.now(UTC) - datetime.timedelta(hours=1)).strftime(
            "%y%m%d%H%M%SZ")
        text = "".join(line(n, "V") for n in ("good", "good2", "slow", "noaia"))
        text += line("revoked", "R", rev + ",keyCompromise")
        (self.dir / "index.txt").write_text(text)

    def pem(self, name):
        return _pem(self.certs[name])

    def canned(self, name, this_update, next_update, nonce=None, revoked_at=None):
        """A DER answer "good" (or "revoked" at revoked_at) for leaf name,
        signed by the responder at the given times, with the given nonce
        extension if any."""
        status = ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD
        b = (ocsp.OCSPResponseBuilder()
             .add_response(cert=self.certs[name], issuer=self.certs["int"],
                           algorithm=hashes.SHA1(), cert_status=status,
                           this_update=this_update, next_update=next_update,
                           revocation_time=revoked_at, revocation_reason=None)
             .responder_id(ocsp.OCSPResponderEncoding.HASH, self.certs["responder"])
             .certificates([self.certs["responder"]]))
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        return b.sign(self.keys["responder"], hashes.SHA256()).public_bytes(
            serialization.Encoding.DER)


def openssl_answer(pki, request, signer):
    """The answer of a real `openssl ocsp` responder (its -index mode, one
    request per run) to a DER request, signed by signer."""
    d = pki.dir / "requests"
    d.mkdir(exist_ok=True)
    name = f"{threading.get_ident()}-{time.monotonic_ns()}"
    (d / f"{name}.req").write_bytes(request)
    subprocess.run(["openssl", "ocsp", "-index", str(pki.dir / "index.txt"),
                    "-CA", str(pki.dir / "int.pem"),
                    "-rsigner", str(pki.dir / f"{signer}.pem"),
                    "-rkey", str(pki.dir / f"{signer}.key"), "-nmin", "60",
                    "-reqin", str(d / f"{name}.req"), "-respout", str(d / f"{name}.resp")],
                   check=True, capture_output=True, timeout=30)
    return (d / f"{name}.resp").read_bytes()


class Responder:
    """An OCSP responder on a loopback port: counts the requests, waits
    `delay` seconds before answering, and answers as `openssl ocsp` does
    with the index and the `signer` key, or with `canned` (DER)."""

    def __init__(self, pki, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.count = 0
        self.delay = 0
        self.trickle = 0  # seconds between the bytes of the answer
        self.signer = "responder"
        self.canned = None
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                me.count += 1
                if me.delay:
                    time.sleep(me.delay)
                if callable(me.canned):
                    answer = me.canned(me.count)  # by the request's number
                elif me.canned is not None:
                    answer = me.canned
                else:
                    answer = openssl_answer(pki, body, me.signer)
                try:
                    if me.trickle:
                        head = (b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                                b"Content-Length: %d\r\n\r\n" % len(answer))
                        for i in range(len(head + answer)):
                            self.wfile.write((head + answer)[i:i + 1])
                            self.wfile.flush()
                            time.sleep(me.trickle)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/ocsp-response")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # certregd gave up waiting (the timeout test)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def aia_port():
    return free_port()


@pytest.fixture(scope="module")
def opki(tmp_path_factory, aia_port):
    d = tmp_path_factory.mktemp("ocsp-pki")
    d.chmod(0o755)
    return Pki(d, aia_port)


@pytest.fixture
def responder(opki, aia_port):
    """The responder the leaves' AIA names."""
    r = Responder(opki, aia_port)
    yield r
    r.close()


@pytest.fixture
def start(certregd, db, opki):
    """certregd with this module's trust, no CRLs, and OCSP settings."""
    def run(mode, workers=2, timeout_ms=2000, **trust):
        return certregd(db, server={"workers": workers}, database={"timeout_ms": timeout_ms},
                        trust={"ca_file": opki.dir / "root.pem",
                               "intermediates_file": opki.dir / "int.pem",
                               "crl_dir": None, "revocation": "off", "ocsp": mode, **trust})
    return run


def outcome(d, pki, name):
    r = d.verify(pki.pem(name))
    assert r.status == 200, r.body
    return r.json()["outcome"]


def metric(d, name):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


@pytest.mark.parametrize("mode", ["soft", "require"])
def test_good_revoked_unknown(start, opki, responder, mode):
    d = start(mode)
    assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
    assert outcome(d, opki, "revoked") == "CERT_REVOKED"
    body = d.verify(opki.pem("revoked")).json()
    assert body["certificate"]["serial"]  # the leaf is described as usual
    # "unknown" is no usable answer: soft falls back (no CRLs here: the
    # revocation policy is off), require refuses.
    assert outcome(d, opki, "unknown") == (
        "KEY_NOT_APPROVED" if mode == "soft" else "CERT_REVOCATION_UNKNOWN")
    assert "event=ocsp_answer" in d.log() and "status=revoked" in d.log()


def test_off_asks_nobody(start, opki, responder):
    d = start("off")
    assert outcome(d, opki, "revoked") == "KEY_NOT_APPROVED"
    assert responder.count == 0


@pytest.mark.parametrize("mode, expected", [("soft", "KEY_NOT_APPROVED"),
                                            ("require", "CERT_REVOCATION_UNKNOWN")])
def test_responder_down(start, opki, aia_port, mode, expected):
    # Nothing listens on the AIA's port: the connection is refused.
    d = start(mode)
    t0 = time.monotonic()
    assert outcome(d, opki, "good") == expected
    assert outcome(d, opki, "revoked") == expected
    assert time.monotonic() - t0 < 1.5
    assert metric(d, "certreg_ocsp_errors_total") >= 1
    assert "event=ocsp_failed" in d.log()
    ready = d.get("/readyz")
    if mode == "require":
        assert ready.status == 503
        assert any(f"127.0.0.1:{aia_port}" in r for r in ready.json()["reasons"])
    else:
        assert ready.status == 200, ready.body


def test_responder_timeout_is_bounded(start, opki, responder):
    responder.delay = 3
    d = start("require", ocsp_timeout_ms=500)
    t0 = time.monotonic()
    assert outcome(d, opki, "good") == "CERT_REVOCATION_UNKNOWN"
    assert time.monotonic() - t0 < 2.5


def test_a_responder_that_trickles_its_answer_is_bounded(start, opki, responder):
    """A responder (or a proxy before it) that answers a byte at a time:
    each byte arrives well within any inactivity timer, so only a deadline
    on the whole exchange ends it. ocsp_timeout_ms is that deadline."""
    responder.trickle = 0.1
    d = start("require", ocsp_timeout_ms=500)
    t0 = time.monotonic()
    assert outcome(d, opki, "good") == "CERT_REVOCATION_UNKNOWN"
    assert time.monotonic() - t0 < 1.5
    assert metric(d, "certreg_ocsp_errors_total") >= 1


def test_unauthorised_signer_is_no_answer(start, opki, responder):
    responder.signer = "rogue"
    d = start("require")
    assert outcome(d, opki, "good") == "CERT_REVOCATION_UNKNOWN"
    # Even a "revoked" from it is no answer (no CRLs: soft would pass).
    assert outcome(d, opki, "revoked") == "CERT_REVOCATION_UNKNOWN"
    assert "authorised" in d.log()


@pytest.mark.parametrize("case", ["current", "expired", "foreign-nonce"])
def test_canned_answers(start, opki, responder, case):
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    p = responder
    if case == "expired":
        p.canned = opki.canned("good", now - datetime.timedelta(days=2),
                               now - datetime.timedelta(days=1))
    else:
        p.canned = opki.canned("good", now - datetime.timedelta(minutes=1),
                               now + datetime.timedelta(hours=1),
                               nonce=os.urandom(16) if case == "foreign-nonce" else None)
    d = start("require")
    got = outcome(d, opki, "good")
    assert got == ("KEY_NOT_APPROVED" if case == "current" else "CERT_REVOCATION_UNKNOWN")
    if case == "expired":
        assert "nextUpdate has passed" in d.log()
    if case == "foreign-nonce":
        assert "nonce" in d.log()


@pytest.mark.parametrize("case", ["year-old", "fresh"])
def test_answer_without_next_update_must_be_fresh(start, opki, responder, case):
    """An answer without nextUpdate says newer status is always available
    (RFC 6960 4.2.2.1): only a fresh one is current. A properly signed
    "good" from a year ago, replayed by someone on the path (no nonce
    echoed, which the daemon accepts from responders that pre-sign), is no
    usable answer; under require with no CRLs it must not let the login
    through. A fresh one without nextUpdate is still used."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    this_update = now - (datetime.timedelta(days=365) if case == "year-old"
                         else datetime.timedelta(seconds=30))
    responder.canned = opki.canned("good", this_update, None)
    d = start("require")
    got = outcome(d, opki, "good")
    if case == "year-old":
        assert got == "CERT_REVOCATION_UNKNOWN"
        assert "too old: no nextUpdate" in d.log()
    else:
        assert got == "KEY_NOT_APPROVED"
        assert "event=ocsp_answer" in d.log() and "next_update=0" in d.log()


def test_one_request_for_many_decisions(start, opki, responder):
    d = start("require", workers=2)
    for _ in range(12):
        assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
    assert responder.count == 1
    assert metric(d, "certreg_ocsp_requests_total") == 1
    assert metric(d, "certreg_ocsp_cache_hits_total") >= 11
    assert metric(d, "certreg_ocsp_cache_entries") == 1
    assert metric(d, "certreg_ocsp_cache_next_update_timestamp_seconds") > time.time() + 3000


def test_concurrent_decisions_share_one_ask(start, opki, responder):
    responder.delay = 1
    d = start("require", workers=1)
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda _: outcome(d, opki, "good"), range(6)))
    assert got == ["KEY_NOT_APPROVED"] * 6
    assert responder.count == 1


def test_an_older_good_answer_does_not_replace_a_newer_revoked_one(start, opki, responder):
    """Two workers ask about one certificate at once. The first ask is
    slow and brings a "good" signed 10 minutes ago; the second brings,
    at once, a "revoked" signed a minute ago. Whatever order they land
    in, the shared cache keeps the newer answer: the daemon has seen the
    certificate revoked and must not let it log in again for the hour the
    older "good" is valid (on the old code the last one put won)."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    good = opki.canned("good2", now - datetime.timedelta(minutes=10),
                       now + datetime.timedelta(hours=1))
    revoked = opki.canned("good2", now - datetime.timedelta(minutes=1),
                          now + datetime.timedelta(hours=1),
                          revoked_at=now - datetime.timedelta(minutes=2))

    def answer(n):
        if n == 1:
            # Long enough for the other worker to ask before this answer
            # is in the shared cache (which would spare it the ask), also
            # on a stalled VM; under both timeouts (5 s).
            time.sleep(3)
            return good
        return revoked
    responder.canned = answer
    d = start("require", workers=2, timeout_ms=5000, ocsp_timeout_ms=5000)
    with ThreadPoolExecutor(32) as pool:
        asked = []
        for _ in range(40):  # new connections until the other worker asks too
            asked.append(pool.submit(outcome, d, opki, "good2"))
            time.sleep(0.02)
            if responder.count >= 2:
                break
        got = [f.result(timeout=10) for f in asked]
    assert responder.count == 2, "both workers should have asked"
    assert "CERT_REVOKED" in got
    assert outcome(d, opki, "good2") == "CERT_REVOKED"
    assert metric(d, "certreg_ocsp_cache_entries") == 1


def test_slow_responder_does_not_hold_up_other_decisions(start, opki, responder):
    # One worker: a blocking ask would stall everything it serves.
    # The wait is bounded by both timeouts: both above the 2 s.
    d = start("require", workers=1, timeout_ms=5000, ocsp_timeout_ms=5000)
    assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"  # cached from now on
    responder.delay = 2
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        slow = pool.submit(outcome, d, opki, "slow")
        time.sleep(0.3)  # the slow ask is under way
        for _ in range(5):
            assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
            assert d.get("/healthz").status == 200
        others = time.monotonic() - t0
        assert not slow.done()
        assert others < 1.5, f"other decisions took {others:.2f} s"
        assert slow.result(timeout=10) == "KEY_NOT_APPROVED"
    assert time.monotonic() - t0 >= 1.9


def test_ocsp_url_overrides_the_aia(start, opki):
    # Nothing on the AIA's port: only the configured URL can answer.
    other = Responder(opki)
    try:
        d = start("require", ocsp_url=other.url)
        assert outcome(d, opki, "noaia") == "KEY_NOT_APPROVED"
        assert outcome(d, opki, "revoked") == "CERT_REVOKED"
        assert other.count == 2
    finally:
        other.close()


def test_a_password_in_ocsp_url_is_not_shown(start, opki):
    """A responder behind HTTP basic authentication is configured as
    ocsp_url = http://user:password@host/ (curl sends it). The password
    is the operator's secret: the log, /metrics and /readyz, read by more
    people than the configuration, name the responder without it (on the
    old code all three showed it)."""
    port = free_port()  # nothing listens: the ask fails, so /readyz names it
    d = start("require", ocsp_url=f"http://certreg:s3cr3t-pw@127.0.0.1:{port}/")
    assert outcome(d, opki, "good") == "CERT_REVOCATION_UNKNOWN"
    ready = d.get("/readyz")
    assert ready.status == 503
    shown = f"http://***@127.0.0.1:{port}/"
    assert any(shown in r for r in ready.json()["reasons"]), ready.body
    page = d.get("/metrics").body.decode()
    assert f'url="{shown}"' in page
    assert f"url={json.dumps(shown)}" in d.log()
    for text in (ready.body.decode(), page, d.log()):
        assert "s3cr3t-pw" not in text


def test_no_responder_named(start, opki, responder):
    d = start("require")
    assert outcome(d, opki, "noaia") == "CERT_REVOCATION_UNKNOWN"
    reason = d.verify(opki.pem("noaia")).json()
    assert reason["outcome"] == "CERT_REVOCATION_UNKNOWN"
    d2 = start("soft")
    assert outcome(d2, opki, "noaia") == "KEY_NOT_APPROVED"


def test_config_values_checked(tmp_path, opki):
    from fixtures.daemon import BUILD
    conf = tmp_path / "c.conf"
    conf.write_text(f"[server]\nlisten_tls =\n[trust]\nca_file = {opki.dir / 'root.pem'}\n"
                    "ocsp = sometimes\n")
    p = subprocess.run([str(BUILD / "certregd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "off, soft, require" in p.stderr + p.stdout


def test_probe_warns_of_a_failing_responder(start, opki, aia_port):
    # soft: the daemon stays ready, so only the probe's warning tells.
    d = start("soft")
    assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
    p = admin("dbname=unused", "--json", "check", "--url", d.api, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    got = json.loads(p.stdout)
    assert got["status"] == "WARNING"
    assert f"127.0.0.1:{aia_port}" in got["message"]
    assert [r["status"] for r in got["ocsp_responders"]] == ["WARNING"]


def test_tls_login_asks_too(start, opki, responder, pki):
    """The TLS listener's chains (parsed by the handshake) take the same
    step: the client sends its leaf alone, the daemon completes the path."""
    d = start("require")
    for name, status, code in (("good", 403, "KEY_NOT_APPROVED"),
                               ("revoked", 403, "CERT_REVOKED")):
        ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
        ctx.load_cert_chain(str(opki.dir / f"{name}.pem"), str(opki.dir / f"{name}.key"))
        raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\n"
                      b"Accept: application/json\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert int(head.split()[1]) == status, data
        assert json.loads(body)["outcome"] == code
    assert responder.count == 2


def test_a_clock_stepped_back_shows_no_answer_it_would_not_use(certregd, db, opki, responder,
                                                                tmp_path):
    """After a step back, an answer fetched "in the future" is a miss for the
    decisions (ocspcache_get), but /metrics still counted it as cached,
    with a negative age."""
    from test_clock import Clock
    clock = Clock(tmp_path)
    d = clock.daemon(certregd, db, trust={
        "ca_file": opki.dir / "root.pem", "intermediates_file": opki.dir / "int.pem",
        "crl_dir": None, "revocation": "off", "ocsp": "soft"})
    assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
    assert metric(d, "certreg_ocsp_cache_entries") == 1
    clock.set(-3600)
    time.sleep(0.2)
    assert metric(d, "certreg_ocsp_cache_entries") == 0
    assert metric(d, "certreg_ocsp_cache_oldest_age_seconds") == 0


def test_a_clock_stepped_back_still_reports_a_failing_responder(certregd, db, opki, aia_port,
                                                                 tmp_path):
    """Under ocsp = require a responder whose last ask failed takes the
    daemon out of the balancer (/readyz 503). That was "its last error is
    later than its last success", two realtime stamps: after a step back,
    a responder that answered before the step and then went down still
    looked well for the length of the step (/readyz 200 while every
    uncached login was CERT_REVOCATION_UNKNOWN), and one that failed
    before the step and answered after kept /readyz at 503. The last
    outcome decides, whatever the clock did between them."""
    from test_clock import Clock
    # Half an hour ahead: the responder's answers (an hour of life from
    # the host's time) are still current for the daemon.
    clock = Clock(tmp_path, 1800)
    d = clock.daemon(certregd, db, server={"workers": 1}, trust={
        "ca_file": opki.dir / "root.pem", "intermediates_file": opki.dir / "int.pem",
        "crl_dir": None, "revocation": "off", "ocsp": "require"})
    responder = Responder(opki, aia_port)
    try:
        assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
        assert d.get("/readyz").status == 200
        clock.set(0)
    finally:
        responder.close()
    assert outcome(d, opki, "revoked") == "CERT_REVOCATION_UNKNOWN"
    ready = d.get("/readyz")
    assert ready.status == 503, ready.body
    assert any(f"127.0.0.1:{aia_port}" in r for r in ready.json()["reasons"]), ready.body
    assert metric(d, "certreg_ocsp_responder_failing") == 1
    # A failure stamped half an hour ahead (a step forward), then a step
    # back and an answer: ready again.
    clock.set(1800)
    time.sleep(0.2)
    assert outcome(d, opki, "revoked") == "CERT_REVOCATION_UNKNOWN"
    assert d.get("/readyz").status == 503
    clock.set(0)
    responder = Responder(opki, aia_port)
    try:
        time.sleep(0.2)
        assert outcome(d, opki, "good") == "KEY_NOT_APPROVED"
        ready = d.get("/readyz")
        assert ready.status == 200, ready.body
        assert metric(d, "certreg_ocsp_responder_failing") == 0
    finally:
        responder.close()
