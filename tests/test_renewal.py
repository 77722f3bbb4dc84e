"""Key identity and renewal continuity, end to end (contract section 3).

A renewed certificate over the same key pair keeps its association; an old
expired certificate says exactly that. A certificate over a new key whose
issuer and holder id match an approved key of an active unit is approved
for that unit by the database, audited as a renewal, and decided OK.
"""
import datetime
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fixtures.cli import admin
from fixtures.daemon import in_force

REGNO = "110106000123"


def setup_unit(db, credit_code=None):
    admin(db.conninfo, "office", "add", "FT01", "--name", "丰台管理部")
    args = ["unit", "add", REGNO, "--name", "丰台测试单位", "--office", "FT01"]
    if credit_code:
        args += ["--credit-code", credit_code]
    admin(db.conninfo, *args)


def outcome(d, pki, name):
    return d.verify_bundle(open(pki.leaf(name)["chain"]).read()).json()


def audit(db):
    return json.loads(admin(db.conninfo, "--json", "audit", "log", "--unit", REGNO).stdout)


def issue(pki, cn, holder, days_ago):
    """A certificate of the test PKI's issuing CA over a new P-256 key,
    issued days_ago, whose BJCA unique-id extension (2.16.840.1.113732.2,
    the only holder-id source it has) holds exactly the bytes holder:
    what a CA signs. Returns (PEM, key id)."""
    with open(pki.path("ca/int.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(pki.path("ca/int.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=days_ago))
            .not_valid_after(now + datetime.timedelta(days=300))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                         False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), False)
            .add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier("2.16.840.1.113732.2"), holder), critical=False)
            .sign(ca_key, hashes.SHA256()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            hashlib.sha256(spki).hexdigest())


# Holder-id values no CA means as one unit's identity: bare GBK bytes
# (北京 and 天津, not UTF-8), a full-width space (a blank form field typed
# with a Chinese input method; DER UTF8String) and the NTRCN- prefix with
# nothing after it.
@pytest.mark.parametrize("first, second", [
    ("北京".encode("gbk"), "天津".encode("gbk")),
    (b"\x0c\x03" + "\u3000".encode(), b"\x0c\x03" + "\u3000".encode()),
    (b"\x0c\x06NTRCN-", b"\x0c\x06NTRCN-"),
], ids=["gbk-bytes", "fullwidth-blank", "prefix-only"])
def test_no_continuity_between_holders_without_a_holder_id(certregd, db, pki, first, second):
    setup_unit(db)
    mine, mine_key = issue(pki, "unit a", first, 10)
    theirs, theirs_key = issue(pki, "unit b", second, 1)
    d = certregd(db)
    body = d.verify_bundle(mine).json()
    assert body["outcome"] == "KEY_NOT_APPROVED", body
    admin(db.conninfo, "key", "bind", mine_key, "--unit", REGNO, "--ticket", "T-1")
    in_force(lambda: d.verify_bundle(mine).json()["outcome"], "OK")
    body = d.verify_bundle(theirs).json()
    assert body["outcome"] == "KEY_NOT_APPROVED", body
    assert theirs_key not in json.dumps(audit(db))
    pending = json.loads(admin(db.conninfo, "--json", "pending", "list").stdout)
    assert [p.get("holder_id") for p in pending] == [None], pending


def test_same_key_renewal_needs_nothing_and_old_cert_says_expired(certregd, db, pki):
    assert pki.leaf("renew-old")["key_id"] == pki.leaf("renew-new")["key_id"]
    setup_unit(db)
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("renew-old")["pem"], "--unit", REGNO,
          "--ticket", "T-1")
    d = certregd(db)
    assert outcome(d, pki, "renew-old")["outcome"] == "CERT_EXPIRED"
    body = outcome(d, pki, "renew-new")
    assert body["outcome"] == "OK" and body["unit"]["registration_no"] == REGNO


def test_new_key_same_holder_is_approved_as_renewal(certregd, db, pki):
    old, new = pki.leaf("bjca"), pki.leaf("bjca-renewed")
    assert old["key_id"] != new["key_id"] and old["holder_id"] == new["holder_id"]
    setup_unit(db)
    admin(db.conninfo, "key", "bind", "--cert", old["pem"], "--unit", REGNO, "--ticket", "T-1")
    d = certregd(db)
    # Continuity starts from a certificate certregd verified, not from the
    # counter's copy (docs/SECURITY.md): the old one logs in first.
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    body = outcome(d, pki, "bjca-renewed")
    assert body["outcome"] == "OK", body
    assert body["unit"]["registration_no"] == REGNO
    rows = [r for r in audit(db) if r["action"] == "renewal"]
    assert len(rows) == 1 and rows[0]["key_id"] == new["key_id"]
    shown = json.loads(admin(db.conninfo, "--json", "key", "show", new["key_id"]).stdout)
    assert REGNO in json.dumps(shown) and "renewal" in json.dumps(shown)
    assert "event=renewal" in d.log()
    # A different holder id from the same CA gets nothing.
    assert outcome(d, pki, "bjca-other")["outcome"] == "KEY_NOT_APPROVED"


def test_no_continuity_from_a_suspended_predecessor(certregd, db, pki):
    setup_unit(db)
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", REGNO,
          "--ticket", "T-1")
    d = certregd(db)
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    admin(db.conninfo, "key", "suspend", pki.leaf("bjca")["key_id"], "--reason", "lost")
    assert outcome(d, pki, "bjca-renewed")["outcome"] == "KEY_NOT_APPROVED"
    pending = json.loads(admin(db.conninfo, "--json", "pending", "list").stdout)
    assert pki.leaf("bjca-renewed")["key_id"] in json.dumps(pending)
    assert not [r for r in audit(db) if r["action"] == "renewal"]


def test_renewal_off_disables_continuity(certregd, db, pki):
    setup_unit(db)
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", REGNO,
          "--ticket", "T-1")
    d = certregd(db, trust={"renewal": "off"})
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    assert outcome(d, pki, "bjca-renewed")["outcome"] == "KEY_NOT_APPROVED"


def test_not_approved_hint_names_the_office_of_the_credit_code(certregd, db, pki):
    setup_unit(db, credit_code=pki.leaf("bjca")["credit_code"])
    d = certregd(db)
    body = outcome(d, pki, "bjca")
    assert body["outcome"] == "KEY_NOT_APPROVED"
    assert "丰台管理部" in body["hint"]


@pytest.mark.parametrize("how", ["bind", "resume"])
def test_a_renewed_key_refused_before_its_predecessor_was_approved_logs_in_at_once(
        certregd, db, pki, how):
    """The renewed key logged in while its predecessor was not approved
    (not bound yet, or suspended): KEY_NOT_APPROVED, and certregd caches
    that. The counter then approves the predecessor. Its notification
    named only the predecessor, so the renewed key stayed refused from the
    cache for up to [cache] ttl (60 s), although a login decided afresh
    was OK: the user was told 该KEY没有审核通过 after the counter had
    done its part. Every pending key of the predecessor's holder is
    notified too."""
    old, new = pki.leaf("bjca"), pki.leaf("bjca-renewed")
    setup_unit(db)
    d = certregd(db)
    if how == "resume":
        admin(db.conninfo, "key", "bind", "--cert", old["pem"], "--unit", REGNO,
              "--ticket", "T-1")
        assert outcome(d, pki, "bjca")["outcome"] == "OK"
        admin(db.conninfo, "key", "suspend", old["key_id"], "--reason", "lost")
    else:
        # Continuity starts from a certificate certregd verified.
        assert outcome(d, pki, "bjca")["outcome"] == "KEY_NOT_APPROVED"
    for _ in range(3):  # each worker has it cached
        assert outcome(d, pki, "bjca-renewed")["outcome"] == "KEY_NOT_APPROVED"
    if how == "resume":
        admin(db.conninfo, "key", "resume", old["key_id"], "--reason", "found")
    else:
        admin(db.conninfo, "key", "bind", old["key_id"], "--unit", REGNO, "--ticket", "T-2")
    # In force within a notification's delay (a second; polled with slack
    # for a stalled VM), not after [cache] ttl.
    in_force(lambda: outcome(d, pki, "bjca-renewed")["outcome"], "OK")
    body = outcome(d, pki, "bjca-renewed")
    assert body["unit"]["registration_no"] == REGNO
    assert [r["key_id"] for r in audit(db) if r["action"] == "renewal"] == [new["key_id"]]


def wait_ok(d, bundle):
    """OK within a notification's delay from every worker (each connection
    may reach another worker: eight in a row). Polled as a whole: each
    worker hears the notification on its own LISTEN connection, so after
    one worker's OK the other may still answer from its cache for a
    moment (a second by the contract; in_force's slack for a stalled VM)."""
    in_force(lambda: [d.verify_bundle(bundle).json()["outcome"] for _ in range(8)],
             ["OK"] * 8)
    return d.verify_bundle(bundle).json()


@pytest.mark.parametrize("how", ["cancel", "suspend"])
def test_a_renewed_key_refused_for_two_units_logs_in_once_one_is_taken_away(
        certregd, db, pki, how):
    """Two units held approved keys of one holder id: a new key of that
    holder was refused (two units claiming one holder id is for a person to
    sort out), and every certregd cached KEY_NOT_APPROVED. The counter
    then cancels (or suspends) the wrong unit's key: a decision made afresh
    is a renewal for the one unit left, but the cancel's notification named
    only the cancelled key, and the new key stayed refused from the cache
    for up to [cache] ttl."""
    setup_unit(db)
    other = "110106000456"
    admin(db.conninfo, "unit", "add", other, "--name", "丰台另一单位", "--office", "FT01")
    holder = b"\x0c\x0aHOLDER-042"
    mine, mine_key = issue(pki, "unit a", holder, 20)
    wrong, wrong_key = issue(pki, "unit a too", holder, 15)
    renewed, renewed_key = issue(pki, "unit a renewed", holder, 1)
    admin(db.conninfo, "key", "bind", mine_key, "--unit", REGNO, "--ticket", "T-1")
    admin(db.conninfo, "key", "bind", wrong_key, "--unit", other, "--ticket", "T-2")
    d = certregd(db)
    assert d.verify_bundle(mine).json()["outcome"] == "OK"
    assert d.verify_bundle(wrong).json()["outcome"] == "OK"
    for _ in range(8):  # each worker has it cached
        assert d.verify_bundle(renewed).json()["outcome"] == "KEY_NOT_APPROVED"
    admin(db.conninfo, "key", how, wrong_key, "--reason", "wrong unit")
    body = wait_ok(d, renewed)
    assert body["unit"]["registration_no"] == REGNO
    assert [r["key_id"] for r in audit(db) if r["action"] == "renewal"] == [renewed_key]


def test_a_renewed_key_logs_in_once_its_predecessor_bound_from_a_file_first_logs_in(
        certregd, db, pki):
    """The predecessor was bound from a certificate file (source
    'operator', which decides nothing) and the renewed key tried first:
    KEY_NOT_APPROVED, cached. The predecessor's first login records its
    certificate as certregd's, which makes it a predecessor: the renewed
    key is OK at once, not after [cache] ttl."""
    old, new = pki.leaf("bjca"), pki.leaf("bjca-renewed")
    setup_unit(db)
    admin(db.conninfo, "key", "bind", "--cert", old["pem"], "--unit", REGNO, "--ticket", "T-1")
    d = certregd(db)
    for _ in range(8):  # each worker has it cached
        assert outcome(d, pki, "bjca-renewed")["outcome"] == "KEY_NOT_APPROVED"
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    body = wait_ok(d, open(new["chain"]).read())
    assert body["unit"]["registration_no"] == REGNO
    assert [r["key_id"] for r in audit(db) if r["action"] == "renewal"] == [new["key_id"]]


def test_no_continuity_from_a_predecessor_refused_for_its_credit_code(certregd, db, pki):
    """A key bound by its id before certregd ever verified its certificate
    waits for the credit-code rule until its first login; there its
    certificate's credit code was another unit's, and its logins are
    refused. It still counted as a predecessor: a certificate of the same
    holder without a credit code was approved for the unit as a renewal,
    the check the predecessor failed skipped by its successor."""
    old = pki.leaf("bjca")
    setup_unit(db, credit_code=pki.manifest["credit_codes"]["bjca-other"])
    admin(db.conninfo, "key", "bind", old["key_id"], "--unit", REGNO, "--ticket", "T-1")
    d = certregd(db)
    assert outcome(d, pki, "bjca")["outcome"] == "KEY_NOT_APPROVED"
    holder = old["holder_id"].encode()
    renewed, renewed_key = issue(pki, "renewed without a credit code",
                                 b"\x0c" + bytes([len(holder)]) + holder, 1)
    body = d.verify_bundle(renewed).json()
    assert body["outcome"] == "KEY_NOT_APPROVED", body
    assert not [r for r in audit(db) if r["action"] == "renewal"]
    # Of the same holder: bound by the counter, the key logs in (no credit
    # code to check), and its renewals follow.
    admin(db.conninfo, "key", "bind", renewed_key, "--unit", REGNO, "--ticket", "T-2")
    in_force(lambda: d.verify_bundle(renewed).json()["outcome"], "OK")
