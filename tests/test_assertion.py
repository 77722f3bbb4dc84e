"""Login assertions on the TLS listener and the JWKS (contract section 8).

Every token is checked by an independent JOSE implementation, Debian's
python3-jwt (PyJWT), against the keys certregd publishes, as a portal
would: signature, algorithm, issuer, audience, expiry, and every claim.
"""
import base64
import hashlib
import html
import json
import os
import pwd
import re
import socket
import ssl
import subprocess
import sys
import time
import types
import urllib.parse
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fixtures.cli import BUILD, admin
from fixtures.daemon import http

REGNO = "110100777001"
ISSUER = "https://certreg.example.gov.cn"
AUDIENCE = "portal"
PORTAL = "https://portal.example.gov.cn/login/callback"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keypair(tmp_path, name, algorithm, *opts, owner=None):
    """A PEM private key (0600) and its public key, made with openssl."""
    key, pub = tmp_path / f"{name}.key", tmp_path / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", algorithm, *opts, "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    key.chmod(0o600)
    pub.chmod(0o644)
    if owner is not None and os.geteuid() == 0:
        pw = pwd.getpwnam(owner)
        os.chown(key, pw.pw_uid, pw.pw_gid)
    return key, pub


def ec_key(tmp_path, name="current", owner=None):
    return keypair(tmp_path, name, "EC", "-pkeyopt", "ec_paramgen_curve:P-256", owner=owner)


def settings(key, **more):
    s = {"key": key, "issuer": ISSUER, "audience": AUDIENCE, "ttl": 120,
         "return_to": f"{PORTAL}, https://portal2.example.gov.cn/cb"}
    s.update(more)
    return s


def bind(db, pki, leaf):
    admin(db.conninfo, "office", "add", "AS01", "--name", "断言管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "断言测试单位", "--office", "AS01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
          "--ticket", "T-1")


def tls_get(d, pki, path, leaf="ec-ok", accept="application/json"):
    """One GET on the TLS listener with the leaf's certificate: (status, headers, body)."""
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    if leaf is not None:
        ctx.load_cert_chain(pki.leaf(leaf)["chain"], pki.leaf(leaf)["key"])
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\n"
              "Connection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(), body


def jwks_of(d, pki):
    """The JWKS of both listeners, which must be the same document."""
    api = http("GET", d.api + "/.well-known/jwks.json")
    status, head, body = tls_get(d, pki, "/.well-known/jwks.json", leaf=None)
    assert api.status == status == 200
    assert "application/jwk-set+json" in api.headers["Content-Type"]
    assert json.loads(api.body) == json.loads(body)
    return json.loads(api.body)


def thumbprint(jwk):
    """RFC 7638, computed here independently of certregd."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
               "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canon = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canon.encode()).digest())


def verified(token, jwks, algorithm):
    """PyJWT's verdict: the key by kid from the JWKS, the one algorithm."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT" and header["alg"] == algorithm
    keys = {k["kid"]: k for k in jwks["keys"]}
    jwk = keys[header["kid"]]
    assert thumbprint(jwk) == header["kid"]
    key = jwt.PyJWK.from_dict(jwk).key
    return jwt.decode(token, key=key, algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER,
                      options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})


def leaf_x5t(pki, leaf):
    cert = x509.load_pem_x509_certificate(open(pki.leaf(leaf)["pem"], "rb").read())
    return b64url(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest())


def test_an_ok_tls_login_carries_an_assertion_a_portal_verifies(certregd, db, pki, tmp_path):
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key))
    status, _, body = tls_get(d, pki, "/v1/login?nonce=n-0S6_WzA2Mj")
    out = json.loads(body)
    assert status == 200 and out["outcome"] == "OK"
    jwks = jwks_of(d, pki)
    assert len(jwks["keys"]) == 1 and jwks["keys"][0]["alg"] == "ES256"
    assert "d" not in jwks["keys"][0]
    claims = verified(out["assertion"], jwks, "ES256")
    assert claims["sub"] == REGNO and claims["unit_name"] == "断言测试单位"
    assert claims["office"] == "AS01"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["key_id"] == pki.leaf("ec-ok")["key_id"] == out["key_id"]
    assert claims["method"] == "tls"
    assert claims["cnf"] == {"x5t#S256": leaf_x5t(pki, "ec-ok")}
    # jti is unique; without a nonce there is no nonce claim.
    other = verified(json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"], jwks, "ES256")
    assert other["jti"] != claims["jti"] and "nonce" not in other
    # Another audience, or a changed byte, and the portal refuses it.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(out["assertion"], key=jwt.PyJWK.from_dict(jwks["keys"][0]).key,
                   algorithms=["ES256"], audience="someone-else")
    head, payload, sig = out["assertion"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "110100000009"
    with pytest.raises(jwt.InvalidSignatureError):
        verified(".".join([head, b64url(json.dumps(forged).encode()), sig]), jwks, "ES256")



def portal_code(heading):
    """The Python block of docs/PORTAL.md that follows heading."""
    doc = (Path(__file__).parent.parent / "docs" / "PORTAL.md").read_text()
    return doc.split(heading + "\n\n```python\n", 1)[1].split("```", 1)[0]


def run_with_requests(code, namespace, **calls):
    """Runs code in namespace with a module requests (not installed here)
    whose functions are calls; the real module, if any, is put back."""
    fake = types.ModuleType("requests")
    for name, fn in calls.items():
        setattr(fake, name, fn)
    saved, sys.modules["requests"] = sys.modules.get("requests"), fake
    try:
        exec(code, namespace)
    finally:
        if saved is None:
            del sys.modules["requests"]
        else:
            sys.modules["requests"] = saved
    return namespace


def portal_recipe(jwks):
    """docs/PORTAL.md's Python verification, run as written; its JWKS
    fetch (requests, not installed here) answers jwks."""
    return run_with_requests(portal_code("Python (Debian's `python3-jwt`):"), {},
                             get=lambda url, timeout: types.SimpleNamespace(
                                 json=lambda: jwks))["unit_of"]


def test_the_portal_recipe_takes_only_the_sessions_nonce(certregd, db, pki, tmp_path):
    """The portal's recipe accepts an assertion only with the nonce of the
    session it arrives in. A session that holds none (new, or its nonce
    used and forgotten as the recipe says) must not accept an assertion
    that has none either: anyone's own login without a nonce, posted by a
    page of theirs into a victim's browser, would log the victim in as
    their unit (login CSRF, which the nonce is there to stop)."""
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key))
    unit_of = portal_recipe(jwks_of(d, pki))
    token = json.loads(tls_get(d, pki, "/v1/login?nonce=n-1")[2])["assertion"]
    assert unit_of(token, "n-1") == REGNO
    for wrong in ("n-2", "", None):
        with pytest.raises(jwt.InvalidTokenError):
            unit_of(token, wrong)
    bare = json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"]
    for session_nonce in (None, "", "n-1"):
        with pytest.raises(jwt.InvalidTokenError):
            unit_of(bare, session_nonce)

def test_the_portal_recipe_drops_a_retired_key_and_learns_a_new_one(certregd, db, pki,
                                                                   tmp_path):
    """PORTAL.md's recipe keeps the JWKS for minutes, not for the life of
    the portal process. A key dropped from previous_keys (retired at once
    because it leaked) must stop verifying once the copy is older than
    JWKS_MAX_AGE, or its thief, who can put any nonce of a session of
    their own into a token, logs in as any unit until the portal restarts.
    A kid it does not know makes it fetch again (a rollover without step
    1), at most once per JWKS_MIN_REFETCH seconds: tokens with made-up kids
    must not make every login a JWKS fetch."""
    bind(db, pki, "ec-ok")
    key_a, _ = ec_key(tmp_path, "a", owner="nobody")
    key_b, _ = ec_key(tmp_path, "b", owner="nobody")
    d = certregd(db, assertion=settings(key_a))
    jwks_a = jwks_of(d, pki)
    served = {"jwks": jwks_a}
    fetches = []

    def get(url, timeout):
        fetches.append(url)
        return types.SimpleNamespace(json=lambda: served["jwks"])

    def recipe():
        return run_with_requests(portal_code("Python (Debian's `python3-jwt`):"), {}, get=get)

    portal = recipe()
    token_a = json.loads(tls_get(d, pki, "/v1/login?nonce=n-a")[2])["assertion"]
    assert portal["unit_of"](token_a, "n-a") == REGNO
    kid_a = jwt.get_unverified_header(token_a)["kid"]

    # A leaked: B signs, A is dropped from the JWKS at once.
    d.conf_path.write_text(re.sub(r"(?m)^key = .*$", f"key = {key_b}",
                                  d.conf_path.read_text()))
    d.reload()
    for _ in range(100):
        served["jwks"] = jwks_of(d, pki)
        if kid_a not in {k["kid"] for k in served["jwks"]["keys"]}:
            break
        time.sleep(0.1)
    token_b = json.loads(tls_get(d, pki, "/v1/login?nonce=n-b")[2])["assertion"]
    assert jwt.get_unverified_header(token_b)["kid"] != kid_a

    # A portal that saw no token of B's: its copy ages out, A is refused.
    portal["JWKS_MAX_AGE"] = 0
    portal["JWKS_MIN_REFETCH"] = 0  # every fetch is spaced, the stale copy's too
    with pytest.raises(jwt.InvalidTokenError):
        portal["unit_of"](token_a, "n-a")
    assert portal["unit_of"](token_b, "n-b") == REGNO

    # A portal whose copy is fresh and holds A only: B's kid fetches again.
    fetches.clear()
    served["jwks"], jwks_b = jwks_a, served["jwks"]
    fresh = recipe()
    assert fresh["unit_of"](token_a, "n-a") == REGNO
    served["jwks"] = jwks_b
    fresh["JWKS_MIN_REFETCH"] = 0
    assert fresh["unit_of"](token_b, "n-b") == REGNO
    assert len(fetches) == 2
    # Made-up kids: refused, and no second fetch within JWKS_MIN_REFETCH.
    fresh["JWKS_MIN_REFETCH"] = 3600
    head, payload, sig = token_b.split(".")
    for n in range(3):
        forged_head = b64url(json.dumps({"alg": "ES256", "typ": "JWT",
                                         "kid": f"unknown-{n}"}).encode())
        with pytest.raises(jwt.InvalidTokenError):
            fresh["unit_of"](".".join([forged_head, payload, sig]), "n-b")
    assert len(fetches) == 2


def test_the_portal_recipe_refuses_odd_kids_and_spaces_failed_fetches():
    """Two gaps the adversarial review of the recipe left: a kid that is a
    JSON list or object raised TypeError (unhashable), not the
    InvalidTokenError a portal catches; and the refetch on an unknown kid
    was spaced from the last *successful* fetch, so while the JWKS could
    not be fetched (certregd's TLS listener down) every token with a
    made-up kid made a fetch, each up to its timeout."""
    attempts = []
    up = {"now": True}

    def get(url, timeout):
        attempts.append(url)
        if not up["now"]:
            raise OSError("connection refused")
        return types.SimpleNamespace(json=lambda: {"keys": []})

    portal = run_with_requests(portal_code("Python (Debian's `python3-jwt`):"), {}, get=get)
    payload = b64url(json.dumps({"sub": "x"}).encode())
    for kid in (["a"], {"a": 1}, None, 7):
        head = b64url(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
        with pytest.raises(jwt.InvalidTokenError):
            portal["unit_of"](".".join([head, payload, "c2ln"]), "n")
    assert len(attempts) <= 1
    attempts.clear()
    portal["jwks"]["tried"] = None  # the next unknown kid may fetch
    up["now"] = False
    for n in range(5):
        head = b64url(json.dumps({"alg": "ES256", "typ": "JWT", "kid": f"k{n}"}).encode())
        with pytest.raises((jwt.InvalidTokenError, OSError)):
            portal["unit_of"](".".join([head, payload, "c2ln"]), "n")
    assert len(attempts) == 1, attempts


def test_refusals_and_the_api_paths_carry_no_assertion(certregd, db, pki, tmp_path):
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key))
    status, _, body = tls_get(d, pki, "/v1/login", leaf="rsa-ok")   # not bound
    out = json.loads(body)
    assert out["outcome"] == "KEY_NOT_APPROVED" and "assertion" not in out
    status, _, body = tls_get(d, pki, "/v1/login", leaf="expired")
    assert "assertion" not in json.loads(body)
    # /v1/verify proves no possession: OK, and no assertion.
    out = d.verify(open(pki.leaf("ec-ok")["pem"]).read()).json()
    assert out["outcome"] == "OK" and "assertion" not in out
    pem = urllib.parse.quote(open(pki.leaf("ec-ok")["pem"]).read(), safe="")
    r = http("GET", d.api + "/v1/auth", headers={"X-SSL-Client-Cert": pem})
    assert r.status == 200 and b"eyJ" not in r.body


def test_without_a_key_no_assertions_and_an_empty_jwks(certregd, db, pki):
    bind(db, pki, "ec-ok")
    d = certregd(db)
    assert jwks_of(d, pki) == {"keys": []}
    out = json.loads(tls_get(d, pki, "/v1/login")[2])
    assert out["outcome"] == "OK" and "assertion" not in out


@pytest.mark.parametrize("algorithm,opts,alg", [
    ("RSA", ("-pkeyopt", "rsa_keygen_bits:2048"), "RS256"),
    ("ED25519", (), "EdDSA"),
])
def test_the_algorithm_follows_the_key(certregd, db, pki, tmp_path, algorithm, opts, alg):
    bind(db, pki, "ec-ok")
    key, _ = keypair(tmp_path, "k", algorithm, *opts)
    d = certregd(db, assertion=settings(key))
    token = json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"]
    assert verified(token, jwks_of(d, pki), alg)["sub"] == REGNO


def test_keys_roll_over_without_a_failed_verification(certregd, db, pki, tmp_path):
    """docs/PORTAL.md's rollover, as a portal that caches the JWKS sees it:
    key A signs and B is published ahead (previous_keys); the portal
    fetches the JWKS once. Then B signs and A stays published: every token,
    A's from before and B's from after, verifies with the JWKS the portal
    cached before the switch, and with the JWKS after it. Then A goes."""
    bind(db, pki, "ec-ok")
    key_a, pub_a = ec_key(tmp_path, "a", owner="nobody")
    key_b, pub_b = ec_key(tmp_path, "b", owner="nobody")
    d = certregd(db, assertion=settings(key_a))

    def reconfigure(key, previous):
        text = re.sub(r"(?m)^key = .*$", f"key = {key}", d.conf_path.read_text())
        text = re.sub(r"(?m)^previous_keys = .*\n", "", text)
        if previous:
            text = text.replace(f"key = {key}", f"key = {key}\nprevious_keys = {previous}")
        d.conf_path.write_text(text)
        d.reload()

    def jwks_when(ok):
        """The JWKS once both listeners publish one that is ok: while a
        reload replaces the workers, the two may be answered by an old
        worker and a new one."""
        jwks = None
        for _ in range(100):
            try:
                jwks = jwks_of(d, pki)
            except AssertionError:
                jwks = None
            if jwks is not None and ok({k["kid"] for k in jwks["keys"]}):
                return jwks
            time.sleep(0.1)
        raise AssertionError(f"the JWKS never changed as it should: {jwks}")

    def token():
        return json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"]

    old = token()
    kid_a = jwt.get_unverified_header(old)["kid"]
    reconfigure(key_a, pub_b)
    cached = jwks_when(lambda kids: len(kids) == 2 and kid_a in kids)
    (kid_b,) = {k["kid"] for k in cached["keys"]} - {kid_a}
    assert jwt.get_unverified_header(token())["kid"] == kid_a   # B only published
    reconfigure(key_b, pub_a)
    for _ in range(100):
        new = token()
        if jwt.get_unverified_header(new)["kid"] == kid_b:
            break
        # a worker from before the reload, still signing with A: verifies
        assert verified(new, cached, "ES256")["sub"] == REGNO
        time.sleep(0.1)
    after = jwks_when(lambda kids: kids == {kid_a, kid_b})
    for t in (old, new, token()):
        assert verified(t, cached, "ES256")["sub"] == REGNO
        assert verified(t, after, "ES256")["sub"] == REGNO
    assert jwt.get_unverified_header(new)["kid"] == kid_b
    reconfigure(key_b, None)
    jwks_when(lambda kids: kids == {kid_b})


def test_no_two_assertions_share_an_ecdsa_nonce(certregd, db, pki, tmp_path):
    """Each worker makes ES256 nonces ahead in its idle moments, and a nonce
    used twice would give the signing key away: every token of two workers,
    of the workers a reload starts and of a second daemon on the same key
    has its own r (the first half of the signature), and every one
    verifies."""
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path, owner="nobody")
    d = certregd(db, assertion=settings(key))
    jwks = jwks_of(d, pki)

    def tokens(daemon, n):
        return [json.loads(tls_get(daemon, pki, "/v1/login")[2])["assertion"] for _ in range(n)]

    made = tokens(d, 120)
    started = d.log().count("event=worker_started")
    d.reload()
    for _ in range(100):
        if d.log().count("event=worker_started") >= started + 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("no new workers after SIGHUP:\n" + d.log())
    made += tokens(d, 80)
    made += tokens(certregd(db, assertion=settings(key)), 80)
    rs = set()
    for token in made:
        assert verified(token, jwks, "ES256")["sub"] == REGNO
        sig = base64.urlsafe_b64decode(token.split(".")[2] + "==")
        assert len(sig) == 64
        rs.add(sig[:32])
    assert len(rs) == len(made)


def metric(d, name):
    """The value of an unlabelled metric on /metrics (None when absent)."""
    m = re.search(rf"(?m)^{name} (\S+)$", d.get("/metrics").body.decode())
    return m and float(m.group(1))


@pytest.mark.parametrize("how", ["rewritten", "renamed over"])
def test_a_key_file_replaced_that_a_reload_cannot_read_says_restart_needed(
        certregd, db, pki, tmp_path, how):
    """The key is root's (0600) and read at start-up; reloads run as the
    daemon's user, cannot read it and keep the key read then. A reload of
    the unchanged file is silent. After the operator replaces the file
    (key rotation, in place or by rename) and sends SIGHUP, certregd still
    signs with the old key and publishes the old JWKS, and says so: a
    warning naming the file and the restart it needs, the gauge
    certreg_assertion_key_restart_needed at 1, and a /readyz warning that
    does not make the daemon unready. A restart signs with the new key."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the daemon drops to nobody and the key stays root's")
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key))
    jwks = jwks_of(d, pki)
    kid_a = jwt.get_unverified_header(json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"])["kid"]
    ready = d.get("/readyz")

    def reload(count):
        d.reload()
        for _ in range(100):
            if d.log().count("event=reloaded ") >= count:
                return
            time.sleep(0.1)
        raise AssertionError("no reload:\n" + d.log())

    reload(1)
    assert "event=assertion_key_changed" not in d.log()
    assert metric(d, "certreg_assertion_key_restart_needed") == 0
    new, _ = ec_key(tmp_path, "new")
    if how == "rewritten":
        key.write_bytes(new.read_bytes())
    else:
        os.replace(new, key)
    assert (key.stat().st_uid, key.stat().st_mode & 0o777) == (0, 0o600)
    reload(2)
    line = next((l for l in d.log().splitlines() if "event=assertion_key_changed" in l), "")
    assert "level=warn" in line and str(key) in line and "restart" in line, d.log()
    assert metric(d, "certreg_assertion_key_restart_needed") == 1
    r = d.get("/readyz")
    assert r.status == ready.status, r.body
    assert any(str(key) in w and "restart" in w for w in r.json().get("warnings", [])), r.body
    # As before: the key read at start-up signs, and its JWKS is published.
    assert jwks_of(d, pki) == jwks
    token = json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"]
    assert verified(token, jwks, "ES256")["sub"] == REGNO
    # Once warned, every later reload warns again until the restart.
    reload(3)
    assert d.log().count("event=assertion_key_changed") == 2
    assert metric(d, "certreg_assertion_key_restart_needed") == 1
    d.stop()
    d.start()
    token = json.loads(tls_get(d, pki, "/v1/login")[2])["assertion"]
    assert jwt.get_unverified_header(token)["kid"] != kid_a
    assert verified(token, jwks_of(d, pki), "ES256")["sub"] == REGNO
    assert metric(d, "certreg_assertion_key_restart_needed") == 0


def test_return_to_posts_the_assertion_to_an_allowed_prefix_only(certregd, db, pki, tmp_path):
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    host_only = "https://portal3.example.gov.cn"
    d = certregd(db, assertion=settings(key, return_to=f"{PORTAL}, {host_only}"))
    target = PORTAL + "?state=xyz&lang=zh"
    q = urllib.parse.urlencode({"return_to": target, "nonce": "abc"})
    status, _, body = tls_get(d, pki, f"/v1/login?{q}", accept="text/html")
    page = body.decode()
    assert status == 200
    form = re.search(r'<form method="post" action="([^"]*)">', page)
    assert form and html.unescape(form.group(1)) == target
    value = re.search(r'<input type="hidden" name="assertion" value="([^"]*)">', page)
    claims = verified(html.unescape(value.group(1)), jwks_of(d, pki), "ES256")
    assert claims["nonce"] == "abc"
    assert "document.forms[0].submit()" in page and "<noscript><button" in page
    # A refusal: the usual page, with a link back to return_to.
    status, _, body = tls_get(d, pki, f"/v1/login?{q}", leaf="rsa-ok", accept="text/html")
    assert status == 403 and 'name="assertion"' not in body.decode()
    assert html.escape(target, quote=True) in body.decode()
    # A prefix of a host alone admits that host's paths.
    q = urllib.parse.urlencode({"return_to": host_only + "/cb?x=1", "nonce": "abc"})
    status, _, body = tls_get(d, pki, f"/v1/login?{q}", accept="text/html")
    assert status == 200 and 'name="assertion"' in body.decode()
    # Anything a browser would not resolve under a configured prefix: 400,
    # and the URL is never echoed (look-alike hosts, userinfo, another
    # port, a longer last segment, dot segments in any spelling).
    for bad in ("https://evil.example/cb", "https://portal.example.gov.cn.evil.example/",
                "javascript:alert(1)", PORTAL[:-3], host_only + ".evil.example/",
                host_only + "@evil.example/", host_only + ":8443/", PORTAL + "x",
                PORTAL + "/../../admin", PORTAL + "/%2e%2E/admin", PORTAL + "\\..\\admin",
                # A Java servlet container drops ";params" before it resolves
                # a segment, so "..;x" is ".." to a Tomcat portal.
                PORTAL + "/..;/admin", PORTAL + "/..;jsessionid=1/admin",
                PORTAL + "/%2e%2e;/admin", PORTAL + "/..%3B/admin",
                # Windows strips trailing spaces and dots; some portals
                # decode twice.
                PORTAL + "/..%20/admin", PORTAL + "/.%252e/admin"):
        q = urllib.parse.urlencode({"return_to": bad})
        status, _, body = tls_get(d, pki, f"/v1/login?{q}", accept="text/html")
        assert status == 400 and bad.encode() not in body, bad
    for nonce in ("", "x" * 257, "a b", "é"):
        q = urllib.parse.urlencode({"nonce": nonce})
        assert tls_get(d, pki, f"/v1/login?{q}")[0] == 400, nonce


def test_login_pages_cannot_be_framed_sniffed_or_leak_their_query(certregd, db, pki, tmp_path):
    """The page that posts an assertion by itself, and the refusal page,
    tell the browser: never inside another site's frame (a hidden frame
    would log the user in at the portal without a click, and a refusal
    page with its link can be clickjacked), never sniffed as another type,
    and only this origin as the Referer (the query holds return_to and
    the nonce; older browsers sent the whole URL to the portal)."""
    bind(db, pki, "ec-ok")
    key, _ = ec_key(tmp_path)
    d = certregd(db, assertion=settings(key))
    q = urllib.parse.urlencode({"return_to": PORTAL, "nonce": "abc"})
    for leaf, want in (("ec-ok", 200), ("rsa-ok", 403)):
        status, head, body = tls_get(d, pki, f"/v1/login?{q}", leaf=leaf, accept="text/html")
        assert status == want
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:])}
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["cache-control"] == "no-store"
        assert headers.get("x-content-type-options") == "nosniff", head
        assert headers.get("x-frame-options") == "DENY", head
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), head
        assert headers.get("referrer-policy") == "strict-origin", head


def test_config_errors_are_named(tmp_path, pki):
    key, _ = ec_key(tmp_path)
    p384, _ = keypair(tmp_path, "p384", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
    base = (f"[server]\nlisten_tls =\nlisten_api = 127.0.0.1:1\n"
            f"[trust]\nca_file = {pki.dir / 'ca/trust.pem'}\n")
    cases = [
        (f"[assertion]\nkey = {key}\n", "needs issuer and audience"),
        (f"[assertion]\nkey = {p384}\nissuer = i\naudience = a\n", "P-256"),
        (f"[assertion]\nkey = {tmp_path}/none.key\nissuer = i\naudience = a\n",
         "No such file"),
        ("[assertion]\nreturn_to = https://ok.example/, ftp://x/\n", "http:// or https://"),
        ("[assertion]\nsigned_login_sha1 = maybe\n", "yes or no"),
    ]
    for text, words in cases:
        conf = tmp_path / "c.conf"
        conf.write_text(base + text)
        conf.chmod(0o644)
        p = subprocess.run([str(BUILD / "certregd"), "-t", "-c", str(conf)],
                           capture_output=True, text=True)
        assert p.returncode == 1 and words in p.stderr + p.stdout, (text, p.stderr, p.stdout)
