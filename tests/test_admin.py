"""certreg-admin, the counter-staff CLI (contract section 6, issue 6).

Drives the built binary (and once the installed one) against a real
PostgreSQL: every command's success and refusals with the contract's exit
codes (0 done, 1 refused, 2 usage, 3 database unreachable), operators of two
offices, an auditor, --json for every command, tables aligned with Chinese
names, key id prefixes and --cert in PEM and DER. The `check` probe has
tests/test_probe.py.
"""
import calendar
import json
import os
import re
import subprocess
import time
import unicodedata

import pytest

from fixtures.cli import BUILD, REPO

ADMIN = BUILD / "certreg-admin"

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3


def run(conninfo, *args, binary=ADMIN, env=None):
    """certreg-admin [--db CONNINFO] ARGS -> CompletedProcess (never raises)."""
    cmd = [str(binary)]
    if conninfo is not None:
        cmd += ["--db", conninfo]
    cmd += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("CERTREG_DB", None)
    e.pop("CERTREG_SQL_DIR", None)
    # English, whatever the developer's terminal speaks (test_admin_zh.py
    # has the Chinese).
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        e.pop(var, None)
    e["LANG"] = "C.UTF-8"
    e.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=e)
    # Under make SANITIZER=... a report must fail the test, not pass as exit 1.
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    return p


def ok(conninfo, *args, **kw):
    p = run(conninfo, *args, **kw)
    assert p.returncode == OK, f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def refused(conninfo, *args, code=REFUSED, **kw):
    """Runs a command that must fail with code; returns its stderr."""
    p = run(conninfo, *args, **kw)
    assert p.returncode == code, f"{args}: want {code}, got {p.returncode}:\n{p.stdout}\n{p.stderr}"
    assert "certreg-admin: error: " in p.stderr, p.stderr
    return p.stderr


def js(conninfo, *args):
    """Runs a command with --json and parses its output."""
    return json.loads(ok(conninfo, "--json", *args).stdout)


def width(s):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def column(line, needle, start=0):
    """Display column where needle starts in line (searching from byte start)."""
    i = line.index(needle, start)
    return width(line[:i]), i + len(needle)


def cert_json(pki, name):
    """The `cert` jsonb of docs/REGISTRY-API.md for a leaf, as the daemon sends it."""
    leaf = pki.leaf(name)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return json.dumps({"sha256": leaf["sha256"], "key_id": leaf["key_id"],
                       "subject": f"CN={name},O=测试单位 {name}", "issuer": "CN=certreg Test Issuing CA",
                       "serial": leaf["serial"], "holder_id": leaf["holder_id"],
                       "credit_code": leaf["credit_code"], "not_before": iso(leaf["not_before"]),
                       "not_after": iso(leaf["not_after"])}, ensure_ascii=False)


def record_refusal(db, pki, name, subject=None):
    """A login attempt of leaf NAME refused as KEY_NOT_APPROVED, as the daemon
    records it (certreg.decide makes the pending registration). subject
    replaces the certificate's subject as reported."""
    leaf = pki.leaf(name)
    cert = cert_json(pki, name)
    if subject is not None:
        cert = json.dumps(dict(json.loads(cert), subject=subject), ensure_ascii=False)
    status = db.sql("SELECT key_status FROM certreg.decide("
                    f"'{leaf['key_id']}', '{cert}'::jsonb, '127.0.0.1', false)")
    status = status.strip()
    assert status == "none"


@pytest.fixture
def org(db, pki):
    """Two offices, a unit in each, and logins: an operator per office, a
    supervisor and an auditor. Returns a namespace of conninfos and names."""
    c = db.conninfo
    ok(c, "office", "add", "DC01", "--name", "东城管理部", "--address", "东城区某路1号",
       "--phone", "010-11111111")
    ok(c, "office", "add", "XC01", "--name", "西城管理部")
    ok(c, "unit", "add", "110101000001", "--name", "北京东城测试科技有限公司", "--office", "DC01",
       "--credit-code", pki.manifest["credit_codes"]["bjca"])
    ok(c, "unit", "add", "110102000001", "--name", "West Ltd", "--office", "XC01")
    suffix = db.name[-8:]
    logins = {role: f"{role}_{suffix}" for role in ("op_dc", "op_xc", "sup", "aud")}
    ok(c, "operator", "add", logins["op_dc"], "--office", "DC01")
    ok(c, "operator", "add", logins["op_xc"], "--office", "XC01", "--role", "operator")
    ok(c, "operator", "add", logins["sup"], "--office", "DC01", "--role", "supervisor")
    ok(c, "operator", "add", logins["aud"], "--office", "DC01", "--role", "auditor")

    class Org:
        owner = c
        op_dc = db.conninfo_as(logins["op_dc"])
        op_xc = db.conninfo_as(logins["op_xc"])
        sup = db.conninfo_as(logins["sup"])
        aud = db.conninfo_as(logins["aud"])
        names = logins
        dc_unit = "110101000001"
        xc_unit = "110102000001"
    return Org


# --- the command line itself ------------------------------------------------

def test_help_version_and_usage_errors():
    p = ok(None, "--version")
    assert re.match(r"certreg-admin \(certreg\) \d+\.\d+", p.stdout)
    p = ok(None, "--help")
    for cmd in ("db migrate", "office add", "office list", "operator add", "operator list",
                "operator remove", "unit set-status", "pending list",
                "key bind", "key expiring", "audit verify", "check", "cert check"):
        assert cmd in p.stdout
    for cmd in (["db", "migrate"], ["db", "status"], ["office", "add"], ["operator", "add"],
                ["unit", "add"], ["unit", "show"], ["unit", "list"], ["unit", "set-status"],
                ["pending", "list"], ["key", "bind"], ["key", "suspend"], ["key", "resume"],
                ["key", "cancel"], ["key", "show"], ["key", "list"], ["key", "expiring"],
                ["audit", "log"], ["audit", "verify"], ["check"]):
        p = ok(None, *cmd, "--help")
        assert p.stdout.startswith("Usage:\n  certreg-admin") and " ".join(cmd) in p.stdout
    # Usage errors: no database needed, exit 2, PostgreSQL-style messages.
    for args in (["frobnicate"], [], ["unit"], ["unit", "destroy"], ["--bogus", "unit", "list"],
                 ["unit", "add", "123456"],                      # --name, --office missing
                 ["unit", "add", "--name", "x", "--office", "1"],  # REGNO missing
                 ["unit", "show", "1", "2"], ["unit", "list", "--bogus"],
                 ["unit", "set-status", "123456", "asleep", "--reason", "x"],
                 ["key", "bind", "abcdef12", "--unit", "1"],     # --ticket missing
                 ["key", "bind", "abcdef12", "--unit", "1", "--ticket", "t", "--force"],
                 ["key", "suspend", "abcdef12"],                 # --reason missing
                 ["pending", "list", "--limit", "many"], ["key", "expiring", "--days", "-1"],
                 ["audit", "log", "--since", "tomorrow"], ["audit", "log", "--since", "7x"],
                 ["audit", "log", "--since", "-1d"], ["check"],
                 ["check", "--url", "http://127.0.0.1:1", "--warn-days", "x"]):
        p = run("host=/nonexistent", *args)
        assert p.returncode == USAGE, f"{args}: {p.returncode}\n{p.stderr}"
        assert p.stderr.startswith("certreg-admin: error: "), p.stderr


def test_unreachable_database_exits_3(tmp_path):
    err = refused("host=/nonexistent", "unit", "list", code=UNREACHABLE)
    assert "/nonexistent" in err
    # --db after the command, and CERTREG_DB, are used the same way.
    refused(None, "unit", "list", "--db", "host=/nonexistent", code=UNREACHABLE)
    refused(None, "--json", "pending", "list", env={"CERTREG_DB": "host=/nonexistent"},
            code=UNREACHABLE)
    refused("host=/nonexistent", "db", "migrate", code=UNREACHABLE)


# --- --json errors: {"error": code, "message": ...} on stdout ----------------------

def json_error(conninfo, *args, code, exit_code=REFUSED, env=None):
    """Runs a failing command with --json; checks the error object on stdout
    (the message is the first error on stderr) and returns it."""
    p = run(conninfo, "--json", *args, env=env)
    assert p.returncode == exit_code, f"{args}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert p.stdout.strip(), f"{args}: empty stdout\n{p.stderr}"
    got = json.loads(p.stdout)
    assert got["error"] == code, (args, got, p.stderr)
    assert got["message"], got
    assert p.stderr.index("certreg-admin: error: " + got["message"]) == \
        p.stderr.index("certreg-admin: error: "), (got, p.stderr)
    return got


def test_json_errors_usage_and_unreachable():
    for args in (["frobnicate"], [], ["unit"], ["unit", "destroy"], ["--bogus", "unit", "list"],
                 ["unit", "add", "123456"], ["unit", "show", "1", "2"],
                 ["unit", "set-status", "123456", "asleep", "--reason", "x"],
                 ["key", "bind", "abcdef12", "--unit", "1"], ["key", "show", "deadbeeg"],
                 ["pending", "list", "--limit", "many"], ["key", "expiring", "--days", "-1"],
                 ["audit", "log", "--since", "tomorrow"],
                 ["audit", "log", "--key", "abcdef12", "--cert", "/nonexistent.pem"], ["check"],
                 ["cert", "check", "--bogus"], ["cert", "check", "--cert", "/nonexistent.pem"]):
        json_error("host=/nonexistent", *args, code="usage", exit_code=USAGE)
    # --json after a bad option the command stopped at.
    p = run("host=/nonexistent", "unit", "list", "--bogus", "--json")
    assert p.returncode == USAGE and json.loads(p.stdout)["error"] == "usage"
    got = json_error("host=/nonexistent", "unit", "list", code="database_unreachable",
                     exit_code=UNREACHABLE)
    assert "/nonexistent" in got["message"]
    json_error(None, "pending", "list", code="database_unreachable", exit_code=UNREACHABLE,
               env={"CERTREG_DB": "host=/nonexistent"})
    # Without --json, stdout stays empty on an error.
    assert run("host=/nonexistent", "unit", "list").stdout == ""


def test_json_errors_name_the_refusal(org, db, pki):
    c = org.owner
    json_error(c, "unit", "show", "999999", code="not_found")
    json_error(c, "key", "list", "--unit", "999999", code="not_found")
    json_error(c, "key", "show", "ab" * 32, code="not_found")
    json_error(c, "key", "suspend", "abcdef0123", "--reason", "r", code="not_found")
    json_error(c, "key", "show", "--cert", "/nonexistent.pem", code="unreadable_certificate")
    got = json_error(c, "office", "add", "DC01", "--name", "again", code="already_exists")
    assert got["sqlstate"] == "CR003"
    got = json_error(c, "unit", "add", "12ab", "--name", "x", "--office", "DC01",
                     code="invalid_input")
    assert got["sqlstate"] == "CR001" and "registration" in got["message"]
    json_error(c, "unit", "add", "110101000009", "--name", "x", "--office", "ZZ99",
               code="not_found")
    json_error(org.op_dc, "operator", "add", "someone", "--office", "DC01",
               code="not_permitted")
    got = json_error(org.aud, "office", "add", "AU01", "--name", "x", code="not_permitted")
    assert got["sqlstate"] in ("CR007", "42501")
    bjca, ec = pki.leaf("bjca"), pki.leaf("ec-ok")
    ok(c, "key", "bind", "--cert", bjca["pem"], "--unit", org.dc_unit, "--ticket", "J-1")
    json_error(c, "key", "bind", "--cert", bjca["pem"], "--unit", org.xc_unit, "--ticket", "J-2",
               code="key_bound_elsewhere")
    json_error(c, "key", "bind", "--cert", pki.leaf("bjca-other")["pem"], "--unit",
               org.dc_unit, "--ticket", "J-3", code="credit_code_mismatch")
    ok(c, "key", "bind", "--cert", ec["pem"], "--unit", org.xc_unit, "--ticket", "J-4")
    ok(c, "key", "cancel", ec["key_id"], "--reason", "gone")
    json_error(c, "key", "resume", ec["key_id"], "--reason", "found", code="invalid_transition")
    ok(c, "unit", "set-status", org.xc_unit, "closed", "--reason", "gone")
    json_error(c, "key", "bind", "--cert", pki.leaf("rsa-ok")["pem"], "--unit", org.xc_unit,
               "--ticket", "J-5", code="unit_closed")
    # A CERT_* outcome of cert check is its own JSON, not an error object.
    p = run(c, "--json", "cert", "check", "--cert", ec["pem"], "--ca", pki.path("ca/trust.pem"))
    assert p.returncode == REFUSED and "outcome" in json.loads(p.stdout)
    assert "error" not in json.loads(p.stdout)


def test_a_login_without_a_certreg_role_is_told_what_is_missing(org, db):
    login = "norole_" + db.name[-8:]
    db.cluster.ensure_login(login)
    conn = db.conninfo_as(login)
    for args in (["unit", "list"], ["pending", "list"], ["unit", "show", org.dc_unit],
                 ["audit", "log"]):
        err = refused(conn, *args)
        assert f'your database login "{login}" has no certreg role' in err, err
        assert f"certreg-admin operator add {login} --office CODE" in err, err
        assert "permission denied" in err                 # the database's words, as detail
        assert "certreg-admin: detail: permission denied" in err, err
    got = json_error(conn, "unit", "list", code="no_role")
    assert got["sqlstate"] == "42501"
    # Granted a role by a supervisor, the same login works.
    ok(org.sup, "operator", "add", login, "--office", "DC01")
    assert org.dc_unit in ok(conn, "unit", "list").stdout


# --- migrations ---------------------------------------------------------------

def fresh_database(db, name):
    """An empty database beside db, for running migrations from scratch."""
    db.cluster.psql(f'CREATE DATABASE "{name}"')
    return db.cluster.conninfo(name)


def test_migrate_is_idempotent_and_status_reports(db):
    files = sorted(p.name for p in (REPO / "sql").glob("[0-9]*_*.sql"))
    st = js(db.conninfo, "db", "status")
    assert st["pending"] == [] and st["version"] == int(files[-1].split("_")[0])
    assert [a["version"] for a in st["applied"]] == [int(f.split("_")[0]) for f in files]
    p = ok(db.conninfo, "db", "migrate")
    assert "up to date" in p.stdout
    assert js(db.conninfo, "db", "migrate")["applied"] == []
    roles = db.sql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles"
                   " WHERE rolname LIKE 'certreg\\_%'").strip()
    for r in ("certreg_auditor", "certreg_daemon", "certreg_operator", "certreg_supervisor"):
        assert r in roles.split(",")


def test_migrate_fresh_database_and_sql_dir(db, tmp_path):
    conn = fresh_database(db, db.name + "_m")
    st = js(conn, "db", "status")
    assert st["version"] == 0 and len(st["pending"]) >= 1
    assert "not migrated" in ok(conn, "db", "status").stdout
    # Two concurrent runners: the advisory lock lets exactly one apply each file.
    procs = [subprocess.Popen([str(ADMIN), "--db", conn, "--json", "db", "migrate"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _, _ in outs), outs
    applied = [json.loads(o)["applied"] for _, o, _ in outs]
    assert sorted(applied, key=len)[0] == [] and sorted(applied, key=len)[1] == st["pending"]
    assert js(conn, "db", "status")["pending"] == []
    # An empty or missing SQL directory is an error, not "up to date".
    refused(conn, "db", "migrate", "--sql-dir", tmp_path, code=UNREACHABLE)
    refused(conn, "db", "status", code=UNREACHABLE, env={"CERTREG_SQL_DIR": str(tmp_path / "no")})


def test_each_function_lives_in_one_file_and_every_migrate_reapplies_them(db):
    """The current body of each rule is one file under sql/functions/; the
    numbered migrations define none but the two that 001's row-level
    security policies need at creation."""
    defined = {}
    pattern = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:certreg\.)?(\w+)\(", re.I)
    for f in sorted((REPO / "sql" / "functions").glob("*.sql")):
        for name in pattern.findall(f.read_text()):
            assert name not in defined, f"{name} in {defined.get(name)} and {f.name}"
            defined[name] = f.name
    for f in sorted((REPO / "sql").glob("[0-9]*_*.sql")):
        names = set(pattern.findall(f.read_text()))
        assert names <= ({"reads_all", "my_offices"} if f.name.startswith("001_") else set()), \
            (f.name, names)
    in_db = set(db.sql("SELECT string_agg(proname, ',') FROM pg_proc"
                       " WHERE pronamespace = 'certreg'::regnamespace").strip().split(","))
    assert in_db == set(defined)
    # A function changed behind the files' back is put back by db migrate.
    db.sql("CREATE OR REPLACE FUNCTION certreg.ping() RETURNS integer LANGUAGE sql AS 'SELECT -1'")
    assert db.sql("SELECT certreg.ping()").strip() == "-1"
    out = js(db.conninfo, "db", "migrate")
    assert out["applied"] == [] and out["function_files"] == len(
        list((REPO / "sql" / "functions").glob("*.sql")))
    assert int(db.sql("SELECT certreg.ping()").strip()) == out["version"]
    # ...with its grants: nobody but the daemon may call decide().
    assert db.sql("SELECT has_function_privilege('public', 'certreg.decide(text, jsonb, text,"
                  " boolean)', 'EXECUTE')").strip() == "f"
    assert db.sql("SELECT has_function_privilege('certreg_daemon', 'certreg.decide(text, jsonb,"
                  " text, boolean)', 'EXECUTE')").strip() == "t"


def test_only_certreg_roles_connect(db):
    """Review finding 4: PUBLIC kept CONNECT, so any login of the cluster
    could LISTEN on channel certreg (other offices' key ids) or NOTIFY it
    (every certregd drops its cache). db migrate gives CONNECT to the four
    group roles only, also to a database that got PUBLIC's back (made from
    a template or restored: privileges of a database are not copied)."""
    suffix = db.name[-8:]
    db.cluster.ensure_login("stranger_" + suffix)
    db.cluster.ensure_login("daemon_" + suffix, "certreg_daemon")
    ok(db.conninfo, "office", "add", "DC01", "--name", "东城")
    ok(db.conninfo, "operator", "add", "clerk_" + suffix, "--office", "DC01")
    ok(db.conninfo, "db", "migrate")
    assert db.sql("SELECT has_database_privilege('public', current_database(), 'CONNECT')"
                  ).strip() == "f"
    p = subprocess.run([str(db.cluster.bin / "psql"), "-X", "-d",
                        db.conninfo_as("stranger_" + suffix), "-c", "LISTEN certreg"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "CONNECT" in p.stderr, p.stdout + p.stderr
    # certreg-admin tells that login what it lacks, as for a statement
    # refused (test_a_login_without_a_certreg_role_is_told_what_is_missing).
    stranger = db.conninfo_as("stranger_" + suffix)
    p = run(stranger, "unit", "list")
    assert p.returncode != 0, p.stdout
    assert f'your database login "stranger_{suffix}" has no certreg role' in p.stderr, p.stderr
    assert f"certreg-admin operator add stranger_{suffix} --office CODE" in p.stderr, p.stderr
    json_error(stranger, "unit", "list", code="no_role", exit_code=p.returncode)
    assert db.sql("SELECT certreg.ping() > 0", user="daemon_" + suffix).strip() == "t"
    ok(db.conninfo_as("clerk_" + suffix), "unit", "list")


def test_an_operator_cannot_plant_code_that_db_migrate_runs(db):
    """Review finding 2 (certreg-admin and the SQL rules): on a database
    whose schema public still lets PUBLIC create (one upgraded from before
    PostgreSQL 15 keeps that), an operator put format() overloads there that
    match the migration's calls better than pg_catalog's variadic one; the
    next db migrate, a superuser's, ran them. Now the migration resolves no
    name through public, and takes CREATE on it away from PUBLIC."""
    suffix = db.name[-8:]
    clerk = "clerk_" + suffix
    ok(db.conninfo, "office", "add", "DC01", "--name", "东城")
    ok(db.conninfo, "operator", "add", clerk, "--office", "DC01")
    db.sql("GRANT CREATE ON SCHEMA public TO PUBLIC")
    grab = (f"BEGIN EXECUTE 'ALTER ROLE {clerk} SUPERUSER'; "
            "EXCEPTION WHEN OTHERS THEN NULL; END;")
    for args, call in (("a name", "a"), ("a text", "a"), ("a text, b text", "a, b"),
                       ("a name, b name", "a, b"), ("a text, b name", "a, b")):
        db.sql(f"CREATE FUNCTION public.format(f text, {args}) RETURNS text LANGUAGE plpgsql "
               f"AS $$BEGIN {grab} RETURN pg_catalog.format(f, {call}); END$$", user=clerk)
    # The runner's own lock statement: (text, integer) beats (text, bigint).
    db.sql("CREATE FUNCTION public.hashtextextended(t text, s integer) RETURNS bigint "
           f"LANGUAGE plpgsql AS $$BEGIN {grab} RETURN pg_catalog.hashtextextended(t, s); "
           "END$$", user=clerk)
    ok(db.conninfo, "db", "migrate")
    assert db.sql(f"SELECT rolsuper FROM pg_roles WHERE rolname = '{clerk}'").strip() == "f"
    assert db.sql(f"SELECT has_schema_privilege('{clerk}', 'public', 'CREATE')").strip() == "f"
    ok(db.conninfo_as(clerk), "unit", "list")


def test_failed_migration_leaves_nothing(db, tmp_path):
    conn = fresh_database(db, db.name + "_f")
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "001_ok.sql").write_text("CREATE TABLE public.t1 (x int);")
    (sql / "002_bad.sql").write_text("CREATE TABLE public.t2 (x int); SELECT 1/0;")
    (sql / "README").write_text("not a migration")
    err = refused(conn, "db", "migrate", "--sql-dir", sql, code=UNREACHABLE)
    assert "division by zero" in err and "002_bad.sql" in err
    assert "Nothing was applied" in err
    # One run is one transaction: the good file before the bad one is
    # undone with it (test_upgrade.py has why).
    st = js(conn, "db", "status", "--sql-dir", sql)
    assert st["version"] == 0 and st["pending"] == ["001_ok.sql", "002_bad.sql"]
    assert db.cluster.psql("SELECT to_regclass('public.t1') IS NULL AND"
                           " to_regclass('public.t2') IS NULL", db.name + "_f").strip() == "t"


def test_installed_binary_finds_its_sql(db, tmp_path):
    prefix = tmp_path / "prefix"
    p = subprocess.run(["make", "-C", str(REPO), "install", f"PREFIX={prefix}", "DESTDIR="],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    binary = prefix / "bin" / "certreg-admin"
    assert (prefix / "share/certreg/sql").is_dir()
    assert (prefix / "share/man/man1/certreg-admin.1").is_file()
    assert (prefix / "share/man/man8/certregd.8").is_file()
    conn = fresh_database(db, db.name + "_i")
    out = json.loads(ok(conn, "--json", "db", "migrate", binary=binary).stdout)
    assert out["sql_dir"] == str(prefix / "share/certreg/sql") and out["applied"]
    assert js(conn, "db", "status")["pending"] == []


# --- offices, units, operators --------------------------------------------------

def test_office_and_unit_refusals(db, pki):
    c = db.conninfo
    assert js(c, "office", "add", "HD01", "--name", "海淀管理部")["code"] == "HD01"
    refused(c, "office", "add", "HD01", "--name", "again")                # exists
    refused(c, "unit", "add", "123", "--name", "x", "--office", "HD01")   # regno too short
    # 6 to 20 digits (contract 6): the bounds, each side.
    for regno in ("12345", "1" * 21):
        err = refused(c, "unit", "add", regno, "--name", "x", "--office", "HD01")
        assert "registration number must be 6 to 20 digits" in err, err
    err = refused(c, "unit", "add", "12345a", "--name", "x", "--office", "HD01")
    assert "registration" in err.lower()
    err = refused(c, "unit", "add", "123456", "--name", "x", "--office", "HD01",
                  "--credit-code", pki.manifest["credit_code_invalid"])
    assert "credit" in err.lower()
    refused(c, "unit", "add", "123456", "--name", "x", "--office", "NOPE")  # no such office
    out = js(c, "unit", "add", "123456", "--name", "甲", "--office", "HD01",
             "--credit-code", pki.manifest["credit_code"])
    assert out == {"registration_no": "123456", "name": "甲", "office_code": "HD01",
                   "credit_code": pki.manifest["credit_code"]}
    refused(c, "unit", "add", "123456", "--name", "again", "--office", "HD01")
    ok(c, "unit", "add", "2" * 20, "--name", "乙", "--office", "HD01")
    # A refused command changed nothing.
    assert [u["registration_no"] for u in js(c, "unit", "list")] == ["123456", "2" * 20]


def test_unit_show_list_set_status(org):
    c = org.owner
    u = js(c, "unit", "show", org.dc_unit)
    assert u["registration_no"] == org.dc_unit and u["status"] == "active" and u["keys"] == []
    assert re.search(r"^Name: +北京东城测试科技有限公司$", ok(c, "unit", "show", org.dc_unit).stdout,
                     re.M)
    refused(c, "unit", "show", "999999")
    assert [x["registration_no"] for x in js(c, "unit", "list", "--office", "XC01")] == [org.xc_unit]
    assert ok(c, "unit", "list").stdout.rstrip().endswith("2 units")
    out = js(c, "unit", "set-status", org.xc_unit, "closed", "--reason", "注销")
    assert out["status"] == "closed"
    assert js(c, "unit", "show", org.xc_unit)["status"] == "closed"
    ok(c, "unit", "set-status", org.xc_unit, "active", "--reason", "reopened")
    refused(c, "unit", "set-status", "999999", "closed", "--reason", "x")


# --- unit list --search: a unit phones and gives its name, code or number ---

SEARCHED = [("110106000001", "丰台测试单位"), ("110106000002", "北京丰台另一单位"),
            ("110106000003", "百分_100%公司"), ("110106000004", "百分X100Y公司"),
            ("110106000005", "反斜\\杠公司")]


@pytest.fixture
def searched(org):
    """org, and five units of DC01 to find: two named 丰台, two whose
    names differ only where one has '_' and '%', one with a backslash."""
    for regno, name in SEARCHED:
        ok(org.owner, "unit", "add", regno, "--name", name, "--office", "DC01")
    return org


def found(conninfo, *args):
    return [u["registration_no"] for u in js(conninfo, "unit", "list", *args)]


def test_unit_list_search_by_name_credit_code_or_registration_number(searched, pki):
    org, c = searched, searched.op_dc
    # A part of the name, as the unit says it on the phone; by registration number.
    assert found(c, "--search", "丰台") == ["110106000001", "110106000002"]
    assert found(c, "--search", "丰台测试单位") == ["110106000001"]
    assert found(c, "--search", "东城测试科技") == [org.dc_unit]
    assert found(org.owner, "--search", "west") == [org.xc_unit]             # any case
    # A part of the credit code, in either case.
    code = pki.manifest["credit_codes"]["bjca"]
    assert found(c, "--search", code[4:12]) == [org.dc_unit]
    assert found(c, "--search", code[4:12].lower()) == [org.dc_unit]
    # The start of the registration number, not its middle; full-width
    # digits pasted from a form count as digits.
    assert found(c, "--search", "1101060") == [r for r, _ in SEARCHED]
    assert found(c, "--search", "１１０１０６０００００２") == ["110106000002"]
    assert found(c, "--search", "06000002") == []
    # Blanks pasted around the text are dropped.
    assert found(c, "--search", "\u3000丰台测试 ") == ["110106000001"]
    # --office still applies, and nothing matches.
    assert found(org.owner, "--search", "丰台", "--office", "XC01") == []
    assert found(c, "--search", "朝阳") == []
    # The table and its summary line, as unit list prints them.
    out = ok(c, "unit", "list", "--search", "丰台").stdout.splitlines()
    assert out[0].startswith("REGNO") and out[-1] == "2 units", out
    assert out[1].startswith("110106000001") and "丰台测试单位" in out[1], out


def test_unit_list_search_takes_percent_underscore_and_backslash_as_typed(searched):
    c = searched.op_dc
    assert found(c, "--search", "_100%") == ["110106000003"]
    assert found(c, "--search", "百分_") == ["110106000003"]
    assert found(c, "--search", "%") == ["110106000003"]
    assert found(c, "--search", "_") == ["110106000003"]
    assert found(c, "--search", "\\") == ["110106000005"]
    assert found(c, "--search", "斜\\杠") == ["110106000005"]
    assert found(c, "--search", "百分X100Y") == ["110106000004"]


def test_unit_list_search_of_nothing_is_refused(searched):
    """An empty cell pasted would have listed every unit as the search's result."""
    for typed in ("", " ", "\u3000", "\t\u200b "):
        for json_flag in ([], ["--json"]):
            p = run(searched.op_dc, *json_flag, "unit", "list", "--search", typed)
            assert p.returncode == USAGE, (typed, p.stdout)
            assert "registration_no" not in p.stdout and "110106" not in p.stdout, p.stdout
            assert "certreg-admin: error: --search needs some text to look for" in p.stderr, \
                p.stderr


def test_unit_list_limit(searched):
    c = searched.op_dc
    assert found(c, "--search", "丰台", "--limit", "1") == ["110106000001"]
    assert found(c, "--search", "1101060", "--limit", "3") == [r for r, _ in SEARCHED[:3]]
    # Without --search too; without --limit every unit, as before.
    assert found(c, "--limit", "2") == [searched.dc_unit, "110106000001"]
    assert len(found(c)) == 1 + len(SEARCHED)
    for bad in ("0", "-1", "many", "", "1.5"):
        err = refused(c, "unit", "list", "--search", "丰台", "--limit", bad, code=USAGE)
        assert "--limit must be a positive number" in err, err


def test_unit_list_search_json_is_unit_lists_own(searched):
    whole = {u["registration_no"]: u for u in js(searched.op_dc, "unit", "list")}
    got = js(searched.op_dc, "unit", "list", "--search", "丰台测试")
    assert got == [whole["110106000001"]]
    assert set(got[0]) == {"registration_no", "name", "office_code", "office_name",
                           "credit_code", "status", "key_count", "created_at", "updated_at"}


def test_unit_list_search_finds_no_unit_of_another_office(searched, db, pki):
    org = searched
    code = pki.manifest["credit_codes"]["bjca"]
    for typed in ("丰台", "丰台测试单位", code, "110101000001", "110106", "%", "_"):
        assert found(org.op_xc, "--search", typed) == [], typed
    assert found(org.op_xc, "--search", "West") == [org.xc_unit]
    # Supervisors and auditors read every office.
    assert found(org.sup, "--search", "West") == found(org.aud, "--search", "West") == \
        [org.xc_unit]
    # The function behind it, called from psql with anything at all, names
    # no unit the login may not read.
    got = db.sql("SELECT string_agg(r, ',' ORDER BY r) FROM certreg.unit_search('%', '%', '%') r",
                 user=org.names["op_xc"]).strip()
    assert got == org.xc_unit, got
    got = db.sql("SELECT count(*) FROM certreg.unit_search(NULL, NULL, NULL)",
                 user=org.names["op_dc"]).strip()
    assert got == "0", got


def test_unit_list_search_of_sql_metacharacters_changes_nothing(searched, db):
    """A hostile or careless text: quotes, a backslash at the end (an
    invalid LIKE pattern if it reached the database unescaped), comment
    marks, a statement. Each is a text to look for: exit 0, no unit (but
    the one whose name has a backslash, for a lone one), no error, and the
    units are as they were."""
    org = searched
    before = js(org.owner, "unit", "list")
    for typed in ("'", "\"", "\\", "丰台\\", "' OR '1'='1", "'; DROP TABLE certreg.units; --",
                  "%' OR registration_no LIKE '%", "$1", "E'\\x27'", "\\%", "\\_", "/*"):
        want = ["110106000005"] if typed == "\\" else []
        for who in (org.op_dc, org.owner):
            p = run(who, "--json", "unit", "list", "--search", typed)
            assert p.returncode == OK and p.stderr == "", (typed, p.stderr)
            assert [u["registration_no"] for u in json.loads(p.stdout)] == want, (typed, p.stdout)
    assert js(org.owner, "unit", "list") == before
    assert js(org.aud, "audit", "verify")["ok"] is True


def test_unit_list_search_on_a_schema_before_016_says_to_migrate(searched, db):
    """The new program before db migrate: the database has no
    unit_search(); the clerk is told what to ask for. unit list without
    --search works as before."""
    db.sql("DROP FUNCTION certreg.unit_search(text, text, text)")
    p = run(searched.op_dc, "unit", "list", "--search", "丰台")
    assert p.returncode == UNREACHABLE and p.stdout == "", p.stdout
    assert "migration 016" in p.stderr and "certreg-admin db migrate" in p.stderr, p.stderr
    assert len(found(searched.op_dc)) == 1 + len(SEARCHED)


def test_table_alignment_with_chinese_names(db):
    c = db.conninfo
    ok(c, "office", "add", "CY01", "--name", "朝阳管理部")
    rows = [("100000000001", "北京朝阳区某某科技有限责任公司"), ("100000000002", "ACME Ltd"),
            ("100000000003", "中关村（北京）软件")]
    for regno, name in rows:
        ok(c, "unit", "add", regno, "--name", name, "--office", "CY01")
    lines = ok(c, "unit", "list").stdout.splitlines()
    header, body, summary = lines[0], lines[1:-1], lines[-1]
    assert summary == "3 units"
    want = [column(header, h)[0] for h in ("REGNO", "NAME", "OFFICE", "STATUS")]
    for (regno, name), line in zip(rows, body):
        got, at = [], 0
        for value in (regno, name, "CY01", "active"):
            col, at = column(line, value, at)
            got.append(col)
        assert got == want, f"{line!r} misaligned: {got} != {want}"
        assert not line.endswith(" ")


def test_operators_of_two_offices_cannot_touch_each_others_units(org, pki):
    # Each operator changes the units of their own office...
    ok(org.op_dc, "unit", "set-status", org.dc_unit, "closed", "--reason", "test")
    ok(org.op_dc, "unit", "set-status", org.dc_unit, "active", "--reason", "test")
    ok(org.op_xc, "key", "bind", "--cert", pki.leaf("rsa-ok")["pem"], "--unit", org.xc_unit,
       "--ticket", "XC-1")
    # ...and not the other office's: refused, exit 1, nothing changed.
    refused(org.op_xc, "unit", "set-status", org.dc_unit, "closed", "--reason", "x")
    refused(org.op_dc, "unit", "set-status", org.xc_unit, "closed", "--reason", "x")
    refused(org.op_dc, "key", "suspend", pki.leaf("rsa-ok")["key_id"], "--reason", "x")
    refused(org.op_xc, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", org.dc_unit,
            "--ticket", "x")
    refused(org.op_xc, "unit", "add", "110101000009", "--name", "x", "--office", "DC01")
    assert js(org.owner, "unit", "show", org.dc_unit)["status"] == "active"
    assert js(org.owner, "unit", "show", org.dc_unit)["keys"] == []
    assert js(org.owner, "key", "show", pki.leaf("rsa-ok")["key_id"])["association"]["status"] \
        == "approved"
    # Operators add neither offices nor operators.
    refused(org.op_dc, "office", "add", "ZZ01", "--name", "x")
    refused(org.op_dc, "operator", "add", "someone_else", "--office", "DC01")


def test_office_and_operator_lists_and_operator_remove(org, db, pki):
    offices = js(org.op_dc, "office", "list")
    assert [o["code"] for o in offices] == ["DC01", "XC01"]
    dc = offices[0]
    assert dc["name"] == "东城管理部" and dc["units"] == 1 and dc["operators"] == 3
    # Row-level security: an operator counts only the units they may see.
    assert js(org.op_dc, "office", "list")[1]["units"] == 0
    assert js(org.owner, "office", "list")[1]["units"] == 1
    p = ok(org.op_dc, "office", "list")
    assert "东城管理部" in p.stdout and "2 offices" in p.stdout
    ops = {o["login"]: o for o in js(org.aud, "operator", "list")}
    assert ops[org.names["op_xc"]]["offices"] == "XC01"
    assert ops[org.names["sup"]]["role"] == "supervisor"
    only_xc = js(org.op_dc, "operator", "list", "--office", "XC01")
    assert [o["login"] for o in only_xc] == [org.names["op_xc"]]
    refused(org.op_dc, "office", "list", "--office", "DC01", code=USAGE)
    # Only a supervisor removes, never themselves; unknown logins and
    # offices are named.
    refused(org.op_dc, "operator", "remove", org.names["op_xc"])
    refused(org.sup, "operator", "remove", org.names["sup"])
    err = refused(org.sup, "operator", "remove", "nobody_at_all")
    assert "nobody_at_all" in err
    err = refused(org.sup, "operator", "remove", org.names["op_xc"], "--office", "DC01")
    assert "DC01" in err
    ok(org.op_xc, "unit", "list")
    out = js(org.sup, "operator", "remove", org.names["op_xc"], "--office", "XC01")
    assert out == {"login": org.names["op_xc"], "office_code": "XC01"}
    # With no office left the login has no certreg role: it reads nothing.
    assert org.names["op_xc"] not in json.dumps(js(org.sup, "operator", "list"))
    p = run(org.op_xc, "unit", "list")
    assert p.returncode != OK
    refused(org.op_xc, "key", "bind", "--cert", pki.leaf("rsa-ok")["pem"], "--unit",
            org.xc_unit, "--ticket", "X", code=p.returncode)
    log = js(org.aud, "audit", "log")
    removal = [e for e in log if e["action"] == "operator_remove"]
    assert len(removal) == 1 and org.names["op_xc"] in json.dumps(removal[0])
    ok(org.aud, "audit", "verify")


def member_of(db, login):
    """The certreg group roles LOGIN is a member of, as the rules see them."""
    return db.sql("SELECT string_agg(g, ',' ORDER BY g) FROM unnest(ARRAY['certreg_operator',"
                  " 'certreg_supervisor', 'certreg_auditor']) g"
                  f" WHERE pg_has_role('{login}', g, 'MEMBER')").strip()


def test_a_changed_role_replaces_the_old_one_in_every_office(org, db):
    """Review finding (operator roles): operator_add granted the new role and
    kept the old one, operator_remove revoked only the role operators named.
    A login has one role, whichever office it was (re-)added through."""
    n = org.names
    # A supervisor of DC01 re-added through XC01 as an operator: an operator
    # of both offices, no longer a supervisor anywhere.
    ok(org.owner, "operator", "add", n["sup"], "--office", "XC01", "--role", "operator")
    assert member_of(db, n["sup"]) == "certreg_operator", "still a supervisor"
    ops = {o["login"]: o for o in js(org.owner, "operator", "list")}
    assert ops[n["sup"]]["role"] == "operator" and ops[n["sup"]]["offices"] == "DC01, XC01"
    refused(org.sup, "office", "add", "ZZ01", "--name", "x")
    # An operator made an auditor changes nothing any more.
    ok(org.owner, "operator", "add", n["op_dc"], "--office", "DC01", "--role", "auditor")
    assert member_of(db, n["op_dc"]) == "certreg_auditor"
    refused(org.op_dc, "unit", "add", "110101000002", "--name", "x", "--office", "DC01")
    # An auditor made an operator reads its own office only.
    ok(org.owner, "operator", "add", n["aud"], "--office", "DC01", "--role", "operator")
    assert member_of(db, n["aud"]) == "certreg_operator"
    assert [u["registration_no"] for u in js(org.aud, "unit", "list")] == [org.dc_unit]
    log = [e for e in js(org.owner, "audit", "log") if e["action"] == "operator_add"]
    assert {"login": n["aud"], "role": "auditor"} in [e["before"] for e in log]
    # Removed: no certreg role at all, whatever it was given before.
    ok(org.owner, "operator", "remove", n["sup"])
    assert member_of(db, n["sup"]) == ""
    refused(org.sup, "office", "add", "ZZ01", "--name", "x")
    ok(org.owner, "audit", "verify")


def test_migration_takes_away_the_roles_old_rules_left(org, db):
    """013_operator_roles.sql: memberships the old operator_add/remove left
    behind are revoked; a login certreg-admin never added keeps its own."""
    n = org.names
    db.sql(f'GRANT certreg_supervisor TO "{n["op_dc"]}"')         # re-added, old rule
    ok(org.owner, "operator", "remove", n["op_xc"])
    db.sql(f'GRANT certreg_auditor TO "{n["op_xc"]}"')            # removed, old rule
    db.cluster.ensure_login("outsider_" + db.name[-8:], "certreg_auditor")
    db.sql("BEGIN;" + (REPO / "sql" / "013_operator_roles.sql").read_text() + "COMMIT;")
    assert member_of(db, n["op_dc"]) == "certreg_operator"
    assert member_of(db, n["op_xc"]) == ""
    assert member_of(db, n["sup"]) == "certreg_supervisor"
    assert member_of(db, "outsider_" + db.name[-8:]) == "certreg_auditor"


def test_auditor_reads_and_changes_nothing(org, pki):
    ok(org.owner, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", org.dc_unit,
       "--ticket", "DC-1")
    log = js(org.aud, "audit", "log")
    assert any(e["key_id"] == pki.leaf("bjca")["key_id"] for e in log)
    ok(org.aud, "audit", "verify")
    ok(org.aud, "unit", "list")
    before = len(log)
    refused(org.aud, "unit", "add", "110101000002", "--name", "x", "--office", "DC01")
    refused(org.aud, "unit", "set-status", org.dc_unit, "closed", "--reason", "x")
    refused(org.aud, "key", "suspend", pki.leaf("bjca")["key_id"], "--reason", "x")
    refused(org.aud, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit", org.dc_unit,
            "--ticket", "x")
    refused(org.aud, "office", "add", "ZZ01", "--name", "x")
    assert len(js(org.owner, "audit", "log")) == before
    assert js(org.owner, "key", "show", pki.leaf("bjca")["key_id"])["association"]["status"] \
        == "approved"


# Terminal controls: C0 and DEL, C1 (U+0080-U+009F: U+009B is CSI to xterm
# and VTE in UTF-8), and the bidi embeddings, overrides and isolates.
TERMINAL_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f"
                               "\u202a-\u202e\u2066-\u2069]")


def test_hostile_text_cannot_drive_another_clerks_terminal(org, db, pki):
    # An operator of one office writes escape sequences, a forged line and a
    # bidi override into every free-text field it owns, and into the subject
    # of a certificate planted with key_bind() from psql (shown to the
    # supervisor; since 018 no longer to another office's clerk).
    evil = ("Evil\x1b]0;pwned\x07\x1b[2J\nStatus:      active\u009b31m"
            "\u202egnp.exe\u2066x\u2069\x7f")
    ok(org.op_xc, "unit", "add", "110102000002", "--name", evil, "--office", "XC01")
    ok(org.op_xc, "unit", "set-status", "110102000002", "closed", "--reason", evil)
    leaf = pki.leaf("ec-ok")
    cert = json.dumps(dict(json.loads(cert_json(pki, "ec-ok")), subject=evil, sha256="0" * 64),
                      ensure_ascii=False)
    ok(org.owner, "unit", "add", "110102000003", "--name", "Good", "--office", "XC01")
    db.sql(f"SELECT certreg.key_bind('{leaf['key_id']}', '110102000003', '{evil}', false, "
           f"'{evil}', '{cert}'::jsonb)".replace("\x00", ""), user=org.names["op_xc"])
    ok(org.op_xc, "key", "suspend", leaf["key_id"], "--reason", evil)
    shown = {
        "unit show": ok(org.sup, "unit", "show", "110102000002").stdout,
        "unit list": ok(org.sup, "unit", "list").stdout,
        "audit log": ok(org.aud, "audit", "log").stdout,
        "key show": ok(org.sup, "key", "show", leaf["key_id"]).stdout,
        "key list": ok(org.sup, "key", "list", "--unit", "110102000003").stdout,
    }
    for what, out in shown.items():
        assert "Evil" in out or "gnp" in out or "Good" in out, (what, out)
        assert not TERMINAL_CONTROLS.search(out), f"{what}: {out!r}"
    assert "Evil" not in refused(org.op_dc, "key", "show", leaf["key_id"])
    # The forged line is no line: unit show has one Status, the real one.
    assert re.findall(r"^Status: +(\S+)$", shown["unit show"], re.M) == ["closed"]
    # --json keeps every character (jansson escapes the C0 controls).
    assert js(org.sup, "unit", "show", "110102000002")["name"] == evil


def test_every_bidi_mark_is_cleaned_and_chinese_kept(org):
    """The bidi marks are three: U+200E, U+200F and U+061C ARABIC LETTER
    MARK, which a terminal that reorders text obeys like U+200F (the digits
    after it become Arabic numbers, and "12 34" shows as "34 12"). The
    first fix cleaned two of them. Chinese, and the invisible characters
    that reorder nothing, stay as stored."""
    name = "北京示例科技有限公司\u061c 12 34\u200b"
    ok(org.op_xc, "unit", "add", "110102000004", "--name", name, "--office", "XC01")
    shown = ok(org.sup, "unit", "show", "110102000004").stdout
    assert re.search("^Name: +北京示例科技有限公司  12 34\u200b$", shown, re.M), shown
    for out in (shown, ok(org.sup, "unit", "list").stdout):
        assert "北京示例科技有限公司" in out and not TERMINAL_CONTROLS.search(out), repr(out)


def test_the_client_encoding_cannot_smuggle_terminal_controls(org):
    """certreg-admin writes UTF-8 (tables, widths and table_clean's byte
    patterns are UTF-8's) but let libpq take PGCLIENTENCODING: a counter PC
    whose terminal speaks GB18030 and sets it to match got GB18030 bytes,
    where U+009B (CSI) and U+202E are no UTF-8 pattern, and its terminal
    decoded them and obeyed. The session's encoding is now UTF-8 always."""
    evil = "北京\u009b2J\u202eabc"
    ok(org.op_xc, "unit", "add", "110102000005", "--name", evil, "--office", "XC01")
    for cmd in (("unit", "show", "110102000005"), ("unit", "list")):
        raw = subprocess.run([str(ADMIN), "--db", org.sup, *cmd], capture_output=True,
                             timeout=60, env={**os.environ, "LANG": "zh_CN.GB18030",
                                              "PGCLIENTENCODING": "GB18030"}).stdout
        assert "北京".encode() in raw, raw
        assert not TERMINAL_CONTROLS.search(raw.decode("utf-8", "replace")), raw


# --- keys -----------------------------------------------------------------------

def test_key_bind_by_cert_pem_and_der_and_lifecycle(org, pki):
    c = org.owner
    bjca = pki.leaf("bjca")
    out = js(c, "key", "bind", "--cert", bjca["der"], "--unit", org.dc_unit, "--ticket", "T-1")
    assert out["key_id"] == bjca["key_id"] and out["registration_no"] == org.dc_unit
    # The same key, now by PEM, to another unit: bound elsewhere, refused.
    refused(c, "key", "bind", "--cert", bjca["pem"], "--unit", org.xc_unit, "--ticket", "T-2")
    # The certificate was recorded as seen, with its validity.
    shown = js(c, "key", "show", "--cert", bjca["pem"])
    assert shown["key_id"] == bjca["key_id"]
    assert shown["association"]["registration_no"] == org.dc_unit
    assert [x["sha256"] for x in shown["certificates"]] == [bjca["sha256"]]
    assert shown["certificates"][0]["not_after"] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bjca["not_after"]))
    assert any(e["operator"] for e in shown["audit"])
    text = ok(c, "key", "show", bjca["key_id"][:8]).stdout
    assert bjca["key_id"] in text and org.dc_unit in text
    # suspend -> resume -> cancel; resuming a cancelled key is refused.
    for action, status in (("suspend", "suspended"), ("resume", "approved"),
                           ("cancel", "cancelled")):
        out = js(c, "key", action, bjca["key_id"][:12], "--reason", f"{action} it")
        assert out["key_id"] == bjca["key_id"]
        assert js(c, "key", "show", bjca["key_id"])["association"]["status"] == status
    refused(c, "key", "resume", bjca["key_id"], "--reason", "found")
    # Contract 3: every command that takes a key id takes --cert instead.
    ec = pki.leaf("ec-ok")
    ok(c, "key", "bind", "--cert", ec["pem"], "--unit", org.xc_unit, "--ticket", "T-C")
    for action, status, cert in (("suspend", "suspended", ec["der"]),
                                 ("resume", "approved", ec["pem"]),
                                 ("cancel", "cancelled", ec["der"])):
        assert js(c, "key", action, "--cert", cert, "--reason", "r")["key_id"] == ec["key_id"]
        assert js(c, "key", "show", ec["key_id"])["association"]["status"] == status
    # key list, by unit.
    keys = js(c, "key", "list", "--unit", org.dc_unit)
    assert [k["key_id"] for k in keys] == [bjca["key_id"]]
    assert ok(c, "key", "list", "--unit", org.dc_unit).stdout.rstrip().endswith("1 key")
    refused(c, "key", "list", "--unit", "999999")
    actions = [e["key_id"] for e in js(c, "audit", "log", "--key", bjca["key_id"][:10])]
    assert len(actions) >= 4 and set(actions) == {bjca["key_id"]}


def test_credit_code_mismatch_needs_a_supervisors_force(org, pki):
    other = pki.leaf("bjca-other")   # carries another unit's credit code
    refused(org.op_dc, "key", "bind", "--cert", other["pem"], "--unit", org.dc_unit,
            "--ticket", "T-3")
    refused(org.op_dc, "key", "bind", "--cert", other["pem"], "--unit", org.dc_unit,
            "--ticket", "T-3", "--force", "--reason", "papers checked")
    refused(org.sup, "key", "bind", "--cert", other["pem"], "--unit", org.dc_unit,
            "--ticket", "T-3", "--force", code=USAGE)                    # no --reason
    out = js(org.sup, "key", "bind", "--cert", other["pem"], "--unit", org.dc_unit,
             "--ticket", "T-3", "--force", "--reason", "papers checked")
    assert out["forced"] is True


def test_key_prefixes(org, pki):
    c = org.owner
    a = "deadbeef" + "1" + "0" * 55
    b = "deadbeef" + "2" + "0" * 55
    ok(c, "key", "bind", a, "--unit", org.dc_unit, "--ticket", "P-1")
    ok(c, "key", "bind", b.upper(), "--unit", org.xc_unit, "--ticket", "P-2")
    # Ambiguous: refused, both candidates listed.
    err = refused(c, "key", "show", "deadbeef")
    assert a in err and b in err and "ambiguous" in err
    refused(c, "key", "suspend", "DEADBEEF", "--reason", "x")
    # Unique prefix, upper case accepted.
    assert js(c, "key", "show", b.upper())["key_id"] == b
    assert js(c, "key", "suspend", "DEADBEEF2", "--reason", "lost")["key_id"] == b
    # Unknown, too short, not hex.
    refused(c, "key", "show", "0123456789abcdef")
    refused(c, "key", "show", "deadbee", code=USAGE)
    refused(c, "key", "show", "deadbeeg", code=USAGE)
    refused(c, "key", "show", a + "0", code=USAGE)
    refused(c, "key", "show", a[:8], "--cert", pki.leaf("ec-ok")["pem"], code=USAGE)
    refused(c, "key", "show", "--cert", "/nonexistent.pem")


def test_pending_list(org, db, pki):
    c = org.owner
    for name in ("ec-ok", "bjca", "rsa-ok"):
        record_refusal(db, pki, name)
        time.sleep(0.05)
    record_refusal(db, pki, "ec-ok")                          # a second attempt
    pend = js(c, "pending", "list")
    assert [p["key_id"] for p in pend] == [pki.leaf(n)["key_id"] for n in
                                           ("ec-ok", "rsa-ok", "bjca")]     # newest first
    assert pend[0]["attempts"] == 2 and pend[1]["attempts"] == 1
    assert pend[0]["last_seen"] >= pend[0]["first_seen"]
    assert len(js(c, "pending", "list", "--limit", "1")) == 1
    # --search by credit code, holder id and unit name fragments.
    bjca = pki.leaf("bjca")
    for frag in (bjca["credit_code"][2:12], bjca["holder_id"].lower(), "测试单位 bjca"):
        assert [p["key_id"] for p in js(c, "pending", "list", "--search", frag)] == \
            [bjca["key_id"]], frag
    assert js(c, "pending", "list", "--search", "%") == []
    assert "pending key" in ok(c, "pending", "list").stdout
    # The office is known for a key whose credit code is an active unit's.
    assert [p["key_id"] for p in js(c, "pending", "list", "--office", "DC01")] == \
        [bjca["key_id"]]
    # Binding takes it off the list (by prefix, as staff type it).
    ok(c, "key", "bind", bjca["key_id"][:8], "--unit", org.dc_unit, "--ticket", "P-9")
    assert bjca["key_id"] not in [p["key_id"] for p in js(c, "pending", "list")]


def test_pending_list_fits_100_columns(org, db, pki):
    c = org.owner
    long_name = "北京市东城区某某某某科技发展有限责任公司第一分公司"
    subject = f"C=CN,ST=北京,L=北京,O={long_name},OU=财务部,CN={long_name}"
    record_refusal(db, pki, "bjca", subject=subject)
    record_refusal(db, pki, "ec-ok")
    out = ok(c, "pending", "list").stdout
    lines = out.splitlines()
    assert max(width(line) for line in lines) <= 100, "\n".join(
        f"{width(line):3} {line}" for line in lines)
    header, rows = lines[0], lines[1:3]
    # The columns still line up (display width, CJK double) and the cut
    # value ends in the ellipsis.
    for name in ("CREDIT CODE", "ATTEMPTS", "LAST"):
        col = column(header, name)[0]
        for row in rows:
            assert width(row) >= col, (name, row)
    bjca_row = next(r for r in rows if r.startswith(pki.leaf("bjca")["key_id"][:16]))
    assert "…" in bjca_row and long_name not in bjca_row
    assert pki.leaf("bjca")["credit_code"] in bjca_row          # not cut
    cc = column(header, "CREDIT CODE")[0]
    assert column(bjca_row, pki.leaf("bjca")["credit_code"])[0] == cc
    # --json has the whole subject and the first attempt.
    pend = {p["key_id"]: p for p in js(c, "pending", "list")}
    assert pend[pki.leaf("bjca")["key_id"]]["subject"] == subject
    assert pend[pki.leaf("bjca")["key_id"]]["first_seen"]


def test_key_expiring(org, pki):
    c = org.owner
    ok(c, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", org.dc_unit,
       "--ticket", "E-1")
    ok(c, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit", org.xc_unit,
       "--ticket", "E-2")
    days = {n: (pki.leaf(n)["not_after"] - time.time()) / 86400 for n in ("bjca", "ec-ok")}
    horizon = int(min(days.values())) + 1
    soon = js(c, "key", "expiring", "--days", horizon)
    first = min(days, key=days.get)
    assert [k["key_id"] for k in soon] == [pki.leaf(first)["key_id"]]
    assert js(c, "key", "expiring", "--days", 0) == []
    everything = js(c, "key", "expiring", "--days", int(max(days.values())) + 1)
    assert len(everything) == 2
    ok(c, "key", "suspend", pki.leaf(first)["key_id"], "--reason", "lost")
    assert js(c, "key", "expiring", "--days", horizon) == []   # approved keys only
    assert ok(c, "key", "expiring").stdout.rstrip().endswith("keys")


def test_key_expiring_says_its_window(org):
    for days, env in ((30, {"TZ": "UTC"}), (1, {"TZ": "Asia/Shanghai"})):
        args = ["key", "expiring"] + (["--days", str(days)] if days != 30 else [])
        first = ok(org.owner, *args, env=env).stdout.splitlines()[0]
        m = re.fullmatch(rf"Keys whose certificate expires within {days} days? \(before "
                         r"(\d{4}-\d\d-\d\d \d\d:\d\d)\) or has expired:", first)
        assert m, first
        offset = 8 * 3600 if env["TZ"] == "Asia/Shanghai" else 0   # shown in local time
        end = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M"))
        assert abs(end - offset - (time.time() + days * 86400)) < 120, first
    # JSON stays the list of keys.
    assert js(org.owner, "key", "expiring") == []


# --- audit ----------------------------------------------------------------------

def test_audit_log_filters_and_verify(org, pki):
    c = org.owner
    ok(org.op_dc, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", org.dc_unit,
       "--ticket", "A-1")
    ok(org.op_xc, "unit", "set-status", org.xc_unit, "closed", "--reason", "gone")
    log = js(c, "audit", "log")
    assert log and all({"id", "at", "operator", "action"} <= set(e) for e in log)
    assert [e["id"] for e in log] == sorted(e["id"] for e in log)
    by_op = js(c, "audit", "log", "--operator", org.names["op_xc"])
    assert by_op and all(e["operator"] == org.names["op_xc"] for e in by_op)
    by_unit = js(c, "audit", "log", "--unit", org.xc_unit)
    assert by_unit and all(e["registration_no"] == org.xc_unit for e in by_unit)
    assert js(c, "audit", "log", "--since", "2999-01-01") == []
    assert len(js(c, "audit", "log", "--since", "2000-01-01 00:00")) == len(log)
    assert len(js(c, "audit", "log", "--since", "2000-01-01T00:00:00Z")) == len(log)
    assert ok(c, "audit", "log").stdout.rstrip().endswith("entries")
    assert js(c, "audit", "verify")["ok"] is True
    assert "intact" in ok(c, "audit", "verify").stdout


def test_audit_log_by_cert_is_the_same_as_by_key(org, tmp_path, pki):
    """Contract 3: --cert FILE instead of the key id, through the same rule
    as the key commands (admin/keyref.c)."""
    c = org.owner
    bjca, ec = pki.leaf("bjca"), pki.leaf("ec-ok")
    ok(org.op_dc, "key", "bind", "--cert", bjca["pem"], "--unit", org.dc_unit, "--ticket", "C-1")
    ok(org.op_xc, "key", "bind", "--cert", ec["pem"], "--unit", org.xc_unit, "--ticket", "C-2")
    ok(org.sup, "key", "suspend", bjca["key_id"][:8], "--reason", "lost")
    by_key = js(c, "audit", "log", "--key", bjca["key_id"])
    assert len(by_key) == 2 and {e["key_id"] for e in by_key} == {bjca["key_id"]}
    assert [e["action"] for e in by_key] == ["bind", "suspend"], by_key
    for cert in (bjca["pem"], bjca["der"]):
        assert js(c, "audit", "log", "--cert", cert) == by_key
        assert json.loads(ok(c, "audit", "log", "--cert", cert, "--json").stdout) == by_key
    assert js(c, "audit", "log", "--key", bjca["key_id"][:8]) == by_key
    assert ok(c, "audit", "log", "--cert", bjca["pem"]).stdout == \
        ok(c, "audit", "log", "--key", bjca["key_id"]).stdout
    # With the other filters, as --key.
    assert js(c, "audit", "log", "--cert", bjca["pem"], "--operator", org.names["sup"]) == \
        by_key[1:]
    assert js(c, "audit", "log", "--cert", bjca["pem"], "--unit", org.xc_unit) == []
    # A certificate whose key has no audit entry: what its whole key id gives.
    none = pki.leaf("rsa-ok")
    assert js(c, "audit", "log", "--cert", none["pem"]) == \
        js(c, "audit", "log", "--key", none["key_id"]) == []
    assert ok(c, "audit", "log", "--cert", none["pem"]).stdout == \
        ok(c, "audit", "log", "--key", none["key_id"]).stdout
    # Both is a usage error, before the database is asked.
    for conninfo in (c, "host=/nonexistent"):
        err = refused(conninfo, "audit", "log", "--key", bjca["key_id"], "--cert", bjca["pem"],
                      code=USAGE)
        assert "give either a key id or --cert, not both" in err, err
        json_error(conninfo, "audit", "log", "--cert", bjca["pem"], "--key", bjca["key_id"][:8],
                   code="usage", exit_code=USAGE)
    # A file that is not a certificate: the error of the other --cert commands.
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for bad in ("/nonexistent.pem", junk, bjca["key"]):
        want = json_error(c, "key", "show", "--cert", bad, code="unreadable_certificate")
        assert json_error(c, "audit", "log", "--cert", bad, code="unreadable_certificate") == want
        assert refused(c, "audit", "log", "--cert", bad) == refused(c, "key", "show", "--cert", bad)


def test_audit_log_since_today_yesterday_and_days(org, db):
    c = org.owner
    env = {"TZ": "Asia/Shanghai"}                # "today" is the local day
    ids = [e["id"] for e in js(c, "audit", "log")]
    assert len(ids) >= 3
    # Move two entries back in time (a superuser bypassing the append-only
    # rules): one to yesterday noon and one to three days ago, Beijing time.
    bj = time.gmtime(time.time() + 8 * 3600)
    midnight_utc = calendar.timegm((bj.tm_year, bj.tm_mon, bj.tm_mday, 0, 0, 0)) - 8 * 3600
    yesterday_noon = midnight_utc - 12 * 3600
    three_days = time.time() - 3 * 86400 - 600
    table = db.sql("SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n"
                   " ON n.oid = c.relnamespace WHERE n.nspname = 'certreg' AND c.relkind = 'r'"
                   " AND c.relname = 'audit'").strip()
    db.sql("SET session_replication_role = replica;"
           f" UPDATE {table} SET at = to_timestamp({yesterday_noon}) WHERE id = {ids[1]};"
           f" UPDATE {table} SET at = to_timestamp({three_days}) WHERE id = {ids[0]}")

    def since(arg):
        p = run(c, "--json", "audit", "log", "--since", arg, env=env)
        assert p.returncode == OK, p.stderr
        return {e["id"] for e in json.loads(p.stdout)}
    rest = set(ids[2:])
    assert since("today") == since("今天") == rest
    assert since("yesterday") == since("昨天") == rest | {ids[1]}
    if time.time() - yesterday_noon > 86400:       # after noon in Beijing
        assert since("1d") == rest
    assert since("2d") == rest | {ids[1]}
    assert since("4d") == set(ids)
    time.sleep(1.1)                              # --since has whole seconds
    assert since("0d") == set()
    for bad in ("tomorrow", "7", "d", "7x", "1.5d", "-1d", "Today"):
        p = run(c, "audit", "log", "--since", bad, env=env)
        assert p.returncode == USAGE and "today, yesterday or Nd" in p.stderr, (bad, p.stderr)


def test_audit_verify_reports_the_first_broken_row(org, db):
    table = db.sql("SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n"
                 " ON n.oid = c.relnamespace WHERE n.nspname = 'certreg' AND c.relkind = 'r'"
                   " AND c.relname LIKE 'audit%' ORDER BY c.relname LIMIT 1").strip()
    ids = [e["id"] for e in js(db.conninfo, "audit", "log")]
    victim = ids[len(ids) // 2]
    cols = db.sql("SELECT string_agg(attname, ',') FROM pg_attribute"
                  f" WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"
                  " AND atttypid = 'text'::regtype").strip()
    col = "reason" if "reason" in cols.split(",") else cols.split(",")[0]
    # Tampering needs a superuser bypassing the append-only triggers/rules.
    db.sql("SET session_replication_role = replica;"
           f" UPDATE {table} SET {col} = 'tampered' WHERE id = {victim}")
    p = run(db.conninfo, "audit", "verify")
    assert p.returncode == REFUSED, p.stdout + p.stderr
    assert str(victim) in p.stdout and str(victim) in p.stderr
    out = json.loads(run(db.conninfo, "--json", "audit", "verify").stdout)
    assert out["ok"] is False and out["first_broken_id"] == victim


def test_json_output_parses_for_every_command(org, db, pki):
    c = org.owner
    record_refusal(db, pki, "ec-ok")
    cmds = [
        ["db", "status"], ["db", "migrate"],
        ["office", "add", "FT01", "--name", "丰台管理部"],
        ["operator", "add", "op_json_" + db.name[-8:], "--office", "FT01"],
        ["unit", "add", "110106000001", "--name", "丰台单位", "--office", "FT01"],
        ["unit", "show", "110106000001"], ["unit", "list"],
        ["unit", "set-status", "110106000001", "closed", "--reason", "r"],
        ["pending", "list"],
        ["key", "bind", pki.leaf("ec-ok")["key_id"][:8], "--unit", org.xc_unit, "--ticket", "J"],
        ["key", "suspend", pki.leaf("ec-ok")["key_id"], "--reason", "r"],
        ["key", "resume", pki.leaf("ec-ok")["key_id"], "--reason", "r"],
        ["key", "show", pki.leaf("ec-ok")["key_id"]],
        ["key", "list", "--unit", org.xc_unit], ["key", "expiring", "--days", "3650"],
        ["key", "cancel", pki.leaf("ec-ok")["key_id"], "--reason", "r"],
        ["audit", "log"], ["audit", "verify"],
    ]
    for cmd in cmds:
        before = js(c, *cmd)
        # --json after the command is the same option.
        if cmd[-1] in ("status", "list", "log", "verify"):
            assert json.loads(ok(c, *cmd, "--json").stdout) == before
    out = js(c, "cert", "check", "--cert", pki.leaf("ec-ok")["pem"], "--chain",
             pki.leaf("ec-ok")["chain"], "--ca", pki.path("ca/trust.pem"))
    assert out["outcome"] == "OK"


# The `check` probe: tests/test_probe.py.



# `cert check` (contract section 6): the daemon's trust from --config, and
# the words the user was shown.

def daemon_config(tmp_path, pki, intermediates=True):
    """A certregd config with the trust of the test PKI (as the daemon's)."""
    conf = tmp_path / "certreg.conf"
    inter = f"intermediates_file = {pki.path('ca/intermediates.pem')}\n" if intermediates else ""
    conf.write_text(f"""[server]
listen_api = 127.0.0.1:1
listen_tls = 127.0.0.1:2
tls_cert = {pki.path('server/server.pem')}
tls_key = {pki.path('server/server.key')}

[trust]
ca_file = {pki.path('ca/trust.pem')}
{inter}crl_dir = {pki.path('crl-all')}
revocation = require

[database]
conninfo = dbname=none
""")
    return conf


def test_cert_check_with_config_completes_the_chain_from_intermediates_file(tmp_path, pki):
    """The leaf alone, as nginx passes it: its issuing CA is only in the
    config's intermediates_file, so the daemon says OK and so must cert check."""
    leaf = pki.leaf("ec-ok")["pem"]        # the leaf only, no chain
    p = run(None, "cert", "check", "--cert", leaf, "--config", daemon_config(tmp_path, pki))
    assert p.returncode == OK, p.stdout + p.stderr
    assert p.stdout.startswith("outcome:     OK\n")
    out = json.loads(ok(None, "--json", "cert", "check", "--cert", leaf, "--config",
                        daemon_config(tmp_path, pki)).stdout)
    assert out["outcome"] == "OK" and out["crl"] is not None   # crl_dir came from it too
    # The setting is what made it: without it (or with --ca) nothing completes the path.
    for trust in (["--config", daemon_config(tmp_path, pki, intermediates=False)],
                  ["--ca", pki.path("ca/trust.pem")]):
        p = run(None, "cert", "check", "--cert", leaf, *trust)
        assert p.returncode == REFUSED and "outcome:     CERT_UNTRUSTED" in p.stdout, p.stdout


def test_cert_check_of_a_leaf_alone_with_ca_says_to_give_its_issuing_ca(tmp_path, pki):
    """The certificate a user exports from the USB key's software is usually
    the leaf alone. Checked with --ca (the roots) it is CERT_UNTRUSTED, the
    engine's true answer for that input, while the daemon, which completes
    the chain from intermediates_file, told the user something else; the
    counter was left reading "not issued by a trusted CA". cert check now
    says on stderr what is missing and how to give it, and only then."""
    leaf = pki.leaf("ec-ok")
    p = run(None, "cert", "check", "--cert", leaf["pem"], "--ca", pki.path("ca/trust.pem"))
    assert p.returncode == REFUSED and "outcome:     CERT_UNTRUSTED" in p.stdout, p.stdout
    assert "hint: the file holds no certificate of its issuer" in p.stderr, p.stderr
    assert "--chain FILE" in p.stderr and "--config FILE" in p.stderr, p.stderr
    # Following it gives the daemon's answer, with no hint.
    p = run(None, "cert", "check", "--cert", leaf["pem"], "--chain", leaf["chain"],
            "--ca", pki.path("ca/trust.pem"))
    assert p.returncode == OK and p.stderr == "", p.stdout + p.stderr
    # A certificate of a CA nobody configured, given with its chain, stays
    # untrusted: no hint that more files would help.
    p = run(None, "cert", "check", "--cert", pki.leaf("untrusted")["pem"],
            "--chain", pki.leaf("untrusted")["chain"], "--ca", pki.path("ca/trust.pem"))
    assert p.returncode == REFUSED and "hint:" not in p.stderr, p.stdout + p.stderr
    # In Chinese at the counter.
    p = run(None, "cert", "check", "--cert", leaf["pem"], "--ca", pki.path("ca/trust.pem"),
            env={"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    assert "提示: 该文件中没有签发该证书的 CA 证书" in p.stderr, p.stderr


def test_cert_check_with_config_names_the_setting_of_a_bad_file(tmp_path, pki):
    """As certregd -t (contract section 2): a file the config names that
    cannot be read is reported with the config file, the line of the
    setting and the setting."""
    leaf = pki.leaf("ec-ok")["pem"]
    (tmp_path / "crl").mkdir()
    (tmp_path / "crl" / "bad.crl").write_text("not a CRL\n")
    for old, new, key, problem in (
            ("ca_file = ", "ca_file = /nonexistent/ca.pem\n#", "ca_file",
             "/nonexistent/ca.pem: No such file"),
            ("intermediates_file = ", "intermediates_file = /nonexistent/int.pem\n#",
             "intermediates_file", "/nonexistent/int.pem: No such file"),
            ("crl_dir = ", f"crl_dir = {tmp_path / 'crl'}\n#", "crl_dir",
             f"{tmp_path / 'crl' / 'bad.crl'}: not a PEM or DER CRL")):
        conf = daemon_config(tmp_path, pki)
        text = conf.read_text().replace(old, new)
        conf.write_text(text)
        line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key} ="))
        p = run(None, "cert", "check", "--cert", leaf, "--config", conf)
        assert p.returncode != OK
        assert f"{conf}:{line}: [trust] {key}: {problem}" in p.stderr, p.stderr


def test_cert_check_with_config_takes_max_chain_depth(tmp_path, pki):
    """[trust] max_chain_depth (issue 33) is the daemon's limit on
    intermediates, and cert check --config applies it: a leaf two CAs below
    the root passes with the default (8) and with 2, and is CERT_UNTRUSTED
    with 1 (the test PKI's issuing CA allows none below it: two new CAs
    under its root)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)
    (tmp_path / "ext.cnf").write_text(
        "[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
        "[leaf]\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n")
    for name, subject, issuer, ext in (("sub", "/CN=Depth Sub", "root", "ca"),
                                       ("sub2", "/CN=Depth Sub 2", "sub", "ca"),
                                       ("leaf", "/CN=depth-leaf", "sub2", "leaf")):
        ca = pki.path(f"ca/{issuer}") if issuer == "root" else str(tmp_path / issuer)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-set_serial", "7", "-days", "30", "-extfile", "ext.cnf",
                "-extensions", ext, "-out", f"{name}.pem")
    chain = tmp_path / "chain.pem"
    chain.write_text("".join((tmp_path / f"{n}.pem").read_text() for n in ("leaf", "sub2", "sub")))
    conf = tmp_path / "depth.conf"
    for depth, want in (("", "OK"), ("max_chain_depth = 2\n", "OK"),
                        ("max_chain_depth = 1\n", "CERT_UNTRUSTED")):
        conf.write_text(f"[server]\nlisten_tls =\n[trust]\n"
                        f"ca_file = {pki.path('ca/trust.pem')}\n{depth}")
        p = run(None, "cert", "check", "--cert", str(chain), "--config", str(conf))
        assert f"outcome:     {want}\n" in p.stdout, (depth, p.stdout + p.stderr)
        assert p.returncode == (OK if want == "OK" else REFUSED)
        if want != "OK":
            assert "chain too long" in p.stdout, p.stdout


def test_cert_check_purpose_any_skips_only_the_client_usage_check(pki):
    """--purpose any (contract 6): a leaf whose key usage (encipherment only)
    or extended key usage (serverAuth) is not for client authentication is
    CERT_WRONG_USAGE, exit 1, by default and with --purpose client, and OK,
    exit 0, with any; any skips no other check."""
    def check(name, *purpose, at=None):
        leaf = pki.leaf(name)
        args = ["cert", "check", "--cert", leaf["pem"], "--chain", leaf["chain"], "--ca",
                pki.path("ca/trust.pem"), *purpose] + (["--at", at] if at else [])
        p = run(None, *args)
        out = json.loads(run(None, "--json", *args).stdout)
        assert f"outcome:     {out['outcome']}\n" in p.stdout, (p.stdout, out)
        assert p.returncode == (OK if out["outcome"] == "OK" else REFUSED), p.stdout + p.stderr
        return out["outcome"]
    for name in ("enc-only", "server-eku"):
        assert check(name) == "CERT_WRONG_USAGE"
        assert check(name, "--purpose", "client") == "CERT_WRONG_USAGE"
        assert check(name, "--purpose", "any") == "OK"
    for name in ("ec-ok", "no-eku"):
        assert check(name) == check(name, "--purpose", "any") == "OK"
    assert check("expired", "--purpose", "any") == "CERT_EXPIRED"
    assert check("untrusted", "--purpose", "any") == "CERT_UNTRUSTED"
    assert check("enc-only", "--purpose", "any", at="2000-01-01T00:00:00Z") == \
        "CERT_NOT_YET_VALID"
    err = refused(None, "cert", "check", "--cert", pki.leaf("enc-only")["pem"], "--ca",
                  pki.path("ca/trust.pem"), "--purpose", "email", code=USAGE)
    assert "--purpose must be client or any" in err, err


def test_cert_check_takes_crls_and_the_time(pki):
    """--crl FILE (repeatable) gives the revocation side of the trust, and
    --at the clock (contract 6); --json has outcome, reason, depth and the
    certificate."""
    crls = sorted(pki.path("crl-all").iterdir())
    revoked, inter = pki.leaf("revoked"), pki.leaf("revoked-int")

    def check(leaf, *more):
        args = ["cert", "check", "--cert", leaf["pem"], "--chain", leaf["chain"], "--ca",
                pki.path("ca/trust.pem"), *more]
        p = run(None, "--json", *args)
        return p.returncode, json.loads(p.stdout)
    with_crls = [a for c in crls for a in ("--crl", c)]
    assert check(revoked)[1]["outcome"] == "OK"                      # no CRL given
    rc, out = check(revoked, *with_crls)
    assert (rc, out["outcome"], out["depth"]) == (REFUSED, "CERT_REVOKED", 0), out
    assert out["reason"] and out["certificate"]["serial"] == revoked["serial"]
    rc, out = check(inter, *with_crls)
    assert (rc, out["outcome"], out["depth"]) == (REFUSED, "CERT_REVOKED", 1), out
    rc, out = check(pki.leaf("ec-ok"), *with_crls)
    assert (rc, out["outcome"]) == (OK, "OK"), out
    # Before its notBefore at --at, with an offset other than Z.
    rc, out = check(pki.leaf("ec-ok"), "--at", "2000-01-01T08:00:00+08:00")
    assert (rc, out["outcome"]) == (REFUSED, "CERT_NOT_YET_VALID"), out
    refused(None, "cert", "check", "--cert", revoked["pem"], "--ca", pki.path("ca/trust.pem"),
            "--crl", "/nonexistent.crl", code=USAGE)


def test_cert_check_prints_the_message_and_hint_the_user_saw(tmp_path, pki):
    """The message and hint of common/outcome.c's table, as on the login
    page, in the clerk's language (the page's default, Chinese, in --json);
    --json keeps its keys and adds them."""
    conf = daemon_config(tmp_path, pki)
    p = run(None, "cert", "check", "--cert", pki.leaf("expired")["pem"], "--config", conf)
    assert p.returncode == REFUSED
    assert "outcome:     CERT_EXPIRED\n" in p.stdout
    assert "message:     The certificate has expired.\n" in p.stdout
    assert re.search(r"^hint:        Check the certificate's validity", p.stdout, re.M), p.stdout
    p = run(None, "cert", "check", "--cert", pki.leaf("expired")["pem"], "--config", conf,
            env={"LANG": "zh_CN.UTF-8"})
    assert p.returncode == REFUSED
    assert "说明：      证书已过期。\n" in p.stdout, p.stdout
    assert re.search(r"^提示：      请用证书助手查看证书有效期", p.stdout, re.M), p.stdout
    p = run(None, "--json", "cert", "check", "--cert", pki.leaf("untrusted")["pem"],
            "--config", conf)
    assert p.returncode == REFUSED
    out = json.loads(p.stdout)
    assert {"outcome", "reason", "depth", "certificate"} <= set(out)
    assert out["outcome"] == "CERT_UNTRUSTED"
    assert out["message"] == "证书不是由本系统认可的证书颁发机构签发的。"
    assert out["hint"].startswith("请使用北京住房公积金认可的数字证书")
    # On OK the certificate passed, but the key association decides the
    # login: no user-facing message is claimed.
    out = json.loads(ok(None, "--json", "cert", "check", "--cert", pki.leaf("ec-ok")["pem"],
                        "--config", conf).stdout)
    assert out["message"] is None and out["hint"] is None
    assert "message:" not in ok(None, "cert", "check", "--cert", pki.leaf("ec-ok")["pem"],
                                "--config", conf).stdout


def test_cert_check_prints_no_terminal_control_of_the_users_certificate(tmp_path):
    """A certificate a user brings to the counter is anyone's: OpenSSL's
    RFC 2253 escaping turns ESC into \\1B but leaves C1 and bidi controls,
    which cert check must not hand to the clerk's terminal. --json keeps them
    (escaped where JSON wants it)."""
    evil = "Evil\u009b2J\u202egnp\u2066x\u2069"
    subprocess.run(["openssl", "req", "-x509", "-utf8", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "self.key", "-subj",
                    f"/O={evil}/CN=self", "-days", "30", "-out", "self.pem"],
                   check=True, capture_output=True, cwd=tmp_path)
    cert = str(tmp_path / "self.pem")
    p = run(None, "cert", "check", "--cert", cert, "--ca", cert)
    assert "outcome:     OK\n" in p.stdout and "Evil" in p.stdout, p.stdout + p.stderr
    assert not TERMINAL_CONTROLS.search(p.stdout), repr(p.stdout)
    out = json.loads(ok(None, "--json", "cert", "check", "--cert", cert, "--ca", cert).stdout)
    assert evil in out["certificate"]["subject"]


def _read_as_other_user(path):
    """The file as an unprivileged local user (uid 4242) reads it; as the
    test user when not root (certreg-admin then runs as that user too)."""
    code = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    pre = (lambda: (os.setgid(4242), os.setuid(4242))) if os.geteuid() == 0 else None
    return subprocess.run(["/usr/bin/python3", "-c", code, path], capture_output=True,
                          preexec_fn=pre, timeout=10).stdout


@pytest.mark.parametrize("form", ["keywords", "uri"])
def test_a_password_in_db_is_not_left_on_the_command_line(form):
    """/proc/PID/cmdline (what `ps` shows) is readable by every local user.
    certreg-admin keeps its own copy of --db and blanks the argument when
    it holds a password, before it connects. A stand-in server asks for a
    cleartext password and, holding the connection, the test reads the
    command line as another user: on the old code it showed the password.
    The password sent is still the one given."""
    import socket
    import struct
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    secret = "s3cret-word"
    db = (f"host=127.0.0.1 port={port} dbname=certreg user=zhangsan password={secret} "
          "sslmode=disable" if form == "keywords" else
          f"postgresql://zhangsan:{secret}@127.0.0.1:{port}/certreg?sslmode=disable")
    p = subprocess.Popen([str(BUILD / "certreg-admin"), "--db", db, "db", "status"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        n = struct.unpack("!I", conn.recv(4))[0]
        startup = conn.recv(n - 4)
        assert b"zhangsan" in startup
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        assert conn.recv(1) == b"p"
        n = struct.unpack("!I", conn.recv(4))[0]
        assert conn.recv(n - 4) == secret.encode() + b"\0"
        shown = _read_as_other_user(f"/proc/{p.pid}/cmdline")
        assert b"--db" in shown, shown
        assert secret.encode() not in shown, shown
        conn.close()
    finally:
        p.kill()
        p.wait()
        srv.close()
