"""certregd as operators run it: -t, privileges, reloads, database outages,
metrics and readiness (contract sections 2, 5 and 7)."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.cli import admin
from fixtures.daemon import BUILD, write_config


def run_daemon(*args):
    return subprocess.run([str(BUILD / "certregd"), *args], capture_output=True, text=True,
                          timeout=30)


def test_config_test_accepts_a_good_file(certregd, db):
    d = certregd(db)
    p = run_daemon("-t", "-c", str(d.conf_path))
    assert p.returncode == 0, p.stderr
    assert "valid" in p.stdout


@pytest.mark.parametrize("mutate, expect", [
    (lambda c: c["server"].update(listen_tsl="x"), r":\d+: unknown setting 'listen_tsl'"),
    (lambda c: c["trust"].update(clock_skew="-5"), r":\d+: clock_skew: -5 is out of range"),
    (lambda c: c["trust"].update(ca_file="/nonexistent/ca.pem"), r"/nonexistent/ca.pem"),
    (lambda c: c["server"].update(tls_cert="/etc/hostname"), r":\d+: tls_cert /etc/hostname"),
    (lambda c: c["server"].update(portal_url="javascript:alert(1)"),
     r":\d+: portal_url: not an http:// or https:// URL"),
    (lambda c: c["server"].update(portal_url='https://portal.example/"><script>'),
     r":\d+: portal_url: not an http:// or https:// URL"),
])
def test_config_test_names_file_line_and_problem(certregd, db, tmp_path, mutate, expect):
    d = certregd(db)
    cfg = {k: dict(v) for k, v in d.config.items()}
    mutate(cfg)
    bad = tmp_path / "bad.conf"
    write_config(bad, cfg)
    p = run_daemon("-t", "-c", str(bad))
    assert p.returncode == 1
    assert str(bad) in p.stderr or "/nonexistent" in p.stderr, p.stderr
    assert re.search(expect, p.stderr), p.stderr


@pytest.mark.parametrize("key", ["missing", "not a key", "another key"])
def test_tls_key_problems_are_named(certregd, db, pki, tmp_path, key):
    """The TLS key is read by certregd itself (in the default OpenSSL context,
    see docs/VERIFY.md): a missing file, a file that holds no key and a key
    that is not the certificate's are each refused with the file named."""
    d = certregd(db)
    path = tmp_path / "server.key"
    if key == "not a key":
        path.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    elif key == "another key":
        path.write_bytes(Path(pki.leaf("ec-ok")["key"]).read_bytes())
    if path.exists():
        path.chmod(0o600)
    cfg = {k: dict(v) for k, v in d.config.items()}
    cfg["server"]["tls_key"] = path
    bad = tmp_path / "bad.conf"
    write_config(bad, cfg)
    p = run_daemon("-t", "-c", str(bad))
    assert p.returncode == 1
    assert re.search(r":\d+: tls_key " + re.escape(str(path)) + r": \S", p.stderr), p.stderr
    if key == "another key":
        assert "mismatch" in p.stderr, p.stderr


def test_key_readable_by_others_is_refused(certregd, db):
    d = certregd(db)
    key = d.dir / "server.key"
    key.chmod(0o644)
    p = run_daemon("-t", "-c", str(d.conf_path))
    key.chmod(0o600)
    assert p.returncode == 1 and "readable by others" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_without_user_is_refused(certregd, db):
    d = certregd(db)
    p = run_daemon("-f", "-c", str(d.conf_path))
    assert p.returncode == 1 and "refusing to run as root" in p.stderr


def test_metrics_parse_as_prometheus_text(certregd, db, pki):
    d = certregd(db)
    d.verify_bundle(open(pki.leaf("expired")["chain"]).read())
    r = d.get("/metrics")
    assert r.status == 200
    text = r.body.decode()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?'
                        r' [-+]?[0-9.eE+Inf]+$')
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+", line), line
        else:
            assert sample.match(line), line
    assert re.search(r'^certreg_decisions_total\{outcome="CERT_EXPIRED"\} [1-9]', text, re.M)
    assert 'certreg_trust_anchor_not_after_seconds{subject="' in text
    assert 'certreg_crl_next_update_seconds{issuer="' in text
    assert re.search(r"^certreg_decision_seconds_count [1-9]", text, re.M)


def test_readyz(certregd, db):
    d = certregd(db)
    r = d.get("/readyz")
    assert r.status == 200, r.body
    assert r.json() == {"ready": True, "reasons": []}


def test_database_down_gives_503_in_time_and_recovers(certregd, db, pki, pg_cluster):
    d = certregd(db, database={"timeout_ms": 1000})
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    pg_cluster.stop()
    try:
        for _ in range(3):
            t0 = time.monotonic()
            r = d.verify_bundle(chain)
            elapsed = time.monotonic() - t0
            assert r.status == 503 and r.json()["outcome"] == "SERVICE_UNAVAILABLE"
            assert r.headers["Retry-After"]
            assert elapsed < 1.0 + 0.5, elapsed
        r = d.get("/readyz")
        assert r.status == 503
        assert any("database" in reason for reason in r.json()["reasons"])
        # Certificate outcomes need no database.
        assert d.verify_bundle(open(pki.leaf("expired")["chain"]).read()).json()["outcome"] \
            == "CERT_EXPIRED"
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if d.verify_bundle(chain).status == 200 and d.get("/readyz").status == 200:
            break
        time.sleep(0.2)
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    assert d.get("/readyz").status == 200


def test_admin_change_in_force_within_one_second(certregd, db, pki):
    admin(db.conninfo, "office", "add", "XC01", "--name", "西城管理部")
    admin(db.conninfo, "unit", "add", "110102000001", "--name", "西城单位", "--office", "XC01")
    d = certregd(db, server={"workers": 1})
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"  # now cached
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit",
          "110102000001", "--ticket", "T-1")
    t0 = time.monotonic()
    while d.verify_bundle(chain).json()["outcome"] != "OK":
        assert time.monotonic() - t0 < 1.0, "bind not in force within one second"
        time.sleep(0.02)
    admin(db.conninfo, "key", "suspend", pki.leaf("ec-ok")["key_id"], "--reason", "lost")
    t0 = time.monotonic()
    while d.verify_bundle(chain).json()["outcome"] != "KEY_SUSPENDED":
        assert time.monotonic() - t0 < 1.0, "suspend not in force within one second"
        time.sleep(0.02)


def test_sighup_with_new_crl_revokes(certregd, db, pki, tmp_path):
    d = certregd(db, trust={"revocation": "if-available"})
    crl_dir = d.dir / "crl"
    for f in crl_dir.iterdir():
        f.unlink()
    d.reload()
    chain = open(pki.leaf("revoked")["chain"]).read()
    deadline = time.monotonic() + 10
    while d.verify_bundle(chain).json()["outcome"] != "KEY_NOT_APPROVED":
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.1)
    for f in (pki.dir / "crl-all").iterdir():
        (crl_dir / f.name).write_bytes(f.read_bytes())
    d.reload()
    deadline = time.monotonic() + 10
    while d.verify_bundle(chain).json()["outcome"] != "CERT_REVOKED":
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.1)


def test_broken_config_on_sighup_keeps_serving(certregd, db, pki):
    d = certregd(db)
    good = d.conf_path.read_text()
    d.conf_path.write_text(good + "\n[trust]\nbogus = 1\n")
    d.reload()
    deadline = time.monotonic() + 10
    while "event=reload_failed" not in d.log():
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.1)
    assert "unknown setting 'bogus'" in d.log()
    assert d.verify_bundle(open(pki.leaf("expired")["chain"]).read()).json()["outcome"] \
        == "CERT_EXPIRED"
    d.conf_path.write_text(good)


JOURNAL_PRIORITY = {"error": 3, "warn": 4, "info": 6, "debug": 7}


def logged_lines(d):
    return [line for line in d.log().splitlines() if "level=" in line]


def test_log_lines_carry_journald_priority_on_the_journal_stream(certregd, db, pki):
    """Under systemd (stderr = the journal stream named by $JOURNAL_STREAM)
    every line starts with its sd-daemon(3) priority, so `journalctl -p
    warning` selects by level; anywhere else the lines have no prefix."""
    server = {"trusted_proxies": "192.0.2.1/32", "log_level": "debug"}
    journal = certregd(db, server=server, journal_stream=True)
    plain = certregd(db, server=server)
    for d in (journal, plain):
        # A certificate header from an address not in trusted_proxies: warn.
        assert d.get("/v1/auth", headers={"X-SSL-Client-Cert": "x"}).status == 403
        d.verify_bundle(open(pki.leaf("expired")["chain"]).read())
        good = d.conf_path.read_text()
        d.conf_path.write_text(good + "\n[trust]\nbogus = 1\n")
        d.reload()  # refused: error
        deadline = time.monotonic() + 10
        while "event=reload_failed" not in d.log():
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.1)
        d.conf_path.write_text(good)
    seen = set()
    for line in logged_lines(journal):
        m = re.match(r"^<(\d)>level=(\w+) pid=\d+ ", line)
        assert m, line
        assert int(m.group(1)) == JOURNAL_PRIORITY[m.group(2)], line
        seen.add(m.group(2))
    assert seen == {"error", "warn", "info", "debug"}, journal.log()
    assert any(line.startswith("<4>") and "event=untrusted_cert_header" in line
               for line in logged_lines(journal))
    assert any(line.startswith("<3>") and "event=reload_failed" in line
               for line in logged_lines(journal))
    lines = logged_lines(plain)
    assert lines and all(re.match(r"^level=\w+ pid=\d+ ", line) for line in lines), plain.log()


def worker_pids(d):
    """The supervisor's children: its workers."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == d.proc.pid:
            pids.append(int(stat.parent.name))
    return pids


def connections_by_worker(d, port):
    """Established connections to port, counted by the worker holding them."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01":
            inodes.add(f"socket:[{f[9]}]")
    counts = {}
    for pid in worker_pids(d):
        counts[pid] = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                counts[pid] += os.readlink(fd) in inodes
            except OSError:
                pass
    return counts


def healthz_on(sockets):
    for s in sockets:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    for s in sockets:
        assert s.recv(4096).startswith(b"HTTP/1.1 200 "), "no answer"


def test_connections_spread_over_the_workers(certregd, db):
    """Each worker accepts on its own socket of the listener (SO_REUSEPORT),
    so the kernel spreads connections over them; on one shared socket a
    burst could all go to the worker that woke first."""
    d = certregd(db)
    port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(48)]
    try:
        healthz_on(sockets)
        counts = connections_by_worker(d, port)
        assert len(counts) == 2 and sum(counts.values()) == 48, counts
        assert min(counts.values()) >= 8, counts  # binomial(48, 1/2): < 1e-5 below
    finally:
        for s in sockets:
            s.close()


def test_killed_worker_loses_no_connection(certregd, db):
    """The supervisor keeps every worker's listening sockets: connections
    the kernel queued for a worker that then dies wait for its replacement
    and are answered; none is refused. The worker is stopped first, so that
    about half of the connections are queued on its socket when it dies."""
    d = certregd(db)
    port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    victim = worker_pids(d)[0]
    d.killed.add(victim)
    os.kill(victim, signal.SIGSTOP)
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(24)]
    os.kill(victim, signal.SIGKILL)
    try:
        healthz_on(sockets)
    finally:
        for s in sockets:
            s.close()
    assert f"event=worker_exited pid={victim} status=-1 signal=9 restarting=1" in d.log()
    assert len(worker_pids(d)) == 2 and victim not in worker_pids(d)


def test_hot_key_is_refreshed_before_its_entry_expires(certregd, db, pki):
    """A key in use is looked up again in the background in the last tenth
    of its cache entry's life (at least its last second): with ttl = 3 and a
    request every 50 ms for 8 s, only the first request of each worker goes
    to the database; without the refresh, each worker would miss about
    every 3 s."""
    admin(db.conninfo, "office", "add", "XC01", "--name", "西城管理部")
    admin(db.conninfo, "unit", "add", "110102000001", "--name", "西城单位", "--office", "XC01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf("ec-ok")["pem"], "--unit",
          "110102000001", "--ticket", "T-1")
    d = certregd(db, cache={"ttl": 3})
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 8:
        assert d.verify_bundle(chain).json()["outcome"] == "OK"
        time.sleep(0.05)
    time.sleep(1.2)  # workers publish their counters once a second
    text = d.get("/metrics").body.decode()
    misses = int(re.search(r"^certreg_cache_misses_total (\d+)", text, re.M).group(1))
    hits = int(re.search(r"^certreg_cache_hits_total (\d+)", text, re.M).group(1))
    assert misses <= 2 and hits >= 60, (misses, hits)


def test_workers_exit_when_the_supervisor_dies(certregd, db):
    d = certregd(db)
    workers = worker_pids(d)
    assert len(workers) == 2
    port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    # SIGKILL: the supervisor has no chance to stop its workers itself.
    d.proc.kill()
    d.proc.wait()
    d.proc = None  # its exit status is this test's doing, not a failure
    d.log_file.close()

    def running(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 10
    try:
        while any(running(p) for p in workers):
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.1)
    finally:  # a failure leaves no orphans serving behind the suite
        for p in filter(running, workers):
            os.kill(p, signal.SIGKILL)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert "event=worker_stopped" in d.log()
