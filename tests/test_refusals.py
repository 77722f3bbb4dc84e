"""What certregd saw of a certificate it refused before the key association
(issue 31): `certreg-admin key show --cert` shows the last outcome and when,
instead of "never seen".

Only refusals after a verified chain are recorded (sql/009_refusals.sql):
an untrusted certificate is whatever a client made for the request, and is
never written. The records are the daemon's alone: its role writes them
only through certreg.record_refusal(), which takes no time and no outcome
other than those; no operator can write them at all.
"""
import datetime
import json
import time

import psycopg2

from fixtures.cli import admin
from test_admin import REFUSED, js, ok, run
from test_login import login
from test_registry_sql import connect, sqlstate


def refusals_of(db, pki, leaf, timeout=10):
    """key show --cert LEAF --json once it lists a refusal (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        p = run(db.conninfo, "--json", "key", "show", "--cert", pki.leaf(leaf)["pem"])
        if p.returncode == 0 and json.loads(p.stdout)["refusals"]:
            return json.loads(p.stdout)
        assert time.monotonic() < deadline, (leaf, p.stdout, p.stderr)
        time.sleep(0.1)


def when(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cert_arg(pki, name, **change):
    """The `cert` jsonb the daemon sends for leaf NAME (docs/REGISTRY-API.md)."""
    leaf = pki.leaf(name)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    cert = {"sha256": leaf["sha256"], "key_id": leaf["key_id"], "subject": f"CN={name}",
            "issuer": "CN=certreg Test Issuing CA", "serial": leaf["serial"],
            "holder_id": None, "credit_code": None, "not_before": iso(leaf["not_before"]),
            "not_after": iso(leaf["not_after"])}
    cert.update(change)
    return json.dumps(cert)


def test_a_refused_certificate_shows_its_outcome_and_time_in_key_show(certregd, db, pki):
    d = certregd(db)
    t0 = time.time()
    # An untrusted certificate first, on every worker: never recorded.
    for _ in range(4):
        status, body, _, _ = login(d, pki, "untrusted")
        assert (status, json.loads(body)["outcome"]) == (403, "CERT_UNTRUSTED")
    status, body, _, _ = login(d, pki, "expired")
    assert (status, json.loads(body)["outcome"]) == (403, "CERT_EXPIRED")
    assert d.verify_bundle(open(pki.leaf("revoked")["chain"]).read()).json()["outcome"] \
        == "CERT_REVOKED"

    shown = refusals_of(db, pki, "expired")
    leaf = pki.leaf("expired")
    assert shown["key_id"] == leaf["key_id"]
    assert shown["association"] is None and shown["pending"] is None
    [r] = shown["refusals"]
    assert (r["sha256"], r["outcome"]) == (leaf["sha256"], "CERT_EXPIRED")
    assert t0 - 1 <= when(r["last_seen"]) <= time.time() + 1
    assert when(r["first_seen"]) <= when(r["last_seen"])
    assert when(r["not_after"]) == leaf["not_after"]
    assert r["serial"] == leaf["serial"] and "Issuing" in r["issuer"]
    assert refusals_of(db, pki, "revoked")["refusals"][0]["outcome"] == "CERT_REVOKED"

    # For people: the outcome as the user's page said it, and its time in
    # local time, English and Chinese.
    local = time.strftime("%Y-%m-%d %H:%M", time.localtime(when(r["last_seen"])))
    text = ok(db.conninfo, "key", "show", "--cert", leaf["pem"]).stdout
    assert "refusals (1):" in text and "LAST REFUSED" in text, text
    assert "The certificate has expired" in text and local in text, text
    assert "never" not in text
    zh = run(db.conninfo, "key", "show", "--cert", leaf["pem"],
             env={"LANG": "zh_CN.UTF-8"})
    assert zh.returncode == 0, zh.stderr
    assert "证书被拒记录" in zh.stdout and "最近拒绝" in zh.stdout, zh.stdout
    assert "证书已过期" in zh.stdout and local in zh.stdout, zh.stdout
    # A key id prefix finds a key known only by a refusal.
    assert js(db.conninfo, "key", "show", leaf["key_id"][:8])["refusals"] == shown["refusals"]

    # The untrusted certificate was never written, and key show says why.
    time.sleep(1)
    assert db.sql("SELECT count(*) FROM certreg.refusals").strip() == "2"
    p = run(db.conninfo, "key", "show", "--cert", pki.leaf("untrusted")["pem"])
    assert p.returncode == REFUSED
    assert "not known" in p.stderr and "CERT_UNTRUSTED" in p.stderr and "cert check" in p.stderr
    zh = run(db.conninfo, "key", "show", "--cert", pki.leaf("untrusted")["pem"],
             env={"LANG": "zh_CN.UTF-8"})
    assert "不记录它不信任的证书" in zh.stderr, zh.stderr


def test_a_refusal_retried_in_a_loop_costs_one_write_per_interval(certregd, db, pki):
    """Each worker writes a certificate's refusal once per record_interval;
    the database, at most once per the session's record_interval whatever
    the daemon role sends."""
    # Every call of record_refusal() tries an INSERT: a BEFORE INSERT
    # trigger (the test's, as superuser) counts them.
    db.sql("CREATE TABLE public.refusal_calls (sha256 text);"
           "CREATE FUNCTION public.refusal_called() RETURNS trigger LANGUAGE plpgsql"
           " SECURITY DEFINER SET search_path = pg_catalog AS"
           " $$BEGIN INSERT INTO public.refusal_calls VALUES (NEW.sha256); RETURN NEW; END$$;"
           "CREATE TRIGGER refusal_called BEFORE INSERT ON certreg.refusals"
           " FOR EACH ROW EXECUTE FUNCTION public.refusal_called()")
    d = certregd(db)  # two workers, record_interval 60 s
    chain = open(pki.leaf("expired")["chain"]).read()
    for _ in range(30):
        assert d.verify_bundle(chain).json()["outcome"] == "CERT_EXPIRED"
    refusals_of(db, pki, "expired")
    time.sleep(1)
    calls = int(db.sql("SELECT count(*) FROM public.refusal_calls").strip())
    assert 1 <= calls <= 2, calls

    # The database's own rule, for a caller that does not hold back: at most
    # once per the session's record_interval (certregd sets it on connect).
    pg = connect(db, "certregd_test")
    cur = pg.cursor()
    cur.execute("SET certreg.record_interval = '60'")
    cert = cert_arg(pki, "notyet")
    key = pki.leaf("notyet")["key_id"]
    state = "SELECT outcome, last_seen, xmin::text FROM certreg.refusals WHERE sha256 = %s"
    su = connect(db).cursor()
    cur.execute("SELECT certreg.record_refusal(%s, %s::jsonb, 'CERT_NOT_YET_VALID')", (key, cert))
    su.execute(state, (pki.leaf("notyet")["sha256"],))
    first = su.fetchone()
    for _ in range(5):
        cur.execute("SELECT certreg.record_refusal(%s, %s::jsonb, 'CERT_NOT_YET_VALID')",
                    (key, cert))
    su.execute(state, (pki.leaf("notyet")["sha256"],))
    assert su.fetchone() == first
    # A new outcome is news at once.
    cur.execute("SELECT certreg.record_refusal(%s, %s::jsonb, 'CERT_REVOKED')", (key, cert))
    su.execute(state, (pki.leaf("notyet")["sha256"],))
    now = su.fetchone()
    assert now[0] == "CERT_REVOKED" and now[2] != first[2]


def test_the_daemon_role_writes_refusals_only_through_its_function(db, pki, daemon_role):
    d = connect(db, daemon_role)
    key, sha = pki.leaf("expired")["key_id"], pki.leaf("expired")["sha256"]
    cert = cert_arg(pki, "expired")
    for sql in ("SELECT * FROM certreg.refusals", "SELECT * FROM certreg.refusals_v",
                "INSERT INTO certreg.refusals (sha256, key_id, outcome, subject, issuer, serial,"
                " not_before, not_after) VALUES (repeat('a', 64), repeat('b', 64),"
                " 'CERT_EXPIRED', 's', 'i', '1', now(), now())",
                "UPDATE certreg.refusals SET last_seen = now() - interval '1 year'",
                "DELETE FROM certreg.refusals"):
        assert sqlstate(d, sql)[0] == "42501", sql
    call = "SELECT certreg.record_refusal(%s, %s::jsonb, %s)"
    # Outcomes the daemon decides otherwise, or never records.
    for outcome in ("OK", "KEY_NOT_APPROVED", "KEY_SUSPENDED", "CERT_UNTRUSTED",
                    "CERT_MALFORMED", "NO_CERTIFICATE", "cert_expired", "", None):
        assert sqlstate(d, call, (key, cert, outcome))[0] == "CR001", outcome
    # A certificate hash that is not one, a certificate of another key.
    for bad in ("A" * 64, "a" * 63, "'; --" + "a" * 59, None):
        assert sqlstate(d, call, (key, cert_arg(pki, "expired", sha256=bad),
                                  "CERT_EXPIRED"))[0] == "CR001", bad
    assert sqlstate(d, call, (key, cert_arg(pki, "expired", key_id="c" * 64),
                              "CERT_EXPIRED"))[0] == "CR001"
    assert sqlstate(d, call, ("c" * 64, cert, "CERT_EXPIRED"))[0] == "CR001"
    assert sqlstate(d, call, (key, None, "CERT_EXPIRED"))[0] == "CR001"
    assert db.sql("SELECT count(*) FROM certreg.refusals").strip() == "0"
    # What it may write: the server's time, whatever the certificate says;
    # and a certificate's key stays its own.
    assert sqlstate(d, call, (key, cert, "CERT_EXPIRED")) == (None, None)
    other = pki.leaf("rsa-ok")["key_id"]
    assert sqlstate(d, call, (other, cert_arg(pki, "expired", key_id=other),
                              "CERT_REVOKED")) == (None, None)
    row = db.sql(f"SELECT key_id, outcome, last_seen > now() - interval '1 minute',"
                 f" first_seen = last_seen FROM certreg.refusals WHERE sha256 = '{sha}'")
    assert row.strip() == f"{key}|CERT_EXPIRED|t|t"
    assert db.sql("SELECT count(*) FROM certreg.refusals").strip() == "1"


def test_operators_cannot_forge_refusals(db, pki, pg_cluster):
    admin(db.conninfo, "office", "add", "RF01", "--name", "拒绝记录管理部")
    suffix = db.name[-8:]
    logins = {role: f"rf_{role}_{suffix}" for role in ("operator", "supervisor", "auditor")}
    for role, login_name in logins.items():
        admin(db.conninfo, "operator", "add", login_name, "--office", "RF01", "--role", role)
    su = connect(db).cursor()
    su.execute("SELECT certreg.record_refusal(%s, %s::jsonb, 'CERT_EXPIRED')",
               (pki.leaf("expired")["key_id"], cert_arg(pki, "expired")))
    for role, login_name in logins.items():
        c = connect(db, login_name)
        for sql, args in (
                ("SELECT certreg.record_refusal(%s, %s::jsonb, 'CERT_REVOKED')",
                 (pki.leaf("revoked")["key_id"], cert_arg(pki, "revoked"))),
                ("INSERT INTO certreg.refusals (sha256, key_id, outcome, subject, issuer,"
                 " serial, not_before, not_after) SELECT sha256, key_id, outcome, subject,"
                 " issuer, serial, not_before, not_after FROM certreg.refusals", ()),
                ("UPDATE certreg.refusals SET outcome = 'CERT_REVOKED'", ()),
                ("UPDATE certreg.refusals_v SET outcome = 'CERT_REVOKED'", ()),
                ("DELETE FROM certreg.refusals", ()),
                ("SELECT certreg.pending_count()", ())):
            assert sqlstate(c, sql, args)[0] == "42501", (role, sql)
        # They read them, as pending registrations.
        cur = c.cursor()
        cur.execute("SELECT outcome FROM certreg.refusals_v")
        assert cur.fetchall() == [("CERT_EXPIRED",)], role
        c.close()
    shown = js(db.conninfo_as(logins["operator"]), "key", "show", "--cert",
               pki.leaf("expired")["pem"])
    assert [r["outcome"] for r in shown["refusals"]] == ["CERT_EXPIRED"]


def test_pending_count_is_the_daemons(db, pki, daemon_role):
    d = connect(db, daemon_role).cursor()
    d.execute("SELECT certreg.pending_count()")
    assert d.fetchone() == (0,)
    for name in ("rsa-ok", "ec-ok"):
        d.execute("SELECT key_status FROM certreg.decide(%s, %s::jsonb, '127.0.0.1', false)",
                  (pki.leaf(name)["key_id"], cert_arg(pki, name)))
    d.execute("SELECT certreg.pending_count()")
    assert d.fetchone() == (2,)
    try:
        d.execute("SELECT count(*) FROM certreg.pending")
        raise AssertionError("the daemon role read pending")
    except psycopg2.Error as e:
        assert e.pgcode == "42501"
