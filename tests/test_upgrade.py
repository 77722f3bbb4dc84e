"""Upgrading a database that an older certreg made (docs/OPERATIONS.md,
"Upgrade"): `db migrate` on a schema built from an older commit's sql/
files, against the same steps on a fresh install.

PRE_006 is the last commit whose schema stopped at 005_hex_checks.sql
(its rules were still one numbered file, 002_rules.sql); each of its files
is applied the way its own `db migrate` did, one transaction with its
record.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import psycopg2
import pytest

from fixtures.cli import BUILD, REPO, admin
from fixtures.daemon import in_force
from fixtures.pg import Cluster
from test_admin import REFUSED, run

PRE_006 = "8703852^"


def git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout


def new_database(db, suffix):
    name = db.name + suffix
    db.cluster.psql(f'CREATE DATABASE "{name}"')
    return name, db.cluster.conninfo(name)


@pytest.fixture
def old_database(db):
    """A database at schema version 5, as the code before issue 27 made it."""
    try:
        files = git("ls-tree", "--name-only", PRE_006, "sql/").split()
    except subprocess.CalledProcessError:
        pytest.skip(f"no git history with {PRE_006} in {REPO}")
    name, conn = new_database(db, "_old")
    db.cluster.psql("CREATE SCHEMA certreg_meta; CREATE TABLE certreg_meta.migrations ("
                    "version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())", name)
    for f in sorted(f for f in files if f.endswith(".sql")):
        base = f.split("/")[-1]
        db.cluster.psql(f"BEGIN; {git('show', f'{PRE_006}:{f}')}; INSERT INTO"
                        f" certreg_meta.migrations VALUES ({int(base[:3])}, '{base[4:-4]}');"
                        " COMMIT;", name)
    return name, conn


def waiting(conninfo, dbname, n):
    """Waits until n backends of dbname wait for a lock; False after 10 s."""
    c = psycopg2.connect(conninfo)
    c.autocommit = True
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with c.cursor() as cur:
                cur.execute("SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a"
                            " USING (pid) WHERE NOT l.granted AND a.datname = %s", (dbname,))
                if cur.fetchone()[0] >= n:
                    return True
            time.sleep(0.05)
        return False
    finally:
        c.close()


def test_audit_chain_survives_a_counter_change_during_an_upgrade(db, old_database):
    """Review finding 2: db migrate committed each numbered file on its own and
    the functions after them, so once 007_audit_head.sql had committed the
    old audit_append(), which knows nothing of audit_head, still served the
    counter; its row forked the chain for good. Here the upgrade is held up
    in its function files (a lock on one of them) while a counter change is
    made; then the upgrade ends and another change follows."""
    name, conn = old_database
    db.cluster.psql("SELECT certreg.office_add('A', 'A', NULL, NULL);"
                    "SELECT certreg.unit_add('100001', 'before the upgrade', 'A', NULL)", name)
    blocker = psycopg2.connect(conn)
    with blocker.cursor() as cur:
        cur.execute("ALTER FUNCTION certreg.refuse(text, text) COST 2")
    # --lock-wait 0: the upgrade waits for the blocker however long it takes.
    upgrade = subprocess.Popen([str(BUILD / "certreg-admin"), "--db", conn,
                                "db", "migrate", "--lock-wait", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert waiting(conn, name, 1), "db migrate never reached the function files"
        errors = []

        def counter():
            try:
                c = psycopg2.connect(conn)
                c.autocommit = True
                with c.cursor() as cur:
                    cur.execute("SELECT certreg.unit_add('100009', 'during the upgrade', 'A',"
                                " NULL)")
                c.close()
            except psycopg2.Error as e:
                errors.append(e)

        during = threading.Thread(target=counter)
        during.start()
        # Either it is done (the old schema's rules answered) or it waits for
        # the upgrade to end.
        deadline = time.monotonic() + 10
        while during.is_alive() and not waiting(conn, name, 2) and time.monotonic() < deadline:
            pass
    finally:
        blocker.rollback()
        blocker.close()
        out, err = upgrade.communicate(timeout=120)
    during.join(timeout=60)
    assert upgrade.returncode == 0, out + err
    assert not during.is_alive() and errors == []
    db.cluster.psql("SELECT certreg.unit_add('100010', 'after the upgrade', 'A', NULL)", name)
    verdict = db.cluster.psql("SELECT ok, detail FROM certreg.audit_verify()", name).strip()
    assert verdict.startswith("t|"), verdict


USCC_C, USCC_D = "91110108MA01CR7A3R", "91110105MA02BT3K0R"


def test_an_upgrade_checks_old_bindings_credit_code_as_a_fresh_install_does(db, old_database):
    """Review finding 3: 006 added keys.credit_checked DEFAULT true, so on an
    upgraded database every key bound before it counted as checked, while
    the same binding on a fresh install is checked at the key's first
    login. Keys: bound without a certificate (checked at login), forced by a
    supervisor (never checked again), bound and since used with a
    certificate carrying the unit's code (checked)."""
    plain, forced, used = "a" * 64, "c" * 64, "e" * 64

    def cert(key, code, sha):
        return ('{"sha256": "%s", "key_id": "%s", "subject": "CN=x", "issuer": "CN=CA",'
                ' "serial": "01", "holder_id": null, "credit_code": "%s",'
                ' "not_before": "2026-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"}'
                % (sha, key, code))

    setup = ("SELECT certreg.office_add('A', 'A', NULL, NULL);"
             f"SELECT certreg.unit_add('100001', 'U', 'A', '{USCC_C}');"
             f"SELECT certreg.key_bind('{plain}', '100001', 'T-1', false, NULL, NULL);"
             f"SELECT certreg.key_bind('{forced}', '100001', 'T-2', true, 'checked by phone',"
             f" '{cert(forced, USCC_D, 'd' * 64)}'::jsonb);"
             f"SELECT certreg.key_bind('{used}', '100001', 'T-3', false, NULL, NULL);"
             f"SELECT key_status FROM certreg.decide('{used}', '{cert(used, USCC_C, 'f' * 64)}'"
             "::jsonb, '127.0.0.1', true);")
    name, conn = new_database(db, "_new")
    admin(conn, "db", "migrate")
    databases = {"fresh": name, "upgraded": old_database[0]}
    db.cluster.psql(setup, name)
    db.cluster.psql(setup, old_database[0])
    admin(old_database[1], "db", "migrate")
    answers = {}
    for kind, dbname in databases.items():
        answers[kind] = [db.cluster.psql(
            "SET ROLE certreg_daemon; SELECT key_status FROM certreg.decide("
            f"'{key}', '{cert(key, USCC_D, sha)}'::jsonb, '127.0.0.1', true)", dbname).strip()
            for key, sha in ((plain, "b" * 64), (forced, "d" * 64), (used, "9" * 64))]
    assert answers["upgraded"] == answers["fresh"] == ["none", "approved", "approved"], answers


def sql_dir_with(tmp_path, extra):
    """This version's sql/ plus further numbered files: a later release's."""
    d = tmp_path / "sql"
    shutil.copytree(REPO / "sql", d)
    for name, text in extra.items():
        (d / name).write_text(text)
    return d


def verify_loop(d, pem, stop, answers):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            r = d.verify(pem)
            answers.append((r.json().get("outcome"), time.monotonic() - t0))
        except OSError as e:
            answers.append((f"error: {e}", time.monotonic() - t0))


def test_db_migrate_does_not_queue_logins_behind_another_sessions_lock(db, pki, certregd,
                                                                      tmp_path):
    """Finding 1: a migration that alters a table (012 added a column to
    keys; a later release's may too) waited for as long as another session
    held any lock on it: an auditor's open transaction, or the nightly
    pg_dump of a large database. Every login that needed that table queued
    behind the waiting ALTER and got SERVICE_UNAVAILABLE at timeout_ms, for
    as long as the other session lasted, and db migrate sat there without a
    word. Now it waits --lock-wait (1 s) for a lock, then gives up, undoes
    everything and names the session in its way."""
    leaf = pki.leaf("ec-ok")
    admin(db.conninfo, "office", "add", "UP01", "--name", "升级管理部")
    admin(db.conninfo, "unit", "add", "110100888001", "--name", "升级单位", "--office", "UP01")
    admin(db.conninfo, "key", "bind", "--cert", leaf["pem"], "--unit", "110100888001",
          "--ticket", "T-1")
    sql = sql_dir_with(tmp_path, {"099_future.sql": (
        "SET LOCAL ROLE certreg_owner;\nALTER TABLE certreg.keys ADD COLUMN future text;\n")})
    # No association cache: every login here needs the database, as each
    # key's first login of the day does.
    d = certregd(db, cache={"size": 0})
    pem = open(leaf["pem"]).read()
    assert d.verify(pem).json()["outcome"] == "OK"
    dump = psycopg2.connect(db.conninfo)  # what pg_dump holds for its whole run
    dump_pid = dump.info.backend_pid
    dump.cursor().execute("BEGIN ISOLATION LEVEL REPEATABLE READ;"
                          " SELECT count(*) FROM certreg.keys")
    stop, answers = threading.Event(), []
    loop = threading.Thread(target=verify_loop, args=(d, pem, stop, answers))
    loop.start()
    t0 = time.monotonic()
    try:
        p = subprocess.run([str(BUILD / "certreg-admin"), "--db", db.conninfo, "db", "migrate",
                            "--sql-dir", str(sql)], capture_output=True, text=True, timeout=8)
        took = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        p, took = None, time.monotonic() - t0
    finally:
        time.sleep(0.5)
        stop.set()
        loop.join(timeout=30)
        dump.rollback()
        dump.close()
    bad = [a for a in answers if a[0] != "OK" or a[1] > 1.8]
    assert p is not None, (f"db migrate still waited after {took:.1f} s", bad[:3])
    assert p.returncode == 3, p.stdout + p.stderr
    assert "lock" in p.stderr and "Nothing was applied" in p.stderr, p.stderr
    # The session in the way, by its process id.
    assert f"pid {dump_pid} " in p.stderr, p.stderr
    assert db.sql("SELECT count(*) FROM certreg_meta.migrations WHERE version = 99").strip() \
        == "0"
    assert answers and not bad, bad[:5]
    # The session gone, the same run goes through.
    admin(db.conninfo, "db", "migrate", "--sql-dir", sql)
    assert d.verify(pem).json()["outcome"] == "OK"


# --- backup and restore, as docs/OPERATIONS.md says ----------------------------

def doc_blocks(heading):
    """The ```sh blocks of one section of docs/OPERATIONS.md."""
    text = (REPO / "docs/OPERATIONS.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def run_block(block, cluster, dbname, backups):
    """Runs a block of the guide as its operator would, against cluster:
    `sudo -u postgres` is the cluster's superuser by PG* variables, the
    database is dbname, /var/backups is backups, the dated file names are
    today's."""
    script = (block.replace("sudo -u postgres ", "")
              .replace("/var/backups/", f"{backups}/")
              .replace("2026-11-23", time.strftime("%F")))
    script = re.sub(r"\bdbname=certreg\b", f"dbname={dbname}", script)
    script = re.sub(r"-d certreg\b(?![-_])", f"-d {dbname}", script)
    script = re.sub(r"createdb -E UTF8 certreg$", f"createdb -E UTF8 {dbname}", script, flags=re.M)
    env = dict(os.environ, PGHOST=cluster.host, PGPORT=str(cluster.port),
               PGUSER=cluster.superuser, PATH=f"{BUILD}:{cluster.bin}:{os.environ['PATH']}")
    env.pop("CERTREG_DB", None)
    p = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, script + p.stdout + p.stderr
    return p.stdout + p.stderr


# What a restore must keep of the database's catalog: row-level security,
# grants, who owns and runs each function and with which search_path. A
# table's ACL that only spells out its owner's default is the default.
CATALOG_SQL = """
SELECT 'policy', tablename, policyname, permissive, roles::text, cmd, qual, with_check
  FROM pg_policies WHERE schemaname LIKE 'certreg%'
UNION ALL
SELECT 'rel', c.relname, c.relkind::text, pg_get_userbyid(c.relowner),
       NULLIF(c.relacl::text, '{' || pg_get_userbyid(c.relowner) || '=arwdDxt/'
              || pg_get_userbyid(c.relowner) || '}'),
       c.relrowsecurity::text, c.relforcerowsecurity::text, NULL
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'certreg%'
UNION ALL
SELECT 'func', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.prosecdef::text,
       p.proconfig::text, p.proacl::text, md5(p.prosrc), NULL
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'certreg%'
UNION ALL
SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text, NULL, NULL, NULL, NULL
  FROM pg_namespace WHERE nspname LIKE 'certreg%' OR nspname = 'public'
UNION ALL
SELECT 'database', datacl::text, NULL, NULL, NULL, NULL, NULL, NULL
  FROM pg_database WHERE datname = current_database()
ORDER BY 1, 2, 3
"""


def fill(db, pki):
    """Two offices, their operators and an auditor, units, a bound key and
    a suspended one, a pending key: the audit log has entries."""
    a = db.conninfo
    for code in ("RA", "RB"):
        admin(a, "office", "add", code, "--name", f"办公室{code}")
    db.cluster.ensure_login("rest_op_a")
    db.cluster.ensure_login("rest_op_b")
    db.cluster.ensure_login("rest_audit")
    db.cluster.ensure_login("rest_nobody")
    admin(a, "operator", "add", "rest_op_a", "--office", "RA")
    admin(a, "operator", "add", "rest_op_b", "--office", "RB")
    admin(a, "operator", "add", "rest_audit", "--office", "RA", "--role", "auditor")
    admin(db.conninfo_as("rest_op_a"), "unit", "add", "110100999001", "--name", "甲单位",
          "--office", "RA")
    admin(db.conninfo_as("rest_op_b"), "unit", "add", "110100999002", "--name", "乙单位",
          "--office", "RB")
    admin(db.conninfo_as("rest_op_a"), "key", "bind", "--cert", pki.leaf("ec-ok")["pem"],
          "--unit", "110100999001", "--ticket", "T-1")
    admin(db.conninfo_as("rest_op_b"), "key", "bind", "--cert", pki.leaf("rsa-ok")["pem"],
          "--unit", "110100999002", "--ticket", "T-2")
    admin(db.conninfo_as("rest_op_b"), "key", "suspend", "--cert", pki.leaf("rsa-ok")["pem"],
          "--reason", "挂失")


def head_of(out):
    return re.search(r"head: (\d+:[0-9a-f]{64})", out).group(1)


def test_a_restore_into_a_new_cluster_as_the_guide_says(db, pki, certregd, daemon_role,
                                                       tmp_path):
    """Backup and restore, the guide's commands as written, into a new
    cluster and a database of another name. Finding 2: the guide ran `db
    migrate` after a restore only when the schema was older, so a restore
    of a current dump kept the PUBLIC `CONNECT` every new database has
    (grants on the database are not in a per-database dump): every login
    of the new cluster could LISTEN to the key ids of every change and
    NOTIFY every certregd into dropping its cache."""
    # The original as it runs: migrated in place (a test database is a
    # copy of a template, which does not copy the grants on a database).
    admin(db.conninfo, "db", "migrate")
    fill(db, pki)
    head = head_of(admin(db.conninfo, "audit", "verify").stdout)
    backups = tmp_path / "backups"
    backups.mkdir()
    backup, restore = doc_blocks("Backup and restore")[:2]
    run_block(backup, db.cluster, db.name, backups)
    new = Cluster(tmp_path / "pg2")
    new.init()
    try:
        out = run_block(restore, new, "restored_reg", backups)
        assert f"head: {head}" in out, out
        # The restored database's catalog is the original's.
        assert new.psql(CATALOG_SQL, "restored_reg") == db.sql(CATALOG_SQL)
        # Only certreg's roles connect.
        p = subprocess.run([str(new.bin / "psql"), "-X", "-d",
                            new.conninfo("restored_reg", "rest_nobody"), "-c", "SELECT 1"],
                           capture_output=True, text=True)
        assert p.returncode != 0 and "CONNECT" in p.stderr, p.stdout + p.stderr
        # Row-level security: an operator sees its own office's units.
        assert admin(new.conninfo("restored_reg", "rest_op_b"), "unit", "show",
                     "110100999001", check=False).returncode == 1
        admin(new.conninfo("restored_reg", "rest_op_b"), "unit", "show", "110100999002")
        # The counter goes on, and the chain with it.
        admin(new.conninfo("restored_reg", "rest_op_a"), "unit", "add", "110100999003",
              "--name", "丙单位", "--office", "RA")
        assert "intact" in admin(new.conninfo("restored_reg", "rest_audit"), "audit", "verify",
                                 "--anchor", head).stdout
        # certregd decides from the restored data, as its own login.
        d = certregd(db, database={"conninfo": new.conninfo("restored_reg", daemon_role)})
        answers = {name: d.verify(pki.read(name)).json()["outcome"]
                   for name in ("ec-ok", "rsa-ok", "sm2-ok")}
        assert answers == {"ec-ok": "OK", "rsa-ok": "KEY_SUSPENDED",
                           "sm2-ok": "KEY_NOT_APPROVED"}, answers
    finally:
        try:
            new.stop(mode="immediate")
        except subprocess.CalledProcessError:
            pass


def test_db_migrate_names_a_restore_made_without_its_owners(db, tmp_path):
    """Finding 3: a dump restored by a role that is not the superuser, with
    --no-owner to get past `must be member of role "certreg_owner"`, makes
    a database whose schema and functions that role owns. certreg-admin
    still worked, but every later `db migrate` failed with "no
    schema has been selected to create in", an upgrade impossible with no
    word of why. Now db migrate says whose the schema is and what to do,
    and changes nothing."""
    dump = tmp_path / "certreg.dump"
    bindir = db.cluster.bin
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-d", db.conninfo, "-f", str(dump)],
                   check=True, capture_output=True)
    db.cluster.ensure_login("restorer")
    db.cluster.psql("ALTER ROLE restorer CREATEDB")
    name = db.name + "_noowner"
    db.cluster.psql(f'CREATE DATABASE "{name}" OWNER restorer')
    try:
        p = subprocess.run([str(bindir / "pg_restore"), "--exit-on-error", "--single-transaction",
                            "-d", db.cluster.conninfo(name, "restorer"), str(dump)],
                           capture_output=True, text=True)
        assert p.returncode != 0 and 'member of role "certreg_owner"' in p.stderr, p.stderr
        subprocess.run([str(bindir / "pg_restore"), "--exit-on-error", "--single-transaction",
                        "--no-owner", "-d", db.cluster.conninfo(name, "restorer"), str(dump)],
                       check=True, capture_output=True)
        before = db.cluster.psql(CATALOG_SQL, name)
        p = admin(db.cluster.conninfo(name), "db", "migrate", check=False)
        assert p.returncode == 3, p.stdout + p.stderr
        assert 'schema certreg is owned by "restorer", not certreg_owner' in p.stderr, p.stderr
        assert "as the superuser" in p.stderr, p.stderr
        assert db.cluster.psql(CATALOG_SQL, name) == before
    finally:
        db.cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- an upgrade from before 012, with what a day's work leaves --------------------

PRE_012 = "1a0ae20^"  # the last commit whose schema stopped at 011

# Columns a login writes on its own (last use, last seen), left out of the
# comparison of the data before and after the upgrade.
VOLATILE = re.compile(r"^last_")


def old_schema(db, tmp_path, commit):
    """A database migrated with the sql/ of an older commit, by the runner
    of this one (each of its files in one transaction, as its own was)."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "sql"],
                                 capture_output=True, check=True).stdout
    except subprocess.CalledProcessError:
        pytest.skip(f"no git history with {commit} in {REPO}")
    tmp_path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    name, conn = new_database(db, "_old")
    admin(conn, "db", "migrate", "--sql-dir", tmp_path / "sql")
    return name, conn


def table_digests(cluster, dbname, columns=None):
    """{table: md5 of its rows} over the given columns of each certreg
    table (all but the volatile ones when columns is None)."""
    if columns is None:
        columns = {}
        for line in cluster.psql(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'certreg' AND table_name IN (SELECT tablename FROM"
                " pg_tables WHERE schemaname = 'certreg') ORDER BY ordinal_position",
                dbname).splitlines():
            table, column = line.split("|")
            if not VOLATILE.match(column):
                columns.setdefault(table, []).append(column)
    digests = {}
    for table, cols in columns.items():
        select = ", ".join(f'"{c}"' for c in cols)
        digests[table] = cluster.psql(
            f"SELECT count(*), md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), ''))"
            f" FROM (SELECT {select} FROM certreg.{table}) r", dbname).strip()
    return columns, digests


# What db migrate makes, beyond CATALOG_SQL: columns, constraints, indexes,
# triggers, the extensions and their schemas.
SCHEMA_SQL = """
SELECT 'column', table_name, column_name, data_type, is_nullable, column_default
  FROM information_schema.columns WHERE table_schema LIKE 'certreg%'
UNION ALL
SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid), NULL, NULL
  FROM pg_constraint WHERE connamespace::regnamespace::text LIKE 'certreg%'
UNION ALL
SELECT 'index', tablename, indexname, indexdef, NULL, NULL
  FROM pg_indexes WHERE schemaname LIKE 'certreg%'
UNION ALL
SELECT 'trigger', tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled::text, NULL
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'extension', extname, extnamespace::regnamespace::text, pg_get_userbyid(extowner),
       NULL, NULL FROM pg_extension
ORDER BY 1, 2, 3
"""

LEAVES = ("ec-ok", "rsa-ok", "bjca", "bjca-other", "bjca-renewed", "bjca-uid", "orgid",
          "revoked", "sm2-ok")


def test_an_upgrade_from_before_012_keeps_the_days_work_and_matches_a_fresh_install(
        db, pki, certregd, daemon_role, tmp_path):
    """docs/OPERATIONS.md, "Upgrade", on a database at schema 11 that the
    counter and certregd worked with under the old rules: offices, every
    kind of login (one moved between roles, one removed), units (one
    closed), keys bound, forced, suspended, resumed, cancelled and pending,
    a refused certificate, a spent challenge, the audit log. Then `db
    migrate` while certregd answers logins that all need the database, and
    certregd restarted, as the guide says. Nothing is lost, the chain
    verifies against its head from before, the catalog is a fresh
    install's, and every certificate gets the answer it got before."""
    from test_signed_login import challenge, login, sign
    name, conn = old_schema(db, tmp_path, PRE_012)
    psql = db.cluster.psql
    logins = ("up_sup", "up_op_a", "up_op_b", "up_aud", "up_moved", "up_gone")
    for login_name in logins:
        db.cluster.ensure_login(login_name)
    kid = {leaf: pki.leaf(leaf)["key_id"] for leaf in LEAVES}
    # The counter's day, through the old rules (what the old certreg-admin
    # called), each change as its login.
    psql("SELECT certreg.office_add('UA', '升级东城', NULL, NULL);"
         "SELECT certreg.office_add('UB', '升级西城', NULL, NULL);"
         "SELECT certreg.operator_add('up_sup', 'UA', 'supervisor');"
         "SELECT certreg.operator_add('up_op_a', 'UA', 'operator');"
         "SELECT certreg.operator_add('up_op_b', 'UB', 'operator');"
         "SELECT certreg.operator_add('up_aud', 'UA', 'auditor');"
         "SELECT certreg.operator_add('up_moved', 'UB', 'supervisor');"
         "SELECT certreg.operator_add('up_moved', 'UA', 'operator');"
         "SELECT certreg.operator_add('up_gone', 'UB', 'operator');"
         "SELECT certreg.operator_remove('up_gone', NULL)", name)
    psql("SELECT certreg.unit_add('110100777001', '甲', 'UA', '91110108MA01CR7A3R');"
         "SELECT certreg.unit_add('110100777002', '乙', 'UA', NULL);"
         f"SELECT certreg.key_bind('{kid['bjca']}', '110100777001', 'T-1', false, NULL, NULL);"
         f"SELECT certreg.key_bind('{kid['ec-ok']}', '110100777002', 'T-2', false, NULL, NULL);"
         f"SELECT certreg.key_bind('{kid['rsa-ok']}', '110100777002', 'T-3', false, NULL, NULL);"
         f"SELECT certreg.key_suspend('{kid['rsa-ok']}', '挂失');"
         f"SELECT certreg.key_bind('{kid['bjca-uid']}', '110100777002', 'T-4', false, NULL,"
         " NULL);"
         f"SELECT certreg.key_cancel('{kid['bjca-uid']}', '注销');"
         f"SELECT certreg.key_bind('{kid['sm2-ok']}', '110100777002', 'T-5', false, NULL, NULL);"
         f"SELECT certreg.key_suspend('{kid['sm2-ok']}', 'x');"
         f"SELECT certreg.key_resume('{kid['sm2-ok']}', 'y')", name, user="up_op_a")
    psql("SELECT certreg.unit_add('110100777003', '丙', 'UB', '91110105MA02BT3K0R');"
         "SELECT certreg.unit_add('110100777004', '丁', 'UB', NULL);"
         "SELECT certreg.unit_set_status('110100777004', 'closed', '注销')", name,
         user="up_op_b")
    psql(f"SELECT certreg.key_bind('{kid['bjca-other']}', '110100777001', 'T-6', true,"
         " '电话核实', NULL)", name, user="up_sup")
    # certregd's side of the day: first logins (certificates seen, a key
    # pending), a revoked certificate refused, a signed login's challenge.
    d = certregd(db, database={"conninfo": db.cluster.conninfo(name, daemon_role)},
                 cache={"size": 0})
    pems = {leaf: pki.read(leaf) for leaf in LEAVES}

    def answers(daemon):
        return {leaf: daemon.verify(pem).json()["outcome"] for leaf, pem in pems.items()}

    before = answers(d)
    assert before == {"ec-ok": "OK", "rsa-ok": "KEY_SUSPENDED", "bjca": "OK",
                      # forced with no certificate: its code is checked at
                      # its first login, and it is another unit's
                      "bjca-other": "KEY_NOT_APPROVED",
                      "bjca-renewed": "OK", "bjca-uid": "KEY_CANCELLED",
                      "orgid": "KEY_NOT_APPROVED", "revoked": "CERT_REVOKED",
                      "sm2-ok": "OK"}, before
    ec = pki.leaf("ec-ok")
    ch = challenge(d)["challenge"]
    assert login(d, pems["ec-ok"], ch, sign(ec["key"], ch, "sha256")).json()["outcome"] == "OK"
    assert answers(d) == before  # each key's first use recorded, nothing more
    for table, expect in (("pending", 2), ("refusals", 1), ("challenges_used", 1)):
        assert psql(f"SELECT count(*) FROM certreg.{table}", name).strip() == str(expect)
    head = head_of(admin(conn, "audit", "verify").stdout)
    columns, data = table_digests(db.cluster, name)

    # The upgrade, while logins that all need the database go on.
    assert "012_last_used_cert.sql" in admin(conn, "db", "status").stdout
    stop, during = threading.Event(), []
    loop = threading.Thread(target=verify_loop, args=(d, pems["bjca"], stop, during))
    loop.start()
    try:
        time.sleep(0.3)
        out = admin(conn, "db", "migrate").stdout
        time.sleep(0.3)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert "applied 012_last_used_cert.sql" in out and "applied 015" in out, out
    assert "applied 016_unit_search.sql" in out, out
    assert "applied 017_policy_initplans.sql" in out, out
    assert "applied 018_certificates_read.sql" in out, out
    slow = [a for a in during if a[0] != "OK" or a[1] > 1.0]
    assert during and not slow, slow[:5]

    # Nothing lost or changed, the log's chain goes on from its head.
    assert table_digests(db.cluster, name, columns)[1] == data
    assert "intact" in admin(conn, "audit", "verify", "--anchor", head).stdout
    # The catalog of a fresh install of this version.
    fresh, _ = new_database(db, "_fresh")
    admin(db.cluster.conninfo(fresh), "db", "migrate")
    for query in (CATALOG_SQL, SCHEMA_SQL):
        assert psql(query, name) == psql(query, fresh)
    # 013: a login keeps one role; a removed one none.
    roles = psql("SELECT m.rolname, string_agg(g.rolname, ',' ORDER BY g.rolname)"
                 " FROM pg_roles m LEFT JOIN pg_auth_members a ON a.member = m.oid"
                 " LEFT JOIN pg_roles g ON g.oid = a.roleid"
                 " WHERE m.rolname LIKE 'up\\_%' GROUP BY 1 ORDER BY 1", name)
    assert roles.split() == ["up_aud|certreg_auditor", "up_gone|", "up_moved|certreg_operator",
                             "up_op_a|certreg_operator", "up_op_b|certreg_operator",
                             "up_sup|certreg_supervisor"], roles
    # Row-level security over the old rows: an office sees its own units.
    listed = psql("SELECT registration_no FROM certreg.units_v ORDER BY 1", name, user="up_op_b")
    assert listed.split() == ["110100777003", "110100777004"], listed

    # certregd restarted on the new schema: the same answers, and the
    # counter's next change chains on.
    assert d.stop() == 0
    d2 = certregd(db, database={"conninfo": db.cluster.conninfo(name, daemon_role)})
    assert answers(d2) == before
    ch = challenge(d2)["challenge"]
    assert login(d2, pems["ec-ok"], ch, sign(ec["key"], ch, "sha256")).json()["outcome"] == "OK"
    admin(db.cluster.conninfo(name, "up_op_a"), "key", "suspend", kid["ec-ok"], "--reason", "z")
    in_force(lambda: d2.verify(pems["ec-ok"]).json()["outcome"], "KEY_SUSPENDED")
    assert "intact" in admin(conn, "audit", "verify", "--anchor", head).stdout


def test_an_upgrade_that_fails_at_its_last_file_leaves_the_old_schema(db, tmp_path):
    """One run, one transaction: 012 to 016 applied, then a later file
    fails; the database is at schema 11 with its old rules, as before."""
    name, conn = old_schema(db, tmp_path / "old", PRE_012)
    db.cluster.psql("SELECT certreg.office_add('UA', 'A', NULL, NULL);"
                    "SELECT certreg.unit_add('110100777001', '甲', 'UA', NULL)", name)
    catalog = db.cluster.psql(CATALOG_SQL + ";" + SCHEMA_SQL, name)
    columns, data = table_digests(db.cluster, name)
    sql = sql_dir_with(tmp_path, {"099_broken.sql": "SELECT 1/0;\n"})
    p = admin(conn, "db", "migrate", "--sql-dir", sql, check=False)
    assert p.returncode == 3 and "Nothing was applied" in p.stderr, p.stdout + p.stderr
    assert db.cluster.psql(CATALOG_SQL + ";" + SCHEMA_SQL, name) == catalog
    assert table_digests(db.cluster, name)[1] == data
    status = admin(conn, "db", "status", "--sql-dir", sql).stdout
    assert "schema version: 11" in status and "012_last_used_cert.sql" in status, status


PRE_015 = "286d3f4^"  # the last commit whose schema stopped at 014


def test_audit_verify_on_a_schema_before_015_says_to_migrate(db, tmp_path):
    """015 lets the auditor read the chain's head. Before it, the auditor's
    audit verify (the first one after installing the new programs, before
    db migrate) ended in PostgreSQL's "permission denied for table
    audit_head", and on a version 5 (no head yet) in "relation
    certreg.audit_head does not exist" (exit 3, as if broken). Now both say
    the schema is too old and what to run."""
    name, conn = old_schema(db, tmp_path / "old", PRE_015)
    db.cluster.psql("SELECT certreg.office_add('UA', 'A', NULL, NULL)", name)
    auditor = "aud_pre015_" + db.name[-8:]
    db.cluster.ensure_login(auditor, "certreg_auditor")
    as_auditor = db.cluster.conninfo(name, auditor)
    p = run(as_auditor, "audit", "verify")
    assert p.returncode == REFUSED, p.stdout + p.stderr
    assert "permission denied" not in p.stderr and not p.stdout, p.stderr
    assert "older than version 15" in p.stderr, p.stderr
    assert 'run "certreg-admin db migrate"' in p.stderr, p.stderr
    p = run(as_auditor, "--json", "audit", "verify")
    assert p.returncode == REFUSED and json.loads(p.stdout)["error"] == "schema_too_old", p.stdout
    p = run(as_auditor, "audit", "verify",
            env={"LANG": "zh_CN.UTF-8", "LOCPATH": "/nonexistent/locales"})
    assert p.returncode == REFUSED and "数据库结构版本早于 15" in p.stderr, p.stderr
    assert "certreg-admin db migrate" in p.stderr, p.stderr
    # Migrated, the same login verifies.
    admin(conn, "db", "migrate")
    assert "intact" in run(as_auditor, "audit", "verify").stdout


def test_audit_verify_names_the_schema_version_it_can_read(db, old_database):
    """A login that reads the migrations (the superuser) is told the
    version: 5, from before the chain had a head."""
    p = run(old_database[1], "audit", "verify")
    assert p.returncode == REFUSED, p.stdout + p.stderr
    assert "schema version 5, older than 15" in p.stderr, p.stderr
    assert "does not exist" not in p.stderr, p.stderr



PRE_016 = "4578bde"  # the last commit whose schema stopped at 015


def test_unit_list_search_on_a_schema_before_016_says_to_migrate(db, tmp_path):
    """This version's certreg-admin on a database not yet migrated: unit
    list works as before, --search says what to run (not only "function
    does not exist"), and after db migrate it finds the unit."""
    name, conn = old_schema(db, tmp_path / "old", PRE_016)
    db.cluster.psql("SELECT certreg.office_add('UA', 'A', NULL, NULL);"
                    "SELECT certreg.unit_add('110100777001', '丰台测试单位', 'UA', NULL)", name)
    assert "110100777001" in admin(conn, "unit", "list").stdout
    p = run(conn, "unit", "list", "--search", "丰台")
    assert p.returncode == 3 and p.stdout == "", p.stdout
    assert "migration 016" in p.stderr and "certreg-admin db migrate" in p.stderr, p.stderr
    assert "applied 016_unit_search.sql" in admin(conn, "db", "migrate").stdout
    found = json.loads(admin(conn, "--json", "unit", "list", "--search", "丰台").stdout)
    assert [u["registration_no"] for u in found] == ["110100777001"]


def two_offices_at(db, tmp_path, commit, unit_a, unit_b):
    """A database at an older commit's schema with offices UA and UB, unit
    unit_a in UA and unit_b in UB, and an approved key of each unit
    ("a" * 64 and "b" * 64). Returns its name and conninfo."""
    name, conn = old_schema(db, tmp_path / "old", commit)
    for office in ("UA", "UB"):
        admin(conn, "office", "add", office, "--name", f"{office}管理部")
    admin(conn, "unit", "add", unit_a, "--name", "甲", "--office", "UA")
    admin(conn, "unit", "add", unit_b, "--name", "乙", "--office", "UB")
    db.cluster.psql("INSERT INTO certreg.keys (key_id, registration_no, status, how, bound_by)"
                    f" VALUES (repeat('a', 64), '{unit_a}', 'approved', 'counter', 't'),"
                    f" (repeat('b', 64), '{unit_b}', 'approved', 'counter', 't')", name)
    return name, conn


PRE_017 = "e23b5a7"  # the last commit whose schema stopped at 016


def test_an_upgrade_from_016_applies_017_and_each_login_reads_the_same_rows(db, tmp_path):
    """017 rewrites the row-level security policies (InitPlans) and adds two
    audit indexes: after it every login reads what it read before, an
    operator none of another office's rows, and the catalog is a fresh
    install's."""
    psql = db.cluster.psql
    name, conn = two_offices_at(db, tmp_path, PRE_017, "110100777101", "110100777102")
    for login, office, role in (("up17_a", "UA", "operator"), ("up17_b", "UB", "operator"),
                                ("up17_sup", "UB", "supervisor")):
        admin(conn, "operator", "add", login, "--office", office, "--role", role)
    reads = ("SELECT (SELECT string_agg(registration_no, ',' ORDER BY 1) FROM certreg.units_v),"
             " (SELECT string_agg(key_id, ',' ORDER BY 1) FROM certreg.keys_v),"
             " (SELECT string_agg(id || ':' || coalesce(office_code, '-'), ',' ORDER BY id)"
             "  FROM certreg.audit_v)")
    before = {who: psql(reads, name, user=who) for who in ("up17_a", "up17_b", "up17_sup")}
    out = admin(conn, "db", "migrate").stdout
    assert "applied 017_policy_initplans.sql" in out and "applied 016" not in out, out
    after = {who: psql(reads, name, user=who) for who in before}
    assert after == before
    assert "110100777101" not in after["up17_b"] and "a" * 64 not in after["up17_b"]
    assert ":UA" not in after["up17_b"] and ":UB" in after["up17_b"]
    assert "110100777101" in after["up17_sup"] and "110100777102" in after["up17_sup"]
    fresh, _ = new_database(db, "_fresh")
    admin(db.cluster.conninfo(fresh), "db", "migrate")
    for query in (CATALOG_SQL, SCHEMA_SQL):
        assert psql(query, name) == psql(query, fresh)


PRE_018 = "cfce19a"  # the last commit whose schema stopped at 017


def test_an_upgrade_from_017_hides_another_offices_certificates(db, tmp_path):
    """018 puts the certificates under row-level security: before it an
    operator read every office's; after it, those of its own keys and of
    pending keys. This version's key expiring says to migrate first."""
    psql = db.cluster.psql
    name, conn = two_offices_at(db, tmp_path, PRE_018, "110100777201", "110100777202")
    psql("INSERT INTO certreg.pending (key_id, cert_sha256)"
         " VALUES (repeat('c', 64), repeat('c', 64));"
         "INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial,"
         " not_before, not_after) SELECT repeat(k, 64), repeat(k, 64), 'CN=' || k, 'CN=CA',"
         " '1', now(), now() + interval '10 days' FROM unnest('{a,b,c}'::text[]) k", name)
    for login, office in (("up18_a", "UA"), ("up18_b", "UB")):
        admin(conn, "operator", "add", login, "--office", office)
    reads = "SELECT string_agg(subject, ',' ORDER BY 1) FROM certreg.certificates_v"
    assert psql(reads, name, user="up18_b").strip() == "CN=a,CN=b,CN=c"
    p = run(db.cluster.conninfo(name, "up18_b"), "key", "expiring")
    assert p.returncode == 3 and p.stdout == "", p.stdout
    assert "migration 018" in p.stderr and "certreg-admin db migrate" in p.stderr, p.stderr
    out = admin(conn, "db", "migrate").stdout
    assert "applied 018_certificates_read.sql" in out and "applied 017" not in out, out
    assert psql(reads, name, user="up18_a").strip() == "CN=a,CN=c"
    assert psql(reads, name, user="up18_b").strip() == "CN=b,CN=c"
    listed = json.loads(admin(db.cluster.conninfo(name, "up18_b"), "--json", "key",
                              "expiring").stdout)
    assert [k["key_id"] for k in listed] == ["b" * 64]
    fresh, _ = new_database(db, "_fresh")
    admin(db.cluster.conninfo(fresh), "db", "migrate")
    for query in (CATALOG_SQL, SCHEMA_SQL):
        assert psql(query, name) == psql(query, fresh)


@pytest.mark.skipif(os.environ.get("CERTREG_SOAK") != "1",
                    reason="builds an older commit: make soak")
def test_an_upgrade_from_the_programs_of_before_012(db, pki, certregd, daemon_role, tmp_path,
                                                     monkeypatch):
    """The same walk with the older programs themselves, built from
    PRE_012: its certreg-admin migrates and fills the database, its
    certregd answers the logins; then this version's `db migrate` under its
    certregd's logins, and this version's certregd."""
    import fixtures.daemon
    old = tmp_path / "old"
    old.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PRE_012],
                                 capture_output=True, check=True).stdout
    except subprocess.CalledProcessError:
        pytest.skip(f"no git history with {PRE_012} in {REPO}")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    subprocess.run(["make", "-s", "-j2", "-C", str(old), "all"], check=True,
                   capture_output=True, timeout=900)
    old_admin = old / "build/certreg-admin"
    name, conn = new_database(db, "_oldprog")

    def run(*args, user=None, binary=old_admin):
        return admin(db.cluster.conninfo(name, user), *args, binary=binary)

    run("db", "migrate")
    for login_name in ("op_old_a", "sup_old", "aud_old"):
        db.cluster.ensure_login(login_name)
    run("office", "add", "OA", "--name", "旧东城")
    run("operator", "add", "op_old_a", "--office", "OA")
    run("operator", "add", "sup_old", "--office", "OA", "--role", "supervisor")
    run("operator", "add", "aud_old", "--office", "OA", "--role", "auditor")
    run("unit", "add", "110100666001", "--name", "旧甲", "--office", "OA", "--credit-code",
        "91110108MA01CR7A3R", user="op_old_a")
    run("unit", "add", "110100666002", "--name", "旧乙", "--office", "OA", user="op_old_a")
    monkeypatch.setattr(fixtures.daemon, "BUILD", old / "build")
    d = certregd(db, database={"conninfo": db.cluster.conninfo(name, daemon_role)},
                 cache={"size": 0})
    pems = {leaf: pki.read(leaf) for leaf in LEAVES}
    for leaf in ("ec-ok", "rsa-ok", "bjca-uid", "sm2-ok", "orgid"):
        d.verify(pems[leaf])  # pending, as at a first login
    for leaf, unit in (("bjca", "110100666001"), ("ec-ok", "110100666002"),
                       ("rsa-ok", "110100666002"), ("bjca-uid", "110100666002"),
                       ("sm2-ok", "110100666002")):
        run("key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", unit, "--ticket", "T",
            user="op_old_a")
    run("key", "suspend", "--cert", pki.leaf("rsa-ok")["pem"], "--reason", "挂失",
        user="op_old_a")
    run("key", "cancel", "--cert", pki.leaf("bjca-uid")["pem"], "--reason", "注销",
        user="sup_old")

    def answers(daemon):
        return {leaf: daemon.verify(pem).json()["outcome"] for leaf, pem in pems.items()}

    before = answers(d)
    # Its audit verify (it printed no head yet), and the head the database
    # kept, for this version's audit verify --anchor after the upgrade.
    assert "intact" in run("audit", "verify", user="aud_old").stdout
    head = db.cluster.psql("SELECT id || ':' || hash FROM certreg.audit_head", name).strip()
    monkeypatch.setattr(fixtures.daemon, "BUILD", BUILD)
    stop, during = threading.Event(), []
    loop = threading.Thread(target=verify_loop, args=(d, pems["bjca"], stop, during))
    loop.start()
    try:
        run("db", "migrate", binary=None)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert during and all(a[0] == "OK" and a[1] < 1.0 for a in during), during[:5]
    assert d.stop() == 0
    d2 = certregd(db, database={"conninfo": db.cluster.conninfo(name, daemon_role)})
    assert answers(d2) == before, (before, answers(d2))
    assert "intact" in run("audit", "verify", "--anchor", head, user="aud_old",
                           binary=None).stdout
    fresh, _ = new_database(db, "_fresh")
    admin(db.cluster.conninfo(fresh), "db", "migrate")
    for query in (CATALOG_SQL, SCHEMA_SQL):
        assert db.cluster.psql(query, name) == db.cluster.psql(query, fresh)
