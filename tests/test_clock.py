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
import time

from fixtures.daemon import open_for_daemon_user
from test_registry_sql import bind_for_last_use, connect, last_used_ago

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
        return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


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

