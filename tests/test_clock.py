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

from fixtures.daemon import open_for_daemon_user
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
    time.sleep(1.1)  # the Date header is made once a second
    date = d.get("/healthz").headers["Date"]
    seen = time.mktime(time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(
        time.gmtime(0))
    assert abs(seen - time.time()) < 5, date


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
    deadline = time.monotonic() + 15
    while pending_metric(d) != 0:
        assert time.monotonic() < deadline, d.get("/metrics").body.decode()
        time.sleep(0.2)
    clock.set(-3600)
    time.sleep(1)
    chain = open(pki.leaf("rsa-ok")["chain"]).read()
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    deadline = time.monotonic() + 15
    while pending_metric(d) != 1:
        assert time.monotonic() < deadline, "the pending count stopped after the step"
        time.sleep(0.2)


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
