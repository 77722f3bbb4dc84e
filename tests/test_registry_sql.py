"""The registry at the SQL level (issue 4): what the CLI tests cannot see.

Notifications on each change, the audit log's append-only guarantee and
hash chain under tampering, the daemon role's reach, and the query plans
of the decision lookup, the pending search and the unit search on a
generated dataset.
"""
import json
import os
import select
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from fixtures.cli import BUILD, admin

GEN = Path(__file__).parent / "bench" / "gen_dataset.sql"


def connect(db, user=None):
    conn = psycopg2.connect(db.conninfo_as(user) if user else db.conninfo)
    conn.autocommit = True
    return conn


def sqlstate(conn, sql, args=()):
    try:
        conn.cursor().execute(sql, args)
    except psycopg2.Error as e:
        return e.pgcode, e.pgerror
    return None, None


def test_every_change_notifies(db, pki):
    listener = connect(db)
    listener.cursor().execute("LISTEN certreg")
    key = pki.leaf("ec-ok")["key_id"]

    def payloads():
        out = []
        select.select([listener], [], [], 2)
        listener.poll()
        while listener.notifies:
            out.append(listener.notifies.pop(0).payload)
        return out

    admin(db.conninfo, "office", "add", "NT01", "--name", "通知管理部")
    assert payloads() == ["office:NT01"]
    admin(db.conninfo, "unit", "add", "110111000001", "--name", "通知单位", "--office", "NT01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit",
          "110111000001", "--ticket", "T")
    assert payloads() == [key]
    for action in ("suspend", "resume", "cancel"):
        admin(db.conninfo, "key", action, key, "--reason", "r")
        assert payloads() == [key], action
    admin(db.conninfo, "unit", "set-status", "110111000001", "closed", "--reason", "r")
    assert payloads() == ["unit:110111000001"]


def test_audit_log_is_append_only_even_for_the_owner(db, pki):
    admin(db.conninfo, "office", "add", "AU01", "--name", "审计管理部")
    su = connect(db)
    for sql in ("UPDATE certreg.audit SET reason = 'x'", "DELETE FROM certreg.audit",
                "TRUNCATE certreg.audit"):
        code, msg = sqlstate(su, sql)
        assert code == "CR009" and "append-only" in msg, (sql, code, msg)
    assert su.cursor() and admin(db.conninfo, "audit", "verify").returncode == 0


def tamper(db, sql):
    su = connect(db)
    cur = su.cursor()
    cur.execute("ALTER TABLE certreg.audit DISABLE TRIGGER ALL")
    cur.execute(sql)
    cur.execute("ALTER TABLE certreg.audit ENABLE TRIGGER ALL")
    cur.execute("SELECT ok, first_broken_id, detail FROM certreg.audit_verify()")
    return cur.fetchone()


@pytest.fixture
def history(db):
    admin(db.conninfo, "office", "add", "AU01", "--name", "审计管理部")
    for i in range(4):
        admin(db.conninfo, "unit", "add", f"11011200000{i}", "--name", f"单位{i}",
              "--office", "AU01")
    rows = connect(db).cursor()
    rows.execute("SELECT id FROM certreg.audit ORDER BY id")
    return [r[0] for r in rows.fetchall()]


def test_audit_verify_finds_an_altered_row(db, history):
    ok, broken, detail = tamper(
        db, f"UPDATE certreg.audit SET reason = 'edited' WHERE id = {history[2]}")
    assert (ok, broken) == (False, history[2]) and "altered" in detail
    p = admin(db.conninfo, "audit", "verify", check=False)
    assert p.returncode == 1 and str(history[2]) in p.stdout + p.stderr


def test_audit_verify_finds_a_removed_row(db, history):
    ok, broken, _ = tamper(db, f"DELETE FROM certreg.audit WHERE id = {history[1]}")
    assert (ok, broken) == (False, history[2])


def rewrite_from(db, victim, role=None):
    """What whoever may write the table (a superuser, or certreg_owner, which
    may disable the table's triggers) can do: alter a row, chain every row
    after it again and move the head, all in the database."""
    cur = connect(db).cursor()
    if role is not None:
        cur.execute(f"SET ROLE {role}")
    cur.execute("ALTER TABLE certreg.audit DISABLE TRIGGER ALL")
    cur.execute(f"UPDATE certreg.audit SET reason = 'rewritten' WHERE id = {victim}")
    cur.execute(f"""DO $$
        DECLARE
            r certreg.audit;
            v_prev text := (SELECT prev_hash FROM certreg.audit WHERE id = {victim});
        BEGIN
            FOR r IN SELECT * FROM certreg.audit WHERE id >= {victim} ORDER BY id LOOP
                UPDATE certreg.audit
                   SET prev_hash = v_prev,
                       hash = certreg.audit_hash(v_prev, r.id, r.at, r.operator,
                                                 r.office_code, r.action, r.key_id,
                                                 r.registration_no, r.ticket, r.reason,
                                                 r.before, r.after)
                 WHERE id = r.id RETURNING hash INTO v_prev;
            END LOOP;
            UPDATE certreg.audit_head SET hash = v_prev;
        END $$""")
    cur.execute("ALTER TABLE certreg.audit ENABLE TRIGGER ALL")


def test_a_rewritten_history_fails_against_a_head_recorded_elsewhere(db, history):
    """The chain alone cannot show a rewrite by whoever may write the table:
    they chain the rows after it again. The head that audit verify prints,
    kept outside the database, does."""
    p = admin(db.conninfo, "audit", "verify")
    head = json.loads(admin(db.conninfo, "--json", "audit", "verify").stdout)
    anchor = f"{head['head_id']}:{head['head_hash']}"
    assert head["head_id"] == history[-1] and anchor in p.stdout
    assert admin(db.conninfo, "audit", "verify", "--anchor", anchor).returncode == 0
    admin(db.conninfo, "unit", "add", "110112000009", "--name", "后来", "--office", "AU01")
    assert admin(db.conninfo, "audit", "verify", "--anchor", anchor).returncode == 0

    rewrite_from(db, history[1])
    assert admin(db.conninfo, "audit", "verify").returncode == 0   # what the chain alone says
    p = admin(db.conninfo, "audit", "verify", "--anchor", anchor, check=False)
    assert p.returncode == 1 and f"entry {history[-1]}" in p.stdout, p.stdout + p.stderr
    out = json.loads(admin(db.conninfo, "--json", "audit", "verify", "--anchor", anchor,
                           check=False).stdout)
    assert out["ok"] is False and out["first_broken_id"] == history[-1]
    for bad in ("12", "x:" + "0" * 64, f"{history[-1]}:" + "0" * 63, f"{history[-1]}:ABC"):
        p = admin(db.conninfo, "audit", "verify", "--anchor", bad, check=False)
        assert p.returncode == 2 and "--anchor" in p.stderr, (bad, p.stderr)


def make_the_audit_functions_lie(db):
    """What certreg_owner, which owns the certreg functions, can do until the
    next db migrate: audit_verify_anchored() says intact and confirms any
    anchor, audit_hash() answers each row's stored hash."""
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    cur.execute("""CREATE OR REPLACE FUNCTION certreg.audit_verify_anchored(
                       p_anchor_id bigint, p_anchor_hash text)
        RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, detail text,
                       head_id bigint, head_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
        SELECT true, (SELECT count(*) FROM audit), NULL::bigint,
               (SELECT count(*) FROM audit) || ' rows, chain intact',
               coalesce(p_anchor_id, h.id), coalesce(p_anchor_hash, h.hash) FROM audit_head h
    $$""")
    cur.execute("""CREATE OR REPLACE FUNCTION certreg.audit_hash(p_prev text, p_id bigint,
                       p_at timestamptz, p_operator text, p_office text, p_action text,
                       p_key text, p_regno text, p_ticket text, p_reason text,
                       p_before jsonb, p_after jsonb)
        RETURNS text LANGUAGE sql STABLE AS $$
        SELECT hash FROM certreg.audit WHERE id = p_id
    $$""")


def test_audit_verify_trusts_no_function_the_owner_can_replace(db, pg_cluster, history):
    """certreg_owner rewrites a row, chains the rest again, moves the head and
    replaces audit_verify_anchored() and audit_hash() to lie: certreg-admin
    computes the chain itself, so the anchor kept outside still catches it,
    for a superuser and for an auditor alike."""
    pg_cluster.ensure_login("auditor_chain", "certreg_auditor")
    auditor = db.conninfo_as("auditor_chain")
    head = json.loads(admin(auditor, "--json", "audit", "verify").stdout)
    anchor = f"{head['head_id']}:{head['head_hash']}"
    assert head["head_id"] == history[-1]

    rewrite_from(db, history[1], role="certreg_owner")
    make_the_audit_functions_lie(db)
    cur = connect(db).cursor()
    cur.execute("SELECT ok FROM certreg.audit_verify_anchored(%s, %s)",
                (head["head_id"], head["head_hash"]))
    assert cur.fetchone() == (True,)          # the database now lies
    for conninfo in (db.conninfo, auditor):
        p = admin(conninfo, "audit", "verify", "--anchor", anchor, check=False)
        assert p.returncode == 1 and f"entry {history[-1]}" in p.stdout, p.stdout + p.stderr
        out = json.loads(admin(conninfo, "--json", "audit", "verify", "--anchor", anchor,
                               check=False).stdout)
        assert out["ok"] is False and out["first_broken_id"] == history[-1], out
        assert "rewritten" in out["detail"]


def test_audit_verify_finds_an_altered_row_whatever_the_functions_say(db, history):
    """A row changed without chaining again, and the functions lying: the
    chain computed in certreg-admin breaks at that row, with no anchor."""
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    cur.execute("ALTER TABLE certreg.audit DISABLE TRIGGER USER")
    cur.execute(f"UPDATE certreg.audit SET reason = 'edited' WHERE id = {history[2]}")
    cur.execute("ALTER TABLE certreg.audit ENABLE TRIGGER USER")
    make_the_audit_functions_lie(db)
    p = admin(db.conninfo, "audit", "verify", check=False)
    assert p.returncode == 1 and f"entry {history[2]}" in p.stdout, p.stdout + p.stderr
    out = json.loads(admin(db.conninfo, "--json", "audit", "verify", check=False).stdout)
    assert out == {"ok": False, "checked": 3, "first_broken_id": history[2],
                   "detail": f"row {history[2]} was altered", "head_id": None,
                   "head_hash": None}


def test_audit_verify_answers_an_intact_log_as_before(db, history):
    n = len(history)
    cur = connect(db).cursor()
    cur.execute("SELECT id, hash FROM certreg.audit_head")
    head_id, head_hash = cur.fetchone()
    out = json.loads(admin(db.conninfo, "--json", "audit", "verify").stdout)
    assert list(out) == ["ok", "checked", "first_broken_id", "detail", "head_id", "head_hash"]
    assert out == {"ok": True, "checked": n, "first_broken_id": None,
                   "detail": f"{n} rows, chain intact", "head_id": head_id,
                   "head_hash": head_hash}
    p = admin(db.conninfo, "audit", "verify")
    assert p.stdout == (f"audit log intact: {n} entries checked\n"
                        f"head: {head_id}:{head_hash}\n") and p.stderr == ""
    p = admin(db.conninfo, "audit", "verify", "--anchor", f"{history[1]}:{'0' * 64}",
              check=False)
    assert p.returncode == 1 and p.stdout == (
        f"audit log BROKEN at entry {history[1]} (2 entries checked): row {history[1]} no"
        " longer has the hash recorded for it: the log was rewritten up to it\n"), p.stdout
    # An empty log: its head is entry 0 with 64 zeros, and that anchors.
    empty = connect(db).cursor()
    empty.execute("ALTER TABLE certreg.audit DISABLE TRIGGER USER")
    empty.execute("DELETE FROM certreg.audit")
    empty.execute(f"UPDATE certreg.audit_head SET id = 0, hash = '{'0' * 64}'")
    empty.execute("ALTER TABLE certreg.audit ENABLE TRIGGER USER")
    out = json.loads(admin(db.conninfo, "--json", "audit", "verify", "--anchor",
                           "0:" + "0" * 64).stdout)
    assert out == {"ok": True, "checked": 0, "first_broken_id": None,
                   "detail": "0 rows, chain intact", "head_id": 0, "head_hash": "0" * 64}


def test_audit_verify_is_for_logins_that_read_every_row(db, pg_cluster, history):
    """An operator reads only its offices' audit rows (policy audit_read): it
    is refused, never told that its part of the log is intact. Supervisors
    and auditors read every row and the head."""
    pg_cluster.ensure_login("operator_chain", "certreg_operator")
    pg_cluster.ensure_login("supervisor_chain", "certreg_supervisor")
    op = db.conninfo_as("operator_chain")
    p = admin(op, "audit", "verify", check=False)
    assert p.returncode == 1 and p.stdout == "", p.stdout
    assert "supervisor or an auditor" in p.stderr, p.stderr
    out = json.loads(admin(op, "--json", "audit", "verify", check=False).stdout)
    assert out["error"] == "not_permitted", out
    out = json.loads(admin(db.conninfo_as("supervisor_chain"), "--json", "audit", "verify").stdout)
    assert out["ok"] is True and out["head_id"] == history[-1]


def test_audit_verify_trusts_no_cast_the_owner_wrote(db, history):
    """certreg_owner retypes a column to a type of its own whose cast to json
    gives back the row's old text, so that jsonb_build_array would hash what
    the row said before: the check refuses a table not of 001's types."""
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    cur.execute("SET search_path = certreg")
    cur.execute("CREATE TYPE said AS RANGE (subtype = text)")
    cur.execute("""CREATE FUNCTION said_json(said) RETURNS json LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN lower($1) = 'rewritten' THEN 'null' ELSE to_json(lower($1)) END
    $$""")
    cur.execute("CREATE CAST (said AS json) WITH FUNCTION said_json(said)")
    cur.execute("DROP VIEW audit_v")
    cur.execute("ALTER TABLE audit DISABLE TRIGGER USER")
    cur.execute("ALTER TABLE audit ALTER reason TYPE said USING CASE WHEN reason IS NOT NULL"
                " THEN said(reason, reason, '[]') END")
    cur.execute(f"UPDATE audit SET reason = said('rewritten', 'rewritten', '[]')"
                f" WHERE id = {history[2]}")
    cur.execute("ALTER TABLE audit ENABLE TRIGGER USER")
    cur.execute(f"SELECT jsonb_build_array(reason)::text FROM audit WHERE id = {history[2]}")
    assert cur.fetchone() == ("[null]",)       # the row's old reason, as hashed
    p = admin(db.conninfo, "audit", "verify", check=False)
    assert p.returncode == 1 and "intact" not in p.stdout, p.stdout
    assert "not the table the chain was written to" in p.stderr, p.stderr


def verify_peak_memory(db, out_file):
    """Runs `certreg-admin --json audit verify` directly, so that wait4 gives
    this one program's peak memory: its answer and that peak in kB."""
    pid = os.posix_spawn(str(BUILD / "certreg-admin"),
                         ["certreg-admin", "--db", db.conninfo, "--json", "audit", "verify"],
                         os.environ, file_actions=[
                             (os.POSIX_SPAWN_OPEN, 1, str(out_file),
                              os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)])
    _, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(out_file.read_text()), usage.ru_maxrss


def test_audit_verify_streams_a_long_log(db, history, tmp_path):
    """Thousands of rows of 16 kB each are checked in one pass, in memory that
    does not grow with the log: the peak grows far less than the log."""
    _, small = verify_peak_memory(db, tmp_path / "small.json")
    cur = connect(db).cursor()
    cur.execute("""DO $$
        BEGIN
            FOR i IN 1..3000 LOOP
                PERFORM certreg.audit_append('unit_add', 'AU01', NULL, '110112000000',
                    'T-' || i, NULL, NULL,
                    jsonb_build_object('i', i, 'pad', repeat(md5(i::text), 500)));
            END LOOP;
        END $$""")
    cur.execute("SELECT count(*), sum(octet_length(after::text)), max(id) FROM certreg.audit")
    n, size, last = cur.fetchone()
    assert n == len(history) + 3000 and size > 48_000_000
    out, large = verify_peak_memory(db, tmp_path / "large.json")
    assert out["ok"] is True and out["checked"] == n and out["head_id"] == last
    assert large - small < 16_000, (small, large)


def anchored_then_rewritten(db, pg_cluster, history, login):
    """An auditor's anchor taken from audit verify, a copy of the log kept
    as it was (keep_the_log_as_it_is), then certreg_owner's rewrite of the
    second entry: the auditor's conninfo and the anchor."""
    pg_cluster.ensure_login(login, "certreg_auditor")
    auditor = db.conninfo_as(login)
    head = json.loads(admin(auditor, "--json", "audit", "verify").stdout)
    keep_the_log_as_it_is(db)
    rewrite_from(db, history[1], role="certreg_owner")
    return auditor, f"{head['head_id']}:{head['head_hash']}"


def keep_the_log_as_it_is(db):
    """What certreg_owner can do before a rewrite: copy the rows and the head
    as they are into tables of its own, shaped like the originals."""
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    cur.execute("CREATE TABLE certreg.audit_kept (LIKE certreg.audit INCLUDING CONSTRAINTS)")
    cur.execute("INSERT INTO certreg.audit_kept SELECT * FROM ONLY certreg.audit")
    cur.execute("CREATE TABLE certreg.audit_head_kept"
                " (LIKE certreg.audit_head INCLUDING CONSTRAINTS)")
    cur.execute("INSERT INTO certreg.audit_head_kept SELECT * FROM ONLY certreg.audit_head")


def test_audit_verify_reads_no_table_inheriting_the_log(db, pg_cluster, history):
    """certreg_owner rewrites an entry, then makes its copy of the old log a
    child of certreg.audit (and of audit_head), with policies that show
    audit verify (its search_path tells it apart) the children alone and
    everyone else the rewritten table: a plain SELECT of the table reads
    its children, so the anchor must still catch the rewrite."""
    auditor, anchor = anchored_then_rewritten(db, pg_cluster, history, "auditor_inherit")
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    verifying = "(current_setting('search_path') = 'pg_catalog, pg_temp')"
    for table in ("audit", "audit_head"):
        cur.execute(f"ALTER TABLE certreg.{table}_kept INHERIT certreg.{table}")
        cur.execute(f"ALTER TABLE certreg.{table} ENABLE ROW LEVEL SECURITY")
        cur.execute(f"""CREATE POLICY split ON certreg.{table} AS RESTRICTIVE FOR SELECT
            USING ((tableoid = 'certreg.{table}_kept'::regclass) = {verifying})""")
        cur.execute(f"GRANT SELECT ON certreg.{table}_kept TO certreg_auditor")
    cur.execute("CREATE POLICY head_read ON certreg.audit_head FOR SELECT USING (true)")
    seen = connect(db, "auditor_inherit").cursor()
    seen.execute(f"SELECT reason FROM certreg.audit WHERE id = {history[1]}")
    assert seen.fetchall() == [("rewritten",)]     # what the auditor reads
    p = admin(auditor, "audit", "verify", "--anchor", anchor, check=False)
    assert p.returncode == 1 and p.stdout == "", p.stdout + p.stderr
    assert "a table inherits it" in p.stderr, p.stderr


def test_audit_verify_reads_no_view_swapped_in_while_it_waits(db, pg_cluster, history):
    """certreg_owner renames the rewritten table away and puts a view of the
    old rows, and one of the old head, in its place, in a transaction it
    commits once audit verify waits for the table's lock: the check of the
    table was made, and the rows must not come from another relation."""
    auditor, anchor = anchored_then_rewritten(db, pg_cluster, history, "auditor_swap")
    owner = psycopg2.connect(db.conninfo)
    cur = owner.cursor()                       # one transaction, not committed yet
    cur.execute("SET ROLE certreg_owner")
    for table in ("audit", "audit_head"):
        cur.execute(f"ALTER TABLE certreg.{table} RENAME TO {table}_real")
        cur.execute(f"CREATE VIEW certreg.{table} AS SELECT * FROM certreg.{table}_kept")
        cur.execute(f"GRANT SELECT ON certreg.{table} TO certreg_auditor")
    verify = subprocess.Popen([str(BUILD / "certreg-admin"), "--db", auditor, "audit",
                               "verify", "--anchor", anchor],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = connect(db).cursor()
    for _ in range(200):
        watch.execute("""SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                          WHERE NOT l.granted AND a.usename = 'auditor_swap'""")
        if watch.fetchone()[0] > 0 or verify.poll() is not None:
            break
        time.sleep(0.05)
    owner.commit()
    out, err = verify.communicate(timeout=60)
    assert verify.returncode == 1 and out == "", out + err
    assert "not the table the chain was written to" in err, err


def test_audit_verify_head_names_the_last_row(db, history):
    """The head row carries an id as well as a hash: one that does not name
    the row with that hash is not the chain's head, and its id must not be
    printed as the anchor to keep."""
    cur = connect(db).cursor()
    cur.execute("SET ROLE certreg_owner")
    cur.execute(f"UPDATE certreg.audit_head SET id = {history[1]}")
    p = admin(db.conninfo, "audit", "verify", check=False)
    assert p.returncode == 1 and p.stdout == (
        f"audit log BROKEN at entry {history[1]} ({len(history)} entries checked): the head"
        f" names row {history[1]}, not the last row of the chain\n"), p.stdout
    cur.execute("SELECT ok, first_broken_id, detail FROM certreg.audit_verify()")
    assert cur.fetchone() == (False, history[1], f"the head names row {history[1]}, not the"
                              " last row of the chain")


def test_daemon_role_reaches_only_its_functions(db, pg_cluster, pki):
    pg_cluster.ensure_login("daemon_sql_test", "certreg_daemon")
    d = connect(db, "daemon_sql_test")
    for table in ("audit", "keys", "units", "pending", "certificates", "audit_v", "keys_v",
                  "refusals", "refusals_v"):
        code, _ = sqlstate(d, f"SELECT * FROM certreg.{table}")
        assert code == "42501", table
    cert = json.dumps({"sha256": pki.leaf("ec-ok")["sha256"], "key_id": pki.leaf("ec-ok")["key_id"],
                       "subject": "CN=x", "issuer": "CN=y", "serial": "01",
                       "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"})
    code, _ = sqlstate(d, "SELECT certreg.key_bind(%s, '110100000001', 'T', false, NULL, NULL)",
                       (pki.leaf("ec-ok")["key_id"],))
    assert code == "42501"
    code, _ = sqlstate(d, "SELECT certreg.key_suspend(%s, 'r')", (pki.leaf("ec-ok")["key_id"],))
    assert code == "42501"
    cur = d.cursor()
    cur.execute("SELECT key_status FROM certreg.decide(%s, %s::jsonb, '127.0.0.1', true)",
                (pki.leaf("ec-ok")["key_id"], cert))
    assert cur.fetchone() == ("none",)
    cur.execute("SELECT certreg.ping()")
    assert cur.fetchone()[0] >= 2


HEX64_GOOD = ["0123456789abcdef" * 4, "f" * 64]
HEX64_BAD = ["A" * 64, "0123456789ABCDEF" * 4, "a" * 63, "a" * 65, "g" + "a" * 63,
             "a" * 63 + "\n", "a" * 64 + "\n", " " + "a" * 63, "é" + "a" * 63, "ａ" * 64,
             "a" * 32 + "'; --" + "a" * 27, ""]


def test_key_ids_and_hashes_are_64_lowercase_hex_in_every_table(db):
    """The rule of migration 005, where 001 had it as a regex: in the CHECK
    constraints (009's refusals too) and in require_key_id(), which decide()
    and every other function taking a key id call first."""
    conn = psycopg2.connect(db.conninfo)
    cur = conn.cursor()
    inserts = {
        "keys.key_id": "INSERT INTO certreg.keys (key_id, registration_no, status, how,"
                       " bound_by) VALUES (%s, '110100000009', 'approved', 'counter', 't')",
        "certificates.sha256": "INSERT INTO certreg.certificates (sha256, key_id, subject,"
                               " issuer, serial, not_before, not_after) VALUES (%s, repeat('a',"
                               " 64), 's', 'i', '1', now(), now())",
        "certificates.key_id": "INSERT INTO certreg.certificates (sha256, key_id, subject,"
                               " issuer, serial, not_before, not_after) VALUES (repeat('a',"
                               " 64), %s, 's', 'i', '1', now(), now())",
        "pending.key_id": "INSERT INTO certreg.pending (key_id) VALUES (%s)",
        "refusals.sha256": "INSERT INTO certreg.refusals (sha256, key_id, outcome, subject,"
                           " issuer, serial, not_before, not_after) VALUES (%s, repeat('a',"
                           " 64), 'CERT_EXPIRED', 's', 'i', '1', now(), now())",
        "refusals.key_id": "INSERT INTO certreg.refusals (sha256, key_id, outcome, subject,"
                           " issuer, serial, not_before, not_after) VALUES (repeat('a', 64),"
                           " %s, 'CERT_EXPIRED', 's', 'i', '1', now(), now())",
    }

    def outcome(sql, value):
        try:
            cur.execute(sql, (value,))
            return None
        except psycopg2.Error as e:
            return e.pgcode
        finally:
            conn.rollback()

    for column, sql in inserts.items():
        # keys has no unit 110100000009: a key id that passes its CHECK
        # stops at the foreign key (23503), which is checked after it.
        passed = "23503" if column == "keys.key_id" else None
        for value in HEX64_GOOD:
            assert outcome(sql, value) == passed, (column, value)
        for value in HEX64_BAD:
            assert outcome(sql, value) == "23514", (column, value)
    decide = "SELECT * FROM certreg.decide(%s, NULL, '10.0.0.1', false)"
    for value in HEX64_GOOD:
        assert outcome(decide, value) is None, value
    for value in HEX64_BAD + [None]:
        assert outcome(decide, value) == "CR001", value
    conn.close()


def test_decide_records_pending_attempts(db, pki):
    su = connect(db).cursor()
    leaf = pki.leaf("rsa-ok")
    cert = json.dumps({"sha256": leaf["sha256"], "key_id": leaf["key_id"], "subject": "CN=p",
                       "issuer": "CN=i", "serial": "02", "not_before": "2026-01-01T00:00:00Z",
                       "not_after": "2027-01-01T00:00:00Z"})
    for peer in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        su.execute("SELECT * FROM certreg.decide(%s, %s::jsonb, %s, true)",
                   (leaf["key_id"], cert, peer))
    su.execute("SELECT attempts, last_peer FROM certreg.pending WHERE key_id = %s",
               (leaf["key_id"],))
    assert su.fetchone() == (3, "10.0.0.3")


def test_last_use_is_written_at_most_once_a_minute(db, pki):
    """A login finding last use fresher than a minute reads only (004), with
    the daemon's default record_interval (certregd sets it in its sessions)."""
    su = connect(db).cursor()
    su.execute("SET certreg.record_interval = 60")
    leaf = pki.leaf("ec-ok")
    key = leaf["key_id"]
    admin(db.conninfo, "office", "add", "LU01", "--name", "最后使用管理部")
    admin(db.conninfo, "unit", "add", "110111000101", "--name", "最后使用单位", "--office", "LU01")
    admin(db.conninfo, "key", "bind", "--cert", leaf["pem"], "--unit", "110111000101",
          "--ticket", "T")
    cert = json.dumps({"sha256": leaf["sha256"], "key_id": key, "subject": "CN=l",
                       "issuer": "CN=i", "serial": "03", "not_before": "2026-01-01T00:00:00Z",
                       "not_after": "2027-01-01T00:00:00Z"})
    state = ("SELECT k.last_used_at, c.last_seen, k.xmin::text, c.xmin::text"
             " FROM certreg.keys k JOIN certreg.certificates c ON c.key_id = k.key_id"
             " WHERE k.key_id = %s AND c.sha256 = %s")
    calls = ("SELECT key_status FROM certreg.decide(%s, %s::jsonb, '10.0.0.9', false)",
             "SELECT certreg.record_use(%s, %s::jsonb, '10.0.0.9')")
    for call in calls:
        # Long ago: this login writes both, in a transaction of its own.
        su.execute("UPDATE certreg.keys SET last_used_at = now() - interval '2 days'"
                   " WHERE key_id = %s", (key,))
        su.execute("UPDATE certreg.certificates SET last_seen = now() - interval '61 seconds'"
                   " WHERE sha256 = %s", (leaf["sha256"],))
        su.execute(state, (key, leaf["sha256"]))
        old = su.fetchone()
        su.execute(call, (key, cert))
        su.execute(state + " AND k.last_used_at > now() - interval '5 seconds'"
                   " AND c.last_seen > now() - interval '5 seconds'", (key, leaf["sha256"]))
        fresh = su.fetchone()
        assert fresh is not None, call
        assert fresh[2] != old[2] and fresh[3] != old[3], call
        # Within the minute: the same rows, not a new version of either.
        su.execute(call, (key, cert))
        su.execute(call, (key, cert))
        su.execute(state, (key, leaf["sha256"]))
        assert su.fetchone() == fresh, call
    su.execute("SELECT count(*) FROM certreg.pending WHERE key_id = %s", (key,))
    assert su.fetchone() == (0,)


def test_each_certificate_of_a_key_is_recorded_within_the_interval(db, pki):
    """A key's row names the certificate of its last recorded use (012):
    a decision with that certificate and last use fresh writes nothing,
    one with another certificate over the same key records that one at
    once, as certregd's, whatever the interval."""
    su = connect(db).cursor()
    su.execute("SET certreg.record_interval = 600")
    leaf = pki.leaf("ec-ok")
    key = leaf["key_id"]
    admin(db.conninfo, "office", "add", "LU04", "--name", "两张证书管理部")
    admin(db.conninfo, "unit", "add", "110111000104", "--name", "两张证书单位", "--office", "LU04")
    admin(db.conninfo, "key", "bind", key, "--unit", "110111000104", "--ticket", "T")

    def cert(sha, serial):
        return json.dumps({"sha256": sha, "key_id": key, "subject": "CN=two", "issuer": "CN=i",
                           "serial": serial, "not_before": "2026-01-01T00:00:00Z",
                           "not_after": "2027-01-01T00:00:00Z"})

    first, second = leaf["sha256"], "5e" * 32

    def decide(sha, serial):
        su.execute("SELECT key_status FROM certreg.decide(%s, %s::jsonb, '10.0.0.9', false)",
                   (key, cert(sha, serial)))
        assert su.fetchone() == ("approved",)

    def state():
        su.execute("SELECT k.last_used_cert, k.xmin::text, "
                   " (SELECT json_object_agg(sha256, json_build_array(source, xmin::text))"
                   "    FROM certreg.certificates WHERE key_id = k.key_id)"
                   " FROM certreg.keys k WHERE k.key_id = %s", (key,))
        return su.fetchone()

    decide(first, "0a")
    used, _, certs = state()
    assert used == first and set(certs) == {first} and certs[first][0] == "daemon"
    before = state()
    decide(first, "0a")
    assert state() == before
    decide(second, "0b")
    used, _, certs = state()
    assert used == second and set(certs) == {first, second}
    assert {c[0] for c in certs.values()} == {"daemon"}
    assert certs[first] == before[2][first]
    before = state()
    decide(second, "0b")
    assert state() == before
    # Back to the first: recorded again (its last_seen), and named.
    decide(first, "0a")
    used, _, certs = state()
    assert used == first and certs[first][1] != before[2][first][1]
    assert certs[second] == before[2][second]
    # record_use(), the cached path, keeps the same rule.
    su.execute("SELECT certreg.record_use(%s, %s::jsonb, '10.0.0.9')", (key, cert(second, "0b")))
    assert state()[0] == second


def test_a_login_and_a_binding_of_the_same_key_wait_for_each_other(db, pki):
    """key_bind() locks the key's row, then inserts the certificate; a
    decision that records a use writes the key's row, then the
    certificate's (key_use_record()): the same order, so the two wait for
    each other, where the other order deadlocked (one of them cancelled
    after deadlock_timeout: a failed login)."""
    import threading
    leaf = pki.leaf("ec-ok")
    key = leaf["key_id"]
    admin(db.conninfo, "office", "add", "LU05", "--name", "锁顺序管理部")
    admin(db.conninfo, "unit", "add", "110111000105", "--name", "锁顺序单位", "--office", "LU05")
    admin(db.conninfo, "key", "bind", key, "--unit", "110111000105", "--ticket", "T")
    sha = "6c" * 32
    cert = json.dumps({"sha256": sha, "key_id": key, "subject": "CN=lock", "issuer": "CN=i",
                       "serial": "0c", "not_before": "2026-01-01T00:00:00Z",
                       "not_after": "2027-01-01T00:00:00Z"})
    binder = psycopg2.connect(db.conninfo)
    b = binder.cursor()
    b.execute("SET deadlock_timeout = '100ms'")
    b.execute("SELECT 1 FROM certreg.keys WHERE key_id = %s FOR UPDATE", (key,))
    result = {}

    def login():
        c = connect(db).cursor()
        c.execute("SET deadlock_timeout = '100ms'")
        c.execute("SET certreg.record_interval = 600")
        try:
            c.execute("SELECT key_status FROM certreg.decide(%s, %s::jsonb, '10.0.0.9', false)",
                      (key, cert))
            result["login"] = c.fetchone()
        except psycopg2.Error as e:
            result["login"] = e.pgcode

    t = threading.Thread(target=login)
    t.start()
    # The decision now waits on the key's row.
    watch = connect(db).cursor()
    for _ in range(100):
        watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                      " AND query LIKE '%%certreg.decide(%%'")
        if watch.fetchone()[0]:
            break
        t.join(0.05)
    else:
        raise AssertionError("the decision never waited on the key")
    try:
        b.execute("INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,"
                  " not_before, not_after, source) VALUES (%s, %s, 'CN=lock', 'CN=i', '0c',"
                  " '2026-01-01', '2027-01-01', 'operator') ON CONFLICT (sha256) DO NOTHING",
                  (sha, key))
        # Past the deadlock check of both sessions.
        b.execute("SELECT pg_sleep(0.3)")
        binder.commit()
    except psycopg2.Error as e:
        binder.rollback()
        raise AssertionError(f"the binding failed: {e.pgcode} {e.pgerror}")
    t.join(30)
    assert result.get("login") == ("approved",), result
    watch.execute("SELECT source FROM certreg.certificates WHERE sha256 = %s", (sha,))
    assert watch.fetchone() == ("daemon",)


def bind_for_last_use(db, pki, name, office, regno):
    admin(db.conninfo, "office", "add", office, "--name", "最后使用间隔管理部")
    admin(db.conninfo, "unit", "add", regno, "--name", "最后使用间隔单位", "--office", office)
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(name)["pem"], "--unit", regno,
          "--ticket", "T")
    return pki.leaf(name)["key_id"]


def last_used_ago(cur, key):
    cur.execute("SELECT extract(epoch FROM now() - last_used_at) FROM certreg.keys"
                " WHERE key_id = %s", (key,))
    return float(cur.fetchone()[0])


def test_last_use_interval_is_the_sessions_record_interval(db, pki):
    """last_use_due() takes its interval from certreg.record_interval, the
    setting certregd puts in each session; without it every use counts."""
    su = connect(db).cursor()
    key = bind_for_last_use(db, pki, "ec-ok", "LU02", "110111000102")
    call = "SELECT key_status FROM certreg.decide(%s, NULL, '10.0.0.9', false)"
    for interval, ago, written in ((10, 30, True), (300, 120, False), (None, 1, True)):
        if interval is None:
            su.execute("RESET certreg.record_interval")
        else:
            su.execute("SELECT set_config('certreg.record_interval', %s, false)",
                       (str(interval),))
        su.execute("UPDATE certreg.keys SET last_used_at = now() - make_interval(secs => %s)"
                   " WHERE key_id = %s", (ago, key))
        su.execute(call, (key,))
        assert (last_used_ago(su, key) < 5) is written, (interval, ago)


def test_daemon_record_interval_is_the_sqls(certregd, db, pki):
    """The daemon's record_interval, not a minute written in the SQL, is
    the interval at which decide() writes a key's last use."""
    su = connect(db).cursor()
    key = bind_for_last_use(db, pki, "ec-ok", "LU03", "110111000103")
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    # Each daemon starts with an empty cache: its first login runs decide().
    for interval, ago, written in ((10, 30, True), (600, 120, False)):
        su.execute("UPDATE certreg.keys SET last_used_at = now() - make_interval(secs => %s)"
                   " WHERE key_id = %s", (ago, key))
        d = certregd(db, cache={"record_interval": interval})
        assert d.verify_bundle(chain).json()["outcome"] == "OK"
        assert (last_used_ago(su, key) < 5) is written, (interval, ago, d.log())
        d.stop()


def plan(cur, sql, args=()):
    cur.execute("EXPLAIN " + sql, args)
    return "\n".join(r[0] for r in cur.fetchall())


# The keys' and certificates' constraints and indexes, as PostgreSQL would
# make them again.
SCHEMA_OF_BULK_TABLES = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid IN ('certreg.keys'::regclass, 'certreg.certificates'::regclass)
UNION ALL
SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid IN ('certreg.keys'::regclass, 'certreg.certificates'::regclass)
 ORDER BY 1, 2"""


def test_plans_on_a_generated_dataset(db, pg_cluster):
    cur = connect(db).cursor()
    cur.execute(SCHEMA_OF_BULK_TABLES)
    migrated = cur.fetchall()
    p = subprocess.run([str(pg_cluster.bin / "psql"), "-X", "-q", "-d", db.conninfo,
                        "-v", "offices=16", "-v", "units_per_office=50", "-v", "keys=20000",
                        "-f", str(GEN)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    cur.execute("SELECT count(*) FROM certreg.keys")
    assert cur.fetchone()[0] == 20000
    # The load drops the indexes and keys of these tables and makes them
    # again: the schema ends as migrated.
    cur.execute(SCHEMA_OF_BULK_TABLES)
    assert cur.fetchall() == migrated
    assert len(migrated) >= 10, migrated
    cur.execute("SELECT key_id FROM certreg.keys LIMIT 1")
    key = cur.fetchone()[0]
    # The decision's lookup, known_key() of decide() and decide_read():
    # inlined (no function scan), one probe of the key's primary key, then
    # the unit by its own (the few offices, either way), and nothing of the
    # certificates: the key's row says whether its certificate is due (012).
    # Under decide()'s search_path: a helper is only called from there.
    cur.execute("SET search_path = certreg, pg_temp")
    text = plan(cur, "SELECT * FROM certreg.known_key(%s, %s::jsonb)",
                (key, json.dumps({"sha256": "ab" * 32})))
    assert "Function Scan" not in text, text
    for table in ("keys", "units"):
        assert f"Index Scan using {table}_pkey" in text, text
        assert f"Seq Scan on {table}" not in text, text
    assert "certificates" not in text, text
    # pending list --search: the trigram indexes serve a fragment search.
    search = ("SELECT key_id FROM certreg.pending_v WHERE subject ILIKE %s"
              " OR credit_code ILIKE %s OR holder_id ILIKE %s")
    cur.execute("SET enable_seqscan = off")
    text = plan(cur, search, ("%待关联单位12%",) * 3)
    for index in ("pending_subject_trgm", "pending_credit_trgm", "pending_holder_trgm"):
        assert index in text, text
    # unit list --search, as an operator runs it: inside unit_search()
    # (its own plan, read with auto_explain) the trigram indexes of 016;
    # under row-level security ILIKE could use none.
    clerk = "op_plan_" + db.name[-8:]
    admin(db.conninfo, "operator", "add", clerk, "--office", "OF01")
    conn = connect(db)
    conn.notices = []
    cur = conn.cursor()
    cur.execute("LOAD 'auto_explain'")
    cur.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_level = notice;"
                " SET auto_explain.log_nested_statements = on; SET enable_seqscan = off")
    cur.execute("SELECT registration_no FROM certreg.units WHERE name LIKE '%测试单位17%'"
                " AND office_code = 'OF01' ORDER BY 1")
    mine = cur.fetchall()
    cur.execute(f'SET SESSION AUTHORIZATION "{clerk}"')
    cur.execute("SELECT registration_no FROM certreg.units_v WHERE registration_no IN"
                " (SELECT certreg.unit_search(%s, %s, %s)) ORDER BY registration_no",
                ("%测试单位17%", "%测试单位17%", "测试单位17%"))
    assert cur.fetchall() == mine and len(mine) >= 1, mine
    (text,) = [n for n in conn.notices if "FROM units u" in n]
    # (The generated units have no credit code: the planner may read that
    # arm off the partial index units_credit_code, which holds none.)
    assert "Seq Scan" not in text, text
    for index in ("units_name_trgm", "units_regno_trgm"):
        assert f"Bitmap Index Scan on {index}" in text, text
    # The clerk's other reads (017): the policies' reads_all() and
    # my_offices() are InitPlans, run once per query, not calls in a
    # row's filter; a supervisor's keys are not looked up in units one by
    # one; audit log --operator and --since have their indexes.
    cur.execute("SELECT key_id FROM certreg.keys WHERE registration_no = '110000000016'"
                " LIMIT 1")
    mine = cur.fetchone()[0]
    reads = {
        "unit list": "SELECT registration_no, name, key_count FROM certreg.units_v"
                     " ORDER BY registration_no",
        "unit show": "SELECT * FROM certreg.units_v WHERE registration_no = '110000000016'",
        "key list": "SELECT key_id, not_after FROM certreg.keys_v"
                    " WHERE registration_no = '110000000016' ORDER BY bound_at",
        "key show": f"SELECT * FROM certreg.keys_v WHERE key_id = '{mine}'",
        "audit log": "SELECT * FROM certreg.audit_v ORDER BY id",
        "audit log --operator": "SELECT * FROM certreg.audit_v WHERE operator = 'x'"
                                " ORDER BY id",
        "audit log --since": "SELECT * FROM certreg.audit_v WHERE at >= now() - interval '1 day'"
                             " ORDER BY id",
        "office list": "SELECT o.code, (SELECT count(*) FROM certreg.units_v u"
                       " WHERE u.office_code = o.code) FROM certreg.offices_v o",
    }
    for who in (clerk, "postgres"):
        cur.execute(f'SET SESSION AUTHORIZATION "{who}"' if who == clerk
                    else "RESET SESSION AUTHORIZATION")
        for name, sql in reads.items():
            text = plan(cur, sql)
            if who == clerk:
                assert "InitPlan" in text, (name, text)
                for func in ("reads_all()", "my_offices()"):
                    assert func not in text, (name, text)
            if name == "audit log --operator":
                assert "audit_operator" in text, text
            if name == "audit log --since":
                assert "audit_at" in text, text
    cur.execute(f'SET SESSION AUTHORIZATION "{clerk}"')
    cur.execute("SELECT count(*), count(*) FILTER (WHERE office_code = 'OF01')"
                " FROM certreg.units_v")
    seen, own = cur.fetchone()
    assert seen == own == 50, (seen, own)
    cur.execute("SELECT count(*) FROM certreg.keys_v WHERE office_code <> 'OF01'")
    assert cur.fetchone()[0] == 0
    # key expiring (018): keys_expiring() lists what a look-up of each
    # approved key's newest certificate through the views lists, for the
    # superuser and for the clerk (its office's alone). A sixteenth of the
    # keys get an older certificate too, another a newer one: the newest
    # decides; another sixteenth is suspended. The clerk no longer reads another office's certificates.
    cur.execute("RESET SESSION AUTHORIZATION")
    cur.execute("""INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,
                                                     not_before, not_after, source)
                   SELECT encode(sha256((v || key_id)::bytea), 'hex'), key_id, 'CN=' || v,
                          'CN=CA', '1', now() - interval '3 years', now() + d, 'daemon'
                     FROM certreg.keys, (VALUES ('older', interval '-400 days', '0', '1'),
                                                ('newer', interval '1000 days', 'f', 'g'))
                                        AS r (v, d, lo, hi)
                    WHERE key_id >= lo AND key_id < hi""")
    assert cur.rowcount > 1000, cur.rowcount
    cur.execute("UPDATE certreg.keys SET status = 'suspended' WHERE key_id LIKE '8%'")
    assert cur.rowcount > 500, cur.rowcount
    looked_up = ("SELECT k.key_id, c.not_after, k.office_code FROM certreg.keys_v k"
                 " JOIN LATERAL (SELECT not_after FROM certreg.certificates_v c"
                 "  WHERE c.key_id = k.key_id ORDER BY not_after DESC LIMIT 1) c ON true"
                 " WHERE k.status = 'approved'"
                 " AND c.not_after < now() + make_interval(days => 100) ORDER BY 2, 1")
    found = ("SELECT e.key_id, e.not_after, k.office_code FROM certreg.keys_expiring(100) e"
             " JOIN certreg.keys_v k USING (key_id) ORDER BY 2, 1")
    cur.execute(looked_up)
    every = cur.fetchall()
    cur.execute(found)
    assert cur.fetchall() == every
    assert len({office for _, _, office in every}) == 16, len(every)
    cur.execute(f'SET SESSION AUTHORIZATION "{clerk}"')
    cur.execute(found)
    assert cur.fetchall() == [r for r in every if r[2] == "OF01"] != []
    cur.execute("SELECT count(*) FROM certreg.certificates c"
                " WHERE NOT EXISTS (SELECT FROM certreg.keys k WHERE k.key_id = c.key_id)"
                "   AND NOT EXISTS (SELECT FROM certreg.pending p WHERE p.key_id = c.key_id)")
    assert cur.fetchone()[0] == 0
    cur.execute("SELECT count(*) FROM certreg.certificates_v")
    assert 0 < cur.fetchone()[0] < 20000 * 1.2 / 16 + 1000


def uscc_vectors():
    path = Path(__file__).parent / "vectors" / "uscc.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            valid, code, why = line.split("\t")
            yield valid == "1", "" if code == "-" else code, why


def test_credit_code_rule_agrees_with_the_shared_vectors(db):
    """The SQL copy of the rule and the test PKI's own (the C copy reads the
    same file in tests/unit/test_certinfo.c)."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "pki"))
    import mkpki
    cur = connect(db).cursor()
    vectors = list(uscc_vectors())
    assert len(vectors) >= 10
    for valid, code, why in vectors:
        cur.execute("SELECT certreg.uscc_valid(%s)", (code,))
        assert cur.fetchone()[0] is valid, (code, why)
        assert bool(mkpki.uscc_valid(code)) is valid, (code, why)


def test_challenge_key_is_the_daemons_alone(db, pg_cluster):
    pg_cluster.ensure_login("daemon_ck_test", "certreg_daemon")
    d = connect(db, "daemon_ck_test").cursor()
    d.execute("SELECT certreg.challenge_key()")
    key = d.fetchone()[0]
    assert len(key) == 64 and int(key, 16) != 0
    admin(db.conninfo, "office", "add", "CK01", "--name", "挑战管理部")
    admin(db.conninfo, "operator", "add", "op_ck_test", "--office", "CK01", "--role",
          "supervisor")
    admin(db.conninfo, "operator", "add", "op_ck_op", "--office", "CK01")
    admin(db.conninfo, "operator", "add", "op_ck_aud", "--office", "CK01", "--role", "auditor")
    consume = ("SELECT certreg.challenge_consume(%s, now() + interval '1 minute', %s)",
               ("b" * 64, "0" * 32))
    for who in ("op_ck_test", "op_ck_op", "op_ck_aud"):
        c = connect(db, who)
        for sql, args in (("SELECT certreg.challenge_key()", ()),
                          ("SELECT * FROM certreg.challenge_key", ()),
                          ("UPDATE certreg.challenge_key SET key = key", ()),
                          consume,
                          ("SELECT * FROM certreg.challenges_used", ()),
                          ("DELETE FROM certreg.challenges_used", ())):
            code, _ = sqlstate(c, sql, args)
            assert code == "42501", (who, sql)
    # The daemon has the two functions and nothing more: it cannot read the
    # table behind the key, nor spend or free a challenge but by the rule.
    dc = connect(db, "daemon_ck_test")
    for sql in ("SELECT * FROM certreg.challenge_key", "UPDATE certreg.challenge_key SET key = key",
                "SELECT * FROM certreg.challenges_used", "DELETE FROM certreg.challenges_used",
                "INSERT INTO certreg.challenges_used (hash, expires_at) VALUES "
                "(repeat('a', 64), now() + interval '1 day')",
                "SELECT certreg.challenge_purge()",
                "SELECT certreg.challenge_attempt_is(repeat('a', 64), repeat('0', 32))"):
        code, _ = sqlstate(dc, sql)
        assert code == "42501", sql


def purge_calls(db, cur):
    """How many times this session's challenge_consume() called the purge
    (track_functions is on for the test databases' daemon sessions)."""
    cur.execute("SELECT pg_stat_force_next_flush()")
    cur.execute("SELECT pg_stat_clear_snapshot()")
    cur.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
                " WHERE schemaname = 'certreg' AND funcname = 'challenge_purge'")
    return cur.fetchone()[0]


def fill_unexpired_challenges(su, n):
    """N spent challenges that expire in an hour (none for the purge),
    inserted by the superuser cursor SU."""
    su.execute("INSERT INTO certreg.challenges_used (hash, expires_at)"
               " SELECT md5(i::text) || md5((i + 1)::text), now() + interval '1 hour'"
               f" FROM generate_series(1, {int(n)}) i")


def challenges_used_seq_scans(d, su):
    """Sequential scans of challenges_used so far, with the statistics of
    the daemon's cursor D flushed first (read through SU)."""
    d.execute("SELECT pg_stat_force_next_flush()")
    su.execute("SELECT pg_stat_clear_snapshot()")
    su.execute("SELECT seq_scan FROM pg_stat_user_tables"
               " WHERE relid = 'certreg.challenges_used'::regclass")
    return su.fetchone()[0]


def test_spending_a_challenge_never_scans_the_table(db, pg_cluster):
    """One session's first purge and first resent attempt are planned on an
    almost empty table; the later ones, with thousands of used challenges,
    must still take the indexes, never read the whole table (that halved
    the signed-login rate)."""
    pg_cluster.ensure_login("daemon_cs_test", "certreg_daemon")
    db.sql(f'ALTER DATABASE "{db.name}" SET track_functions = \'all\'')
    d = connect(db, "daemon_cs_test").cursor()
    su = connect(db).cursor()
    consume = "SELECT certreg.challenge_consume(%s, now() + interval '2 minutes', %s)"
    n = 0

    def spend_until_purged(times):
        """Consumes (and resends each) until the purge ran `times` more."""
        nonlocal n
        target = purge_calls(db, d) + times
        while purge_calls(db, d) < target:
            n += 1
            assert n < 3000, "the purge never ran"
            d.execute(consume, (f"{n:064x}", "a" * 32))
            assert d.fetchone() == (True,)
            d.execute(consume, (f"{n:064x}", "a" * 32))  # the attempt look-up
            assert d.fetchone() == (True,)

    spend_until_purged(1)                                    # planned nearly empty
    fill_unexpired_challenges(su, 5000)

    def seq_scans():
        return challenges_used_seq_scans(d, su)

    before = seq_scans()
    spend_until_purged(3)
    assert seq_scans() == before


def test_expired_challenges_are_purged_now_and_then(db, pg_cluster):
    """The purge runs in about one consume in 16 (random(), so no caller
    steers it), up to 256 expired rows at a time: expired rows go, and a
    consume that purges nothing costs no purge (issue 29: the purge on every
    call was half of the database's cost of a signed login)."""
    pg_cluster.ensure_login("daemon_cp_test", "certreg_daemon")
    db.sql(f'ALTER DATABASE "{db.name}" SET track_functions = \'all\'')
    d = connect(db, "daemon_cp_test").cursor()
    su = connect(db).cursor()
    su.execute("INSERT INTO certreg.challenges_used (hash, expires_at)"
               " SELECT md5(i::text) || md5((i + 1)::text), now() - interval '1 hour'"
               " FROM generate_series(1, 300) i")
    for i in range(320):
        d.execute("SELECT certreg.challenge_consume(%s, now() + interval '2 minutes', %s)",
                  (f"{i:064x}", "a" * 32))
        assert d.fetchone() == (True,)
    calls = purge_calls(db, d)
    # 20 expected; 2..80 fails once in millions of runs.
    assert 2 <= calls <= 80, calls
    su.execute("SELECT count(*) FROM certreg.challenges_used WHERE expires_at < now()")
    assert su.fetchone()[0] == 0
    su.execute("SELECT count(*) FROM certreg.challenges_used")
    assert su.fetchone()[0] == 320


def test_a_challenge_is_consumed_once_even_by_many_at_once(db, pg_cluster):
    """Twenty daemons' connections race for one challenge: exactly one wins;
    every later try, an expired one and a made-up far expiry are refused."""
    import threading
    pg_cluster.ensure_login("daemon_cc_test", "certreg_daemon")
    consume = "SELECT certreg.challenge_consume(%s, now() + interval '2 minutes', %s)"
    h = "c" * 64
    barrier = threading.Barrier(20)
    wins = []

    def race(n):
        cur = connect(db, "daemon_cc_test").cursor()
        barrier.wait(timeout=30)
        cur.execute(consume, (h, f"{n:032x}"))
        wins.append((cur.fetchone()[0], n))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(w for w, _ in wins) == [False] * 19 + [True]
    winner = next(n for w, n in wins if w)
    d = connect(db, "daemon_cc_test")
    cur = d.cursor()
    cur.execute(consume, (h, "f" * 32))
    assert cur.fetchone() == (False,)
    # The winning request's attempt, sent again after a lost connection,
    # gets the answer it would have had; every other attempt does not.
    cur.execute(consume, (h, f"{winner:032x}"))
    assert cur.fetchone() == (True,)
    cur.execute(consume, (h, f"{(winner + 1) % 20:032x}"))
    assert cur.fetchone() == (False,)
    # Expired by more than the five minutes the database's clock may be
    # ahead of the daemons' (tests/test_clock.py).
    cur.execute("SELECT certreg.challenge_consume(%s, now() - interval '301 seconds', %s)",
                ("d" * 64, "0" * 32))
    assert cur.fetchone() == (False,)
    code, msg = sqlstate(d, "SELECT certreg.challenge_consume(%s, now() + interval '2 days', %s)",
                         ("e" * 64, "0" * 32))
    assert code == "CR001" and "day" in msg
    code, _ = sqlstate(d, "SELECT certreg.challenge_consume('not hex', now(), %s)", ("0" * 32,))
    assert code == "CR001"
    code, msg = sqlstate(d, "SELECT certreg.challenge_consume(%s, now(), 'short')", ("a" * 64,))
    assert code == "CR001" and "attempt" in msg


MANY = ("SELECT certreg.challenge_consume_many(%s::text[],"
        " (SELECT array_agg(now() + d) FROM unnest(%s::interval[]) d), %s::text[])")


def consume_many(cur, items):
    """certreg.challenge_consume_many of (hash, expires in, attempt) items,
    the expiries relative to now(): its answer, in order."""
    cur.execute(MANY, ([h for h, _, _ in items], [e for _, e, _ in items],
                       [a for _, _, a in items]))
    return cur.fetchone()[0]


def used(su, h):
    su.execute("SELECT attempt FROM certreg.challenges_used WHERE hash = %s", (h,))
    return [r[0] for r in su.fetchall()]


def test_a_batch_of_consumes_answers_each_as_a_single_call_would(db, pg_cluster):
    """One call spends several challenges: each element gets what
    challenge_consume would answer; two elements with one hash are one
    challenge (the first wins; the same attempt id again is the same
    request); a malformed or expired element is false and fails no other."""
    pg_cluster.ensure_login("daemon_cm_test", "certreg_daemon")
    d = connect(db, "daemon_cm_test").cursor()
    su = connect(db).cursor()
    m = "2 minutes"
    d.execute("SELECT certreg.challenge_consume(%s, now() + interval '2 minutes', %s)",
              ("1" * 64, "a" * 32))                       # spent before, by attempt a
    items = [("2" * 64, m, "b" * 32),                      # new: true
             ("1" * 64, m, "c" * 32),                      # spent by another attempt
             ("1" * 64, m, "a" * 32),                      # spent by this attempt: resent
             ("3" * 64, m, "d" * 32),                      # two elements, one challenge:
             ("3" * 64, m, "e" * 32),                      # the first wins
             ("4" * 64, m, "f" * 32),                      # the same request twice
             ("4" * 64, m, "f" * 32),
             ("not hex", m, "0" * 32),                     # malformed: false
             ("5" * 64, m, "short"),
             ("6" * 64, m, "A" * 32),
             ("7" * 64, m, None),
             (None, m, "0" * 32),
             ("8" * 64, None, "0" * 32),
             ("9" * 64, "-301 seconds", "0" * 32),         # expired (and 5 min)
             ("a" * 64, "2 days", "0" * 32),               # beyond a day
             ("b" * 64, m, "1" * 32)]                      # after all of them: true
    assert consume_many(d, items) == [True, False, True, True, False, True, True, False,
                                      False, False, False, False, False, False, False, True]
    assert used(su, "3" * 64) == ["d" * 32]
    for h in ("5" * 64, "6" * 64, "7" * 64, "8" * 64, "9" * 64, "a" * 64):
        assert used(su, h) == [], h
    # The same batch sent again (after a lost connection): the same answers
    # for what it spent, nothing spent twice.
    assert consume_many(d, items) == [True, False, True, True, False, True, True, False,
                                      False, False, False, False, False, False, False, True]
    su.execute("SELECT count(*) FROM certreg.challenges_used")
    assert su.fetchone()[0] == 5
    d.execute("SELECT certreg.challenge_consume_many('{}', '{}', '{}')")
    assert d.fetchone() == ([],)
    # A single call sees what the batch spent.
    d.execute("SELECT certreg.challenge_consume(%s, now() + interval '2 minutes', %s)",
              ("b" * 64, "2" * 32))
    assert d.fetchone() == (False,)


def test_hostile_batches_are_refused_whole_and_change_nothing(db, pg_cluster):
    """Whoever holds the daemon's login and calls the batch function with
    anything at all gets a clear refusal or per-element false."""
    pg_cluster.ensure_login("daemon_ch_test", "certreg_daemon")
    dc = connect(db, "daemon_ch_test")
    su = connect(db).cursor()
    h, a = "c" * 64, "0" * 32
    for sql, args, words in (
            ("SELECT certreg.challenge_consume_many(NULL, NULL, NULL)", (), "required"),
            ("SELECT certreg.challenge_consume_many(ARRAY[%s], NULL, ARRAY[%s])", (h, a),
             "required"),
            ("SELECT certreg.challenge_consume_many(ARRAY[%s, %s], ARRAY[now()], ARRAY[%s, %s])",
             (h, "d" * 64, a, a), "one length"),
            ("SELECT certreg.challenge_consume_many(ARRAY[%s], ARRAY[now()], ARRAY[%s, %s])",
             (h, a, a), "one length"),
            ("SELECT certreg.challenge_consume_many(ARRAY[[%s], [%s]], ARRAY[[now()], [now()]],"
             " ARRAY[[%s], [%s]])", (h, "d" * 64, a, a), "one length"),
            ("SELECT certreg.challenge_consume_many(array_fill(%s::text, ARRAY[257]),"
             " array_fill(now() + interval '1 minute', ARRAY[257]),"
             " array_fill(%s::text, ARRAY[257]))", (h, a), "256"),
            ("SELECT certreg.challenge_consume_many(array_fill(%s::text, ARRAY[1000000]),"
             " array_fill(now() + interval '1 minute', ARRAY[1000000]),"
             " array_fill(%s::text, ARRAY[1000000]))", (h, a), "256")):
        code, msg = sqlstate(dc, sql, args)
        assert code == "CR001" and words in msg, (sql, code, msg)
        dc.rollback()
    su.execute("SELECT count(*) FROM certreg.challenges_used")
    assert su.fetchone()[0] == 0
    # 256 copies of one challenge: one row, every element true (one attempt).
    cur = dc.cursor()
    cur.execute("SELECT certreg.challenge_consume_many(array_fill(%s::text, ARRAY[256]),"
                " array_fill(now() + interval '1 minute', ARRAY[256]),"
                " array_fill(%s::text, ARRAY[256]))", (h, a))
    assert cur.fetchone()[0] == [True] * 256
    dc.commit()
    assert used(su, h) == [a]
    # Only the daemon may call it.
    admin(db.conninfo, "office", "add", "CM01", "--name", "批量管理部")
    admin(db.conninfo, "operator", "add", "op_cm_sup", "--office", "CM01", "--role",
          "supervisor")
    admin(db.conninfo, "operator", "add", "op_cm_aud", "--office", "CM01", "--role", "auditor")
    for who in ("op_cm_sup", "op_cm_aud"):
        code, _ = sqlstate(connect(db, who),
                           "SELECT certreg.challenge_consume_many(ARRAY[%s], ARRAY[now()],"
                           " ARRAY[%s])", ("e" * 64, a))
        assert code == "42501", who


def test_batches_racing_from_many_daemons_spend_each_challenge_once(db, pg_cluster):
    """Twenty connections send batches over the same ten challenges at once,
    each in its own order: every challenge has exactly one winner, the
    attempt its row records."""
    import random
    import threading
    pg_cluster.ensure_login("daemon_cr_test", "certreg_daemon")
    hashes = [f"{0xabc0 + i:064x}" for i in range(10)]
    barrier = threading.Barrier(20)
    answers = {}

    def race(n):
        cur = connect(db, "daemon_cr_test").cursor()
        order = hashes[:]
        random.Random(n).shuffle(order)
        barrier.wait(timeout=30)
        got = consume_many(cur, [(h, "2 minutes", f"{n:032x}") for h in order])
        answers[n] = dict(zip(order, got))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 20
    su = connect(db).cursor()
    for h in hashes:
        winners = [n for n in answers if answers[n][h]]
        assert len(winners) == 1, (h, winners)
        assert used(su, h) == [f"{winners[0]:032x}"]


def test_a_batch_never_scans_the_table(db, pg_cluster):
    """The batch's look-up of challenges it did not take, planned first on
    an almost empty table, still takes the index on a big one."""
    pg_cluster.ensure_login("daemon_cn_test", "certreg_daemon")
    d = connect(db, "daemon_cn_test").cursor()
    su = connect(db).cursor()
    batch = [(f"{i:064x}", "2 minutes", "a" * 32) for i in range(8)]
    assert consume_many(d, batch) == [True] * 8
    assert consume_many(d, batch) == [True] * 8          # the look-up, planned small
    fill_unexpired_challenges(su, 5000)
    su.execute("ANALYZE certreg.challenges_used")

    def seq_scans():
        return challenges_used_seq_scans(d, su)

    before = seq_scans()
    for _ in range(20):
        assert consume_many(d, batch) == [True] * 8
    assert seq_scans() == before


def test_batches_purge_as_often_per_challenge_as_single_calls(db, pg_cluster):
    """A batch of n purges with probability n/16: a batch of 16 every time
    (a batch of the daemon's must not leave expired rows behind, however
    rarely single calls come)."""
    pg_cluster.ensure_login("daemon_cg_test", "certreg_daemon")
    db.sql(f'ALTER DATABASE "{db.name}" SET track_functions = \'all\'')
    d = connect(db, "daemon_cg_test").cursor()
    su = connect(db).cursor()
    su.execute("INSERT INTO certreg.challenges_used (hash, expires_at)"
               " SELECT md5(i::text) || md5((i + 1)::text), now() - interval '1 hour'"
               " FROM generate_series(1, 700) i")
    for b in range(3):
        assert consume_many(d, [(f"{b * 16 + i:064x}", "2 minutes", "a" * 32)
                                for i in range(16)]) == [True] * 16
    assert purge_calls(db, d) == 3
    su.execute("SELECT count(*) FROM certreg.challenges_used WHERE expires_at < now()")
    assert su.fetchone()[0] == 0


def test_a_spent_challenge_purged_under_a_waiting_consume_is_not_spent_again(db, pg_cluster):
    """A consume that passed its expiry check before a challenge expired,
    and reaches its INSERT only after a purge took the spent row away (a
    batch waiting on a racing batch's row; a stalled statement, modelled by
    a transaction begun before the expiry), found the way free and answered
    true: the replay of a used challenge and its signature logged in again.
    Whatever inserted the row, an answer is true only while the clock after
    the insert is before the expiry (review finding: signed-challenge
    login)."""
    import datetime
    import threading
    import time
    pg_cluster.ensure_login("daemon_cl_test", "certreg_daemon")
    d = connect(db, "daemon_cl_test").cursor()
    su = connect(db).cursor()
    # The database takes a challenge for five minutes past its expiry (its
    # clock may be that far ahead of the daemons', tests/test_clock.py):
    # these are out of it in 2 s.
    su.execute("SELECT now() - interval '5 minutes' + interval '2 seconds'")
    expires = su.fetchone()[0]
    later = expires + datetime.timedelta(minutes=2)
    # Two challenges the users spent; the racing batch's sorts before both.
    batch_target, single_target, racing_hash = "e" * 64, "f" * 64, "0" * 64
    for h in (batch_target, single_target):
        d.execute("SELECT certreg.challenge_consume(%s, %s, %s)", (h, expires, "a" * 32))
        assert d.fetchone() == (True,)
    # Another daemon's batch holds its row uncommitted: the replay's batch,
    # which inserts in hash order, waits on it before reaching its target.
    racing = psycopg2.connect(db.conninfo_as("daemon_cl_test"))
    racing.cursor().execute("SELECT certreg.challenge_consume(%s, %s, %s)",
                            (racing_hash, later, "b" * 32))
    answers = []

    def replay_in_a_batch():
        cur = connect(db, "daemon_cl_test").cursor()
        cur.execute("SELECT certreg.challenge_consume_many(%s::text[], %s::timestamptz[],"
                    " %s::text[])", ([racing_hash, batch_target], [later, expires],
                                     ["c" * 32, "c" * 32]))
        answers.append(cur.fetchone()[0])

    replayer = threading.Thread(target=replay_in_a_batch)
    replayer.start()
    # Single calls whose statements began before the expiry.
    stalled = [psycopg2.connect(db.conninfo_as("daemon_cl_test")) for _ in range(2)]
    for conn in stalled:
        conn.cursor().execute("SELECT now()")
    deadline = time.monotonic() + 20
    while True:
        su.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'daemon_cl_test'"
                   " AND wait_event_type = 'Lock'")
        if su.fetchone()[0] == 1:
            break
        assert time.monotonic() < deadline, "the replay's batch never waited"
        time.sleep(0.05)
    su.execute("SELECT pg_sleep(greatest(0, extract(epoch FROM %s + interval '5 minutes'"
               " - clock_timestamp())) + 0.2)", (expires,))
    su.execute("SELECT certreg.challenge_purge()")
    assert used(su, batch_target) == [] and used(su, single_target) == []
    racing.rollback()
    replayer.join(timeout=30)
    assert answers == [[True, False]]
    # A stalled single call inserting the purged row, then that same
    # attempt sent again (after a lost connection) from another one.
    cur = stalled[0].cursor()
    cur.execute("SELECT certreg.challenge_consume(%s, %s, %s)", (single_target, expires, "d" * 32))
    assert cur.fetchone() == (False,)
    stalled[0].commit()
    cur = stalled[1].cursor()
    cur.execute("SELECT certreg.challenge_consume(%s, %s, %s)", (single_target, expires, "d" * 32))
    assert cur.fetchone() == (False,)
    for conn in stalled + [racing]:
        conn.close()


def test_challenges_near_the_end_of_their_five_minutes_are_spent_once_under_a_crowd(
        db, pg_cluster):
    """Eight sessions (two daemons' worth) replay the same 40 challenges,
    in single calls and in batches, each with its own attempt id, while a
    ninth purges, across the instant the database stops taking them (their
    expiry plus five minutes): each challenge is answered true at most
    once, and none after that instant."""
    import datetime
    import random
    import threading
    pg_cluster.ensure_login("daemon_crowd_test", "certreg_daemon")
    su = connect(db).cursor()
    su.execute("SELECT now() - interval '5 minutes' + interval '1.5 seconds'")
    expires = su.fetchone()[0]
    hashes = [f"{i:064x}" for i in range(1, 41)]
    wins, late, stop = [], [], threading.Event()
    lock = threading.Lock()

    def crowd(n):
        cur = connect(db, "daemon_crowd_test").cursor()
        rnd = random.Random(n)
        k = 0
        while not stop.is_set():
            k += 1
            attempt = f"{n:08x}{k:024x}"
            picked = rnd.sample(hashes, 4)
            if n % 2:
                cur.execute("SELECT certreg.challenge_consume_many(%s::text[],"
                            " %s::timestamptz[], %s::text[]), clock_timestamp()",
                            (picked, [expires] * 4, [attempt] * 4))
                answers, at = cur.fetchone()
            else:
                cur.execute("SELECT certreg.challenge_consume(%s, %s, %s), clock_timestamp()",
                            (picked[0], expires, attempt))
                (answer, at), answers, picked = cur.fetchone(), None, picked[:1]
                answers = [answer]
            with lock:
                for h, ok in zip(picked, answers):
                    if ok:
                        wins.append(h)
                        if at > expires + datetime.timedelta(minutes=5, seconds=1):
                            late.append((h, at))

    def purger():
        cur = connect(db).cursor()
        while not stop.is_set():
            cur.execute("SELECT certreg.challenge_purge()")

    threads = [threading.Thread(target=crowd, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=purger))
    for t in threads:
        t.start()
    su.execute("SELECT pg_sleep(greatest(0, extract(epoch FROM %s + interval '5 minutes'"
               " - clock_timestamp())) + 1.5)", (expires,))
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == sorted(set(wins)), "a challenge was spent twice"
    assert len(wins) == len(hashes)
    assert late == []
    su.execute("SELECT count(*) FROM certreg.challenges_used WHERE hash = ANY(%s)", (hashes,))
    assert su.fetchone()[0] == 0  # all purged once past the five minutes


# 001's policies, as 017 found them: the function calls once per row.
POLICIES_001 = (
    "ALTER POLICY units_read ON certreg.units"
    " USING (certreg.reads_all() OR office_code = ANY (certreg.my_offices()));"
    "ALTER POLICY keys_read ON certreg.keys USING (EXISTS (SELECT FROM certreg.units u"
    " WHERE u.registration_no = keys.registration_no));"
    "ALTER POLICY audit_read ON certreg.audit"
    " USING (certreg.reads_all() OR office_code = ANY (certreg.my_offices()))")
RLS_READS = ("units", "keys", "audit", "offices_v", "units_v", "keys_v", "certificates_v",
             "pending_v", "refusals_v", "audit_v")


def test_policies_read_what_001s_read_and_no_other_office(db):
    """017 wrote the policies' calls as InitPlans: every login reads exactly
    the rows it read under 001's policies, and an operator of another
    office none of the units, keys and audit rows of this one, through
    every view."""
    for office in ("RA", "RB"):
        admin(db.conninfo, "office", "add", office, "--name", f"{office}管理部")
    admin(db.conninfo, "operator", "add", "rls_a", "--office", "RA")
    admin(db.conninfo, "operator", "add", "rls_b", "--office", "RB")
    admin(db.conninfo, "operator", "add", "rls_sup", "--office", "RB", "--role", "supervisor")
    admin(db.conninfo, "operator", "add", "rls_aud", "--office", "RB", "--role", "auditor")
    units = {"RA": ("110100888001", "110100888002"), "RB": ("110100888003",)}
    keys = {}
    cur = connect(db).cursor()
    for office, regnos in units.items():
        for n, regno in enumerate(regnos):
            admin(db.conninfo, "unit", "add", regno, "--name", f"隔离单位{regno}", "--office",
                  office)
            key = f"{int(regno):x}".rjust(63, "0") + str(n)
            keys[key] = office
            cur.execute("INSERT INTO certreg.keys (key_id, registration_no, status, how,"
                        " bound_by) VALUES (%s, %s, 'approved', 'counter', 't')", (key, regno))
            cur.execute("INSERT INTO certreg.certificates (sha256, key_id, subject, issuer,"
                        " serial, not_before, not_after) VALUES (%s, %s, 's', 'i', '1', now(),"
                        " now() + interval '1 year')", (key[::-1], key))
            admin(db.conninfo, "key", "suspend", key, "--reason", "r")
    cur.execute("INSERT INTO certreg.pending (key_id) VALUES (repeat('c', 64))")

    def reads():
        out = {}
        for who in ("rls_a", "rls_b", "rls_sup", "rls_aud"):
            c = connect(db, who).cursor()
            for rel in RLS_READS:
                c.execute(f"SELECT t::text FROM certreg.{rel} t ORDER BY 1")
                out[who, rel] = [r[0] for r in c.fetchall()]
            c.execute("SELECT registration_no FROM certreg.units_v UNION ALL"
                      " SELECT registration_no FROM certreg.keys_v UNION ALL"
                      " SELECT registration_no FROM certreg.audit_v"
                      " WHERE registration_no IS NOT NULL")
            out[who, "regnos"] = {r[0] for r in c.fetchall()}
            c.execute("SELECT key_id FROM certreg.keys_v UNION ALL"
                      " SELECT key_id FROM certreg.audit_v WHERE key_id IS NOT NULL")
            out[who, "keys"] = {r[0] for r in c.fetchall()}
            c.execute("SELECT DISTINCT office_code FROM certreg.audit_v")
            out[who, "audit offices"] = {r[0] for r in c.fetchall()}
        return out

    now = reads()
    for who, mine, other in (("rls_a", "RA", "RB"), ("rls_b", "RB", "RA")):
        assert now[who, "regnos"] == set(units[mine]), now[who, "regnos"]
        assert now[who, "keys"] == {k for k, o in keys.items() if o == mine}
        assert now[who, "audit offices"] == {mine}
        for rel in ("units", "units_v", "keys", "keys_v", "audit", "audit_v"):
            assert now[who, rel], (who, rel)
            assert not any(r for r in now[who, rel] for x in units[other] if x in r), (who, rel)
    for who in ("rls_sup", "rls_aud"):
        assert now[who, "regnos"] == set(units["RA"] + units["RB"])
        assert now[who, "keys"] == set(keys)
        assert now[who, "audit offices"] == {"RA", "RB"}
    # The same rows under 001's policies.
    cur.execute(POLICIES_001)
    assert reads() == now
