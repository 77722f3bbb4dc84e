"""A unit reports its USB key stolen: the office's questions, end to end.

The unit phones in, the clerk suspends the key at once; the supervisor asks
whether it was used since, and from where; the unit's new certificate (a
new key pair, same holder id) gets no renewal continuity from the
suspended key and is bound at the counter; the old key is cancelled; the
auditor reads the record (docs/OPERATIONS.md, "When a key is lost or
stolen"). Real certregd, real PostgreSQL.
"""
import json
import os
import subprocess
import time

from fixtures.cli import BUILD, admin
from fixtures.daemon import in_force

REGNO = "110106000777"


def js(conninfo, *args):
    return json.loads(admin(conninfo, "--json", *args).stdout)


def outcome(d, pki, name):
    return d.verify_bundle(open(pki.leaf(name)["chain"]).read()).json()["outcome"]


def becomes(d, pki, name, want):
    in_force(lambda: outcome(d, pki, name), want)


def logins(db):
    """An operator of the unit's office, a supervisor and an auditor."""
    c = db.conninfo
    admin(c, "office", "add", "FT01", "--name", "丰台管理部")
    admin(c, "unit", "add", REGNO, "--name", "丰台测试单位", "--office", "FT01")
    suffix = db.name[-8:]
    names = {role: f"{role}_{suffix}" for role in ("clerk", "sup", "aud")}
    admin(c, "operator", "add", names["clerk"], "--office", "FT01")
    admin(c, "operator", "add", names["sup"], "--office", "FT01", "--role", "supervisor")
    admin(c, "operator", "add", names["aud"], "--office", "FT01", "--role", "auditor")
    return names, {role: db.conninfo_as(name) for role, name in names.items()}


def test_a_stolen_key_from_report_to_audit(certregd, db, pki):
    names, conn = logins(db)
    old, new = pki.leaf("bjca"), pki.leaf("bjca-renewed")
    admin(conn["clerk"], "key", "bind", "--cert", old["pem"], "--unit", REGNO, "--ticket", "T-1")
    # record_interval 1 s: every attempt a second apart is recorded.
    d = certregd(db, cache={"record_interval": 1})
    assert outcome(d, pki, "bjca") == "OK"
    shown = js(conn["sup"], "key", "show", old["key_id"])["association"]
    assert shown["last_use_refused"] is None  # approved: its uses logged in

    # The unit phones in with its registration number: the clerk finds the
    # key and suspends it by the id as the login page groups it.
    keys = js(conn["clerk"], "key", "list", "--unit", REGNO)
    assert [k["key_id"] for k in keys] == [old["key_id"]]
    paged = f"{old['key_id'][:4]} {old['key_id'][4:8]}"
    admin(conn["clerk"], "key", "suspend", paged, "--reason", "单位电话挂失")
    shown = js(conn["sup"], "key", "show", old["key_id"])["association"]
    assert shown["status"] == "suspended"
    assert shown["last_use_refused"] is False  # nobody has tried it since

    # Whoever holds the key tries it: refused, and the supervisor reads that
    # the last use came after the suspension, so it was refused.
    time.sleep(1.5)
    becomes(d, pki, "bjca", "KEY_SUSPENDED")
    shown = js(conn["sup"], "key", "show", old["key_id"])
    assert shown["association"]["last_use_refused"] is True
    assert shown["association"]["last_used_at"] > shown["association"]["updated_at"]
    people = admin(conn["sup"], "key", "show", old["key_id"])
    assert "Last use refused:    yes" in people.stdout, people.stdout
    # Where from: certregd's journal, named in a hint.
    assert f"key={old['key_id'][:16]}" in people.stderr, people.stderr
    assert f"outcome=KEY_SUSPENDED key={old['key_id'][:16]}" in d.log()
    # The same at a Chinese counter.
    zh = subprocess.run([BUILD / "certreg-admin", "--db", conn["sup"], "key", "show",
                         old["key_id"][:8]], capture_output=True, text=True, timeout=60,
                        env={**os.environ, "LC_ALL": "", "LC_MESSAGES": "",
                             "LANG": "zh_CN.UTF-8"})
    assert zh.returncode == 0 and "最近使用被拒：" in zh.stdout, zh.stdout
    assert "提示" in zh.stderr and "挂起或注销后仍有人使用" in zh.stderr, zh.stderr
    # Who suspended it, and why.
    trail = js(conn["sup"], "audit", "log", "--key", old["key_id"])
    assert [(e["action"], e["operator"], e["reason"]) for e in trail][-1] == \
        ("suspend", names["clerk"], "单位电话挂失")

    # The new certificate (new key, same issuer and holder id) gets no
    # continuity from the suspended key: it waits at the counter, with the
    # address it came from.
    assert outcome(d, pki, "bjca-renewed") == "KEY_NOT_APPROVED"
    pending = js(conn["clerk"], "key", "show", new["key_id"])
    assert pending["association"] is None
    assert pending["pending"]["last_peer"] == "127.0.0.1"
    listed = js(conn["clerk"], "pending", "list", "--search", new["key_id"][:8])
    assert [(p["key_id"], p["last_peer"]) for p in listed] == [(new["key_id"], "127.0.0.1")]
    assert "Last address:" in admin(conn["clerk"], "key", "show", new["key_id"][:8]).stdout
    admin(conn["clerk"], "key", "bind", new["key_id"][:8], "--unit", REGNO, "--ticket", "T-2")
    becomes(d, pki, "bjca-renewed", "OK")

    # The old key stays lost: cancelled for good.
    admin(conn["clerk"], "key", "cancel", old["key_id"][:8], "--reason", "确认遗失")
    becomes(d, pki, "bjca", "KEY_CANCELLED")

    # The auditor reads the whole story and changes nothing.
    trail = js(conn["aud"], "audit", "log", "--unit", REGNO)
    assert [(e["action"], e["key_id"]) for e in trail if e["key_id"]] == [
        ("bind", old["key_id"]), ("suspend", old["key_id"]), ("bind", new["key_id"]),
        ("cancel", old["key_id"])]  # no "renewal" among them
    assert js(conn["aud"], "key", "show", old["key_id"])["association"]["status"] == "cancelled"
    assert admin(conn["aud"], "audit", "verify").returncode == 0
    assert admin(conn["aud"], "key", "resume", old["key_id"][:8], "--reason", "x",
                 check=False).returncode == 1
