"""What monitoring sees when something an operator is paged for happens
(docs/OPERATIONS.md, "Monitoring"): the metrics text read by the strict
parser of the Prometheus client library, gauges that follow the daemon's
state after reloads and crashed workers, counters that never go down, and
the expiry of the listener's own certificate."""
import os
import signal
import socket
import subprocess
import time
from datetime import timezone

from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from test_operations import worker_pids


def scrape(d):
    """{family name: family} as Prometheus reads the text; every family
    with its HELP and TYPE (the parser says "unknown" without a TYPE)."""
    r = d.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fams = {}
    for f in text_string_to_metric_families(r.body.decode()):
        assert f.name not in fams, f"family {f.name} twice"
        assert f.type != "unknown" and f.documentation, f.name
        fams[f.name] = f
    return fams


def samples(fams, name):
    """{(name, sorted labels): value} of the samples called name (the
    parser names a counter's family without its _total)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in fams.values() for s in f.samples if s.name == name}


def counters(fams):
    out = {}
    for f in fams.values():
        if f.type in ("counter", "histogram"):
            out.update({(s.name, tuple(sorted(s.labels.items()))): s.value
                        for s in f.samples})
    return out


def wait_for(what, timeout=15):
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return got


def wait_new_workers(d, old, n=2):
    """The reload's workers running. They publish once a second, later on a
    stalled VM: what a caller asserts of their metrics is polled."""
    wait_for(lambda: not set(old) & set(worker_pids(d)) and len(worker_pids(d)) == n)


def test_metrics_text_parses_strictly_with_help_and_type(certregd, db, pki):
    d = certregd(db)
    d.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read())
    names = ("certreg_decisions_total", "certreg_db_host_up", "certreg_db_backlog",
             "process_cpu_seconds_total", "certreg_worker_exits_total",
             "certreg_db_clock_offset_seconds")
    # The workers publish once a second: polled, each scrape parsed strictly.
    def published():
        fams = scrape(d)
        return fams if all(samples(fams, n) for n in names) else None
    fams = wait_for(published)
    for name in names:
        assert samples(fams, name), name


def test_database_down_after_reloads_shows_the_host_down(certregd, db, pki, pg_cluster):
    """An alert on certreg_db_host_up == 0 must fire when the database is
    gone, also after a reload replaced the workers (their predecessors'
    last view of the host must not count), and clear when it is back."""
    d = certregd(db, database={"timeout_ms": 1000})
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    old = worker_pids(d)
    d.reload()
    wait_new_workers(d, old)
    wait_for(lambda: list(samples(scrape(d), "certreg_db_host_up").values()) == [1])
    pg_cluster.stop()
    try:
        for _ in range(4):
            assert d.verify_bundle(chain).json()["outcome"] == "SERVICE_UNAVAILABLE"
        assert d.get("/readyz").status == 503
        wait_for(lambda: list(samples(scrape(d), "certreg_db_host_up").values()) == [0])
        # The clock offset is not shown from a measure of before.
        assert not samples(scrape(d), "certreg_db_clock_offset_seconds")
    finally:
        pg_cluster.start()
    wait_for(lambda: list(samples(scrape(d), "certreg_db_host_up").values()) == [1], 20)
    wait_for(lambda: samples(scrape(d), "certreg_db_clock_offset_seconds"))


def test_counters_never_go_down_across_reloads(certregd, db, pki, pg_cluster):
    """Two SIGHUPs: the second's workers take the slots of the first's
    predecessors. No counter may be lower than before (Prometheus takes a
    lower value for a restart and loses what was counted)."""
    d = certregd(db, database={"timeout_ms": 500})
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    pg_cluster.stop()
    try:
        for _ in range(4):
            d.verify_bundle(chain)
        time.sleep(1.5)
    finally:
        pg_cluster.start()
    wait_for(lambda: d.get("/readyz").status == 200, 20)
    before = counters(scrape(d))
    errors = samples(scrape(d), "certreg_db_host_errors_total")
    assert len(errors) == 1 and list(errors.values())[0] > 0, errors
    for _ in range(2):
        old = worker_pids(d)
        d.reload()
        wait_new_workers(d, old)
        # No counter may be lower at any scrape: the pause only makes it
        # likelier that the new workers have published (nothing asserted
        # depends on their having done so).
        time.sleep(1.5)
        after = counters(scrape(d))
        lower = {k: (v, after.get(k)) for k, v in before.items()
                 if after.get(k) is None or after[k] < v}
        assert not lower, lower
        before = after


def test_a_crashed_worker_is_counted_and_its_gauges_go(certregd, db, pki):
    """A worker killed with connections open: the supervisor starts another
    (event=worker_exited in the journal), certreg_worker_exits_total counts
    it, and the dead worker's connections leave certreg_connections."""
    d = certregd(db)
    port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    fams = scrape(d)
    assert samples(fams, "certreg_worker_exits_total") == {
        ("certreg_worker_exits_total", ()): 0}
    # Idle keep-alive connections spread over both workers.
    socks = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        socks.append(s)
    # The workers publish once a second.
    wait_for(lambda: samples(scrape(d), "certreg_connections")[
        ("certreg_connections", ())] >= 8)
    victim = worker_pids(d)[0]
    d.killed.add(victim)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in worker_pids(d) and len(worker_pids(d)) == 2)
    try:
        def settled():
            left = sum(1 for s in socks if not _closed(s))
            fams = scrape(d)
            # The dead worker's connections are closed; the gauge counts
            # those still open (plus the scrape's own).
            return (samples(fams, "certreg_worker_exits_total") == {
                ("certreg_worker_exits_total", ()): 1}
                and samples(fams, "certreg_connections")[("certreg_connections", ())]
                <= left + 1 and (left,))
        (left,) = wait_for(settled)
        assert samples(scrape(d), "certreg_worker_exits_total") == {
            ("certreg_worker_exits_total", ()): 1}
        assert left < 8
    finally:
        for s in socks:
            s.close()
    assert f"event=worker_exited pid={victim} status=-1 signal=9 restarting=1" in d.log()


def _closed(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def test_the_listeners_certificate_expiry_is_exported(certregd, db, pki, tmp_path):
    """The TLS listener's own certificate expiring takes every login down:
    its notAfter is a metric, and follows the certificate a SIGHUP loads."""
    d = certregd(db)
    cert = x509.load_pem_x509_certificate(open(d.config["server"]["tls_cert"], "rb").read())
    want = cert.not_valid_after.replace(tzinfo=timezone.utc).timestamp()
    fams = scrape(d)
    assert fams["certreg_tls_certificate_not_after_timestamp_seconds"].type == "gauge"
    assert samples(fams, "certreg_tls_certificate_not_after_timestamp_seconds") == {
        ("certreg_tls_certificate_not_after_timestamp_seconds", ()): want}
    # A new certificate for the same key, valid for 10 days, and a reload.
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "10", "-subj",
                    "/CN=localhost", "-key", d.config["server"]["tls_key"], "-out",
                    tmp_path / "new.pem"], check=True, capture_output=True)
    (tmp_path / "new.pem").replace(d.config["server"]["tls_cert"])
    os.chmod(d.config["server"]["tls_cert"], 0o644)
    new = x509.load_pem_x509_certificate(open(d.config["server"]["tls_cert"], "rb").read())
    want = new.not_valid_after.replace(tzinfo=timezone.utc).timestamp()
    old = worker_pids(d)
    d.reload()
    wait_new_workers(d, old)
    wait_for(lambda: samples(scrape(d), "certreg_tls_certificate_not_after_timestamp_seconds")
             == {("certreg_tls_certificate_not_after_timestamp_seconds", ()): want})


def test_a_lost_listen_connection_is_visible(certregd, db, pki, pg_cluster):
    """The LISTEN connections killed and kept from coming back (the role's
    connection limit reached: its pool connections stay) leave every worker
    deciding from the database, its cache unused: right, but invisible
    before. Monitoring sees how many workers are so, and sees it clear."""
    d = certregd(db)
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    wait_for(lambda: samples(scrape(d), "certreg_db_listen_down") == {
        ("certreg_db_listen_down", ()): 0})
    who = "usename = 'certregd_test'"
    listens = (f"{who} AND (query = 'LISTEN certreg'"
               " OR query LIKE 'SELECT pg_current_wal_lsn()%')")
    wait_for(lambda: len(pg_cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE {listens}")
                         .split()) == 2)
    pool = len(pg_cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE {who}").split()) - 2
    try:
        pg_cluster.psql(f"ALTER ROLE certregd_test CONNECTION LIMIT {pool}")
        pg_cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {listens}")
        wait_for(lambda: samples(scrape(d), "certreg_db_listen_down")[
            ("certreg_db_listen_down", ())] == 2, 10)
        time.sleep(2)
        assert samples(scrape(d), "certreg_db_listen_down")[
            ("certreg_db_listen_down", ())] == 2
        assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    finally:
        pg_cluster.psql("ALTER ROLE certregd_test CONNECTION LIMIT -1")
    wait_for(lambda: samples(scrape(d), "certreg_db_listen_down")[
        ("certreg_db_listen_down", ())] == 0, 20)


def test_a_root_re_keyed_under_its_name_gives_distinct_series(certregd, db, pki, tmp_path):
    """A root re-keyed under its own name (docs/OPERATIONS.md, "Adding a CA
    or a new root") is two anchors with one subject, each with its CRL: one
    series per anchor and per CRL, or Prometheus keeps one of two samples
    with the same labels (a duplicate) and drops the other, and the alert
    on the dropped one's expiry never fires."""
    import datetime
    from cryptography.hazmat.primitives import hashes, serialization
    ca = pki.dir / "ca"
    new_root = x509.load_pem_x509_certificate((ca / "other-root.pem").read_bytes())
    new_key = serialization.load_pem_private_key((ca / "other-root.key").read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(new_root.subject)
           .last_update(now - datetime.timedelta(hours=1))
           .next_update(now + datetime.timedelta(days=3))
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
               new_key.public_key()), critical=False)
           .add_extension(x509.CRLNumber(1), critical=False)
           .sign(new_key, hashes.SHA256()))
    trust = tmp_path / "trust.pem"
    trust.write_bytes((ca / "trust.pem").read_bytes() + (ca / "other-root.pem").read_bytes())
    trust.chmod(0o644)
    d = certregd(db)
    (d.dir / "crl" / "root-new-key.crl.pem").write_bytes(
        crl.public_bytes(serialization.Encoding.PEM))
    (d.dir / "crl" / "root-new-key.crl.pem").chmod(0o644)
    d.stop()
    d2 = certregd(db, trust={"ca_file": trust, "crl_dir": d.dir / "crl"})
    text = d2.get("/metrics").body.decode()
    fams = scrape(d2)
    subject = "CN=certreg Test Root CA,O=certreg test PKI,C=CN"
    for name, label in (("certreg_trust_anchor_not_after_timestamp_seconds", "subject"),
                        ("certreg_crl_next_update_timestamp_seconds", "issuer"),
                        ("certreg_crl_this_update_timestamp_seconds", "issuer")):
        rows = [s for f in fams.values() for s in f.samples if s.name == name]
        keys = [tuple(sorted(s.labels.items())) for s in rows]
        assert len(keys) == len(set(keys)), (name, text)
        assert len([s for s in rows if s.labels[label] == subject]) == 2, (name, text)


def backlog_values(d):
    fams = scrape(d)
    return (samples(fams, "certreg_db_backlog").get(("certreg_db_backlog", ()), 0),
            samples(fams, "certreg_db_backlog_lost_total").get(
                ("certreg_db_backlog_lost_total", ())))


def test_writes_a_replaced_or_crashed_worker_held_are_counted_lost(certregd, db, pki,
                                                                     pg_cluster):
    """Writes held for an absent primary die with their worker: at the end
    of a reload's drain (event=backlog_lost) or in a crash (no log line of
    their own). certreg_db_backlog then fell to 0 as if they had been
    written; certreg_db_backlog_lost_total says they were not."""
    d = certregd(db, server={"workers": 1}, database={"timeout_ms": 500})
    expired = open(pki.leaf("expired")["chain"]).read()
    revoked = open(pki.leaf("revoked")["chain"]).read()
    assert backlog_values(d) == (0, 0)
    pg_cluster.stop()
    try:
        # A refused certificate is recorded in the background: held.
        assert d.verify_bundle(expired).json()["outcome"] == "CERT_EXPIRED"
        wait_for(lambda: backlog_values(d)[0] == 1)
        old = worker_pids(d)
        d.reload()
        wait_for(lambda: backlog_values(d) == (0, 1), 20)
        assert "event=backlog_lost" in d.log()
        assert not set(old) & set(worker_pids(d))
        # A crash: the worker's last published backlog is counted lost.
        assert d.verify_bundle(revoked).json()["outcome"] == "CERT_REVOKED"
        wait_for(lambda: backlog_values(d)[0] == 1)
        victim = worker_pids(d)[0]
        d.killed.add(victim)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: backlog_values(d) == (0, 2))
    finally:
        pg_cluster.start()


def test_a_read_only_primary_makes_readyz_503(certregd, db, pki, pg_cluster):
    """The primary turned read-only (default_transaction_read_only, as a
    full disk's runbook or a fencing script sets it): every decision of a
    known key records the certificate seen and fails, SERVICE_UNAVAILABLE,
    while /readyz said 200 (its ping only reads). It must say why."""
    d = certregd(db)
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    pg_cluster.psql("ALTER SYSTEM SET default_transaction_read_only = on")
    pg_cluster.psql("SELECT pg_reload_conf()")
    try:
        fresh = open(pki.leaf("rsa-ok")["chain"]).read()  # not in any cache
        wait_for(lambda: d.verify_bundle(fresh).json()["outcome"] == "SERVICE_UNAVAILABLE",
                 5)

        def not_ready():
            r = d.get("/readyz")
            return r.status == 503 and any("read-only" in x for x in r.json()["reasons"])
        wait_for(not_ready, 5)
    finally:
        pg_cluster.psql("ALTER SYSTEM RESET default_transaction_read_only")
        pg_cluster.psql("SELECT pg_reload_conf()")
    wait_for(lambda: d.get("/readyz").status == 200, 10)
    wait_for(lambda: d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED", 10)


class PgRelay:
    """A TCP port on loopback relaying to the cluster's socket: a database
    host that can go away (every connection cut, nothing listening) and
    come back on the same address."""

    def __init__(self, pg_cluster):
        self.target = f"{pg_cluster.host}/.s.PGSQL.{pg_cluster.port}"
        self.port = None
        self.conns = []
        self.listener = None

    def start(self):
        import threading
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port or 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        import threading
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        # shutdown wakes the accept() of the thread (close alone does not).
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []


def test_host_errors_stay_with_their_host_across_a_failover(certregd, db, pg_cluster,
                                                            daemon_role):
    """conninfo names two hosts (the relay first). The relay goes away: the
    worker's connections fail there and move to the second host; later they
    fail there and move back. Each connection's error count went with it,
    and the slot's table was matched by position: the first host's
    certreg_db_host_errors_total fell to 0 when its connections came back
    (what it had counted went to the second host, which had none)."""
    relay = PgRelay(pg_cluster)
    relay.start()
    try:
        conninfo = (f"host=127.0.0.1,{pg_cluster.host} port={relay.port},{pg_cluster.port} "
                    f"dbname={db.name} user={daemon_role} target_session_attrs=read-write")
        d = certregd(db, server={"workers": 1},
                     database={"conninfo": conninfo, "timeout_ms": 1000})
        first = f"127.0.0.1:{relay.port}"
        second = f"{pg_cluster.host}:{pg_cluster.port}"[:63]

        def errors():
            return {dict(k[1])["host"]: v
                    for k, v in samples(scrape(d), "certreg_db_host_errors_total").items()}

        def up(host):
            return {dict(k[1])["host"]: v
                    for k, v in samples(scrape(d), "certreg_db_host_up").items()}.get(host) == 1

        wait_for(lambda: d.get("/readyz").status == 200 and up(first))
        assert errors() == {first: 0}
        relay.stop()
        wait_for(lambda: up(second) and not up(first) and d.get("/readyz").status == 200, 20)
        time.sleep(1.5)
        seen = wait_for(lambda: errors().get(first) or errors().get(second))
        counted_first = max(errors().get(first, 0), seen)
        assert errors().get(second, 0) == 0, errors()  # none failed there
        relay.start()
        pg_cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{db.name}' AND usename = '{daemon_role}' "
                        "AND client_addr IS NULL AND pid <> pg_backend_pid() "
                        "AND application_name = 'certregd'")
        wait_for(lambda: up(first) and d.get("/readyz").status == 200, 20)
        # The worker publishes once a second.
        wait_for(lambda: errors().get(second, 0) > 0)
        got = errors()
        assert got.get(first, 0) >= counted_first, got
        assert got.get(second, 0) > 0, got
    finally:
        relay.stop()
