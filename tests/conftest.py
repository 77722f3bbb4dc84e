"""Root pytest configuration: loads the fixture plugins.

fixtures.pki     the test PKI (tests/pki/mkpki.py), once per session
fixtures.pg      a throwaway PostgreSQL cluster and migrated databases
fixtures.daemon  certregd on free ports, checked for crashes at teardown
"""
import shutil
import tempfile

pytest_plugins = ["fixtures.pki", "fixtures.pg", "fixtures.daemon"]


def pytest_configure(config):
    # The cluster and the daemon run as an unprivileged user when the tests
    # run as root, and need to reach their files. pytest resets its shared
    # /tmp/pytest-of-<user> to 0700 whenever any session starts, so each
    # session gets a directory of its own instead.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="certreg-pytest-")
        config._certreg_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    path = getattr(config, "_certreg_basetemp", None)
    if path and getattr(config, "_certreg_passed", False):
        shutil.rmtree(path, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    session.config._certreg_passed = exitstatus == 0
    if exitstatus != 0 and getattr(session.config, "_certreg_basetemp", None):
        print(f"\ntest files kept in {session.config._certreg_basetemp}")
