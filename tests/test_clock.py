"""Time as an input: certregd's clock off the database's, and stepped
while it runs (NTP correcting it, a virtual machine resumed).

certregd runs under libfaketime (Debian package faketime, a test
dependency in scripts/deps.sh): its realtime clock is offset from the
database's, or stepped through FAKETIME_TIMESTAMP_FILE while it runs. Its
monotonic clock is left real (FAKETIME_DONT_FAKE_MONOTONIC), as a real
step leaves it. The host's clock is never changed. libfaketime cannot
start under jemalloc: these tests run certregd-libc-malloc, the same
objects linked with glibc's malloc (the Makefile's integration target
builds it).
"""
import os
import time

import pytest

from fixtures.daemon import free_port, open_for_daemon_user, until
from test_crl_fetch import CrlServer, Pki, daemon_crl_dir, started, wait_for
from test_crl_fetch import outcome as crl_outcome
from test_registry_sql import bind_for_last_use, connect, last_used_ago
from test_signed_login import bind, challenge, login, outcome, sign

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


class Clock:
    """certregd's realtime clock: an offset from the host's, in seconds,
    that a test may change while the daemon runs."""

    def __init__(self, tmp_path, offset=0):
        d = tmp_path / "clock"
        d.mkdir()
        d.chmod(0o755)
        open_for_daemon_user(d)
        self.path = d / "faketimerc"
        self.set(offset)

    def set(self, offset):
        self.path.write_text(f"{offset:+d}\n")
        self.path.chmod(0o644)

    def daemon(self, certregd, db, **kw):
        """certregd on this clock."""
        return certregd(db, env=self.env(), program="certregd-libc-malloc", **kw)

    def env(self):
        # On the sanitizer build (make sanitize-integration) ASan refuses
        # to start after a preloaded library unless told not to check.
        asan = [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]
        return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "ASAN_OPTIONS": ":".join(o for o in asan if o)}


def test_the_daemon_runs_on_the_clock_it_is_given(certregd, db, tmp_path):
    """The harness itself: the daemon's Date header follows the offset and a
    step while it runs (otherwise every test below proves nothing)."""
    clock = Clock(tmp_path, -3600)
    d = clock.daemon(certregd, db)
    date = d.get("/healthz").headers["Date"]
    seen = time.mktime(time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(
        time.gmtime(0))
    assert abs(seen - (time.time() - 3600)) < 5, date
    clock.set(0)

    def date_now():
        # The Date header is made once a second (later on a stalled VM).
        date = d.get("/healthz").headers["Date"]
        seen = time.mktime(time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(
            time.gmtime(0))
        return abs(seen - time.time()) < 5
    until(date_now, 10, why=lambda: d.get("/healthz").headers["Date"])


def test_a_clock_stepped_back_keeps_recording_last_use(certregd, db, pki, tmp_path):
    """The decision cache spaces a key's last-use records by record_interval.
    Counted on the realtime clock, a step back of an hour stopped them for
    an hour (and kept the cached decision an hour past cache ttl): the
    stolen-key walk (docs/OPERATIONS.md) reads last use and its refusal."""
    su = connect(db).cursor()
    key = bind_for_last_use(db, pki, "ec-ok", "CK01", "110111000201")
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    clock = Clock(tmp_path)
    d = clock.daemon(certregd, db, cache={"record_interval": 1}, server={"workers": 1})
    assert d.verify_bundle(chain).json()["outcome"] == "OK"  # decide(): recorded
    assert last_used_ago(su, key) < 2
    clock.set(-3600)
    time.sleep(3)
    assert last_used_ago(su, key) >= 3
    # Cached, and the use due: recorded.
    assert d.verify_bundle(chain).json()["outcome"] == "OK"
    deadline = time.monotonic() + 5
    while last_used_ago(su, key) >= 3:
        assert time.monotonic() < deadline, "the use after the step was not recorded"
        time.sleep(0.1)


def test_a_database_clock_ahead_by_two_minutes_still_takes_challenges(certregd, db, pki,
                                                                      tmp_path):
    """certregd issues a challenge's expiry by its clock; the database
    spent it only while its own clock was before that expiry. With the
    database two minutes ahead and challenge_ttl = 120, no signed login
    could succeed, and the refusal said "already used"."""
    leaf = pki.leaf("ec-ok")
    bind(db, leaf["pem"])
    for offset in (-120, -290):
        (tmp_path / str(-offset)).mkdir()
        d = Clock(tmp_path / str(-offset), offset).daemon(certregd, db)
        c = challenge(d)["challenge"]
        r = login(d, open(leaf["pem"]).read(), c, sign(leaf["key"], c, "sha256"))
        assert outcome(r) == "OK", (offset, r.json())
        # Single use still holds.
        r = login(d, open(leaf["pem"]).read(), c, sign(leaf["key"], c, "sha256"))
        assert outcome(r) == "CHALLENGE_INVALID", (offset, r.json())
        d.stop()


def test_the_database_takes_a_challenge_five_minutes_past_its_expiry_and_no_longer(db,
                                                                                  pg_cluster):
    """The other side of the rule in sql/functions/70_challenges.sql: an
    expiry 299 s past by the database's clock is taken once (the daemons
    already refused it if it was past by theirs), one 301 s past is not
    and leaves no row; the purge keeps a spent row those five minutes."""
    pg_cluster.ensure_login("daemon_ck_test", "certreg_daemon")
    d = connect(db, "daemon_ck_test").cursor()
    su = connect(db).cursor()
    consume = ("SELECT certreg.challenge_consume(%s, now() - make_interval(secs => %s), %s)")
    d.execute(consume, ("1" * 64, 299, "a" * 32))
    assert d.fetchone() == (True,)
    d.execute(consume, ("1" * 64, 299, "b" * 32))
    assert d.fetchone() == (False,)
    d.execute(consume, ("2" * 64, 301, "a" * 32))
    assert d.fetchone() == (False,)
    su.execute("SELECT hash FROM certreg.challenges_used ORDER BY hash")
    assert su.fetchall() == [("1" * 64,)]
    d.execute("SELECT certreg.challenge_consume_many(%s::text[], ARRAY[now() - interval"
              " '299 seconds', now() - interval '301 seconds'], %s::text[])",
              (["3" * 64, "4" * 64], ["a" * 32, "a" * 32]))
    assert d.fetchone()[0] == [True, False]
    su.execute("SELECT certreg.challenge_purge()")
    su.execute("SELECT hash FROM certreg.challenges_used ORDER BY hash")
    assert su.fetchall() == [("1" * 64,), ("3" * 64,)]
    su.execute("UPDATE certreg.challenges_used SET expires_at = now() - interval '301 seconds'")
    su.execute("SELECT certreg.challenge_purge()")
    su.execute("SELECT count(*) FROM certreg.challenges_used")
    assert su.fetchone() == (0,)


def pending_metric(d):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith("certreg_pending_registrations "):
            return int(line.split()[1])
    return None


def test_a_clock_stepped_back_keeps_counting_pending_registrations(certregd, db, pki,
                                                                   tmp_path):
    """The pending count for /metrics is asked every 10 s. Scheduled on the
    realtime clock, a step back of an hour stopped the counts, and the last
    one (stamped in the future) went on being shown as current."""
    clock = Clock(tmp_path)
    d = clock.daemon(certregd, db, server={"workers": 1})
    # Counted every 10 s, then published at the worker's next second: 30 s
    # leaves a stalled VM room.
    deadline = time.monotonic() + 30
    while pending_metric(d) != 0:
        assert time.monotonic() < deadline, d.get("/metrics").body.decode()
        time.sleep(0.2)
    clock.set(-3600)
    time.sleep(1)
    chain = open(pki.leaf("rsa-ok")["chain"]).read()
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    deadline = time.monotonic() + 30
    while pending_metric(d) != 1:
        assert time.monotonic() < deadline, "the pending count stopped after the step"
        time.sleep(0.2)


def crl_fetching_daemon(clock, certregd, db, cpki, tmp_path, crls=None, **trust):
    """certregd on clock fetching cpki's CRLs (test_crl_fetch's PKI and
    server) into a crl_dir holding crls (file name -> DER) at start."""
    crl_dir = daemon_crl_dir(tmp_path)
    for n, der in (crls or {}).items():
        (crl_dir / n).write_bytes(der)
        (crl_dir / n).chmod(0o644)
    return clock.daemon(certregd, db, trust={
        "ca_file": cpki.dir / "root.pem", "intermediates_file": cpki.dir / "int.pem",
        "crl_dir": crl_dir, "revocation": "require", "crl_fetch": "yes",
        "crl_fetch_interval": 2, **trust})


@pytest.fixture
def crl_ca(tmp_path):
    """A CA signing its CRLs by the host's clock, served on loopback."""
    d = tmp_path / "crl-ca"
    d.mkdir()
    d.chmod(0o755)
    port = free_port()
    cpki = Pki(d, port)
    server = CrlServer(port, cpki)
    yield cpki, server
    server.close()


def test_a_crl_signed_a_minute_ahead_of_the_daemon_is_applied(certregd, db, tmp_path, crl_ca):
    """certregd 60 s behind its CA: each CRL the CA publishes has a
    lastUpdate 60 s ahead of the daemon's clock. crl_fetch installed it
    (clock_skew), but the engine applied a CRL only from its lastUpdate:
    every certificate of the CA was CERT_REVOCATION_UNKNOWN and /readyz
    not ready for a minute after each new CRL. Now a lastUpdate up to
    clock_skew ahead counts as current everywhere."""
    cpki, server = crl_ca
    clock = Clock(tmp_path, -60)
    d = crl_fetching_daemon(clock, certregd, db, cpki, tmp_path)
    started(d, cpki)  # the CRLs fetched, applied, /readyz 200 within 15 s
    assert crl_outcome(d, cpki, "good") == "KEY_NOT_APPROVED"
    server.revoked["int"].add(cpki.certs["victim"].serial_number)
    assert wait_for(lambda: crl_outcome(d, cpki, "victim") == "CERT_REVOKED", timeout=10)
    assert d.get("/readyz").status == 200
    # The harness: the CRL in force was issued after the daemon's "now".
    issued = [float(line.rsplit(" ", 1)[1])
              for line in d.get("/metrics").body.decode().splitlines()
              if line.startswith("certreg_crl_this_update_timestamp_seconds")]
    assert issued and max(issued) > time.time() - 60 + 30, issued


def test_a_newer_crl_ahead_of_the_daemon_wins_over_an_older_current_one(certregd, db,
                                                                       tmp_path, crl_ca):
    """The same daemon with the CA's older CRLs (an hour old, current,
    revoking nothing) still in crl_dir: OpenSSL prefers a CRL current by
    the exact clock over a newer one, so the revocation only the newer
    lists was not applied until the daemon's clock passed its lastUpdate."""
    cpki, server = crl_ca
    server.revoked["int"].add(cpki.certs["victim"].serial_number)
    old = {f"old-{n}.crl": cpki.crl(n, set(), 86400, age=3600) for n in ("root", "int")}
    d = crl_fetching_daemon(Clock(tmp_path, -60), certregd, db, cpki, tmp_path, crls=old)
    assert d.get("/readyz").status == 200  # the old CRLs are current
    assert crl_outcome(d, cpki, "victim") == "KEY_NOT_APPROVED"  # and make it fetch
    assert wait_for(lambda: crl_outcome(d, cpki, "victim") == "CERT_REVOKED", timeout=10)
    assert crl_outcome(d, cpki, "good") == "KEY_NOT_APPROVED"


def test_a_crl_further_ahead_than_clock_skew_is_not_current(certregd, db, tmp_path, crl_ca):
    """The bound: with clock_skew = 30 the CRL 60 s ahead is neither
    installed nor applied; the daemon stays not ready and refuses."""
    cpki, server = crl_ca
    d = crl_fetching_daemon(Clock(tmp_path, -60), certregd, db, cpki, tmp_path,
                            clock_skew=30)
    assert crl_outcome(d, cpki, "good") == "CERT_REVOCATION_UNKNOWN"
    assert wait_for(lambda: "not current" in d.log())
    time.sleep(1)
    assert crl_outcome(d, cpki, "good") == "CERT_REVOCATION_UNKNOWN"
    r = d.get("/readyz")
    assert r.status == 503 and b"no current CRL" in r.body, r.body


def clock_offset_metric(d):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith("certreg_db_clock_offset_seconds "):
            return float(line.split()[1])
    return None


def wait_clock_offset(d, near, within=5):
    deadline = time.monotonic() + 10
    while True:
        seen = clock_offset_metric(d)
        if seen is not None and abs(seen - near) < within:
            return seen
        assert time.monotonic() < deadline, (near, seen)
        time.sleep(0.2)


def test_the_database_clock_offset_is_measured(certregd, db, tmp_path):
    """How far the database's clock is from certregd's was visible only
    once it broke signed logins (beyond 300 s). The gauge is the database's
    clock minus the daemon's: a daemon 120 s ahead reads about -120, and
    follows a step while it runs."""
    clock = Clock(tmp_path, 120)
    d = clock.daemon(certregd, db, server={"workers": 2})
    wait_clock_offset(d, -120)
    clock.set(0)
    wait_clock_offset(d, 0, within=1)


def test_the_database_clock_offset_is_about_zero_on_one_clock(certregd, db):
    """The same measure on the ordinary build, without libfaketime."""
    d = certregd(db)
    wait_clock_offset(d, 0, within=1)
