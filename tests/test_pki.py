"""The test PKI generator (tests/pki/mkpki.py) builds what the other tests
rely on: every case in the manifest, outcomes that openssl agrees with, and
the key identities the renewal tests need."""

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fixtures.pki import load_mkpki, make_pki  # noqa: E402

# The case list other engineers write tests against, with the certificate
# side outcome at T (trust.pem, revocation=require, crl-all/, skew 300 s).
EXPECTED = {
    "rsa-ok": "OK",
    "ec-ok": "OK",
    "expired": "CERT_EXPIRED",
    "notyet": "CERT_NOT_YET_VALID",
    "notyet-skew": "OK",
    "revoked": "CERT_REVOKED",
    "enc-only": "CERT_WRONG_USAGE",
    "server-eku": "CERT_WRONG_USAGE",
    "no-eku": "OK",
    "untrusted": "CERT_UNTRUSTED",
    "badsig": "CERT_UNTRUSTED",
    "expired-int": "CERT_EXPIRED",
    "revoked-int": "CERT_REVOKED",
    "renew-old": "CERT_EXPIRED",
    "renew-new": "OK",
    "bjca": "OK",
    "bjca-renewed": "OK",
    "bjca-other": "OK",
    "bjca-uid": "OK",
    "orgid": "OK",
    "ecroot-ok": "OK",
    "sm2-ok": "OK",
    "sm2-revoked": "CERT_REVOKED",
    "sm2-expired": "CERT_EXPIRED",
}

FILES = [
    "now.txt", "manifest.json",
    "ca/root.pem", "ca/root.key", "ca/int.pem", "ca/int.key",
    "ca/root-ec.pem", "ca/other-root.pem", "ca/other-int.pem",
    "ca/int-expired.pem", "ca/int-revoked.pem",
    "ca/sm2-root.pem", "ca/sm2-int.pem", "ca/server-ca.pem",
    "ca/trust.pem", "ca/intermediates.pem",
    "server/server.pem", "server/server.key",
    "crl/root.crl.pem", "crl/int.crl.pem", "crl/sm2-root.crl.pem",
    "crl/sm2-int.crl.pem", "crl-all/int.crl.pem", "crl-der/int.crl.der",
    "crl-badsig/int.crl.pem", "crl-stale/int.crl.pem", "crl-old/int.crl.pem",
]

mkpki = load_mkpki()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_manifest_complete(built):
    m = built.manifest
    assert m["now"] == built.now
    assert (built.dir / "now.txt").read_text().strip() == str(built.now)
    assert set(m["leaves"]) >= set(EXPECTED)
    for f in FILES:
        assert (built.dir / f).is_file(), f
    for name, want in EXPECTED.items():
        leaf = built.leaf(name)
        assert leaf["expected"] == want, name
        for k in ("pem", "key", "chain", "der"):
            assert os.path.isfile(leaf[k]), (name, k)
        assert len(leaf["key_id"]) == 64 and leaf["key_id"].islower()
        der = pathlib.Path(leaf["der"]).read_bytes()
        assert hashlib.sha256(der).hexdigest() == leaf["sha256"]
        assert leaf["not_before"] < leaf["not_after"]
    assert mkpki.uscc_valid(m["credit_code"])
    assert not mkpki.uscc_valid(m["credit_code_invalid"])
    assert len(m["credit_code_invalid"]) == 18


def test_keys_private(built):
    assert (built.dir / "server/server.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED
                                        if not n.startswith("sm2-")))
def test_openssl_agrees(built, name):
    leaf = built.leaf(name)
    got, why = mkpki.verify_outcome(built.dir, name, built.now)
    assert got == leaf["expected_skew0"], why
    if leaf["expected_skew0"] != leaf["expected"]:
        got, why = mkpki.verify_outcome(built.dir, name, built.now + 300)
        assert got == leaf["expected"], why


def test_selftest_clean(built):
    p = subprocess.run([sys.executable, str(mkpki.__file__), "--selftest",
                        str(built.dir)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout


def test_key_identity(built):
    m = built.manifest["leaves"]
    assert m["renew-old"]["key_id"] == m["renew-new"]["key_id"]
    assert m["bjca"]["key_id"] != m["bjca-renewed"]["key_id"]
    assert m["bjca"]["holder_id"] == m["bjca-renewed"]["holder_id"]
    assert m["bjca"]["credit_code"] == m["bjca-renewed"]["credit_code"]
    assert m["bjca-other"]["holder_id"] != m["bjca"]["holder_id"]
    assert len(set(v["key_id"] for v in m.values())) == len(m) - 1


def test_server_cert_for_loopback(built):
    p = subprocess.run(["openssl", "verify", "-purpose", "sslserver",
                        "-verify_ip", "127.0.0.1", "-verify_hostname",
                        "localhost", "-CAfile",
                        str(built.dir / "ca/server-ca.pem"),
                        str(built.dir / "server/server.pem")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    assert p.returncode == 0, p.stdout


def test_fixed_now(tmp_path):
    t = 1700000000
    p = make_pki(tmp_path, now=t)
    assert p.now == t
    for name in ("rsa-ok", "expired", "notyet"):
        got, why = mkpki.verify_outcome(p.dir, name, t)
        assert got == p.manifest["leaves"][name]["expected"], why
