"""Logins that hang: every dependency slow or stuck, not down.

Earlier tests stop what certreg depends on (connection refused, the
database restarted or killed: test_faults.py, test_operations.py,
test_replication.py). Here the parts stay up and do not answer: a
database backend stopped (SIGSTOP) under one worker, a lock an operator's
open transaction or a migration holds, a server that accepts a connection
and never speaks. Each wait must end within the bound docs/OPERATIONS.md
gives ("What waits, and for how long"), with the documented answer, and
certreg must come back by itself when the part does.
"""
import json
import os
import signal
import socket
import subprocess
import time

import psycopg2

from fixtures.cli import admin
from test_admin import UNREACHABLE, ok, org, run
from test_login import login as tls_login

__all__ = ["org"]  # test_admin's fixture, used here as an argument

REGNO = "110106000001"
FAIL = 3  # database_busy, database_error: not a refusal
ZH = {"LANG": "zh_CN.UTF-8", "LOCPATH": "/nonexistent/locales"}


def locked(db, sql):
    """An open transaction of the owner that ran sql (LOCK TABLE ..., a
    SELECT ... FOR UPDATE): an operator's psql left open, or a migration."""
    holder = psycopg2.connect(db.conninfo)
    holder.cursor().execute(sql)
    return holder


def timed(conninfo, *args, env=None):
    t0 = time.monotonic()
    p = run(conninfo, *args, env=env)
    return p, time.monotonic() - t0


def test_a_clerks_command_waits_for_a_lock_ten_seconds_at_most(db, org):
    """A migration holds the table (ACCESS EXCLUSIVE until its commit): a
    clerk's lookup used to wait without end, the terminal frozen, nothing
    said. It now waits lock_timeout (10 s unless the login's settings say
    otherwise) and says why."""
    holder = locked(db, "LOCK TABLE certreg.units IN ACCESS EXCLUSIVE MODE")
    try:
        p, took = timed(org.op_dc, "unit", "show", "110101000001")
    finally:
        holder.rollback()
        holder.close()
    assert p.returncode == FAIL and 9.5 < took < 13, (took, p.stderr)
    assert "another session holds what this command needs" in p.stderr, p.stderr
    assert "lock timeout" in p.stderr and "pg_blocking_pids" in p.stderr, p.stderr
    ok(org.op_dc, "unit", "show", "110101000001")


def test_a_change_under_a_held_row_lock_is_database_busy_and_changes_nothing(db, org, pki):
    """Two clerks of one office, one key: the first suspended it in psql and
    left the transaction open (the key's row stays locked); the second's
    `key resume` waited on the row without end (the audit head's own 10 s
    bound, an earlier finding, comes only after it). A shorter wait set in
    PGOPTIONS (or ALTER ROLE ... SET lock_timeout) is kept."""
    key = "c3" * 32
    ok(org.op_dc, "key", "bind", key, "--unit", "110101000001", "--ticket", "T-1")
    ok(org.op_dc, "key", "suspend", key, "--reason", "lost")
    holder = psycopg2.connect(org.op_dc)
    holder.cursor().execute("SELECT certreg.key_resume(%s, 'found')", (key,))
    try:
        p, took = timed(org.sup, "--json", "key", "cancel", key, "--reason", "stolen",
                        env={**ZH, "PGOPTIONS": "-c lock_timeout=1s"})
    finally:
        holder.rollback()
        holder.close()
    assert p.returncode == FAIL and took < 4, (took, p.stderr)
    assert json.loads(p.stdout)["error"] == "database_busy", p.stdout
    assert "the database is busy" in p.stderr, p.stderr   # --json: English
    out = run(org.sup, "key", "show", key).stdout
    assert "suspended" in out, out


def test_a_clerks_command_in_chinese_under_a_lock(db, org):
    holder = locked(db, "LOCK TABLE certreg.units IN ACCESS EXCLUSIVE MODE")
    try:
        p, took = timed(org.op_dc, "unit", "show", "110101000001",
                        env={**ZH, "PGOPTIONS": "-c lock_timeout=1s"})
    finally:
        holder.rollback()
        holder.close()
    assert p.returncode == FAIL and took < 4, (took, p.stderr)
    assert p.stderr.startswith("certreg-admin: 错误: 数据库忙"), p.stderr
    assert "提示:" in p.stderr and "pg_blocking_pids" in p.stderr, p.stderr


def test_a_database_that_accepts_and_never_answers(db):
    """A stopped postmaster (or a host whose kernel still answers): the TCP
    connection is accepted and nothing is said. connect_timeout (10 s by
    default, PGCONNECT_TIMEOUT here) ends the wait, in Chinese."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    port = s.getsockname()[1]
    try:
        p, took = timed(f"host=127.0.0.1 port={port} dbname=certreg user=x", "unit", "list",
                        env={**ZH, "PGCONNECT_TIMEOUT": "2"})
    finally:
        s.close()
    assert p.returncode == UNREACHABLE and took < 5, (took, p.stderr)
    assert p.stderr.startswith("certreg-admin: 错误: "), p.stderr
    assert "提示:" in p.stderr, p.stderr


def bound_key(db, pki, name="ec-ok"):
    admin(db.conninfo, "office", "add", "STK1", "--name", "卡住管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "卡住测试单位", "--office", "STK1")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(name)["pem"], "--unit", REGNO,
          "--ticket", "T-STK")
    return open(pki.leaf(name)["chain"]).read()


def backends(db):
    mon = psycopg2.connect(db.conninfo)
    mon.autocommit = True
    cur = mon.cursor()
    cur.execute("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'certregd'")
    rows = cur.fetchall()
    mon.close()
    return rows


def hammer(d, chain, seconds):
    """Verifications one after another for seconds: (latency, status, outcome)."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        r = d.verify_bundle(chain)
        got.append((time.monotonic() - t0, r.status, r.json().get("outcome")))
    return got


def test_one_workers_stopped_backend_holds_up_nobody_else(certregd, db, pki):
    """The backend under one pool connection of one worker stops (SIGSTOP:
    the connection stays up, nothing answers). The decisions sent on it end
    at timeout_ms with SERVICE_UNAVAILABLE, the connection is replaced, the
    other worker and connections answer OK meanwhile, /readyz stays 200
    (decisions can be made) and nothing is left broken when it resumes."""
    chain = bound_key(db, pki)
    # No cache: every decision is asked of the database.
    d = certregd(db, server={"workers": 2}, database={"timeout_ms": 1000}, cache={"size": 0})
    for _ in range(20):
        assert d.verify_bundle(chain).json()["outcome"] == "OK"
    # Found by its name, as an operator would.
    pool = [pid for pid, query in backends(db) if "LISTEN" not in query and "wal_lsn" not in query]
    assert pool, backends(db)
    os.kill(pool[0], signal.SIGSTOP)
    try:
        got = hammer(d, chain, 3.0)
        ready = d.get("/readyz")
    finally:
        os.kill(pool[0], signal.SIGCONT)
    assert max(t for t, _, _ in got) < 1.5, got
    assert {(s, o) for _, s, o in got} <= {(200, "OK"), (503, "SERVICE_UNAVAILABLE")}, got
    assert sum(1 for _, s, _ in got if s == 200) > 0.9 * len(got), got
    assert ready.status == 200, ready.body
    time.sleep(0.5)
    assert all(s == 200 for _, s, _ in hammer(d, chain, 1.0))


def test_a_stopped_database_is_503_in_time_readyz_says_so_and_it_comes_back(certregd, db, pki):
    """The whole server stops (postmaster and every backend: a hung host
    whose kernel still holds the connections). Every verification, and a
    browser's login over TLS, ends by
    timeout_ms (+0.5 s) with SERVICE_UNAVAILABLE, /readyz turns 503 and
    says why, /healthz stays 200 (the process is alive), and the daemon
    answers OK again after the server resumes, with no restart."""
    chain = bound_key(db, pki)
    d = certregd(db, server={"workers": 2}, database={"timeout_ms": 1000}, cache={"size": 0})
    assert d.verify_bundle(chain).json()["outcome"] == "OK"
    pm = db.cluster.postmaster_pid()
    subprocess.run(["pkill", "-STOP", "-P", str(pm)], check=False)
    os.kill(pm, signal.SIGSTOP)
    try:
        got = hammer(d, chain, 4.0)
        ready, health = d.get("/readyz"), d.get("/healthz")
        # The browser's login over TLS: the same bound, the 503 page.
        t0 = time.monotonic()
        status, body, _, _ = tls_login(d, pki, "ec-ok")
        tls_took = time.monotonic() - t0
    finally:
        os.kill(pm, signal.SIGCONT)
        subprocess.run(["pkill", "-CONT", "-P", str(pm)], check=False)
    assert max(t for t, _, _ in got) < 1.5, got
    assert got[-1][1:] == (503, "SERVICE_UNAVAILABLE"), got[-5:]
    assert ready.status == 503 and ready.json()["reasons"], ready.body
    assert health.status == 200, health.body
    assert status == 503 and b"SERVICE_UNAVAILABLE" in body and tls_took < 1.5, (tls_took, body)
    deadline = time.monotonic() + 10
    while d.verify_bundle(chain).status != 200:
        assert time.monotonic() < deadline, d.log()[-2000:]
        time.sleep(0.2)
    assert d.get("/readyz").status == 200
    assert tls_login(d, pki, "ec-ok")[0] == 200


def test_a_signed_login_under_a_held_key_row_is_503_in_time_then_a_new_challenge_works(
        certregd, db, pki):
    """An operator's transaction holds the key's row (FOR UPDATE) that the
    signed login's decision writes (last use, certificate seen). The login
    ends at timeout_ms with 503 and Retry-After, as docs/PORTAL.md says
    (ask for a new challenge); the challenge key and consume are not held
    up, and once the row is free a new challenge logs in."""
    from test_signed_login import challenge, login, sign
    ec = pki.leaf("ec-ok")
    bound_key(db, pki)
    d = certregd(db, server={"workers": 1}, database={"timeout_ms": 1000},
                 cache={"size": 0}, assertion=None)
    cert = open(ec["pem"]).read()
    holder = locked(db, "SELECT 1 FROM certreg.keys WHERE key_id = '%s' FOR UPDATE"
                    % ec["key_id"])
    try:
        c = challenge(d)["challenge"]
        t0 = time.monotonic()
        r = login(d, cert, c, sign(ec["key"], c, "sha256"))
        took = time.monotonic() - t0
        health = d.get("/healthz")
    finally:
        holder.rollback()
        holder.close()
    assert r.status == 503 and r.headers["Retry-After"] == "1", r.body
    assert r.json()["outcome"] == "SERVICE_UNAVAILABLE" and took < 1.5, (took, r.body)
    assert health.status == 200
    c = challenge(d)["challenge"]
    r = login(d, cert, c, sign(ec["key"], c, "sha256"))
    assert r.status == 200 and r.json()["outcome"] == "OK", r.body


def test_certregds_sessions_are_named_in_pg_stat_activity(certregd, db, pki):
    """The backend that hangs a login is looked for in pg_stat_activity:
    certregd's sessions had no application_name, indistinguishable from
    any other client of the same login. Now `certregd`, unless conninfo
    names one."""
    chain = bound_key(db, pki)
    d = certregd(db, server={"workers": 2}, cache={"size": 0})
    assert d.verify_bundle(chain).json()["outcome"] == "OK"
    # Two workers, each a pool and a LISTEN connection at least.
    assert len(backends(db)) >= 4, backends(db)
    d.stop()
    d = certregd(db, database={"conninfo": db.conninfo + " application_name=certregd-b"})
    assert d.verify_bundle(chain).json()["outcome"] == "OK"
    mon = psycopg2.connect(db.conninfo)
    cur = mon.cursor()
    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'certregd-b'")
    assert cur.fetchone()[0] >= 2
    mon.close()
