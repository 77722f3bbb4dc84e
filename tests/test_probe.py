"""`certreg-admin check`, the monitoring probe (contract section 6, issue 31).

Nagios verdicts against real targets: a running certregd over plain HTTP
and behind a real TLS server (a test CA given with --cacert), a daemon that
is not ready, a closed port, other servers answering the URL, and trust
that is about to run out (a CRL within a quarter of its validity of its
nextUpdate, anchors within --warn-days). A stub certregd covers the
arithmetic at chosen times.
"""
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from fixtures.daemon import free_port
from test_admin import run

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
DAY = 86400


def probe(*args):
    """check ARGS -> (exit code, the one status line)."""
    p = run(None, "check", *args)
    assert p.stdout.count("\n") == 1, p.stdout + p.stderr
    return p.returncode, p.stdout


def probe_json(*args):
    p = run(None, "--json", "check", *args)
    return p.returncode, json.loads(p.stdout)


def wait_ready(d):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and d.get("/readyz").status != 200:
        time.sleep(0.2)
    assert d.get("/readyz").status == 200, d.log()


def serve(handler, tls=None):
    """A threaded HTTP(S) server on a free loopback port; returns it with
    .url set. tls: an ssl.SSLContext for https."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls is not None:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url = f"{scheme}://127.0.0.1:{srv.server_address[1]}"
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()


def proxy_to(upstream):
    """A handler class relaying GETs to upstream (the daemon's API)."""
    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
                    status, body = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Proxy


def static(status, body, path=None):
    """A handler answering every GET (or only path) with status and body."""
    class Static(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code, data = (status, body) if path in (None, self.path) else (404, b"no")
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    return Static


@pytest.fixture
def tls_front(pki):
    """Factory: a real TLS server (the test PKI's server certificate, issued
    by its server CA) relaying to a daemon's API listener."""
    started = []

    def start(upstream):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("server/server.chain.pem"), pki.path("server/server.key"))
        srv = serve(proxy_to(upstream), tls=ctx)
        started.append(srv)
        return srv
    yield start
    for s in started:
        stop(s)


def gentime(t):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))


def make_crl(pki, ca, out, this_update, next_update, workdir):
    """A CRL of the test PKI's CA ca (nothing revoked) with chosen times,
    by `openssl ca -gencrl`; number 0x20, above every CRL mkpki.py makes."""
    workdir.mkdir(exist_ok=True)
    (workdir / "index.txt").write_text("")
    (workdir / "crlnumber").write_text("20\n")
    cnf = workdir / "ca.cnf"
    cnf.write_text(f"[ca]\ndefault_ca = c\n[c]\ndatabase = {workdir}/index.txt\n"
                   f"crlnumber = {workdir}/crlnumber\ndefault_md = sha256\n"
                   "crl_extensions = crl_ext\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n")
    subprocess.run(["openssl", "ca", "-gencrl", "-batch", "-config", str(cnf),
                    "-cert", str(pki.path(f"ca/{ca}.pem")),
                    "-keyfile", str(pki.path(f"ca/{ca}.key")),
                    "-crl_lastupdate", gentime(this_update),
                    "-crl_nextupdate", gentime(next_update), "-out", str(out)],
                   check=True, capture_output=True)


# --- a real certregd ------------------------------------------------------------

def test_healthy_daemon_is_ok_over_http_and_https(certregd, db, pki, tls_front):
    d = certregd(db)
    wait_ready(d)
    # The test PKI's CRLs run from T-1d to T+7d: 7 of 8 days left, far
    # from the last quarter; the anchors expire in about ten years. With the
    # default --warn-days (30) that is OK, not the WARNING every healthy
    # daemon used to get.
    rc, out = probe("--url", d.api)
    assert rc == OK and out.startswith("CERTREG OK - ready"), out
    assert re.search(r"\| crl_next_update=\d+s;\d+:;0: anchor_not_after=\d+s;2592000:;0:"
                     r" tls_not_after=\d+s;2592000:;0:$",
                     out.strip()), out
    rc, got = probe_json("--url", d.api + "/")
    assert rc == OK and got["status"] == "OK" and got["ready"] is True
    assert got["crls"] and all(c["this_update"] and c["status"] == "OK" for c in got["crls"])
    assert got["trust_anchors"]
    # https through a real TLS server, verified against the server CA.
    front = tls_front(d.api)
    rc, out = probe("--url", front.url, "--cacert", pki.path("ca/server-ca.pem"))
    assert rc == OK and out.startswith("CERTREG OK - ready"), out


def test_https_with_the_wrong_ca_is_critical_and_says_why(certregd, db, pki, tls_front):
    d = certregd(db)
    wait_ready(d)
    front = tls_front(d.api)
    # The client-certificate trust anchors did not issue the server's.
    rc, out = probe("--url", front.url, "--cacert", pki.path("ca/trust.pem"))
    assert rc == CRITICAL and out.startswith("CERTREG CRITICAL - no connection to"), out
    assert "server certificate not trusted by" in out and "trust.pem" in out, out
    # Nor do the system's CAs.
    rc, out = probe("--url", front.url)
    assert rc == CRITICAL and "not trusted by the system's CAs" in out, out
    # A --cacert that cannot be read is the probe's own problem.
    rc, out = probe("--url", front.url, "--cacert", "/nonexistent/ca.pem")
    assert rc == UNKNOWN and out.startswith("CERTREG UNKNOWN"), out
    # Plain HTTP to a TLS port: nobody certregd-like answers.
    rc, out = probe("--url", front.url.replace("https:", "http:"))
    assert rc in (CRITICAL, UNKNOWN) and rc != OK, out


def test_not_ready_daemon_is_critical_with_its_reasons(certregd, db):
    d = certregd(db, database={"conninfo": f"host=127.0.0.1 port={free_port()} dbname=none"})
    rc, out = probe("--url", d.api, "--timeout", "20")
    assert rc == CRITICAL and out.startswith("CERTREG CRITICAL - not ready"), out
    assert "database" in out, out
    rc, got = probe_json("--url", d.api, "--timeout", "20")
    assert rc == CRITICAL and got["ready"] is False and got["reasons"]


def test_crl_in_its_last_quarter_warns_naming_it(certregd, db, pki, tmp_path):
    d = certregd(db)
    wait_ready(d)
    now = int(time.time())
    # Issued 6 days ago, next update in a day: 1 day left of 7 (less than
    # the quarter, 1.75 days), though well beyond any --warn-days horizon.
    make_crl(pki, "root-ec", d.dir / "crl" / "root-ec.crl.pem", now - 6 * DAY, now + DAY,
             tmp_path / "ca-root-ec")
    d.reload()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rc, out = probe("--url", d.api)
        if rc != OK:
            break
        time.sleep(0.2)
    assert rc == WARNING and out.startswith("CERTREG WARNING - ready"), out
    assert "CRL" in out and "certreg Test EC Root CA" in out, out
    assert "certreg Test Root CA" not in out.split("|")[0], out   # the healthy ones unnamed
    rc, got = probe_json("--url", d.api, "--warn-days", "0")
    assert rc == WARNING
    warned = [c["issuer"] for c in got["crls"] if c["status"] == "WARNING"]
    assert len(warned) == 1 and "EC Root" in warned[0], got


def test_trust_anchor_within_warn_days_warns_naming_it(certregd, db):
    d = certregd(db)
    wait_ready(d)
    # The test anchors expire in 3650 days (from T, the session start).
    rc, out = probe("--url", d.api, "--warn-days", "3651")
    assert rc == WARNING and "trust anchor" in out and "certreg Test Root CA" in out, out
    # The listener's certificate expires in 825 days: --warn-days counts for
    # it too, and only it warns.
    rc, out = probe("--url", d.api, "--warn-days", "3640")
    assert rc == WARNING and "trust anchor certreg" not in out, out
    assert "TLS listener certificate: expires in" in out, out
    rc, out = probe("--url", d.api, "--warn-days", "800")
    assert rc == OK, out


def test_listener_certificate_near_expiry_warns_naming_it(certregd, db, tmp_path):
    """The TLS listener's own certificate expiring fails every login; the
    probe judged the roots and CRLs but not it. It follows the trust
    anchors' rule: within --warn-days WARNING, past it CRITICAL."""
    d = certregd(db)
    # A certificate for the same key valid for 10 days, loaded by a reload.
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "10", "-subj", "/CN=localhost",
                    "-key", d.config["server"]["tls_key"], "-out", tmp_path / "short.pem"],
                   check=True, capture_output=True)
    (tmp_path / "short.pem").replace(d.config["server"]["tls_cert"])
    os.chmod(d.config["server"]["tls_cert"], 0o644)
    d.reload()
    deadline = time.monotonic() + 15
    while True:
        rc, out = probe("--url", d.api)
        if rc != OK or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rc == WARNING and out.startswith("CERTREG WARNING - ready"), out
    assert "TLS listener certificate: expires in 10.0 days (within 30)" in out, out
    assert re.search(r" tls_not_after=\d+s;2592000:;0:$", out.strip()), out
    rc, got = probe_json("--url", d.api)
    assert rc == WARNING and got["tls_certificate"]["status"] == "WARNING", got
    assert 9 * DAY < got["tls_certificate"]["seconds_left"] <= 10 * DAY, got
    # Outside --warn-days: OK, and the line says when.
    rc, out = probe("--url", d.api, "--warn-days", "9")
    assert rc == OK and "TLS listener certificate expires in 10 days" in out, out


# --- what is not certregd ----------------------------------------------------------

def test_closed_port_is_critical():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]        # nothing listens once closed
    rc, out = probe("--url", f"http://127.0.0.1:{port}")
    assert rc == CRITICAL and out.startswith("CERTREG CRITICAL - no connection"), out
    rc, got = probe_json("--url", f"https://127.0.0.1:{port}")
    assert rc == CRITICAL and got["status"] == "CRITICAL"


def test_other_servers_are_unknown():
    cases = [
        static(404, b"<html>not found</html>"),                        # a 404
        static(200, b"<html>welcome to nginx</html>"),                 # some page
        static(200, json.dumps({"status": "ok"}).encode()),            # JSON, not certregd's
        static(503, b"<html>503 Service Temporarily Unavailable</html>"),
    ]
    for handler in cases:
        srv = serve(handler)
        try:
            rc, out = probe("--url", srv.url)
            assert rc == UNKNOWN and out.startswith("CERTREG UNKNOWN"), out
            assert "/readyz" in out, out
        finally:
            stop(srv)
    # A /readyz like certregd's but no certregd metrics page.
    srv = serve(static(200, json.dumps({"ready": True, "reasons": []}).encode(), "/readyz"))
    try:
        rc, out = probe("--url", srv.url)
        assert rc == UNKNOWN and "metrics" in out, out
    finally:
        stop(srv)
    for url in ("ftp://127.0.0.1/", "file:///etc/passwd", "http://127.0.0.1:8080/x?y=1",
                "not a url"):
        rc, out = probe("--url", url)
        assert rc == UNKNOWN, (url, out)


def test_timeout_bounds_the_whole_probe():
    # Accepts and never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        start = time.monotonic()
        rc, out = probe("--url", f"http://127.0.0.1:{s.getsockname()[1]}", "--timeout", "1")
        took = time.monotonic() - start
    assert rc == CRITICAL and "timed out" in out.lower(), out
    assert took < 5, took


def test_proxy_variables_are_not_used(certregd, db):
    d = certregd(db)
    wait_ready(d)
    env = {"http_proxy": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1",
           "ALL_PROXY": "http://127.0.0.1:1"}
    p = run(None, "check", "--url", d.api, env=env)
    assert p.returncode == OK, p.stdout + p.stderr


# --- the arithmetic, on a stub with chosen times ------------------------------------

class _Stub(http.server.BaseHTTPRequestHandler):
    """certregd's /readyz and /metrics in the contract's shape."""
    ready = True
    crl_issued_days = -1.0
    crl_days = 7.0
    anchor_days = 3650.0
    tls_days = 365.0

    def do_GET(self):
        now = time.time()
        if self.path == "/readyz":
            body = json.dumps({"ready": self.ready, "reasons": [] if self.ready else
                               ["database: not answering"]}).encode()
            status = 200 if self.ready else 503
        elif self.path == "/metrics":
            body = (
                "# HELP certreg_decisions_total Decisions made, by outcome.\n"
                "# TYPE certreg_decisions_total counter\n"
                'certreg_decisions_total{outcome="OK"} 7\n'
                "# TYPE certreg_crl_next_update_timestamp_seconds gauge\n"
                f'certreg_crl_next_update_timestamp_seconds{{issuer="CN=Test Root"}} {int(now + 99 * DAY)}\n'
                f'certreg_crl_next_update_timestamp_seconds{{issuer="CN=Sub \\"CA\\""}} '
                f"{int(now + self.crl_days * DAY)}\n"
                "# TYPE certreg_crl_this_update_timestamp_seconds gauge\n"
                f'certreg_crl_this_update_timestamp_seconds{{issuer="CN=Test Root"}} {int(now - DAY)}\n'
                f'certreg_crl_this_update_timestamp_seconds{{issuer="CN=Sub \\"CA\\""}} '
                f"{int(now + self.crl_issued_days * DAY)}\n"
                "# TYPE certreg_trust_anchor_not_after_timestamp_seconds gauge\n"
                f'certreg_trust_anchor_not_after_timestamp_seconds{{subject="CN=Test Root"}} '
                f"{int(now + self.anchor_days * DAY)}\n"
                "# TYPE certreg_tls_certificate_not_after_timestamp_seconds gauge\n"
                "certreg_tls_certificate_not_after_timestamp_seconds "
                f"{int(now + self.tls_days * DAY)}\n").encode()
            status = 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    srv = serve(type("S", (_Stub,), {}))
    yield srv
    stop(srv)


def test_check_against_a_stub(stub):
    s = stub.RequestHandlerClass
    rc, out = probe("--url", stub.url)
    assert rc == OK and out.startswith("CERTREG OK - ready"), out
    assert re.search(r"\| crl_next_update=\d+s;\d+:;0: anchor_not_after=\d+s;2592000:;0:"
                     r" tls_not_after=\d+s;2592000:;0:$",
                     out.strip()), out
    # A weekly CRL 2 days before its nextUpdate: more than a quarter left.
    s.crl_issued_days, s.crl_days = -5, 2
    assert probe("--url", stub.url)[0] == OK
    # 1.5 days of 7 left: WARNING naming it, whatever --warn-days says.
    s.crl_days = 1.5
    for warn in ("30", "0"):
        rc, out = probe("--url", stub.url + "/", "--warn-days", warn)
        assert rc == WARNING and out.startswith("CERTREG WARNING") and 'CN=Sub "CA"' in out, out
        assert "CN=Test Root" not in out.split("|")[0], out
    # A daily CRL 7 hours before its nextUpdate: more than a quarter (6 h).
    s.crl_issued_days, s.crl_days = -17 / 24, 7 / 24
    assert probe("--url", stub.url)[0] == OK
    s.crl_issued_days, s.crl_days = -1, 7
    # Trust anchors: within --warn-days (default 30) warns, naming it.
    s.anchor_days = 25
    rc, out = probe("--url", stub.url)
    assert rc == WARNING and "trust anchor CN=Test Root" in out, out
    assert probe("--url", stub.url, "--warn-days", "20")[0] == OK
    # Past: CRITICAL.
    s.anchor_days = -1
    rc, out = probe("--url", stub.url)
    assert rc == CRITICAL and out.startswith("CERTREG CRITICAL"), out
    s.anchor_days = 3650
    # The TLS listener's certificate: the same rule as an anchor's.
    s.tls_days = 25
    rc, out = probe("--url", stub.url)
    assert rc == WARNING and "TLS listener certificate: expires in 25.0 days" in out, out
    assert probe("--url", stub.url, "--warn-days", "20")[0] == OK
    s.tls_days = -1
    rc, out = probe("--url", stub.url)
    assert rc == CRITICAL and "TLS listener certificate: expired 1.0 days ago" in out, out
    rc, got = probe_json("--url", stub.url)
    assert rc == CRITICAL and got["tls_certificate"]["status"] == "CRITICAL", got
    s.tls_days = 365
    s.crl_days = -0.5
    rc, out = probe("--url", stub.url)
    assert rc == CRITICAL and 'CN=Sub "CA"' in out, out
    # Not ready: CRITICAL with the daemon's reasons.
    s.crl_days = 7
    s.ready = False
    rc, out = probe("--url", stub.url)
    assert rc == CRITICAL and "database: not answering" in out, out
    rc, got = probe_json("--url", stub.url)
    assert rc == CRITICAL and got["status"] == "CRITICAL"
