"""Every outcome of contract section 4, end to end, through each endpoint.

The certificate side comes from the test PKI's manifest (each leaf names
the outcome the engine must give at the PKI's time, with every CRL loaded
and revocation required); the database side from real associations made
with certreg-admin. The same certificate must get the same outcome through
POST /v1/verify, GET /v1/auth (as nginx sends it), GET /v1/login (TLS) and
POST /v1/login/signed (a fresh challenge signed with the leaf's key, as a
CA's client software signs it).
"""
import json
import re
import shutil
import socket
import ssl
import urllib.parse

import pytest

from fixtures.cli import admin
from fixtures.daemon import http
from test_signed_login import challenge, sign

REGNO = "110108000001"
CLOSED = "110108000002"


def verify(d, pki, name):
    return d.verify_bundle(open(pki.leaf(name)["chain"]).read()).json()["outcome"]


def auth(d, pki, name):
    pem = urllib.parse.quote(open(pki.leaf(name)["pem"]).read(), safe="")
    r = d.get("/v1/auth", {"X-SSL-Client-Cert": pem})
    assert r.status == {"OK": 200, "SERVICE_UNAVAILABLE": 503}.get(
        r.headers["X-Certreg-Outcome"], 403)
    return r.headers["X-Certreg-Outcome"]


def login(d, pki, name):
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    if name is not None:
        ctx.load_cert_chain(pki.leaf(name)["chain"], pki.leaf(name)["key"])
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\n"
                      b"Accept: application/json\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    doc = json.loads(body)
    status = int(head.split()[1])
    assert status == {"OK": 200, "SERVICE_UNAVAILABLE": 503}.get(doc["outcome"], 403)
    return doc["outcome"]


def crl_dir_with(pki, tmp_path, name, crl):
    """A copy of the test PKI's crl-all/ with crl (a cryptography CRL) as
    the file name, readable by the daemon's user."""
    from cryptography.hazmat.primitives import serialization

    d = tmp_path / "crl-with"
    shutil.copytree(pki.dir / "crl-all", d)
    (d / name).write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    for p in [d, *d.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return d

def signed(d, pki, name):
    leaf = pki.leaf(name)
    sm2 = name.startswith("sm2-")
    c = challenge(d)["challenge"]
    body = {"certificate": open(leaf["pem"]).read(), "challenge": c,
            "signature": sign(leaf["key"], c, "sm3" if sm2 else "sha256", sm2=sm2)}
    r = http("POST", d.api + "/v1/login/signed", json.dumps(body).encode(),
             {"Content-Type": "application/json"})
    doc = r.json()
    # An answer, refusals too, as /v1/verify's (contract section 8).
    assert r.status == (503 if doc["outcome"] == "SERVICE_UNAVAILABLE" else 200), doc
    return doc["outcome"]


CERT_CASES = ["expired", "notyet", "revoked", "enc-only", "server-eku", "untrusted", "badsig",
              "expired-int", "revoked-int", "renew-old", "sm2-expired", "sm2-revoked"]


@pytest.fixture
def daemon(certregd, db, pki, tmp_path):
    admin(db.conninfo, "office", "add", "HD02", "--name", "海淀第二管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "结果测试单位", "--office", "HD02")
    admin(db.conninfo, "unit", "add", CLOSED, "--name", "已注销单位", "--office", "HD02")
    for leaf in ("ec-ok", "rsa-ok", "sm2-ok", "no-eku"):
        admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
              "--ticket", "T")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("orgid")["pem"], "--unit", CLOSED,
          "--ticket", "T")
    admin(db.conninfo, "unit", "set-status", CLOSED, "closed", "--reason", "dissolved")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("bjca-other")["pem"], "--unit", REGNO,
          "--ticket", "T")
    admin(db.conninfo, "key", "suspend", pki.leaf("bjca-other")["key_id"], "--reason", "lost")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("notyet-skew")["pem"], "--unit", REGNO,
          "--ticket", "T")
    admin(db.conninfo, "key", "cancel", pki.leaf("notyet-skew")["key_id"], "--reason", "gone")
    # Behind nginx only the leaf arrives: every intermediate must be known.
    inter = tmp_path / "intermediates.pem"
    inter.write_text("".join(open(pki.dir / "ca" / f).read()
                             for f in ("intermediates.pem", "int-expired.pem", "int-revoked.pem")))
    return certregd(db, trust={"intermediates_file": inter})


EXPECTED = {
    "ec-ok": "OK", "rsa-ok": "OK", "sm2-ok": "OK", "no-eku": "OK",
    "orgid": "UNIT_INACTIVE", "bjca-other": "KEY_SUSPENDED", "notyet-skew": "KEY_CANCELLED",
    "bjca": "KEY_NOT_APPROVED",
}


@pytest.mark.parametrize("endpoint", [verify, auth, login, signed])
def test_every_outcome_through_every_endpoint(daemon, pki, endpoint):
    got = {}
    want = {}
    # SM2 verifies on the API paths; TLS 1.2/1.3 handshakes carry no SM2 client
    # certificates (that is TLCP's business), so /v1/login skips those.
    skip = {"sm2-ok", "sm2-expired", "sm2-revoked"} if endpoint is login else set()
    for name in CERT_CASES:
        if name in skip:
            continue
        want[name] = pki.leaf(name)["expected"]
        got[name] = endpoint(daemon, pki, name)
    for name, outcome in EXPECTED.items():
        if name in skip:
            continue
        want[name] = outcome
        got[name] = endpoint(daemon, pki, name)
    assert got == want
    # Together these name every certificate outcome of the contract.
    assert {"CERT_EXPIRED", "CERT_NOT_YET_VALID", "CERT_REVOKED", "CERT_WRONG_USAGE",
            "CERT_UNTRUSTED"} <= set(want.values())


def test_decision_json_fields_for_every_outcome(daemon, pki):
    """Contract 5: `unit` whenever the key has an association (OK and the
    refusals of the key and the unit), never otherwise; `certificate` and
    `key_id` whenever the leaf parsed; `hint` null only on OK; `warnings` a
    list and `server_time` RFC 3339 UTC, every time."""
    with_unit = {"OK", "KEY_SUSPENDED", "KEY_CANCELLED", "UNIT_INACTIVE"}
    for name in CERT_CASES + list(EXPECTED):
        doc = daemon.verify_bundle(open(pki.leaf(name)["chain"]).read()).json()
        assert ("unit" in doc) == (doc["outcome"] in with_unit), (name, doc)
        if "unit" in doc:
            assert doc["unit"]["registration_no"] in (REGNO, CLOSED)
            assert set(doc["unit"]["office"]) >= {"code", "name", "address", "phone"}
        assert doc["key_id"] == pki.leaf(name)["key_id"], name
        assert doc["certificate"]["sha256"] == pki.leaf(name)["sha256"], name
        assert isinstance(doc["certificate"]["days_left"], int)
        assert (doc["hint"] is None) == (doc["outcome"] == "OK"), (name, doc)
        assert isinstance(doc["warnings"], list)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["server_time"])
    for doc in (daemon.verify("").json(),
                daemon.verify("-----BEGIN CERTIFICATE-----\nMIIBkz\n"
                              "-----END CERTIFICATE-----\n").json()):
        assert "certificate" not in doc and "unit" not in doc and doc["key_id"] is None, doc
        assert doc["hint"]


def test_no_certificate_and_malformed(daemon, pki):
    assert login(daemon, pki, None) == "NO_CERTIFICATE"
    assert daemon.get("/v1/auth").headers["X-Certreg-Outcome"] == "NO_CERTIFICATE"
    assert daemon.verify("").json()["outcome"] == "NO_CERTIFICATE"
    garbage = "-----BEGIN CERTIFICATE-----\nMIIBkz\n-----END CERTIFICATE-----\n"
    assert daemon.verify(garbage).json()["outcome"] == "CERT_MALFORMED"
    r = daemon.get("/v1/auth", {"X-SSL-Client-Cert": urllib.parse.quote(garbage, safe="")})
    assert r.headers["X-Certreg-Outcome"] == "CERT_MALFORMED"
    der = open(pki.leaf("expired")["der"], "rb").read()
    from fixtures.daemon import http
    r = http("POST", daemon.api + "/v1/verify", der,
             {"Content-Type": "application/pem-certificate-chain"})
    assert r.json()["outcome"] in ("CERT_MALFORMED", "CERT_EXPIRED")


def test_revocation_unknown_when_a_crl_is_stale(certregd, db, pki):
    d = certregd(db)
    crl = d.dir / "crl"
    shutil.rmtree(crl)
    shutil.copytree(pki.dir / "crl-stale", crl)
    from fixtures.daemon import give_to_daemon_user
    for p in [crl, *crl.iterdir()]:
        give_to_daemon_user(p)
    d.reload()
    import time
    deadline = time.monotonic() + 10
    while verify(d, pki, "ec-ok") != "CERT_REVOCATION_UNKNOWN":
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.1)
    r = d.get("/readyz")
    assert r.status == 503 and r.json()["reasons"]


def test_expiring_soon_warning(certregd, db, pki):
    admin(db.conninfo, "office", "add", "HD02", "--name", "海淀第二管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "结果测试单位", "--office", "HD02")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit", REGNO,
          "--ticket", "T")
    days = (pki.leaf("ec-ok")["not_after"] - pki.now) // 86400
    d = certregd(db, trust={"expiry_warning_days": days + 1})
    body = d.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read()).json()
    assert body["outcome"] == "OK" and body["warnings"] == ["CERT_EXPIRING_SOON"]
    d2 = certregd(db, trust={"expiry_warning_days": max(days - 1, 0)})
    body = d2.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read()).json()
    assert body["warnings"] == []


@pytest.mark.parametrize("revocation, expected", [("if-available", "KEY_NOT_APPROVED"),
                                                  ("require", "CERT_REVOCATION_UNKNOWN")])
def test_forged_crl_of_an_intermediate_the_client_sends_is_never_used(certregd, db, pki,
                                                                      tmp_path, revocation,
                                                                      expected):
    """Issue 27: crl-badsig/ holds a forged CRL for int (int's name, another
    key) that lists `revoked`. int is not configured here, so the CRL is not
    checked at load; the client sends int. A CRL whose signature does not
    verify must neither revoke (if-available) nor turn require's
    CERT_REVOCATION_UNKNOWN into CERT_REVOKED; the daemon logs it."""
    crl = tmp_path / "crl-badsig"
    shutil.copytree(pki.dir / "crl-badsig", crl)
    for p in [crl, *crl.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    d = certregd(db, trust={"crl_dir": crl, "intermediates_file": None,
                            "revocation": revocation})
    assert verify(d, pki, "revoked") == expected
    assert "event=crl_not_authentic" in d.log() and "Issuing CA" in d.log(), d.log()
    # A genuine CRL of int is used as before.
    (crl / "int.crl.pem").write_bytes((pki.dir / "crl-all/int.crl.pem").read_bytes())
    d.reload()
    import time
    deadline = time.monotonic() + 10
    while verify(d, pki, "revoked") != "CERT_REVOKED":
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.1)


@pytest.mark.parametrize("revocation", ["if-available", "require"])
def test_a_delta_crl_in_crl_dir_does_not_stand_for_the_complete_crl(certregd, db, pki,
                                                                   tmp_path, revocation):
    """A delta CRL lists only what changed since its base CRL. OpenSSL
    without delta support scores one like a complete CRL and, being newer,
    prefers it: `revoked`, on int's complete CRL but not on the delta, was
    OK. The delta is genuine (int's key, the next CRL number, current)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate((pki.dir / "ca/int.pem").read_bytes())
    key = serialization.load_pem_private_key((pki.dir / "ca/int.key").read_bytes(), None)
    now = datetime.datetime.fromtimestamp(pki.now, datetime.timezone.utc)
    delta = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
             .last_update(now - datetime.timedelta(hours=1))
             .next_update(now + datetime.timedelta(days=7))
             .add_extension(x509.CRLNumber(17), critical=False)
             .add_extension(x509.DeltaCRLIndicator(16), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
                            critical=False)
             .sign(key, hashes.SHA256()))
    crl = crl_dir_with(pki, tmp_path, "int-delta.crl.pem", delta)
    admin(db.conninfo, "office", "add", "HD02", "--name", "海淀第二管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "结果测试单位", "--office", "HD02")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("revoked")["pem"], "--unit", REGNO,
          "--ticket", "T")
    d = certregd(db, trust={"crl_dir": crl, "revocation": revocation})
    assert verify(d, pki, "revoked") == "CERT_REVOKED"
    assert login(d, pki, "revoked") == "CERT_REVOKED"
    # int's other certificates still pass its complete CRL.
    assert verify(d, pki, "ec-ok") == "KEY_NOT_APPROVED"
    assert "is a delta CRL" in d.log(), d.log()


@pytest.mark.parametrize("revocation", ["if-available", "require"])
def test_a_crl_of_the_issuers_other_key_does_not_hide_its_own(certregd, db, pki, tmp_path,
                                                               revocation):
    """int re-keyed under the same name, both certificates configured and
    each key's CRL in crl_dir, the new key's without authorityKeyIdentifier
    (RFC 5280 asks for one; not every CA puts it in). OpenSSL scores that
    CRL as int's own for the old key's certificates too and, as the newer,
    takes it alone: its signature fails against the old key and int's
    genuine CRL, which lists `revoked`, was never looked at. `revoked` was
    OK (KEY_NOT_APPROVED) under if-available and every certificate of the
    old key CERT_REVOCATION_UNKNOWN under require."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    old = x509.load_pem_x509_certificate((pki.dir / "ca/int.pem").read_bytes())
    root = x509.load_pem_x509_certificate((pki.dir / "ca/root.pem").read_bytes())
    root_key = serialization.load_pem_private_key((pki.dir / "ca/root.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.fromtimestamp(pki.now, datetime.timezone.utc)
    new = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(root.subject)
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(days=1))
           .not_valid_after(now + datetime.timedelta(days=365))
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                        False), critical=True)
           .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                          critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
               root.public_key()), critical=False)
           .sign(root_key, hashes.SHA256()))
    newer = (x509.CertificateRevocationListBuilder().issuer_name(old.subject)
             .last_update(now - datetime.timedelta(minutes=30))
             .next_update(now + datetime.timedelta(days=7))
             .add_extension(x509.CRLNumber(1), critical=False)
             .sign(key, hashes.SHA256()))
    inter = tmp_path / "intermediates.pem"
    inter.write_bytes((pki.dir / "ca/intermediates.pem").read_bytes()
                      + new.public_bytes(serialization.Encoding.PEM))
    inter.chmod(0o644)
    crl = crl_dir_with(pki, tmp_path, "int-new-key.crl.pem", newer)
    d = certregd(db, trust={"crl_dir": crl, "intermediates_file": inter,
                            "revocation": revocation})
    assert verify(d, pki, "revoked") == "CERT_REVOKED"
    assert verify(d, pki, "ec-ok") == "KEY_NOT_APPROVED"
    assert d.get("/readyz").status == 200


@pytest.mark.parametrize("kind", ["some-reasons", "indirect", "attribute-only"])
def test_a_crl_the_engine_never_applies_is_not_the_issuers_current_crl(certregd, db, pki,
                                                                       tmp_path, kind):
    """OpenSSL never revokes a certificate by a CRL of some reasons only, an
    indirect one (without extended CRL support) or one of attribute
    certificates only. Such a CRL, int's only one, listing
    `revoked`, was counted by /readyz as int's current CRL while every
    login under int was refused CERT_REVOCATION_UNKNOWN: ready, and
    refusing. It is left out now, with a warning naming it."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate((pki.dir / "ca/int.pem").read_bytes())
    key = serialization.load_pem_private_key((pki.dir / "ca/int.key").read_bytes(), None)
    leaf = x509.load_pem_x509_certificate(open(pki.leaf("revoked")["pem"], "rb").read())
    now = datetime.datetime.fromtimestamp(pki.now, datetime.timezone.utc)
    idp = x509.IssuingDistributionPoint(
        full_name=None, relative_name=None, only_contains_user_certs=False,
        only_contains_ca_certs=False, only_contains_attribute_certs=kind == "attribute-only",
        only_some_reasons=(frozenset({x509.ReasonFlags.key_compromise})
                           if kind == "some-reasons" else None),
        indirect_crl=kind == "indirect")
    partial = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now - datetime.timedelta(hours=1))
               .next_update(now + datetime.timedelta(days=7))
               .add_extension(x509.CRLNumber(17), critical=False)
               .add_extension(idp, critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.public_key()), critical=False)
               .add_revoked_certificate(
                   x509.RevokedCertificateBuilder().serial_number(leaf.serial_number)
                   .revocation_date(now - datetime.timedelta(hours=2))
                   .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise),
                                  critical=False).build())
               .sign(key, hashes.SHA256()))
    crl = crl_dir_with(pki, tmp_path, "int.crl.pem", partial)
    d = certregd(db, trust={"crl_dir": crl, "revocation": "require"})
    assert verify(d, pki, "revoked") == "CERT_REVOCATION_UNKNOWN"
    assert verify(d, pki, "ec-ok") == "CERT_REVOCATION_UNKNOWN"
    r = d.get("/readyz")
    assert r.status == 503, r.body
    assert any("no current CRL for" in x and "Issuing CA" in x for x in r.json()["reasons"]), \
        r.body
    why = {"some-reasons": "some revocation reasons only", "indirect": "an indirect CRL",
           "attribute-only": "attribute certificates only"}[kind]
    assert why in d.log(), d.log()
