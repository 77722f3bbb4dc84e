"""Who the database trusts with what (issue 27; docs/SECURITY.md).

An operator's psql session is not trusted with certificate facts, the
daemon's login only to report what it verified, and no caller with the
isolation level of its choice: each hostile caller below goes straight to
the SQL functions, as psql would, and must not get past a rule.
"""
import json
import subprocess
import threading

import psycopg2
import pytest

from fixtures.cli import admin
from fixtures.daemon import in_force

OFFICE_A, OFFICE_B = "TA01", "TB01"
UNIT_A, UNIT_B = "110120000001", "110120000002"


def connect(conninfo):
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    return conn


def call(conn, sql, args=()):
    """Runs sql; returns (SQLSTATE, message) of a refusal or (None, rows)."""
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
    except psycopg2.Error as e:
        return e.pgcode, e.pgerror
    return None, cur.fetchall() if cur.description else None


@pytest.fixture
def world(db, pg_cluster):
    """Two offices, a unit in each (A's without a credit code), an operator
    per office and a daemon login."""
    c = db.conninfo
    admin(c, "office", "add", OFFICE_A, "--name", "甲管理部")
    admin(c, "office", "add", OFFICE_B, "--name", "乙管理部")
    admin(c, "unit", "add", UNIT_A, "--name", "甲单位", "--office", OFFICE_A)
    admin(c, "unit", "add", UNIT_B, "--name", "乙单位", "--office", OFFICE_B)
    suffix = db.name[-8:]
    names = {"op_a": f"opa_{suffix}", "op_b": f"opb_{suffix}", "daemon": f"dmn_{suffix}"}
    admin(c, "operator", "add", names["op_a"], "--office", OFFICE_A)
    admin(c, "operator", "add", names["op_b"], "--office", OFFICE_B)
    pg_cluster.ensure_login(names["daemon"], "certreg_daemon")

    class World:
        owner = c
        op_a = db.conninfo_as(names["op_a"])
        op_b = db.conninfo_as(names["op_b"])
        daemon = db.conninfo_as(names["daemon"])
    return World


def recorded(db, key_id):
    """The certificate rows of a key as the daemon recorded them."""
    cur = connect(db.conninfo).cursor()
    cur.execute("SELECT sha256, subject, issuer, serial, holder_id, credit_code, source"
                " FROM certreg.certificates WHERE key_id = %s", (key_id,))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def forged(key_id, like, **over):
    """Certificate JSON for key_id with another certificate's facts."""
    cert = {"sha256": "f" * 63 + "0", "key_id": key_id, "subject": like["subject"],
            "issuer": like["issuer"], "serial": "01", "holder_id": like["holder_id"],
            "credit_code": like["credit_code"], "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2099-01-01T00:00:00Z"}
    cert.update(over)
    return json.dumps(cert)


def outcome(d, pki, name):
    return d.verify_bundle(open(pki.leaf(name)["chain"]).read()).json()


# --- finding 1: an operator's certificate JSON decides nothing -----------------

def test_operator_json_cannot_skip_the_credit_code_check(certregd, db, pki, world):
    """(a) certregd verified the key's certificate with credit code A; an
    operator binding it to a unit with credit code B cannot get past the
    check by handing key_bind() JSON that claims B."""
    other = pki.leaf("bjca-other")
    admin(world.owner, "unit", "add", "110120000003", "--name", "丙单位", "--office", OFFICE_A,
          "--credit-code", pki.leaf("bjca")["credit_code"])
    assert other["credit_code"] != pki.leaf("bjca")["credit_code"]
    d = certregd(db)
    assert outcome(d, pki, "bjca-other")["outcome"] == "KEY_NOT_APPROVED"
    lie = forged(other["key_id"], recorded(db, other["key_id"])[0],
                 credit_code=pki.leaf("bjca")["credit_code"], sha256=other["sha256"])
    code, msg = call(connect(world.op_a),
                     "SELECT certreg.key_bind(%s, '110120000003', 'T-1', false, NULL, %s)",
                     (other["key_id"], lie))
    assert code == "CR006" and other["credit_code"] in msg, (code, msg)
    assert outcome(d, pki, "bjca-other")["outcome"] == "KEY_NOT_APPROVED"


def test_key_bound_before_any_verified_certificate_is_checked_at_first_login(
        certregd, db, pki, world):
    """A key bound by id alone has no verified credit code yet: the check
    runs when certregd first verifies one of its certificates."""
    bjca = pki.leaf("bjca")
    admin(world.owner, "unit", "add", "110120000004", "--name", "丁单位", "--office", OFFICE_A,
          "--credit-code", pki.leaf("bjca-other")["credit_code"])
    admin(world.op_a, "key", "bind", bjca["key_id"], "--unit", "110120000004", "--ticket", "T")
    d = certregd(db)
    body = outcome(d, pki, "bjca")
    assert body["outcome"] == "KEY_NOT_APPROVED", body
    pending = json.loads(admin(world.owner, "--json", "pending", "list").stdout)
    assert bjca["key_id"] in json.dumps(pending)
    # The same binding to a unit whose credit code matches is OK, and checked.
    admin(world.owner, "key", "cancel", bjca["key_id"], "--reason", "wrong unit")
    admin(world.owner, "unit", "add", "110120000005", "--name", "戊单位", "--office", OFFICE_A,
          "--credit-code", bjca["credit_code"])
    admin(world.op_a, "key", "bind", bjca["key_id"], "--unit", "110120000005", "--ticket", "T2")
    in_force(lambda: outcome(d, pki, "bjca")["outcome"], "OK")
    shown = json.loads(admin(world.owner, "--json", "key", "show", bjca["key_id"]).stdout)
    assert shown["association"]["credit_checked"] is True


def test_operator_json_cannot_plant_a_renewal(certregd, db, pki, world):
    """(b) An operator binds a key of their own unit with JSON carrying the
    issuer and holder id of another company's certificate; that company's
    next certificate must not renew into the operator's unit."""
    victim_old, victim_new = pki.leaf("bjca"), pki.leaf("bjca-renewed")
    d = certregd(db)
    # The victim logs in once (not yet associated): its facts are readable.
    assert outcome(d, pki, "bjca")["outcome"] == "KEY_NOT_APPROVED"
    facts = recorded(db, victim_old["key_id"])[0]
    mine = pki.leaf("ec-ok")
    code, _ = call(connect(world.op_a),
                   "SELECT certreg.key_bind(%s, %s, 'T-9', false, NULL, %s)",
                   (mine["key_id"], UNIT_A, forged(mine["key_id"], facts)))
    assert code is None
    body = outcome(d, pki, "bjca-renewed")
    assert body["outcome"] == "KEY_NOT_APPROVED", body
    keys = json.loads(admin(world.owner, "--json", "key", "list", "--unit", UNIT_A).stdout)
    assert victim_new["key_id"] not in json.dumps(keys)


def test_operator_bound_certificate_is_no_predecessor_until_certregd_verifies_it(
        certregd, db, pki, world):
    old = pki.leaf("bjca")
    admin(world.op_a, "key", "bind", "--cert", old["pem"], "--unit", UNIT_A, "--ticket", "T")
    assert {r["source"] for r in recorded(db, old["key_id"])} == {"operator"}
    d = certregd(db)
    assert outcome(d, pki, "bjca-renewed")["outcome"] == "KEY_NOT_APPROVED"


def test_operator_copy_is_certregds_after_the_first_verified_login_within_the_interval(
        certregd, db, pki, world):
    """A decision learns whether its certificate is recorded from the key's
    row (keys.last_used_cert, 012), not the certificate's: the operator's
    copy of a certificate becomes certregd's at its first verified login,
    though the key's last use is fresh, and neither an operator nor the
    daemon's login can name a certificate there to skip that."""
    old = pki.leaf("bjca")
    admin(world.op_a, "key", "bind", "--cert", old["pem"], "--unit", UNIT_A, "--ticket", "T")
    owner = connect(world.owner).cursor()
    owner.execute("UPDATE certreg.keys SET last_used_at = now() WHERE key_id = %s",
                  (old["key_id"],))
    for who in (world.op_a, world.daemon):
        code, _ = call(connect(who), "UPDATE certreg.keys SET last_used_cert = %s"
                       " WHERE key_id = %s", (old["sha256"], old["key_id"]))
        assert code == "42501", who
    assert {r["source"] for r in recorded(db, old["key_id"])} == {"operator"}
    d = certregd(db, cache={"record_interval": 600})
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    assert {r["source"] for r in recorded(db, old["key_id"])} == {"daemon"}
    owner.execute("SELECT last_used_cert FROM certreg.keys WHERE key_id = %s", (old["key_id"],))
    assert owner.fetchone() == (old["sha256"],)
    # Now a predecessor certregd verified: its renewal continues the unit.
    assert outcome(d, pki, "bjca-renewed")["outcome"] == "OK"


# --- finding 2: the daemon's login reports, it does not approve ----------------

def test_daemon_role_cannot_approve_an_arbitrary_key(certregd, db, pki, world):
    old = pki.leaf("bjca")
    admin(world.op_a, "key", "bind", "--cert", old["pem"], "--unit", UNIT_A, "--ticket", "T")
    facts = recorded(db, old["key_id"])[0]          # the operator's copy
    d = certregd(db)
    daemon = connect(world.daemon)
    decide = "SELECT key_status FROM certreg.decide(%s, %s::jsonb, '10.9.9.9', true)"
    arbitrary = "ab" * 32
    # Holder id and issuer of a certificate only an operator supplied.
    code, rows = call(daemon, decide, (arbitrary, forged(arbitrary, facts)))
    assert (code, rows) == (None, [("none",)])
    # Now certregd verifies the predecessor; a forged successor must still
    # be current and issued after it.
    assert outcome(d, pki, "bjca")["outcome"] == "OK"
    facts = [r for r in recorded(db, old["key_id"]) if r["source"] == "daemon"][0]
    for n, bad in enumerate(({"not_after": "2001-01-01T00:00:00Z"},
                             {"not_before": "1990-01-01T00:00:00Z"},
                             {"holder_id": facts["holder_id"] + "X"},
                             {"issuer": facts["issuer"] + "X"})):
        key = f"{n:02x}" * 32
        code, rows = call(daemon, decide, (key, forged(key, facts, sha256=key[::-1], **bad)))
        assert (code, rows) == (None, [("none",)]), bad
    # The daemon's login reaches no table and no operator function.
    for sql in ("UPDATE certreg.keys SET status = 'approved'",
                "INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,"
                " not_before, not_after, source) VALUES (repeat('a', 64), repeat('b', 64),"
                " 's', 'i', '1', now(), now(), 'daemon')"):
        assert call(daemon, sql)[0] == "42501", sql
    # The real successor, verified by certregd, still renews.
    assert outcome(d, pki, "bjca-renewed")["outcome"] == "OK"


# --- finding 4: the audit chain holds at every isolation level -------------------

@pytest.mark.parametrize("rounds", [3])
def test_audit_chain_holds_under_concurrent_writers_at_every_isolation_level(
        db, world, rounds):
    """24 writers, a third each at READ COMMITTED, REPEATABLE READ and
    SERIALIZABLE, each taking its snapshot before all of them append at
    once; a writer refused with a serialization failure retries, as a
    client must. The chain must stay one line."""
    writers = 24
    levels = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
    done, errors = [], []
    for r in range(rounds):
        barrier = threading.Barrier(writers)

        def write(i, r=r, barrier=barrier):
            conn = psycopg2.connect(world.owner)
            try:
                first = True
                for attempt in range(50):
                    try:
                        cur = conn.cursor()
                        cur.execute(f"SET TRANSACTION ISOLATION LEVEL {levels[i % 3]}")
                        cur.execute("SELECT count(*) FROM certreg.audit")   # the snapshot
                        if first:
                            first = False
                            barrier.wait(timeout=30)
                        cur.execute("SELECT certreg.unit_add(%s, %s, %s, NULL)",
                                    (f"1109{r:02d}{i:06d}", f"并发{r}-{i}", OFFICE_A))
                        conn.commit()
                        done.append((r, i, attempt))
                        return
                    except psycopg2.errors.SerializationFailure:
                        conn.rollback()
                errors.append((r, i, "no success in 50 attempts"))
            except Exception as e:                       # noqa: BLE001 - reported below
                errors.append((r, i, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert len(done) == writers * rounds
    assert any(a > 0 for _, _, a in done), "no writer ever met a concurrent append"
    cur = connect(world.owner).cursor()
    cur.execute("SELECT ok, checked, detail FROM certreg.audit_verify()")
    ok, checked, detail = cur.fetchone()
    assert ok, detail
    cur.execute("SELECT count(*) FROM certreg.audit WHERE action = 'unit_add'"
                " AND registration_no LIKE '1109%'")
    assert cur.fetchone()[0] == writers * rounds
    assert admin(world.owner, "audit", "verify").returncode == 0


def test_audit_verify_finds_a_removed_last_row(db, world):
    su = connect(world.owner).cursor()
    su.execute("ALTER TABLE certreg.audit DISABLE TRIGGER ALL")
    su.execute("DELETE FROM certreg.audit WHERE id = (SELECT max(id) FROM certreg.audit)")
    su.execute("ALTER TABLE certreg.audit ENABLE TRIGGER ALL")
    su.execute("SELECT ok, detail FROM certreg.audit_verify()")
    ok, detail = su.fetchone()
    assert not ok and "missing" in detail


# --- finding 7: row-level security holds in messages too -------------------------

def test_refusals_and_prefixes_do_not_name_another_offices_unit(db, pki, world):
    key = pki.leaf("ec-ok")["key_id"]
    admin(world.op_a, "key", "bind", key, "--unit", UNIT_A, "--ticket", "A-1")
    attempts = [
        ("key", "bind", key[:12], "--unit", UNIT_B, "--ticket", "B-1"),
        ("key", "bind", key, "--unit", UNIT_B, "--ticket", "B-1"),
        ("key", "show", key[:12]),
        ("key", "show", key),
        ("key", "suspend", key, "--reason", "x"),
        ("key", "suspend", key[:12], "--reason", "x"),
        ("unit", "set-status", UNIT_A, "closed", "--reason", "x"),
        ("unit", "show", UNIT_A),
    ]
    for args in attempts:
        for flags in ((), ("--json",)):
            p = admin(world.op_b, *flags, *args, check=False)
            out = p.stdout + p.stderr
            if UNIT_A in args:
                out = out.replace(UNIT_A, "")      # the caller's own words echoed
            assert UNIT_A not in out and OFFICE_A not in out and "甲" not in out, (args, out)
    # The owner of the association still sees and names it.
    p = admin(world.op_b, "key", "bind", key, "--unit", UNIT_B, "--ticket", "B-1", check=False)
    assert p.returncode == 1
    p = admin(world.owner, "key", "bind", key, "--unit", UNIT_B, "--ticket", "B-1", check=False)
    assert p.returncode == 1 and UNIT_A in p.stderr
    assert admin(world.op_a, "--json", "key", "show", key[:12]).returncode == 0


def test_an_unfinished_change_holding_the_audit_head_is_named_not_waited_for(db, world):
    """One operator's psql transaction that changed something and stays open
    holds the chain's head: every other office's counter change used to wait
    for it without end, and say nothing of why."""
    key_a, key_b = "a1" * 32, "b2" * 32
    admin(world.op_a, "key", "bind", key_a, "--unit", UNIT_A, "--ticket", "A-1")
    holder = psycopg2.connect(world.op_a)                  # a transaction, left open
    holder.cursor().execute("SELECT certreg.key_suspend(%s, 'lunch')", (key_a,))
    try:
        try:
            p = admin(world.op_b, "key", "bind", key_b, "--unit", UNIT_B, "--ticket", "B-1",
                      check=False)
        except subprocess.TimeoutExpired:
            pytest.fail("the other office's counter waited for the open transaction")
        login_a = psycopg2.extensions.parse_dsn(world.op_a)["user"]
        assert p.returncode != 0 and login_a in p.stderr, p.stderr
        assert "pg_terminate_backend" in p.stderr, p.stderr
    finally:
        holder.rollback()
        holder.close()
    admin(world.op_b, "key", "bind", key_b, "--unit", UNIT_B, "--ticket", "B-1")
    assert admin(world.owner, "audit", "verify").returncode == 0


# --- another office's certificates (018_certificates_read.sql) -----------------

def test_another_offices_certificates_are_not_read(certregd, db, pg_cluster, pki, world):
    """A certificate names its unit (subject, credit code) and, in last_seen,
    when that unit last logged in: an operator of another office reads it
    neither in the table, nor through certificates_v, key show, a key-id
    prefix, keys_v's expiry, key expiring or keys_expiring() from psql. A
    pending key's certificates every counter login reads, as it reads the
    pending list; a certificate of no key, only whoever reads every unit."""
    bound = pki.leaf("ec-ok")
    admin(world.op_a, "key", "bind", "--cert", bound["pem"], "--unit", UNIT_A, "--ticket", "A-1")
    d = certregd(db)
    assert outcome(d, pki, "ec-ok")["outcome"] == "OK"
    waiting = pki.leaf("bjca-other")
    assert outcome(d, pki, "bjca-other")["outcome"] == "KEY_NOT_APPROVED"
    owner = connect(world.owner).cursor()
    orphan = "e" * 64
    owner.execute("INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,"
                  " not_before, not_after) VALUES (%s, %s, 'CN=无主', 'CN=CA', '7', now(),"
                  " now() + interval '1 day')", ("d" * 64, orphan))
    subject = recorded(db, bound["key_id"])[0]["subject"]
    pg_cluster.ensure_login(f"sup_{db.name[-8:]}", "certreg_supervisor")
    supervisor = db.conninfo_as(f"sup_{db.name[-8:]}")

    def keys_read(conninfo):
        cur = connect(conninfo).cursor()
        seen = {}
        for sql in ("SELECT key_id FROM certreg.certificates",
                    "SELECT key_id FROM certreg.certificates_v",
                    "SELECT key_id FROM certreg.keys_v WHERE not_after IS NOT NULL",
                    "SELECT key_id FROM certreg.keys_expiring(36500)"):
            cur.execute(sql)
            seen[sql] = {r[0] for r in cur.fetchall()}
        return seen

    for sql, got in keys_read(world.op_b).items():
        assert bound["key_id"] not in got and orphan not in got, sql
    assert waiting["key_id"] in keys_read(world.op_b)["SELECT key_id FROM certreg.certificates_v"]
    for sql, got in keys_read(world.op_a).items():
        assert bound["key_id"] in got and orphan not in got, sql
    for conninfo in (supervisor, world.owner):
        seen = keys_read(conninfo)
        assert {bound["key_id"], waiting["key_id"], orphan} <= seen[
            "SELECT key_id FROM certreg.certificates_v"]
        assert bound["key_id"] in seen["SELECT key_id FROM certreg.keys_expiring(36500)"]
    # A key of A whose certificate's credit code differs from its unit's
    # waits in pending too (decide()): B reads the certificate the pending
    # registration shows, not the key's history, which is A's.
    history = "ab" * 32
    owner.execute("INSERT INTO certreg.keys (key_id, registration_no, status, how, bound_by)"
                  " VALUES (%s, %s, 'approved', 'counter', 't')", (history, UNIT_A))
    for n in (1, 2):
        owner.execute("INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,"
                      " not_before, not_after) VALUES (%s, %s, %s, 'CN=CA', %s, now(),"
                      " now() + interval '1 year')", (f"c{n}" * 32, history, f"CN=甲{n}", str(n)))
    owner.execute("INSERT INTO certreg.pending (key_id, cert_sha256, subject) VALUES (%s, %s,"
                  " 'CN=甲2')", (history, "c2" * 32))
    for conninfo, want in ((world.op_b, ["c2" * 32]), (world.op_a, ["c1" * 32, "c2" * 32])):
        cur = connect(conninfo).cursor()
        cur.execute("SELECT sha256 FROM certreg.certificates_v WHERE key_id = %s ORDER BY 1",
                    (history,))
        assert [r[0] for r in cur.fetchall()] == want
    # The counter's commands: nothing of the certificate, not even its key id.
    for args in (("key", "show", bound["key_id"]), ("key", "show", bound["key_id"][:12]),
                 ("key", "show", "--cert", bound["pem"])):
        for flags in ((), ("--json",)):
            p = admin(world.op_b, *flags, *args, check=False)
            assert p.returncode == 1, (args, p.stdout)
            if "--cert" not in args:               # the file's own subject may be echoed
                assert subject not in p.stdout + p.stderr, (args, p.stdout + p.stderr)
    p = admin(world.op_b, "key", "show", bound["key_id"][:12], check=False)
    assert bound["key_id"] not in p.stdout + p.stderr
    shown = json.loads(admin(world.op_a, "--json", "key", "show", bound["key_id"][:12]).stdout)
    assert [c["subject"] for c in shown["certificates"]] == [subject]
    listed = json.loads(admin(world.op_a, "--json", "key", "expiring", "--days", "36500").stdout)
    assert {k["key_id"] for k in listed} == {bound["key_id"], history}
    assert json.loads(admin(world.op_b, "--json", "key", "expiring", "--days", "36500")
                      .stdout) == []
