"""CPU cgroups of make bench-replica: a daemon "with cores of its own" on a
shared machine.

Owns the cgroup v1 `cpu` directories the bench makes under
/sys/fs/cgroup/cpu (one per daemon and one for the rest of the bench's
processes), their quota and shares, the throttling counters read from
them, and their removal. It does not start processes: replica.py puts
each daemon in its group as it starts it (`preexec`), itself in the
"rest" group while it starts nginx and PostgreSQL, and then in the
"generator" group, where the load generators it runs are born.

Why: on a 2-core machine shared with other work, a second daemon gets no
core of its own, so "two daemons behind one address make twice one's
decisions" cannot be measured by starting two. A CPU quota (cpu.cfs_quota_us
/ cpu.cfs_period_us) makes each daemon a machine of that many cores: with
the quota small enough that the generator, the balancer and PostgreSQL have
room to spare, one daemon is bound by its quota (its group's nr_throttled
grows every period) and two daemons by twice that. Shares above the
default (1024, one ordinary process) keep the other work on the machine
from taking what a group is owed; the quota caps what it may take.

Where the cgroup v1 cpu hierarchy is missing or not writable (not root,
cgroup v2 only, a container), `available()` says why and the bench reports
without the quota rows' targets.
"""
import os
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup/cpu")
PREFIX = "certreg-bench-"
PERIOD_US = 100_000


def available():
    """None when groups can be made here, else why not (one line)."""
    if not (ROOT / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu hierarchy at {ROOT}"
    if not os.access(ROOT, os.W_OK) or not os.access(ROOT / "cgroup.procs", os.W_OK):
        return f"{ROOT} is not writable (run as root)"
    probe = ROOT / f"{PREFIX}{os.getpid()}-probe"
    try:
        probe.mkdir()
        (probe / "cpu.cfs_quota_us").write_text(str(PERIOD_US))
    except OSError as e:
        return f"cannot make a cpu cgroup: {e.strerror}"
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass
    return None


def remove_stale():
    """Removes the groups of earlier runs killed before their cleanup
    (SIGKILL): those whose owning bench process is gone. Their processes,
    if any are left, go back to the root group first."""
    for d in ROOT.glob(PREFIX + "*"):
        try:
            owner = int(d.name[len(PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        Group(d).remove()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Group:
    """One cpu cgroup: quota in cores (None: unlimited), shares, counters."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def make(cls, name, cores=None, shares=1024):
        g = cls(ROOT / f"{PREFIX}{os.getpid()}-{name}")
        g.path.mkdir()
        try:
            (g.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            g.set(cores, shares)
        except BaseException:
            g.path.rmdir()
            raise
        return g

    @property
    def name(self):
        return self.path.name

    def set(self, cores=None, shares=1024):
        self.cores = cores
        quota = -1 if cores is None else max(1000, round(cores * PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        (self.path / "cpu.shares").write_text(str(shares))

    def join(self, pid=0):
        """Moves process pid (0: the caller) and the threads of it into the
        group; the processes it forks from then on are born in it."""
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def preexec(self):
        """For subprocess.Popen(preexec_fn=): the child joins before exec."""
        self.join(os.getpid())

    def stat(self):
        """cpu.stat: nr_periods, nr_throttled, throttled_time (ns)."""
        return {k: int(v) for k, v in (line.split() for line in
                                       (self.path / "cpu.stat").read_text().splitlines())}

    def pids(self):
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def release(self):
        """Moves every process of the group to the root group, where it
        runs as if no group had been made (its later children too)."""
        for pid in self.pids():
            try:
                (ROOT / "cgroup.procs").write_text(str(pid))
            except ProcessLookupError:
                pass

    def remove(self):
        """Moves whatever is still in the group to the root group, then
        removes the group. Safe to call twice."""
        for _ in range(50):
            try:
                self.release()
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                # A process forked between the listing and the rmdir (EBUSY):
                # list again.
                time.sleep(0.02)
        self.path.rmdir()
