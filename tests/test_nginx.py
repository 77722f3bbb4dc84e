"""Real nginx in front of the portal, certregd deciding (issue 7).

Debian's nginx runs deploy/nginx/certreg-portal.conf itself, with only its
addresses and file paths replaced, in front of a certregd (fixture) and a
portal stub that records what it receives. Requests are made with curl,
with and without a client certificate, as a browser would.
"""
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from fixtures.cli import admin
from fixtures.daemon import free_port, open_for_daemon_user
from fixtures.pki import make_pki

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "deploy/nginx/certreg-portal.conf"
UNAVAILABLE = REPO / "deploy/nginx/unavailable.html"
PORTAL_UNAVAILABLE = REPO / "deploy/nginx/portal-unavailable.html"
REGNO = "110108000777"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# zh-CN text of KEY_NOT_APPROVED in the contract (section 4).
KEY_NOT_APPROVED_ZH = "该KEY没有审核通过"

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK),
                                reason="nginx not installed (Debian nginx-light)")


class PortalStub:
    """The portal upstream: answers 200 and records every request."""

    def __init__(self):
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                stub.requests.append({"method": self.command, "path": self.path,
                                      "headers": self.headers, "body": body})
                out = b"portal home\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_HEAD = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Nginx:
    def __init__(self, workdir, site, tls_port, http_port, http_extra=""):
        self.dir = workdir
        self.tls_port = tls_port
        self.http_port = http_port
        self.error_log = workdir / "error.log"
        conf = workdir / "nginx.conf"
        temp = "\n".join(f"    {kind}_temp_path {workdir / kind};"
                         for kind in nginx_temp_paths())
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        conf.write_text(f"""{user}worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {workdir / "access.log"};
{temp}
{http_extra}
    include {site};
}}
""")
        self.proc = subprocess.Popen(
            [NGINX, "-e", str(self.error_log), "-p", str(workdir), "-c", str(conf),
             "-g", f"daemon off; pid {workdir / 'nginx.pid'}; error_log {self.error_log} info;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited at start:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not listen:\n" + self.log())

    def log(self):
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def nginx_temp_paths():
    """The temp paths this nginx has (Debian's defaults are under
    /var/lib/nginx, which a test must not share)."""
    v = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    return [k for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            if f"--without-http_{k}_module" not in v]


def render_site(trust_pki, pki, workdir, api, portal_port, tls_port, http_port):
    """deploy/nginx/certreg-portal.conf with its addresses and paths replaced
    (each must occur exactly once, so the shipped file is what runs)."""
    ca_names = workdir / "client-ca-names.pem"
    ca_names.write_text(trust_pki.path("ca/trust.pem").read_text()
                        + trust_pki.path("ca/intermediates.pem").read_text())
    page = workdir / "unavailable.html"
    shutil.copy(UNAVAILABLE, page)
    page.chmod(0o644)
    portal_page = workdir / "portal-unavailable.html"
    shutil.copy(PORTAL_UNAVAILABLE, portal_page)
    portal_page.chmod(0o644)
    text = SITE.read_text()
    for old, new in (
            ("server 127.0.0.1:8080;", f"server {api};"),
            ("server 127.0.0.1:9000;", f"server 127.0.0.1:{portal_port};"),
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
            ("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
            ("/etc/nginx/certreg/portal.pem", str(pki.path("server/server.pem"))),
            ("/etc/nginx/certreg/portal.key", str(pki.path("server/server.key"))),
            ("/etc/certreg/client-ca-names.pem", str(ca_names)),
            ("/usr/local/share/certreg/nginx/unavailable.html", str(page)),
            ("/usr/local/share/certreg/nginx/portal-unavailable.html", str(portal_page))):
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {SITE}"
        text = text.replace(old, new)
    site = workdir / "certreg-portal.conf"
    site.write_text(text)
    return site


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", errors="replace")


def curl(pki, port, path="/", leaf=None, headers=(), data=None, scheme="https",
         client_pki=None):
    """One request with curl; a TLS failure fails the test. The client
    certificate is leaf of client_pki (default pki)."""
    args = ["curl", "-sS", "--max-time", "20", "-D", "-", "--cacert",
            str(pki.path("ca/server-ca.pem"))]
    if leaf is not None:
        c = (client_pki or pki).leaf(leaf)
        args += ["--cert", c["chain"], "--key", c["key"]]
    for h in headers:
        args += ["-H", h]
    if data is not None:
        args += ["--data-binary", data]
    args.append(f"{scheme}://localhost:{port}{path}")
    p = subprocess.run(args, capture_output=True, timeout=30)
    assert p.returncode == 0, f"curl failed ({p.returncode}): {p.stderr.decode()}"
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return Reply(status, hdrs, body)


def bind(db, leaves):
    """Approves the PEM files in leaves for REGNO."""
    admin(db.conninfo, "office", "add", "XC01", "--name", "西城管理部",
          "--address", "北京市西城区测试路1号", "--phone", "010-12345678")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "西城测试单位", "--office", "XC01")
    for i, pem in enumerate(leaves):
        admin(db.conninfo, "key", "bind", "--cert", pem, "--unit", REGNO, "--ticket", f"T-{i}")


class Front:
    """nginx (the shipped site config) -> certregd + portal stub."""

    def __init__(self, tmp_path, pki, certregd, db, trust_pki=None, http_extra=""):
        trust_pki = trust_pki or pki
        trust = {"ca_file": trust_pki.path("ca/trust.pem"),
                 # nginx passes only the leaf: certregd completes the chain.
                 "intermediates_file": trust_pki.path("ca/intermediates.pem")}
        if trust_pki is not pki:
            crl = tmp_path / "trust-crl"
            shutil.copytree(trust_pki.path("crl-all"), crl)
            open_for_daemon_user(trust_pki.path("ca"))
            open_for_daemon_user(crl)
            trust["crl_dir"] = crl
        self.certregd = certregd(db, trust=trust)
        self.portal = PortalStub()
        workdir = tmp_path / "nginx"
        workdir.mkdir()
        workdir.chmod(0o755)
        open_for_daemon_user(workdir)
        self.port, http_port = free_port(), free_port()
        site = render_site(trust_pki, pki, workdir, self.certregd.config["server"]["listen_api"],
                           self.portal.port, self.port, http_port)
        self.nginx = Nginx(workdir, site, self.port, http_port, http_extra)

    def close(self):
        self.nginx.stop()
        self.portal.close()
        log = self.nginx.log()
        alerts = [l for l in log.splitlines() if "[emerg]" in l or "[alert]" in l]
        assert not alerts, log


@pytest.fixture
def front(tmp_path, pki, db, certregd):
    """The front with rsa-ok approved for REGNO."""
    bind(db, [pki.leaf("rsa-ok")["pem"]])
    f = Front(tmp_path, pki, certregd, db)
    yield f
    f.close()


def escaped_pem(pki, leaf):
    """A PEM as nginx's $ssl_client_escaped_cert would carry it."""
    return urllib.parse.quote(pki.read(leaf), safe="")


# Every answer over HTTPS tells the browser to stay on HTTPS, the pages
# whose locations set headers of their own too.
HSTS = ["max-age=31536000"]


def test_approved_key_reaches_the_portal_as_its_unit(front, pki):
    r = curl(pki, front.port, "/home?x=1", leaf="rsa-ok",
             headers=["X-Certreg-Unit: 999999999", "X-Certreg-Outcome: OK"])
    assert r.status == 200 and r.body == b"portal home\n"
    assert r.headers["strict-transport-security"] == HSTS
    (req,) = front.portal.requests
    h = req["headers"]
    assert req["path"] == "/home?x=1"
    # Exactly certregd's values: the client's copies were dropped.
    assert h.get_all("X-Certreg-Unit") == [REGNO]
    assert h.get_all("X-Certreg-Outcome") == ["OK"]
    assert h.get_all("X-Certreg-Key") == [pki.leaf("rsa-ok")["key_id"]]
    assert h.get("X-SSL-Client-Cert") is None


def test_underscore_spellings_of_the_decision_headers_never_reach_the_portal(
        tmp_path, pki, db, certregd):
    """An application server behind nginx that folds "_" into "-" (CGI and
    WSGI name both HTTP_X_CERTREG_UNIT; wsgiref joins them, others keep the
    last) would read a client's X_Certreg_Unit as the unit. nginx drops
    such headers only while underscores_in_headers is off: the site says
    so itself, so one turned on for the whole http {} block (for another
    application) does not open the portal to them."""
    bind(db, [pki.leaf("rsa-ok")["pem"]])
    f = Front(tmp_path, pki, certregd, db, http_extra="    underscores_in_headers on;")
    try:
        r = curl(pki, f.port, "/", leaf="rsa-ok",
                 headers=["X_Certreg_Unit: 999999999", "X_Certreg_Outcome: OK",
                          "X_Certreg_Key: 00", "X_SSL_Client_Cert: x"])
        assert r.status == 200
        (req,) = f.portal.requests
        names = [k.lower() for k in req["headers"].keys()]
        assert not [n for n in names if n.startswith(("x_certreg", "x_ssl"))], names
        assert req["headers"].get_all("X-Certreg-Unit") == [REGNO]
    finally:
        f.close()


def test_a_post_is_decided_and_forwarded_with_its_body(front, pki):
    r = curl(pki, front.port, "/submit", leaf="rsa-ok", data="a=1&b=2",
             headers=["Content-Type: application/x-www-form-urlencoded"])
    assert r.status == 200
    (req,) = front.portal.requests
    assert req["method"] == "POST" and req["body"] == b"a=1&b=2"
    assert req["headers"]["X-Certreg-Unit"] == REGNO


def test_unknown_key_gets_the_chinese_page_naming_key_not_approved(front, pki):
    r = curl(pki, front.port, "/", leaf="ec-ok", headers=["Accept: text/html"])
    assert r.status == 403
    assert r.headers["content-type"][0].startswith("text/html")
    assert "KEY_NOT_APPROVED" in r.text and KEY_NOT_APPROVED_ZH in r.text
    assert 'lang="zh' in r.text
    assert r.headers["strict-transport-security"] == HSTS
    assert front.portal.requests == []


def test_english_page_on_accept_language_en(front, pki):
    r = curl(pki, front.port, "/", leaf="ec-ok", headers=["Accept-Language: en"])
    assert r.status == 403 and "KEY_NOT_APPROVED" in r.text
    assert 'lang="en' in r.text and KEY_NOT_APPROVED_ZH not in r.text


def test_no_certificate_gets_the_friendly_page_not_a_tls_error(front, pki):
    r = curl(pki, front.port, "/", leaf=None)  # curl exits 0: the handshake succeeded
    assert r.status == 403
    assert r.headers["content-type"][0].startswith("text/html")
    assert "NO_CERTIFICATE" in r.text and "<html" in r.text
    assert front.portal.requests == []


def test_expired_certificate_is_explained(front, pki):
    r = curl(pki, front.port, "/", leaf="expired")
    assert r.status == 403 and "CERT_EXPIRED" in r.text


def test_client_supplied_certificate_header_is_not_trusted(front, pki):
    forged = "X-SSL-Client-Cert: " + escaped_pem(pki, "rsa-ok")
    # Without a client certificate: refused, as if no header was sent.
    r = curl(pki, front.port, "/", leaf=None, headers=[forged])
    assert r.status == 403 and "NO_CERTIFICATE" in r.text
    # With another key's certificate: that certificate decides.
    r = curl(pki, front.port, "/", leaf="ec-ok", headers=[forged])
    assert r.status == 403 and "KEY_NOT_APPROVED" in r.text
    # Also raw PEM, and under the underscore spelling.
    raw = pki.read("rsa-ok").replace("\n", " ")
    r = curl(pki, front.port, "/", leaf=None,
             headers=["X-SSL-Client-Cert: " + raw, "X_SSL_Client_Cert: " + raw])
    assert r.status == 403
    assert front.portal.requests == []
    # The header never reached certregd either: nginx replaced it (with
    # nothing, for no certificate), so certregd saw no untrusted header.
    assert "untrusted_cert_header" not in front.certregd.log()
    # And an approved request does not carry a client's copy to the portal.
    r = curl(pki, front.port, "/", leaf="rsa-ok", headers=[forged])
    assert r.status == 200
    assert front.portal.requests[-1]["headers"].get("X-SSL-Client-Cert") is None


def test_certificate_nginx_itself_rejects_is_decided_by_certregd(front, pki):
    """nginx fails an expired certificate with 495 even under optional_no_ca;
    the site config hands it to certregd, which names the problem."""
    r = curl(pki, front.port, "/form", leaf="expired", data="x=1",
             headers=["Accept-Language: zh-CN"])
    assert r.status == 403 and "CERT_EXPIRED" in r.text and "<html" in r.text
    assert "certificate has expired" in front.nginx.log()  # it was nginx's 495
    assert front.portal.requests == []


def test_certregd_overrules_nginx_within_the_clock_skew(tmp_path, pki, db, certregd):
    """notyet-skew starts 120 s after T: OpenSSL in nginx calls it not yet
    valid (495), certregd allows clock_skew = 300 s and approves it. The
    request reaches the portal unchanged: method, URI and body."""
    fresh = make_pki(tmp_path / "pki-now")  # T = now, so notBefore is still ahead
    bind(db, [fresh.leaf("notyet-skew")["pem"]])
    f = Front(tmp_path, pki, certregd, db, trust_pki=fresh)
    try:
        r = curl(pki, f.port, "/submit?a=b", leaf="notyet-skew", data="form=1",
                 client_pki=fresh)
        assert r.status == 200, r.text
        (req,) = f.portal.requests
        assert (req["method"], req["path"], req["body"]) == ("POST", "/submit?a=b", b"form=1")
        assert req["headers"]["X-Certreg-Unit"] == REGNO
        assert "certificate is not yet valid" in f.nginx.log()
    finally:
        f.close()


def test_handshake_names_the_acceptable_cas(front, pki):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{front.port}",
                        "-servername", "localhost"],
                       input=b"", capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    names = out.split("Acceptable client certificate CA names", 1)[1].split("---")[0]
    for cn in ("certreg Test Root CA", "certreg Test Issuing CA",
               "certreg Test SM2 Issuing CA"):
        assert cn in names, out


def test_plain_http_redirects_to_https(front, pki):
    r = curl(pki, front.nginx.http_port, "/home", scheme="http")
    assert r.status == 301
    assert r.headers["location"][0].startswith("https://localhost")


# What each static outage page names: certregd is the certificate login
# service (证书登录校验服务), the portal upstream the online business system
# (网上业务系统). Each page names its own part and not the other.
NAMES_LOGIN_SERVICE = "证书登录校验服务"
NAMES_PORTAL = "网上业务系统"


def test_certregd_down_gives_the_page_naming_the_login_service(front, pki):
    assert front.certregd.stop() == 0
    r = curl(pki, front.port, "/", leaf="rsa-ok")
    assert r.status == 503
    assert "请稍后再试" in r.text and "SERVICE_UNAVAILABLE" in r.text
    assert NAMES_LOGIN_SERVICE in r.text and NAMES_PORTAL not in r.text
    assert r.text.index("请稍后再试") < r.text.index('lang="en"')  # Chinese first
    assert r.headers["retry-after"] == ["30"]
    assert r.headers["strict-transport-security"] == HSTS
    assert front.portal.requests == []


def test_portal_down_gives_the_page_naming_the_portal(front, pki):
    """The login was decided OK; the portal upstream refusing connections is
    not the login service's failure, and the page must not say it is."""
    front.portal.close()
    r = curl(pki, front.port, "/home", leaf="rsa-ok")
    assert r.status == 502, r.text
    assert NAMES_PORTAL in r.text and "PORTAL_UNAVAILABLE" in r.text
    assert NAMES_LOGIN_SERVICE not in r.text and "SERVICE_UNAVAILABLE" not in r.text
    assert r.text.index(NAMES_PORTAL) < r.text.index('lang="en"')  # Chinese first
    assert "portal" in r.text.split('lang="en"', 1)[1]
    assert r.headers["retry-after"] == ["30"]
    assert r.headers["strict-transport-security"] == HSTS
    # certregd answered (OK) and is still up: the failure was the portal's.
    assert "connect() failed" in front.nginx.log()
    assert front.certregd.proc.poll() is None

