"""POST /v1/verify end to end: the first slice of the contract (section 5).

A real certregd, a real PostgreSQL, certificates from the test PKI.
"""
import json

from fixtures.cli import admin
from fixtures.daemon import http, in_force

REGNO = "110100123456"


def pem(pki, name, part="pem"):
    return open(pki.leaf(name)[part]).read()


def seed_unit(db, pki):
    admin(db.conninfo, "office", "add", "DC01", "--name", "东城管理部",
          "--address", "北京市东城区测试路1号", "--phone", "010-12345678")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "测试单位有限公司", "--office", "DC01")


def test_unknown_key_then_bound_key(certregd, db, pki):
    seed_unit(db, pki)
    d = certregd(db)
    leaf = pki.leaf("ec-ok")
    r = d.verify(pem(pki, "ec-ok"), [open(pki.dir / "ca/int.pem").read()])
    assert r.status == 200, r.body
    body = r.json()
    assert body["outcome"] == "KEY_NOT_APPROVED"
    assert body["key_id"] == leaf["key_id"]
    assert "unit" not in body
    assert "管理部" in body["hint"]

    admin(db.conninfo, "key", "bind", "--cert", leaf["pem"], "--unit", REGNO,
          "--ticket", "T-0001")
    # KEY_NOT_APPROVED is cached: the bind is in force once its
    # notification has dropped it (within a second, by the contract).
    in_force(lambda: d.verify(pem(pki, "ec-ok"),
                              [open(pki.dir / "ca/int.pem").read()]).json()["outcome"], "OK")
    r = d.verify(pem(pki, "ec-ok"), [open(pki.dir / "ca/int.pem").read()])
    body = r.json()
    assert body["outcome"] == "OK", body
    assert body["unit"]["registration_no"] == REGNO
    assert body["unit"]["name"] == "测试单位有限公司"
    assert body["unit"]["office"] == {"code": "DC01", "name": "东城管理部",
                                      "address": "北京市东城区测试路1号",
                                      "phone": "010-12345678"}
    assert body["hint"] is None
    cert = body["certificate"]
    assert cert["sha256"] == leaf["sha256"]
    assert set(cert) >= {"subject", "issuer", "serial", "not_before", "not_after",
                         "days_left", "sha256"}
    assert body["warnings"] == []


def test_decision_json_shape_and_languages(certregd, db, pki):
    d = certregd(db)
    r = d.verify(pem(pki, "expired"), [open(pki.dir / "ca/int.pem").read()])
    body = r.json()
    assert r.status == 200
    assert body["outcome"] == "CERT_EXPIRED"
    assert body["message"] == "证书已过期。"
    assert body["server_time"].endswith("Z")
    assert body["certificate"]["days_left"] < 0
    r = d.verify(pem(pki, "expired"), [open(pki.dir / "ca/int.pem").read()],
                 headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.json()["message"] == "The certificate has expired."


def test_message_language_is_negotiated(certregd, db, pki):
    """The language by RFC 9110 q-values between zh-CN and English; before,
    only the first range counted ("fr, en;q=0.8" got Chinese, "en;q=0"
    English)."""
    d = certregd(db)
    for accept, english in ((None, False), ("en", True), ("EN-gb", True),
                            ("zh-CN,zh;q=0.9,en;q=0.8", False),
                            ("fr-FR,fr;q=0.9,en;q=0.8", True), ("en;q=0", False),
                            ("de", False), ("zh;q=0.5, en;q=0.9", True), ("*", False)):
        r = d.verify(pem(pki, "expired"), headers={"Accept-Language": accept} if accept else {})
        assert r.json()["message"] == ("The certificate has expired." if english
                                       else "证书已过期。"), accept


def test_untrusted_and_bundle_form(certregd, db, pki):
    d = certregd(db)
    r = d.verify_bundle(open(pki.leaf("untrusted")["chain"]).read())
    assert r.status == 200
    assert r.json()["outcome"] == "CERT_UNTRUSTED"
    # The same chain as a PEM bundle body decides the same as JSON.
    r = d.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read())
    assert r.json()["outcome"] == "KEY_NOT_APPROVED"


def test_bad_requests_are_400_and_change_nothing(certregd, db, pki):
    d = certregd(db)
    cases = [
        (b"not json", "application/json"),
        (b'{"chain": []}', "application/json"),
        (b'{"certificate": 5}', "application/json"),
        (b'{"certificate": "x", "chain": "y"}', "application/json"),
        (b"<xml/>", "text/xml"),
    ]
    for body, ctype in cases:
        r = http("POST", d.api + "/v1/verify", body, {"Content-Type": ctype})
        assert r.status == 400, (body, r.status, r.body)
        err = r.json()
        assert set(err) == {"error", "detail"} and err["detail"]
    r = http("POST", d.api + "/v1/verify", b"x" * 70000, {"Content-Type": "application/json"})
    assert r.status == 413
    # Garbage in a well-formed request is a decided outcome, not an error.
    r = d.verify("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert r.status == 200 and r.json()["outcome"] == "CERT_MALFORMED"
    assert admin(db.conninfo, "--json", "pending", "list").stdout.strip() in ("[]", "")


def test_media_type_parameters_and_a_configured_max_body(certregd, db, pki):
    """Content-Type is matched as a media type (parameters, any case), and
    a max_body set in the file is the limit of 413."""
    d = certregd(db, server={"max_body": 4096})
    body = {"certificate": pem(pki, "expired")}
    for ctype in ("application/json; charset=utf-8", "Application/JSON"):
        r = http("POST", d.api + "/v1/verify", json.dumps(body).encode(), {"Content-Type": ctype})
        assert r.status == 200 and r.json()["outcome"] == "CERT_EXPIRED", (ctype, r.body)
    r = http("POST", d.api + "/v1/verify", open(pki.leaf("expired")["chain"], "rb").read(),
             {"Content-Type": "application/pem-certificate-chain; charset=us-ascii"})
    assert r.status == 200 and r.json()["outcome"] == "CERT_EXPIRED"
    r = http("POST", d.api + "/v1/verify", b"x" * 4097, {"Content-Type": "application/json"})
    assert r.status == 413


def test_healthz_and_unknown_paths(certregd, db):
    d = certregd(db)
    assert d.get("/healthz").status == 200
    r = d.get("/nope")
    assert r.status == 404 and r.json()["error"] == "not_found"
    assert http("GET", d.api + "/v1/verify").status == 405
