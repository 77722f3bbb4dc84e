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

make bench (run.py) uses the same groups for "the same CPU budget" (rows
3 and 8; `Budget`): certregd's workers in one group, its bare-OpenSSL
peer's processes in another, both with the same quota and pinned to the
same vCPU, the load generator and PostgreSQL outside both (row 8 ECDSA,
certregd on both sides, runs both in certregd's group in turn).
`budget_verdict()` says whether a closed-loop round measured the budget
(the quota was the limit, the generator was not), and the process and
machine CPU counters here (`cpu_seconds`, `children_cpu`, `system_times`)
say who used what during a round.

Where the cgroup v1 cpu hierarchy is missing or not writable (not root,
cgroup v2 only, a container), `available()` says why and the bench reports
without the quota rows' targets.
"""
import contextlib
import os
import resource
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup/cpu")
PREFIX = "certreg-bench-"
PERIOD_US = 100_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A budgeted closed-loop round measured the budget when its group was
# throttled in at least BOUND_SHARE of the periods (it had work beyond its
# quota) and used USED_SHARE of the budget or more (a period counts only
# while the group runs: a side that mostly waited can be throttled in the
# few periods it had), and the generator used less than GENERATOR_SHARE of
# the cores outside the budget (it had room to make more).
BOUND_SHARE = 0.5
USED_SHARE = 0.8
GENERATOR_SHARE = 0.9


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
        self.period_us = PERIOD_US

    @classmethod
    def make(cls, name, cores=None, shares=1024, period_us=PERIOD_US):
        g = cls(ROOT / f"{PREFIX}{os.getpid()}-{name}")
        g.period_us = period_us
        g.path.mkdir()
        try:
            (g.path / "cpu.cfs_period_us").write_text(str(period_us))
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
        quota = -1 if cores is None else max(1000, round(cores * self.period_us))
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


def cpu_times(pids):
    """(user, system) CPU seconds of PIDS so far (processes gone are not
    counted)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids):
    """User + system CPU time of PIDS so far."""
    return sum(cpu_times(pids))


def children_cpu():
    """User + system CPU time of the caller's children waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def system_times():
    """The whole machine's CPU seconds so far by kind (/proc/stat, all CPUs):
    softirq is where loopback TCP's receive work shows, steal the host's."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:1 + len(STAT_FIELDS)]
    return {k: int(v) / CLK_TCK for k, v in zip(STAT_FIELDS, fields)}


def budget_verdict(nr_periods, nr_throttled, generator_cores, cores, nproc, used_cores=None):
    """None when a closed-loop round in a budget of CORES (of NPROC)
    measured the budget, else why not (one line): its group throttled
    in fewer than BOUND_SHARE of the periods, or its processes using less
    than USED_SHARE of CORES (USED_CORES, when given): the quota was not
    the limit (the side waited for work, or the machine gave it less than
    its quota); or the generator using GENERATOR_SHARE or more of the
    cores outside the budget (it may have been the limit).
    GENERATOR_CORES is None for a peer that needs no generator."""
    if nr_periods <= 0:
        return "no quota period elapsed"
    if nr_throttled < BOUND_SHARE * nr_periods:
        return (f"the quota was not the limit (throttled in {nr_throttled} of "
                f"{nr_periods} periods)")
    if used_cores is not None and used_cores < USED_SHARE * cores:
        return f"the quota was not the limit (used {used_cores:.2f} of {cores:g} cores)"
    room = nproc - cores
    if generator_cores is not None and generator_cores >= GENERATOR_SHARE * room:
        return (f"the generator used {generator_cores:.2f} of the {room:g} cores outside "
                "the budget")
    return None


class Budget:
    """The same CPU budget for certregd and its peer: a group for each with
    the same quota (CORES of a core every PERIOD_US) and both pinned to the
    same vCPU, so that the host's steal and the other work of the machine
    hit both alike; a group for the generator (the caller while it runs
    the rounds, so the loadgen it starts) and one for PostgreSQL, with no
    quota: outside the budget, as the portal's clients and the database
    host are in production. The shares (SHARES while a budgeted round runs,
    1024 otherwise) keep the machine's other work from taking what the
    groups are owed."""

    def __init__(self, cores, cpu, shares=32768, period_us=20_000):
        self.cores, self.cpu, self.shares = cores, cpu, shares
        self.groups = {}
        try:
            for name in ("certregd", "peer"):
                self.groups[name] = Group.make(f"budget-{name}", period_us=period_us)
            for name in ("generator", "database"):
                self.groups[name] = Group.make(name)
        except BaseException:
            self.remove()
            raise

    def __getitem__(self, name):
        return self.groups[name]

    def start(self, daemon_pids, database_pids):
        """A budgeted round begins: the daemon's processes in their group
        on the budget's CPU, the database in its own, the caller in the
        generator's; the quotas and shares on."""
        for name in ("certregd", "peer"):
            self.groups[name].set(self.cores, self.shares)
        for name in ("generator", "database"):
            self.groups[name].set(None, self.shares)
        for pid in daemon_pids:
            self.groups["certregd"].join(pid)
            os.sched_setaffinity(pid, {self.cpu})
        for pid in database_pids:
            # A backend that ended meanwhile is no error.
            with contextlib.suppress(ProcessLookupError):
                self.groups["database"].join(pid)
        self.groups["generator"].join()

    def peer_preexec(self):
        """For subprocess.Popen(preexec_fn=): the peer's process (and the
        processes it forks) in its group, on the budget's CPU."""
        self.groups["peer"].join(os.getpid())
        os.sched_setaffinity(0, {self.cpu})

    def stop(self, daemon_pids):
        """The budgeted rounds end: everything back in the root group and on
        every CPU, as if no group had been made."""
        (ROOT / "cgroup.procs").write_text(str(os.getpid()))
        for g in self.groups.values():
            g.release()
            g.set(None)
        for pid in daemon_pids:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, range(os.cpu_count() or 1))

    def remove(self):
        """Everything back in the root group, every group removed; safe to
        call twice."""
        try:
            (ROOT / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            pass
        for g in self.groups.values():
            g.remove()
        self.groups = {}

