"""Key identity and renewal continuity, end to end (contract section 3).

A renewed certificate over the same key pair keeps its association; an old
expired certificate says exactly that. A certificate over a new key whose
issuer and holder id match an approved key of an active unit is approved
for that unit by the database, audited as a renewal, and decided OK.
"""
import json

from fixtures.cli import admin

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
