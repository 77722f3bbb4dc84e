"""Signed-challenge login (contract section 8): POST /v1/challenge and
POST /v1/login/signed, for SM2, ECDSA and RSA keys.

The signatures are made by the openssl CLI the way a CA's client software
makes them (SOF_SignData: the challenge's bytes, SM2 with SM3 and the
default distinguishing id); the assertions are checked by PyJWT. Expired
and forged challenges are made here, independently of certregd, from the
challenge format of common/challenge.h and the key in the database.
"""
import base64
import calendar
import hashlib
import hmac
import json
import os
import struct
import subprocess
import threading
import time
import types
import urllib.parse

import jwt
import psycopg2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fixtures.cli import admin
from fixtures.daemon import http
from test_assertion import AUDIENCE, ISSUER, REGNO, ec_key, jwks_of, settings, verified

SM2_ID = "1234567812345678"


def bind(db, pem, regno=REGNO):
    admin(db.conninfo, "office", "add", "SL01", "--name", "签名管理部")
    admin(db.conninfo, "unit", "add", regno, "--name", "签名测试单位", "--office", "SL01")
    admin(db.conninfo, "key", "bind", "--cert", pem, "--unit", regno, "--ticket", "T-1")


def challenge(d):
    r = http("POST", d.api + "/v1/challenge", body=b"",
             headers={"Content-Type": "application/json"})
    assert r.status == 200, r.body
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()


def sign(key, data, digest, sm2=False, distid=SM2_ID):
    """What SOF_SignData gives: a DER signature of data, base64 (SM2 with
    the default distinguishing id unless told another)."""
    args = ["openssl", "pkeyutl", "-sign", "-rawin", "-digest", digest, "-inkey", str(key)]
    if sm2:
        args += ["-pkeyopt", f"distid:{distid}"]
    p = subprocess.run(args, input=data.encode() if isinstance(data, str) else data,
                       capture_output=True, check=True)
    return base64.b64encode(p.stdout).decode()


def login(d, cert, chall, sig, algorithm=None, nonce=None, chain=None, raw=None):
    body = {"certificate": cert, "challenge": chall, "signature": sig}
    for name, value in (("algorithm", algorithm), ("nonce", nonce), ("chain", chain)):
        if value is not None:
            body[name] = value
    r = http("POST", d.api + "/v1/login/signed",
             body=raw if raw is not None else json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
    return r


def outcome(r):
    assert r.status in (200, 503), (r.status, r.body)
    return r.json()["outcome"]


def p384_leaf(pki, tmp_path):
    """A P-384 leaf of the test PKI's issuing CA: pem path and key path."""
    key, csr, pem = tmp_path / "p384.key", tmp_path / "p384.csr", tmp_path / "p384.pem"
    ext = tmp_path / "p384.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-384", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj",
                    "/C=CN/O=certreg test/CN=p384", "-out", csr], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.dir / "ca/int.pem",
                    "-CAkey", pki.dir / "ca/int.key", "-set_serial", "0x3840", "-days", "30",
                    "-extfile", ext, "-out", pem], check=True, capture_output=True)
    return pem, key


def forge(db, expires_at, key=None):
    """A challenge in certregd's format (common/challenge.h), tagged with the
    database's challenge key or with key."""
    if key is None:
        with psycopg2.connect(db.conninfo) as conn, conn.cursor() as cur:
            cur.execute("SELECT key FROM certreg.challenge_key")
            key = bytes(cur.fetchone()[0])
    body = bytes([1]) + struct.pack(">Q", expires_at) + os.urandom(32)
    tag = hmac.new(key, b"certreg challenge v1\x00" + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).decode()


KEYS = {
    # leaf, digest, algorithm name, sm2
    "ec-ok": ("sha256", "ecdsa-sha256", False),
    "rsa-ok": ("sha256", "rsa-sha256", False),
    "sm2-ok": ("sm3", "sm2-sm3", True),
}


@pytest.mark.parametrize("leaf", sorted(KEYS) + ["p384"])
def test_each_key_type_logs_in_and_gets_an_assertion(certregd, db, pki, tmp_path, leaf):
    if leaf == "p384":
        pem, key = p384_leaf(pki, tmp_path)
        digest, alg, sm2 = "sha384", "ecdsa-sha384", False
    else:
        pem, key = pki.leaf(leaf)["pem"], pki.leaf(leaf)["key"]
        digest, alg, sm2 = KEYS[leaf]
    bind(db, pem)
    assertion_key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(assertion_key))
    c = challenge(d)
    assert len(c["challenge"]) <= 128 and c["ttl_seconds"] == 120
    assert set(c["challenge"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789-_")
    # The algorithm named, and (a new challenge) the one the key implies.
    cert = open(pem).read()
    r = login(d, cert, c["challenge"], sign(key, c["challenge"], digest, sm2), algorithm=alg,
              nonce="portal-nonce-1")
    out = r.json()
    assert r.status == 200 and out["outcome"] == "OK", out
    assert out["unit"]["registration_no"] == REGNO
    claims = verified(out["assertion"], jwks_of(d, pki), "ES256")
    assert claims["method"] == "signed-challenge" and claims["nonce"] == "portal-nonce-1"
    assert claims["sub"] == REGNO and claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["key_id"] == out["key_id"] and claims["exp"] - claims["iat"] == 120
    der = x509.load_pem_x509_certificate(open(pem, "rb").read()).public_bytes(Encoding.DER)
    assert claims["cnf"] == {"x5t#S256": base64.urlsafe_b64encode(
        hashlib.sha256(der).digest()).rstrip(b"=").decode()}
    c = challenge(d)
    r = login(d, cert, c["challenge"], sign(key, c["challenge"], digest, sm2))
    assert outcome(r) == "OK" and "nonce" not in jwt.decode(
        r.json()["assertion"], options={"verify_signature": False})


def test_challenge_ttl_is_the_configured_one_and_the_assertion_ttl_defaults_to_120(
        certregd, db, pki, tmp_path):
    """Contract 8: ttl_seconds and expires_at follow [assertion]
    challenge_ttl; with no ttl in the file an assertion lives 120 s; each
    challenge is new (256 random bits in the format of common/challenge.h)."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key, challenge_ttl=45, ttl=None))
    seen = set()
    for _ in range(20):
        t0 = time.time()
        c = challenge(d)
        assert c["ttl_seconds"] == 45
        expires = calendar.timegm(time.strptime(c["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert int(t0) + 44 <= expires <= time.time() + 46, (c, t0)
        raw = base64.urlsafe_b64decode(c["challenge"] + "=" * (-len(c["challenge"]) % 4))
        assert len(raw) >= 1 + 8 + 32 + 16 and len(c["challenge"]) <= 128
        seen.add(raw[9:41])
    assert len(seen) == 20
    r = login(d, open(ec["pem"]).read(), c["challenge"], sign(ec["key"], c["challenge"], "sha256"))
    claims = jwt.decode(r.json()["assertion"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_refusals_in_the_contract_order(certregd, db, pki, tmp_path):
    ec, rsa = pki.leaf("ec-ok"), pki.leaf("rsa-ok")
    bind(db, ec["pem"])
    d = certregd(db)
    cert = open(ec["pem"]).read()

    def fresh():
        return challenge(d)["challenge"]

    def good(c, leaf=ec):
        return sign(leaf["key"], c, "sha256")

    # Wrong data, wrong key, wrong algorithm: SIGNATURE_INVALID.
    c = fresh()
    assert outcome(login(d, cert, c, good(fresh()))) == "SIGNATURE_INVALID"
    c = fresh()
    assert outcome(login(d, cert, c, good(c, rsa))) == "SIGNATURE_INVALID"
    c = fresh()
    assert outcome(login(d, cert, c, good(c), algorithm="rsa-sha256")) == "SIGNATURE_INVALID"
    c = fresh()
    assert outcome(login(d, cert, c, good(c), algorithm="ecdsa-sha384")) == "SIGNATURE_INVALID"
    c = fresh()
    assert outcome(login(d, cert, c, "")) == "SIGNATURE_INVALID"
    # A challenge is spent by a wrong signature: the right one comes too late.
    assert outcome(login(d, cert, c, good(c))) == "CHALLENGE_INVALID"
    # Used, expired, made up, tagged with another key: CHALLENGE_INVALID.
    c = fresh()
    assert outcome(login(d, cert, c, good(c))) == "OK"
    assert outcome(login(d, cert, c, good(c))) == "CHALLENGE_INVALID"
    for c in (forge(db, int(time.time()) - 1), "abc", "A" * 76, "x" * 129,
              forge(db, int(time.time()) + 60, key=b"k" * 32)):
        assert outcome(login(d, cert, c, good(c))) == "CHALLENGE_INVALID", c
    # A challenge made with the database's key is one of ours.
    c = forge(db, int(time.time()) + 60)
    assert outcome(login(d, cert, c, good(c))) == "OK"
    # Parse first, then challenge, then signature, then the certificate.
    c = fresh()
    assert outcome(login(d, "not a certificate", c, good(c))) == "CERT_MALFORMED"
    assert outcome(login(d, cert, c, good(c))) == "CHALLENGE_INVALID"   # spent all the same
    exp = pki.leaf("expired")
    exp_cert = open(exp["pem"]).read()
    assert outcome(login(d, exp_cert, "bogus", good("bogus", exp))) == "CHALLENGE_INVALID"
    c = fresh()
    assert outcome(login(d, exp_cert, c, good(c))) == "SIGNATURE_INVALID"
    c = fresh()
    assert outcome(login(d, exp_cert, c, good(c, exp))) == "CERT_EXPIRED"
    unt = pki.leaf("untrusted")
    c = fresh()
    assert outcome(login(d, open(unt["pem"]).read(), c, good(c, unt))) == "CERT_UNTRUSTED"
    # The whole chain may be given; a key nobody bound is a pending registration.
    c = fresh()
    chain = open(rsa["chain"]).read().split("-----END CERTIFICATE-----")[1:-1]
    chain = [p.strip() + "\n-----END CERTIFICATE-----\n" for p in chain]
    r = login(d, open(rsa["pem"]).read(), c, good(c, rsa), chain=chain)
    assert outcome(r) == "KEY_NOT_APPROVED" and r.json()["hint"]
    pending = json.loads(admin(db.conninfo, "--json", "pending", "list").stdout)
    assert rsa["key_id"] in json.dumps(pending)
    # base64 DER, as a CA's plugin exports it, is a certificate too.
    c = fresh()
    der = base64.b64encode(open(ec["der"], "rb").read()).decode()
    assert outcome(login(d, der, c, good(c))) == "OK"
    # The refusals speak the user's language.
    c = fresh()
    r = http("POST", d.api + "/v1/login/signed",
             body=json.dumps({"certificate": cert, "challenge": c, "signature": good("x")})
             .encode(), headers={"Accept-Language": "en"})
    assert r.json()["outcome"] == "SIGNATURE_INVALID" and "signature" in r.json()["message"]


@pytest.mark.parametrize("leaf", ["rsa-ok", "sm2-ok"])
def test_each_key_type_refuses_wrong_data_key_and_algorithm(certregd, db, pki, tmp_path, leaf):
    """test_refusals_in_the_contract_order's signature cases for the RSA
    and SM2 keys: wrong data, another key of the same type, an algorithm
    the key does not have or a digest other than the one named, and (SM2)
    a distinguishing id other than the default: SIGNATURE_INVALID each
    time, and the challenge spent."""
    mine = pki.leaf(leaf)
    digest, alg, sm2 = KEYS[leaf]
    if sm2:
        other = pki.leaf("sm2-revoked")["key"]
    else:
        other = tmp_path / "other-rsa.key"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", other], capture_output=True, check=True)
    bind(db, mine["pem"])
    d = certregd(db)
    cert = open(mine["pem"]).read()

    def fresh():
        return challenge(d)["challenge"]

    def signed_by(key, data, dig=digest, distid=SM2_ID):
        return sign(key, data, dig, sm2=sm2, distid=distid)

    cases = [("wrong data", lambda c: signed_by(mine["key"], fresh()), alg),
             ("another key", lambda c: signed_by(other, c), alg),
             ("named ECDSA", lambda c: signed_by(mine["key"], c), "ecdsa-sha256")]
    if sm2:
        cases += [("another id", lambda c: signed_by(mine["key"], c, distid="1234"), alg)]
    else:
        cases += [("SHA-384 named SHA-256", lambda c: signed_by(mine["key"], c, "sha384"), alg),
                  ("named sm2-sm3", lambda c: signed_by(mine["key"], c), "sm2-sm3")]
    for what, make, name in cases:
        c = fresh()
        assert outcome(login(d, cert, c, make(c), algorithm=name)) == "SIGNATURE_INVALID", what
        assert outcome(login(d, cert, c, signed_by(mine["key"], c), algorithm=alg)) == \
            "CHALLENGE_INVALID", what
    c = fresh()
    assert outcome(login(d, cert, c, signed_by(mine["key"], c), algorithm=alg)) == "OK"


def test_rsa_sha1_only_when_switched_on(certregd, db, pki):
    rsa = pki.leaf("rsa-ok")
    bind(db, rsa["pem"])
    cert = open(rsa["pem"]).read()
    for switch, expected in (("no", "SIGNATURE_INVALID"), ("yes", "OK")):
        d = certregd(db, assertion={"signed_login_sha1": switch})
        c = challenge(d)["challenge"]
        r = login(d, cert, c, sign(rsa["key"], c, "sha1"), algorithm="rsa-sha1")
        assert outcome(r) == expected, switch


def test_malformed_requests_are_400_and_spend_nothing(certregd, db, pki):
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db)
    cert = open(ec["pem"]).read()
    c = challenge(d)["challenge"]
    sig = sign(ec["key"], c, "sha256")
    bad = [
        (None, b"not json"),
        (None, b"[]"),
        (None, json.dumps({"certificate": cert, "signature": sig}).encode()),
        (None, json.dumps({"certificate": cert, "challenge": 5, "signature": sig}).encode()),
        (None, json.dumps({"challenge": c, "signature": sig}).encode()),
        (None, json.dumps({"certificate": cert, "challenge": c, "signature": "!!"}).encode()),
        (None, json.dumps({"certificate": cert, "challenge": c,
                           "signature": base64.b64encode(b"s" * 2000).decode()}).encode()),
        (None, json.dumps({"certificate": cert, "challenge": c, "signature": sig,
                           "chain": "x"}).encode()),
        ("algorithm", "md5-rsa"),
        ("nonce", "a b"),
        ("nonce", "x" * 257),
    ]
    for field, value in bad:
        if field is None:
            r = login(d, None, None, None, raw=value)
        else:
            r = login(d, cert, c, sig, **{field: value})
        assert r.status == 400 and r.json()["error"] == "bad_request", (field, value, r.body)
    r = http("POST", d.api + "/v1/login/signed", body=b"{\"certificate\": 1, \"certificate\": 2}")
    assert r.status == 400
    assert http("GET", d.api + "/v1/login/signed").status == 405
    assert http("POST", d.api + "/v1/challenge", body=b"[1]").status == 400
    assert http("POST", d.api + "/v1/challenge", body=b"{}").status == 200
    # None of them used the challenge.
    assert outcome(login(d, cert, c, sig)) == "OK"


def test_many_concurrent_logins_on_one_challenge_exactly_one_wins(certregd, db, pki):
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db, server={"workers": 2}, database={"pool_size": 4})
    cert = open(ec["pem"]).read()
    c = challenge(d)["challenge"]
    sig = sign(ec["key"], c, "sha256")
    barrier = threading.Barrier(24)
    results = []

    def go():
        barrier.wait(timeout=30)
        results.append(outcome(login(d, cert, c, sig)))

    threads = [threading.Thread(target=go) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["CHALLENGE_INVALID"] * 23 + ["OK"], results


def test_single_use_across_daemons_and_restarts(certregd, db, pki):
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    a, b = certregd(db), certregd(db)
    cert = open(ec["pem"]).read()
    c = challenge(a)["challenge"]
    sig = sign(ec["key"], c, "sha256")
    assert outcome(login(b, cert, c, sig)) == "OK"          # issued by a, used on b
    assert outcome(login(a, cert, c, sig)) == "CHALLENGE_INVALID"
    unused = challenge(a)["challenge"]
    a.stop()
    a.start()
    assert outcome(login(a, cert, c, sig)) == "CHALLENGE_INVALID"
    assert outcome(login(a, cert, unused, sign(ec["key"], unused, "sha256"))) == "OK"


def test_a_challenge_expiring_past_challenge_ttl_is_refused_and_spends_nothing(certregd, db,
                                                                              pki):
    """A daemon whose clock ran ahead (or was set wrong once) issues
    challenges that expire that far ahead, under the key every daemon
    shares: made here with the database's key, as it would. One that
    expires later than challenge_ttl plus CHALLENGE_SKEW_S (5 s) from the
    checking daemon's now is CHALLENGE_INVALID, like an expired one, and
    leaves nothing in challenges_used; one within the allowance logs in.
    The lifetime is the checker's own challenge_ttl."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db, assertion={"challenge_ttl": 60})
    cert = open(ec["pem"]).read()

    def used(c):
        with psycopg2.connect(db.conninfo) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM certreg.challenges_used WHERE hash = %s",
                        (hashlib.sha256(c.encode()).hexdigest(),))
            return cur.fetchone()[0]

    for ahead in (3600, 6 * 3600, 60 + 5 + 3):
        c = forge(db, int(time.time()) + ahead)
        sig = sign(ec["key"], c, "sha256")
        assert outcome(login(d, cert, c, sig)) == "CHALLENGE_INVALID", ahead
        assert used(c) == 0, ahead
    assert "challenge_ttl" in d.log()   # the decision's reason names the limit
    # Within challenge_ttl and the allowance (a second of slack for the
    # request's own time): one of ours.
    c = forge(db, int(time.time()) + 60 + 5 - 1)
    assert outcome(login(d, cert, c, sign(ec["key"], c, "sha256"))) == "OK"
    assert used(c) == 1
    # What the daemon issues itself is within it, of course.
    c = challenge(d)["challenge"]
    assert outcome(login(d, cert, c, sign(ec["key"], c, "sha256"))) == "OK"


def test_without_the_database_503_never_a_hang(certregd, db, pki):
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    live = certregd(db)
    c = challenge(live)["challenge"]
    dead = certregd(db, database={"conninfo": "host=127.0.0.1 port=1 dbname=x user=x "
                                  "connect_timeout=1", "timeout_ms": 500})
    start = time.monotonic()
    r = http("POST", dead.api + "/v1/challenge", body=b"")
    assert r.status == 503 and r.headers["Retry-After"] == "1"
    r = login(dead, open(ec["pem"]).read(), c, sign(ec["key"], c, "sha256"))
    assert r.status == 503 and r.json()["outcome"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - start < 8
    # The challenge was not spent: the live daemon still takes it.
    assert outcome(login(live, open(ec["pem"]).read(), c, sign(ec["key"], c, "sha256"))) == "OK"


def test_a_challenge_spelled_otherwise_is_unknown_and_spends_nothing(certregd, db, pki):
    """Only the very text certregd issued is that challenge (its SHA-256 is
    what single use records): the other base64 alphabet, padding or white
    space are unknown, CHALLENGE_INVALID, and leave the challenge unspent; a
    NUL after it (which C would read as the challenge itself) is a 400."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db)
    cert = open(ec["pem"]).read()
    c = challenge(d)["challenge"]
    for _ in range(50):     # one with a character the alphabets spell apart
        if "-" in c or "_" in c:
            break
        c = challenge(d)["challenge"]
    sig = sign(ec["key"], c, "sha256")
    for variant in (c + "=", c + "==", c + "\n", " " + c, c.replace("-", "+").replace("_", "/")):
        assert variant != c
        assert outcome(login(d, cert, variant, sig)) == "CHALLENGE_INVALID", repr(variant)
    for variant in (c + "\u0000", c + "\u0000x"):
        assert login(d, cert, variant, sig).status == 400, repr(variant)
    assert outcome(login(d, cert, c, sig)) == "OK"


def test_a_key_query_that_hangs_is_503_within_timeout_ms(certregd, db, pki):
    """A worker that has not got the challenge key yet (here: its table is
    locked by a session that does not end) answers a challenge or a signed
    login SERVICE_UNAVAILABLE within timeout_ms, not after the registry's
    connection resets and resends; once the key can be read, both work."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    cert = open(ec["pem"]).read()
    su = psycopg2.connect(db.conninfo)
    try:
        su.cursor().execute("LOCK TABLE certreg.challenge_key IN ACCESS EXCLUSIVE MODE")
        d = certregd(db, database={"timeout_ms": 500})
        for _ in range(2):
            start = time.monotonic()
            r = http("POST", d.api + "/v1/challenge", body=b"", timeout=30)
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert time.monotonic() - start < 1.8     # 4 s before the fix
            start = time.monotonic()
            r = login(d, cert, "A" * 76, "")
            assert r.status == 503 and r.json()["outcome"] == "SERVICE_UNAVAILABLE"
            assert time.monotonic() - start < 1.8
    finally:
        su.rollback()
        su.close()
    deadline = time.monotonic() + 15
    while True:
        r = http("POST", d.api + "/v1/challenge", body=b"", timeout=30)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    c = r.json()["challenge"]
    assert outcome(login(d, cert, c, sign(ec["key"], c, "sha256"))) == "OK"


def at_once(fns):
    """Runs fns in threads released together; their results in order."""
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def go(i):
        barrier.wait(timeout=30)
        results[i] = fns[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_logins_in_flight_together_each_get_their_own_answer(certregd, db, pki):
    """One worker, one database connection: the consumes of logins in
    flight together wait for one another and go as one batch
    (challenge_consume_many); each login still gets its own challenge's
    answer, in the contract's order (a wrong signature spends its
    challenge), and a second round finds every challenge spent."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db, server={"workers": 1}, database={"pool_size": 1})
    cert = open(ec["pem"]).read()
    chs = [challenge(d)["challenge"] for _ in range(24)]
    sigs = [sign(ec["key"], c, "sha256") for c in chs]
    bad = set(range(0, 24, 5))
    for i in bad:
        sigs[i] = sigs[(i + 1) % 24]       # a valid signature of another challenge
    fns = [lambda i=i: outcome(login(d, cert, chs[i], sigs[i])) for i in range(24)]
    assert at_once(fns) == ["SIGNATURE_INVALID" if i in bad else "OK" for i in range(24)]
    assert at_once(fns) == ["CHALLENGE_INVALID"] * 24


def test_batches_of_two_daemons_racing_for_the_same_challenges(certregd, db, pki):
    """Two daemons, each with logins in flight on the same six challenges:
    exactly one login a challenge is OK, across the daemons' batches, and
    none is SERVICE_UNAVAILABLE (batches racing for the same rows in
    different orders must not deadlock)."""
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    # A deadlock is PostgreSQL's error after deadlock_timeout (1 s), not a
    # timeout: 10 s leaves a loaded machine's slow commits out of it (at
    # the default 2 s, a load of 11 made three logins time out).
    db_conf = {"pool_size": 1, "timeout_ms": 10000}
    a = certregd(db, server={"workers": 1}, database=db_conf)
    b = certregd(db, server={"workers": 1}, database=db_conf)
    cert = open(ec["pem"]).read()
    chs = [challenge(a)["challenge"] for _ in range(6)]
    sigs = [sign(ec["key"], c, "sha256") for c in chs]
    # Each daemon gets the challenges in its own order.
    plan = [(d, i) for i in range(6) for d in (a, b) for _ in range(3)]
    plan.sort(key=lambda p: (p[0] is a, p[1] if p[0] is a else -p[1]))
    fns = [lambda d=d, i=i: (i, outcome(login(d, cert, chs[i], sigs[i]))) for d, i in plan]
    results = at_once(fns)
    for i in range(6):
        got = sorted(o for j, o in results if j == i)
        assert got == ["CHALLENGE_INVALID"] * 5 + ["OK"], (i, got)


def spend_uncommitted(db, *challenges):
    """A session holding the rows of these challenges, not committed: a
    consume of one of them waits until it rolls back."""
    holder = psycopg2.connect(db.conninfo)
    cur = holder.cursor()
    for c in challenges:
        cur.execute("INSERT INTO certreg.challenges_used (hash, expires_at, attempt)"
                    " VALUES (%s, now() + interval '1 hour', %s)",
                    (hashlib.sha256(c.encode()).hexdigest(), "f" * 32))
    return holder


def start_logins(d, cert, key, schedule):
    """A thread a (name, challenge, delay) of SCHEDULE, started: after its
    delay, a signed login with CERT and KEY (sha256) on the challenge. The
    threads, and the dict their outcomes land in by name."""
    results = {}

    def go(name, c, delay):
        time.sleep(delay)
        results[name] = outcome(login(d, cert, c, sign(key, c, "sha256")))

    threads = [threading.Thread(target=go, args=args) for args in schedule]
    for th in threads:
        th.start()
    return threads, results


def test_a_timed_out_login_in_a_batch_leaves_the_others_their_answers(certregd, db, pki):
    """Z's consume waits on a row held elsewhere until statement_timeout;
    A and B queue behind it and go as one batch, which waits on A's row;
    A times out while that batch is in flight (its answer dropped when it
    comes), B gets its OK, and the connection is never reset."""
    timeout_ms = 2000
    t = timeout_ms / 1000
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db, server={"workers": 1},
                 database={"pool_size": 1, "timeout_ms": timeout_ms})
    cert = open(ec["pem"]).read()
    cz, ca, cb = (challenge(d)["challenge"] for _ in range(3))
    holder = spend_uncommitted(db, cz, ca)
    threads, results = start_logins(d, cert, ec["key"],
                                    (("z", cz, 0), ("a", ca, 0.2 * t), ("b", cb, 0.7 * t)))
    time.sleep(1.4 * t)     # A timed out at 1.2 t; B waits until 1.7 t
    holder.rollback()
    for th in threads:
        th.join(timeout=30)
    holder.close()
    assert results == {"z": "SERVICE_UNAVAILABLE", "a": "SERVICE_UNAVAILABLE", "b": "OK"}, \
        (results, d.log())
    assert "db_connection_lost" not in d.log(), d.log()
    # Z's statement was cancelled: its challenge is unspent. A's batch
    # committed after A gave up: its challenge is spent, as a single
    # consume's would be.
    assert outcome(login(d, cert, cz, sign(ec["key"], cz, "sha256"))) == "OK"
    assert outcome(login(d, cert, ca, sign(ec["key"], ca, "sha256"))) == "CHALLENGE_INVALID"


def test_a_batch_lost_with_its_connection_is_sent_again(certregd, db, pki):
    """Two database connections, each with a consume waiting on a row held
    elsewhere (A, Z); B and C queue behind them. One connection's session
    is killed: its consume waits again with B and C, which go out together
    on the connection made anew, and all four get OK once the rows are
    released (a resent consume answers as the first would have)."""
    timeout_ms = 3000
    t = timeout_ms / 1000
    ec = pki.leaf("ec-ok")
    bind(db, ec["pem"])
    d = certregd(db, server={"workers": 1},
                 database={"pool_size": 2, "timeout_ms": timeout_ms})
    cert = open(ec["pem"]).read()
    ca, cz, cb, cc = (challenge(d)["challenge"] for _ in range(4))
    holder = spend_uncommitted(db, ca, cz)
    threads, results = start_logins(d, cert, ec["key"],
                                    (("a", ca, 0), ("z", cz, 0.1 * t), ("b", cb, 0.2 * t),
                                     ("c", cc, 0.2 * t)))
    time.sleep(0.35 * t)
    with psycopg2.connect(db.conninfo) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND query LIKE '%%certreg.challenge_consume%%' LIMIT 1")
        assert cur.fetchall() == [(True,)]
    time.sleep(0.35 * t)
    holder.rollback()
    for th in threads:
        th.join(timeout=30)
    holder.close()
    assert results == {"a": "OK", "z": "OK", "b": "OK", "c": "OK"}, (results, d.log())
    assert "db_connection_lost" in d.log()


def portal_signed_backend(d, jwks):
    """docs/PORTAL.md's Python back end of a signed login, run as written
    (with its unit_of): signed_login_page() when the login page is served,
    signed_login() with what the page posted. Its calls to certregd
    (requests, not installed here) go to d's API listener."""
    from test_assertion import portal_code, portal_recipe, run_with_requests
    code = portal_code('Python, with `unit_of` from "Verify the assertion" above:')

    def post(url, timeout, **body):
        r = http("POST", d.api + urllib.parse.urlsplit(url).path,
                 body=json.dumps(body["json"]).encode(),
                 headers={"Content-Type": "application/json"})
        return types.SimpleNamespace(json=r.json)

    namespace = run_with_requests(code, {"unit_of": portal_recipe(jwks)}, post=post)
    return namespace["signed_login_page"], namespace["signed_login"]


def test_the_portal_signed_login_takes_only_the_sessions_challenge(certregd, db, pki, tmp_path):
    """Login CSRF on the signed login: anyone holding a key of their own
    unit signs a challenge of their own portal session, and a page of
    theirs posts certificate, signature and challenge into a victim's
    browser session. The nonce does not stop it (the back end adds the
    victim session's own); only the challenge the portal issued into the
    session does. The back end of docs/PORTAL.md, run as written, must
    take the session's challenge, once, and never one the page posts."""
    ec, sm2 = pki.leaf("ec-ok"), pki.leaf("sm2-ok")
    admin(db.conninfo, "office", "add", "SL01", "--name", "签名管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "受害单位", "--office", "SL01")
    admin(db.conninfo, "unit", "add", "110100777002", "--name", "攻击者单位", "--office", "SL01")
    admin(db.conninfo, "key", "bind", "--cert", sm2["pem"], "--unit", REGNO, "--ticket", "T-1")
    admin(db.conninfo, "key", "bind", "--cert", ec["pem"], "--unit", "110100777002",
          "--ticket", "T-2")
    assertion_key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(assertion_key))
    start, finish = portal_signed_backend(d, jwks_of(d, pki))

    # The attacker's own session, challenge and signature.
    c = start({})
    forged = {"certificate": open(ec["pem"]).read(), "challenge": c,
              "signature": sign(ec["key"], c, "sha256")}
    # Posted into the victim's session: refused (the victim's challenge
    # goes with the attacker's signature), and the challenge is spent.
    victim = {}
    start(victim)
    with pytest.raises(PermissionError):
        finish(victim, forged)
    assert victim == {}
    # A session with no login under way takes nothing.
    with pytest.raises(PermissionError):
        finish({}, forged)
    # The victim's own login, in a session of theirs: their unit; once.
    victim = {}
    cv = start(victim)
    mine = {"certificate": open(sm2["pem"]).read(),
            "signature": sign(sm2["key"], cv, "sm3", sm2=True)}
    assert finish(victim, mine) == REGNO
    with pytest.raises(PermissionError):
        finish(victim, dict(mine, challenge=cv))
