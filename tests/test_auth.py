"""GET /v1/auth for nginx auth_request, and the API access lists
(contract section 5: cert_header, trusted_proxies, api_allow)."""
import urllib.parse

from fixtures.cli import admin
from fixtures.daemon import http

REGNO = "110105000777"


def escaped(pki, name):
    """The header value nginx sends: $ssl_client_escaped_cert (URL-encoded PEM)."""
    return urllib.parse.quote(open(pki.leaf(name)["pem"]).read(), safe="")


def test_auth_decides_from_the_proxy_header(certregd, db, pki):
    admin(db.conninfo, "office", "add", "CY01", "--name", "朝阳管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "朝阳单位", "--office", "CY01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit", REGNO,
          "--ticket", "T-5")
    d = certregd(db)
    r = d.get("/v1/auth", {"X-SSL-Client-Cert": escaped(pki, "ec-ok")})
    assert r.status == 200, r.body
    assert r.headers["X-Certreg-Outcome"] == "OK"
    assert r.headers["X-Certreg-Unit"] == REGNO
    assert r.headers["X-Certreg-Key"] == pki.leaf("ec-ok")["key_id"]

    r = d.get("/v1/auth", {"X-SSL-Client-Cert": escaped(pki, "rsa-ok")})
    assert r.status == 403
    assert r.headers["X-Certreg-Outcome"] == "KEY_NOT_APPROVED"
    assert r.headers.get("X-Certreg-Unit") is None

    r = d.get("/v1/auth", {"X-SSL-Client-Cert": escaped(pki, "expired")})
    assert (r.status, r.headers["X-Certreg-Outcome"]) == (403, "CERT_EXPIRED")
    r = d.get("/v1/auth")
    assert (r.status, r.headers["X-Certreg-Outcome"]) == (403, "NO_CERTIFICATE")


def test_custom_header_name(certregd, db, pki):
    d = certregd(db, server={"cert_header": "X-Client-Cert"})
    r = d.get("/v1/auth", {"X-Client-Cert": escaped(pki, "expired")})
    assert r.headers["X-Certreg-Outcome"] == "CERT_EXPIRED"
    r = d.get("/v1/auth", {"X-SSL-Client-Cert": escaped(pki, "expired")})
    assert r.headers["X-Certreg-Outcome"] == "NO_CERTIFICATE"


def test_header_from_untrusted_address_is_ignored(certregd, db, pki):
    admin(db.conninfo, "office", "add", "CY01", "--name", "朝阳管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "朝阳单位", "--office", "CY01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit", REGNO,
          "--ticket", "T-5")
    d = certregd(db, server={"trusted_proxies": "192.0.2.10/32"})
    r = d.get("/v1/auth", {"X-SSL-Client-Cert": escaped(pki, "ec-ok")})
    assert r.status == 403
    assert r.headers["X-Certreg-Outcome"] == "NO_CERTIFICATE"
    assert r.headers.get("X-Certreg-Unit") is None
    assert "event=untrusted_cert_header" in d.log()


def test_api_allow_guards_v1_only(certregd, db, pki):
    d = certregd(db, server={"api_allow": "192.0.2.0/24"})
    r = d.verify_bundle(open(pki.leaf("expired")["chain"]).read())
    assert r.status == 403 and r.json()["error"] == "forbidden"
    assert d.get("/v1/auth").status == 403
    assert d.get("/healthz").status == 200
    assert d.get("/metrics").status == 200
    # The JWKS has no allow list (contract section 8): a portal anywhere
    # fetches it; the challenge and the signed login are /v1/ and guarded.
    r = d.get("/.well-known/jwks.json")
    assert r.status == 200 and r.json() == {"keys": []}
    for path in ("/v1/challenge", "/v1/login/signed"):
        r = http("POST", d.api + path, b"{}", {"Content-Type": "application/json"})
        assert r.status == 403 and r.json()["error"] == "forbidden", path
