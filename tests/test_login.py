"""The TLS client-auth listener: GET /v1/login (contract section 5).

Real TLS handshakes with Python's ssl module, curl and openssl s_client.
The handshake must complete whatever certificate is presented (or none):
the answer, not a TLS alert, tells the user what is wrong.
"""
import datetime
import html
import json
import re
import socket
import ssl
import subprocess
import time

from fixtures.cli import admin
from fixtures.daemon import give_to_daemon_user, in_force, open_for_daemon_user

REGNO = "110100654321"


def tls_context(pki, leaf=None):
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    if leaf is not None:
        ctx.load_cert_chain(pki.leaf(leaf)["chain"], pki.leaf(leaf)["key"])
    return ctx


def login(d, pki, leaf=None, accept="application/json", lang=None, ctx=None, session=None):
    """One GET /v1/login over a new TLS connection; returns (status, body, ssl socket)."""
    ctx = ctx or tls_context(pki, leaf)
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    req = f"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n"
    if lang:
        req += f"Accept-Language: {lang}\r\n"
    s.sendall((req + "\r\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    session = s.session
    reused = s.session_reused
    s.close()
    return status, body, session, reused


def bind(db, pki, leaf):
    admin(db.conninfo, "office", "add", "HD01", "--name", "海淀管理部",
          "--address", "北京市海淀区测试街2号", "--phone", "010-87654321")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "海淀测试单位", "--office", "HD01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
          "--ticket", "T-9")


def test_outcomes_over_tls(certregd, db, pki):
    bind(db, pki, "rsa-ok")
    d = certregd(db)
    cases = {"rsa-ok": (200, "OK"), "ec-ok": (403, "KEY_NOT_APPROVED"),
             "expired": (403, "CERT_EXPIRED"), "untrusted": (403, "CERT_UNTRUSTED"),
             None: (403, "NO_CERTIFICATE")}
    for leaf, (status, outcome) in cases.items():
        got_status, body, _, _ = login(d, pki, leaf)
        doc = json.loads(body)
        assert (got_status, doc["outcome"]) == (status, outcome), (leaf, doc)
    status, body, _, _ = login(d, pki, "rsa-ok")
    doc = json.loads(body)
    assert doc["unit"]["registration_no"] == REGNO
    assert doc["key_id"] == pki.leaf("rsa-ok")["key_id"]


def rsa_server_pair(pki, dirpath):
    """An RSA key and a certificate for localhost from the test server CA."""
    key, csr, pem, ext = (dirpath / n for n in ("rsa.key", "rsa.csr", "rsa.pem", "ext.cnf"))
    ext.write_text("subjectAltName = DNS:localhost\nextendedKeyUsage = serverAuth\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
    run("req", "-new", "-key", str(key), "-subj", "/CN=localhost", "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(pki.dir / "ca/server-ca.pem"),
        "-CAkey", str(pki.dir / "ca/server-ca.key"), "-days", "2", "-extfile", str(ext),
        "-out", str(pem))
    key.chmod(0o600)
    give_to_daemon_user(key)
    open_for_daemon_user(dirpath)
    return pem, key


def test_rsa_server_key_over_tls12_and_tls13(certregd, db, pki, tmp_path):
    """The server's key is read in OpenSSL's default context and the
    handshake runs in certreg's certificate context (docs/VERIFY.md): an RSA
    server key signs both TLS 1.2 (ECDHE-RSA) and TLS 1.3 handshakes, and
    the client certificate is decided as usual."""
    bind(db, pki, "rsa-ok")
    pem, key = rsa_server_pair(pki, tmp_path)
    d = certregd(db, server={"tls_cert": pem, "tls_key": key})
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = tls_context(pki, "rsa-ok")
        ctx.minimum_version = ctx.maximum_version = version
        raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                   ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True)).strip() == \
                pem.read_text().strip()
            s.sendall(b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\n"
                      b"Accept: application/json\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200", data
        assert json.loads(body)["unit"]["registration_no"] == REGNO


def test_tls12_cbc_suites_and_tls13_resumption(certregd, db, pki):
    """The handshake runs in certreg's certificate context, which offers
    the default provider's key managers but those of MAC and KDF bridges
    (docs/VERIFY.md). libssl keys the MAC of TLS 1.2's CBC suites, and TLS
    1.3's PSK binder on resumption, as an EVP_PKEY "HMAC" in that context:
    logins over SHA-1 and SHA-384 CBC suites and a resumed TLS 1.3 login
    are decided like any other."""
    bind(db, pki, "ec-ok")
    d = certregd(db, server={"workers": 1})
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        # The client offers this one suite: a server without it fails the
        # handshake.
        ctx = tls_context(pki, "ec-ok")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(suite)
        status, body, session, _ = login(d, pki, ctx=ctx)
        assert (status, json.loads(body)["outcome"]) == (200, "OK")
        status, body, _, reused = login(d, pki, ctx=ctx, session=session)
        assert (status, json.loads(body)["outcome"], reused) == (200, "OK", True)
    ctx = tls_context(pki, "ec-ok")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    status, body, session, reused = login(d, pki, ctx=ctx)
    assert (status, json.loads(body)["outcome"], reused) == (200, "OK", False)
    status, body, _, reused = login(d, pki, ctx=ctx, session=session)
    assert (status, json.loads(body)["outcome"], reused) == (200, "OK", True)


def test_browser_gets_a_chinese_page(certregd, db, pki):
    d = certregd(db)
    status, body, _, _ = login(d, pki, "ec-ok", accept="text/html,application/xhtml+xml")
    page = body.decode()
    assert status == 403
    assert page.startswith("<!DOCTYPE html>")
    assert "该KEY没有审核通过" in page and "KEY_NOT_APPROVED" in page
    assert "服务器时间" in page
    status, body, _, _ = login(d, pki, "ec-ok", accept="text/html", lang="en")
    assert "This key has not been approved" in body.decode()


def not_after(pem):
    """The certificate's notAfter (UTC), as openssl reads it."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", pem],
                         capture_output=True, text=True, check=True).stdout.strip()
    when = datetime.datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
    return when.replace(tzinfo=datetime.timezone.utc)


BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def test_page_shows_beijing_time_and_fits_a_phone(certregd, db, pki):
    """Contract 5: times in Beijing time (the hints ask the user to compare
    with the PC's clock), a viewport for phones, a CJK font stack."""
    bind(db, pki, "rsa-ok")
    d = certregd(db)
    status, body, _, _ = login(d, pki, "rsa-ok", accept="text/html")
    page = body.decode()
    assert status == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    fonts = re.search(r"font-family:([^;}]*)", page).group(1)
    assert fonts.split(",") == ['"PingFang SC"', '"Hiragino Sans GB"', '"Microsoft YaHei"',
                                '"Noto Sans CJK SC"', '"Source Han Sans SC"',
                                '"WenQuanYi Micro Hei"', "sans-serif"]
    end = not_after(pki.leaf("rsa-ok")["pem"]) + datetime.timedelta(hours=8)
    assert f">{end:%Y-%m-%d %H:%M:%S}</time> 北京时间" in page, page
    # Server time: the Beijing text is the datetime attribute's UTC + 8 h.
    m = re.search(r'<dt>服务器时间</dt><dd><time datetime="([^"]+)">([^<]+)</time> 北京时间', page)
    assert m, page
    utc = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(utc.timestamp() - time.time()) < 120
    assert m.group(2) == utc.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    # No raw UTC time outside the machine-readable attributes.
    assert not re.search(r">[^<]*\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page)
    status, body, _, _ = login(d, pki, "rsa-ok", accept="text/html", lang="en")
    assert f">{end:%Y-%m-%d %H:%M:%S}</time> Beijing time (UTC+8)" in body.decode()


def test_page_shows_the_key_id_when_not_approved(certregd, db, pki):
    """Counter staff bind the key by its id: the refused user can read it
    out (groups of four) or copy it (whole)."""
    bind(db, pki, "rsa-ok")
    d = certregd(db)
    kid = pki.leaf("ec-ok")["key_id"]
    status, body, _, _ = login(d, pki, "ec-ok", accept="text/html")
    page = body.decode()
    assert status == 403 and "KEY_NOT_APPROVED" in page
    assert "<dt>KEY 编号</dt>" in page
    assert f'<code class="kid">{kid}</code>' in page
    grouped = " ".join(kid[i:i + 4] for i in range(0, 64, 4))
    assert f'<code class="kid-groups">{grouped}</code>' in page
    # The same id the JSON answer and certreg-admin use.
    status, body, _, _ = login(d, pki, "ec-ok")
    assert json.loads(body)["key_id"] == kid
    # An approved key's page does not show it.
    status, body, _, _ = login(d, pki, "rsa-ok", accept="text/html")
    assert "KEY 编号" not in body.decode()
    assert pki.leaf("rsa-ok")["key_id"] not in body.decode()


PORTAL = "https://portal.example.gov.cn/login?from=certreg&lang=zh"


def test_page_links_back_to_portal_url_when_configured(certregd, db, pki):
    with_link = certregd(db, server={"portal_url": PORTAL})
    without = certregd(db)
    status, body, _, _ = login(with_link, pki, "ec-ok", accept="text/html")
    page = body.decode()
    links = re.findall(r'<a href="([^"]*)">([^<]*)</a>', page)
    assert links == [(html.escape(PORTAL), "返回门户")], page
    assert html.unescape(links[0][0]) == PORTAL
    status, body, _, _ = login(with_link, pki, None, accept="text/html", lang="en")
    assert f'<a href="{html.escape(PORTAL)}">Back to the portal</a>' in body.decode()
    status, body, _, _ = login(without, pki, "ec-ok", accept="text/html")
    assert "<a " not in body.decode() and "返回门户" not in body.decode()


def test_curl_with_client_certificate(certregd, db, pki):
    bind(db, pki, "ec-ok")
    d = certregd(db)
    leaf = pki.leaf("ec-ok")
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki.dir / "ca/server-ca.pem"), "--cert", leaf["chain"],
         "--key", leaf["key"], "-w", "\n%{http_code}",
         f"https://localhost:{d.tls_port}/v1/login"],
        capture_output=True, text=True, timeout=30)
    body, _, code = out.stdout.rpartition("\n")
    assert code == "200", out
    assert json.loads(body)["outcome"] == "OK"


def test_acceptable_ca_names_are_advertised(certregd, db, pki):
    d = certregd(db)
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{d.tls_port}", "-servername",
         "localhost"], input="", capture_output=True, text=True, timeout=30).stdout
    assert "Acceptable client certificate CA names" in out
    names = out.split("Acceptable client certificate CA names", 1)[1]
    root_subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-nameopt", "oneline", "-in",
         str(pki.dir / "ca/root.pem")], capture_output=True, text=True).stdout
    cn = root_subject.split("CN = ", 1)[1].split(",")[0].strip()
    assert cn in names


def test_resumed_session_is_decided_again(certregd, db, pki):
    bind(db, pki, "ec-ok")
    d = certregd(db, server={"workers": 1})
    ctx = tls_context(pki, "ec-ok")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # session reuse is observable at once
    status, body, session, _ = login(d, pki, ctx=ctx)
    assert json.loads(body)["outcome"] == "OK"
    admin(db.conninfo, "key", "suspend", pki.leaf("ec-ok")["key_id"], "--reason", "lost")

    def resumed():
        status, body, _, reused = login(d, pki, ctx=ctx, session=session)
        assert reused, "the server should resume the TLS session"
        return status, json.loads(body)["outcome"]
    in_force(resumed, (403, "KEY_SUSPENDED"))


def test_a_session_from_before_a_revoking_reload_is_decided_with_the_new_crl(certregd, db, pki):
    """TLS 1.2 and 1.3 sessions of a certificate, then a CRL revoking it
    lands in crl_dir: a client offering the old sessions is refused
    (resumed or not: the reload's workers hold none of the old sessions),
    and a session of the new generation, resumed, is refused too."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    bind(db, pki, "ec-ok")
    d = certregd(db, server={"workers": 1})
    sessions = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = tls_context(pki, "ec-ok")
        ctx.minimum_version = ctx.maximum_version = version
        status, body, session, _ = login(d, pki, ctx=ctx)
        assert (status, json.loads(body)["outcome"]) == (200, "OK")
        sessions.append((ctx, session))
    ca = x509.load_pem_x509_certificate((pki.dir / "ca/int.pem").read_bytes())
    key = serialization.load_pem_private_key((pki.dir / "ca/int.key").read_bytes(), None)
    leaf = x509.load_pem_x509_certificate(open(pki.leaf("ec-ok")["pem"], "rb").read())
    now = datetime.datetime.now(datetime.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
           .last_update(now - datetime.timedelta(minutes=1))
           .next_update(now + datetime.timedelta(days=7))
           .add_extension(x509.CRLNumber(99), critical=False)
           .add_revoked_certificate(x509.RevokedCertificateBuilder()
                                    .serial_number(leaf.serial_number)
                                    .revocation_date(now - datetime.timedelta(minutes=5)).build())
           .sign(key, hashes.SHA256()))
    (d.dir / "crl" / "int.crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    d.reload()
    for ctx, session in sessions:
        deadline = time.monotonic() + 10
        while True:
            status, body, _, _ = login(d, pki, ctx=ctx, session=session)
            if json.loads(body)["outcome"] == "CERT_REVOKED":
                break
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.1)
        assert status == 403
    ctx = sessions[0][0]
    _, _, session, _ = login(d, pki, ctx=ctx)
    status, body, _, reused = login(d, pki, ctx=ctx, session=session)
    assert (status, json.loads(body)["outcome"], reused) == (403, "CERT_REVOKED", True)
