#!/usr/bin/env python3
"""make bench-replica: decisions read on a standby, and two daemons behind one address.

The performance half of issue 30 (contract section 9). Starts a throwaway
PostgreSQL primary with the generated registry (tests/bench/gen_dataset.sql,
--keys keys, --certs bench certificates bound) and a streaming hot standby
made from it (pg_basebackup -R), both on 127.0.0.1 over TCP as in
production, then certregd with the association cache off (size = 0), so
that every decision reads the database, and measures with build/bench/loadgen.

Where it can (cgroup v1 cpu, as root; tests/bench/cpugroup.py), each daemon
runs in a CPU group of its own with a quota (--daemon-cpu, default 0.1 of a
core): "a daemon with its own cores" on a shared 2-core machine. The
bench's groups weigh more than the machine's other work while measuring
(--shares); the quotas bound what they take.

1. The peak (closed loop) of a daemon reading on the standby and of one
   reading on the primary, each at its quota, alternating rounds, medians,
   and the CPU each side (daemon + PostgreSQL) spent per decision.
2. The p99 of decisions read on the standby against the same on the
   primary, at the same open-loop rate (--load: half the primary-read
   daemon's peak at its quota, a rate that does not move with the
   machine), rounds run without the quota: many short pairs of rounds in
   alternating order, the standby caught up before each; a pair in which
   the generator's own timer stalled over --max-gap-ms is run again, not
   counted. The ratio of the medians of the rounds' p99s (target <= 1.10),
   with a 90 % bootstrap interval over the pairs, the median of the pairs'
   ratios, and the pooled p99s (run.py's pooled_p99).
3. Two daemons (one worker each) behind one address, an nginx `stream`
   balancer, against one behind another address of the same nginx: each
   daemon at its quota, all three on the same CPU, 64 connections per
   daemon, both addresses loaded at the same time so that both go through
   the same seconds of the machine. The median of the rounds' ratios
   (target >= 1.80); every round checks that every daemon ran at its quota
   (cpu.stat nr_throttled) and records what PostgreSQL, the balancer and
   the generator used and what the machine left idle.
4. The same two daemons against one on the shared cores, no quota,
   alternating rounds: what this machine gives a second daemon (report).

Without CPU groups ("cgroup cpu quota unavailable"), rows 1-2 run on the
shared cores and row 3 is left out. Prints the table (build/bench/
replica.txt) and writes build/bench/replica.json. Exit status 0 when every
measurement ran (and reads did go to the standby), whatever the ratios.
The helpers (dataset, certificates, loadgen runs, pooled p99) are run.py's.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpugroup  # noqa: E402
import run as bench  # noqa: E402  (definitions only; main() runs under __main__)

ROOT, BUILD, BENCH = bench.ROOT, bench.BUILD, bench.BENCH
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLE = "certregd"
# Closed-loop and open-loop connections of the peak and p99 rows: as
# run.py's cold rows.
CONNECTIONS = 32
# The two-daemon rows: 64 connections on each daemon, so 64 at the
# one-daemon address and 128 at the two-daemon one. A daemon at its quota
# makes fewer requests per wake-up with fewer connections, and each costs
# it more CPU (16 instead of 32: about 20 % more; 32 instead of 64: 5-10 %;
# docs/PERFORMANCE-HISTORY.md): the same total at both addresses compared
# one busy daemon with two less busy ones, not one daemon with two.
PER_DAEMON = 64


def listen_tcp(cluster, extra=""):
    """cluster (stopped) listens on 127.0.0.1 too, on a port of its own;
    Unix-socket tools (psql, pg_basebackup) follow the same port."""
    cluster.port = bench.free_port()
    with open(cluster.data / "postgresql.conf", "a") as f:
        f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {cluster.port}\n"
                f"track_functions = all\n{extra}")


def make_standby(primary, base):
    """A streaming hot standby of primary in base, started."""
    s = Cluster(base)
    (base / "sock").mkdir(parents=True)
    if bench.ROOT_UID:
        for p in (base, base / "sock"):
            shutil.chown(p, "nobody", "nogroup")
    s._run(s.bin / "pg_basebackup", "-D", s.data, "-h", primary.host, "-p", primary.port,
           "-U", primary.superuser, "-R", "-X", "stream", "-c", "fast")
    with open(s.data / "postgresql.conf", "a") as f:
        f.write(f"\nunix_socket_directories = '{s.host}'\nhot_standby = on\n")
    listen_tcp(s)
    s.start()
    return s


def tcp_conninfo(first, second, attrs):
    return (f"host=127.0.0.1,127.0.0.1 port={first.port},{second.port} dbname=certreg "
            f"user={ROLE} target_session_attrs={attrs} connect_timeout=2")


def wait_replayed(primary, standby):
    lsn = primary.psql("SELECT pg_current_wal_lsn()").strip()
    deadline = time.monotonic() + 60
    while standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'").strip() != "t":
        if time.monotonic() > deadline:
            raise RuntimeError("the standby did not replay the dataset in 60 s")
        time.sleep(0.2)


def decide_reads(cluster):
    """decide_read() calls the server has counted (function statistics)."""
    return int(cluster.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                            "WHERE funcname = 'decide_read'", "certreg"))


class Cluster(bench.Cluster):
    """A bench cluster whose processes can be counted and stopped like a server's."""

    def pids(self):
        pid = self.postmaster_pid()
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                             text=True).stdout.split()
        return [pid] + [int(p) for p in out]


class Daemon(bench.Server):
    """certregd with the association cache off: every decision reads the
    database. The verified-result cache stays on, as in production, so the
    database read is the larger part of a request and the standby/primary
    comparison is as sharp as it gets."""

    def __init__(self, work, name, pki, conninfo, read_conninfo=None, workers="auto",
                 group=None, cpu=None):
        self.name = name
        self.group = group
        self.dir = work / name
        self.dir.mkdir()
        self.dir.chmod(0o755)
        self.api_port = bench.free_port()
        tls_port = bench.free_port()
        for f in ("server.pem", "server.key"):
            shutil.copy(pki / "server" / f, self.dir / f)
        (self.dir / "server.key").chmod(0o600)
        bench.chown_nobody(self.dir / "server.key")
        reads = ""
        if read_conninfo:
            reads = f"read_conninfo = {read_conninfo}\nmax_standby_lag_ms = 1000\n"
        (self.dir / "certreg.conf").write_text(f"""[server]
listen_api = 127.0.0.1:{self.api_port}
listen_tls = 127.0.0.1:{tls_port}
tls_cert = {self.dir}/server.pem
tls_key = {self.dir}/server.key
workers = {workers}
log_level = warn
max_connections = 4096
request_timeout = 60
[trust]
ca_file = {pki}/ca/trust.pem
intermediates_file = {pki}/ca/intermediates.pem
crl_dir = {pki}/crl-all
revocation = require
[database]
conninfo = {conninfo}
{reads}timeout_ms = 2000
[cache]
size = 0
""")
        args = [BUILD / "certregd", "-f", "-c", self.dir / "certreg.conf"]
        if bench.ROOT_UID:
            args[1:1] = ["-u", "nobody"]
        self.log = open(self.dir / "certregd.log", "w")
        def preexec():
            """In its CPU group (and on CPU cpu) from its first instruction:
            the workers it forks are born there."""
            if group:
                group.preexec()
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        self.proc = subprocess.Popen([str(a) for a in args], stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=preexec)
        deadline = time.monotonic() + 20
        while not self.ready(standby=bool(read_conninfo)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"certregd {name} not ready: "
                                   f"{(self.dir / 'certregd.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}",
                                    timeout=2) as r:
            return r.status, r.read().decode()

    def ready(self, standby):
        """/readyz is 200, and with read_conninfo a standby takes the reads."""
        try:
            status, body = self.get("/readyz")
        except OSError:
            return False
        if status != 200:
            return False
        reads = json.loads(body).get("database", {}).get("read", [])
        return not standby or any(h.get("role") == "standby" and h.get("usable")
                                  for h in reads)

    def decisions(self):
        """certreg_decisions_total, all outcomes (one worker: the daemon's)."""
        _, text = self.get("/metrics")
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("certreg_decisions_total"))


class Balancer(bench.Server):
    """nginx's stream module: one address in front of one daemon, another
    in front of two (round robin, one worker process: the connections of
    a run split evenly)."""
    stop_signal = signal.SIGQUIT

    def __init__(self, work, one, two):
        self.dir = work / "balancer"
        (self.dir / "logs").mkdir(parents=True)
        self.one_port, self.two_port = bench.free_port(), bench.free_port()
        user = "user nobody nogroup;" if bench.ROOT_UID else ""
        ups = "\n".join(f"    server 127.0.0.1:{d.api_port};" for d in two)
        (self.dir / "nginx.conf").write_text(f"""load_module {STREAM_MODULE};
{user}
worker_processes 1;
error_log {self.dir}/logs/error.log;
pid {self.dir}/nginx.pid;
events {{ worker_connections 4096; }}
stream {{
  upstream one {{
    server 127.0.0.1:{one.api_port};
  }}
  upstream two {{
{ups}
  }}
  server {{ listen 127.0.0.1:{self.one_port}; proxy_pass one; }}
  server {{ listen 127.0.0.1:{self.two_port}; proxy_pass two; }}
}}
""")
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-p", str(self.dir), "-c",
                                      str(self.dir / "nginx.conf"), "-g", "daemon off;"])
        time.sleep(1)
        if self.proc.poll() is not None:
            raise RuntimeError((self.dir / "logs/error.log").read_text())


def machine_idle():
    """CPU seconds the whole machine has been idle so far (/proc/stat idle
    + iowait, all CPUs): what nobody, the other work included, wanted."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return (int(fields[3]) + int(fields[4])) / CLK_TCK


def accounted(go, daemons, groups, quota=None):
    """go() (a loadgen run), and the CPU time each group of processes
    ({name: [Server]}) and the generator spent per decision the daemons
    counted, in microseconds: the decisions of the warm-up as well, as
    the CPU time covers it. Also the cores each used over the run, the
    cores the machine left idle, and for each cpugroup.Group of QUOTA
    ({name: group}) its periods and throttled periods."""
    pids = {g: [p for srv in servers for p in srv.pids()] for g, servers in groups.items()}
    cpu0 = {g: cpugroup.cpu_seconds(p) for g, p in pids.items()}
    gen0 = cpugroup.children_cpu()
    dec0 = [x.decisions() for x in daemons]
    thr0 = {n: g.stat() for n, g in (quota or {}).items()}
    idle0, t0 = machine_idle(), time.monotonic()
    r = go()
    wall = time.monotonic() - t0
    r["idle_cores"] = (machine_idle() - idle0) / wall
    dec = [x.decisions() - y for x, y in zip(daemons, dec0)]
    cpu = {g: cpugroup.cpu_seconds(p) - cpu0[g] for g, p in pids.items()}
    cpu["loadgen"] = cpugroup.children_cpu() - gen0
    n = max(sum(dec), 1)
    r["decisions"] = dec
    r["cpu_us_per_decision"] = {g: 1e6 * c / n for g, c in cpu.items()}
    r["cores"] = {g: c / wall for g, c in cpu.items()}
    r["throttle"] = {n: {k: g.stat()[k] - thr0[n][k] for k in ("nr_periods", "nr_throttled")}
                     for n, g in (quota or {}).items()}
    return r


def loadgens_at_once(targets, body, duration, warmup=1.0):
    """Closed-loop loadgen runs of BODY at every (port, connections) of
    TARGETS, all at the same time: their figures, in order."""
    outs = bench.run_at_once([bench.loadgen_cmd(port, [*body, "--connections", n], duration,
                                                warmup, None) for port, n in targets],
                             duration + warmup + 120)
    return [bench.loadgen_result(out, body, None) for out in outs]


def cpu_median(runs, group):
    return statistics.median(x["cpu_us_per_decision"][group] for x in runs)


def p99_pairs(a, on_standby, on_primary, body, rate, primary, standby, work):
    """The p99 row's rounds: pairs of an open-loop round on each daemon, in
    alternating order, the standby caught up before each pair. A pair in
    which the generator's own timer stalled longer than --max-gap-ms (its
    tick_gap_us: it was kept from running, and its latencies carry the
    machine's pause) is run again instead of counted, up to three times the
    pairs asked for. Returns (counted pairs, dropped pairs, standby
    decisions sent); a pair is {"samples": [standby, primary] (sorted),
    "p99_us", "tick_gap_us": the same order, "first": which ran first}."""
    samples = work / "samples.txt"
    kept, dropped, sent = [], [], 0
    attempts = 0
    while len(kept) < a.pairs and attempts < 3 * a.pairs:
        attempts += 1
        wait_replayed(primary, standby)
        order = (on_standby, on_primary) if len(kept) % 2 == 0 else (on_primary, on_standby)
        got = {}
        for dmn in order:
            got[dmn] = bench.loadgen(dmn.api_port, *body, "--connections", CONNECTIONS,
                                     "--rate", rate, duration=a.p99_duration, warmup=0.5,
                                     samples=samples)
        sent += got[on_standby]["requests"]
        pair = {k: [got[x][k] for x in (on_standby, on_primary)]
                for k in ("samples", "tick_gap_us")}
        pair["p99_us"] = [bench.percentile(x, 0.99) for x in pair["samples"]]
        pair["first"] = "standby" if order[0] is on_standby else "primary"
        (dropped if max(pair["tick_gap_us"]) > a.max_gap_ms * 1000 else kept).append(pair)
    return kept, dropped, sent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--certs", type=int, default=200)
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds of each measured round of the peak and throughput rows "
                    "(default 3)")
    ap.add_argument("--pairs", type=int, default=16,
                    help="counted pairs of rounds of the p99 row (default 16)")
    ap.add_argument("--p99-duration", type=float, default=2.0,
                    help="seconds of each p99 round (default 2)")
    ap.add_argument("--max-gap-ms", type=float, default=10.0,
                    help="a p99 pair in which the generator's timer stalled longer than "
                    "this is run again, not counted (default 10)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="A/B rounds of the peak and throughput rows (default 5)")
    ap.add_argument("--load", type=float, default=0.5,
                    help="the p99 row's offered rate, a fraction of the primary-read "
                    "daemon's peak (default 0.5)")
    ap.add_argument("--daemon-cpu", type=float, default=0.1,
                    help="each daemon's CPU quota in cores (a cgroup of its own; default "
                    "0.1); 0: no quota, every row on the shared cores")
    ap.add_argument("--shares", type=int, default=32768,
                    help="cpu.shares of the bench's groups while measuring (default 32768; "
                    "an ordinary process weighs 1024)")
    ap.add_argument("--work", type=Path, default=BENCH / "replica",
                    help="scratch directory, emptied first (default build/bench/replica)")
    ap.add_argument("--json", type=Path, default=BENCH / "replica.json",
                    help="where the results go (default build/bench/replica.json; "
                    "the table beside it, .txt)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 10,000 keys, 50 certificates, 1 s rounds, 4 pairs, "
                    "1 round (the figures mean nothing)")
    a = ap.parse_args()
    if a.quick:
        a.keys, a.certs, a.duration, a.p99_duration, a.pairs, a.rounds = (
            10_000, 50, 1.0, 1.0, 4, 1)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.stop_on_signal)
    for tool in (bench.LOADGEN, bench.STALLPROBE, BUILD / "certregd", BUILD / "certreg-admin"):
        if not tool.exists():
            sys.exit(f"{tool} missing: run make all bench-tools")

    work = a.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bench.open_for_nobody(work)
    started, groups = [], {}
    t_start = time.monotonic()
    d = a.duration
    rows, machine, notes = [], {}, []
    q = a.daemon_cpu if a.daemon_cpu > 0 else None
    no_quota = "--daemon-cpu 0" if q is None else cpugroup.available()
    try:
        if no_quota is None:
            cpugroup.remove_stale()
            # This process, and so all it starts (PostgreSQL, nginx, the
            # generator), in "rest"; each daemon in a group of its own.
            # Ordinary shares until the measuring starts.
            groups["rest"] = cpugroup.Group.make("rest")
            groups["rest"].join()
            groups["generator"] = cpugroup.Group.make("generator")
            for name in ("standby-reads", "primary-reads", "one", "two", "three"):
                groups[name] = cpugroup.Group.make(name, cores=q)
        else:
            bench.log(f"cgroup cpu quota unavailable ({no_quota}): every row on the shared "
                      "cores, the two-daemon target not judged")
            notes.append(f"cgroup cpu quota unavailable: {no_quota}")
            q = None

        bench.log("PostgreSQL primary, and the test PKI and client certificates meanwhile")
        primary = Cluster(work / "primary")
        primary.init()
        started.append(primary)
        primary.stop()
        listen_tcp(primary)
        primary.start()
        t0 = time.monotonic()
        fill = bench.start_database(primary, "certreg", a.keys)
        try:
            pki = work / "pki"
            bench.run([sys.executable, ROOT / "tests/pki/mkpki.py", pki])
            for p in pki.rglob("*"):
                p.chmod(p.stat().st_mode | 0o044 | (0o011 if p.is_dir() else 0))
            kids = bench.make_certs(pki, work / "certs", a.certs)
        except BaseException:
            fill.kill()
            raise
        bench.finish_database(primary, "certreg", a.keys, fill, t0, kids)
        primary.ensure_login(ROLE, "certreg_daemon")
        primary.psql("CHECKPOINT")
        t0 = time.monotonic()
        standby = make_standby(primary, work / "standby")
        started.append(standby)
        wait_replayed(primary, standby)
        bench.log(f"standby made and replaying in {time.monotonic() - t0:.0f} s")

        write = tcp_conninfo(primary, standby, "read-write")
        read = tcp_conninfo(standby, primary, "prefer-standby")
        on_standby = Daemon(work, "standby-reads", pki, write, read,
                            group=groups.get("standby-reads"))
        started.append(on_standby)
        on_primary = Daemon(work, "primary-reads", pki, write,
                            group=groups.get("primary-reads"))
        started.append(on_primary)
        # The quota row's daemons share one CPU, the last. On a virtual
        # machine the host takes time from a vCPU (stallprobe: half of it,
        # some hours here), and a quota is charged for the time taken while
        # a daemon was on that vCPU: on different vCPUs, three daemons at the
        # same quota decided up to 1.8 times as much as one another in the
        # same round. On one, they share its losses alike.
        pin = bench.NPROC - 1 if groups else None
        s1, s2, s3 = (Daemon(work, name, pki, write, read, workers=1, group=groups.get(name),
                             cpu=pin) for name in ("one", "two", "three"))
        started += [s1, s2, s3]
        balancer = None
        if STREAM_MODULE.exists():
            balancer = Balancer(work, s1, [s2, s3])
            started.append(balancer)
        else:
            bench.log(f"{STREAM_MODULE} missing (make deps installs libnginx-mod-stream): "
                      "traffic split by the load generator instead, half the connections "
                      "on each daemon")

        if groups:
            # The load generators this process runs from now on have a group
            # of their own: the measuring instrument waits for no server.
            groups["generator"].join()
        body = ["--mode", "keepalive", "--method", "POST", "--path", "/v1/verify",
                "--header", "Content-Type: application/json",
                "--body-list", work / "certs/bodies.txt"]
        stalls = [] if a.quick else [bench.host_stalls("before the rows")]
        reads_before = decide_reads(standby)
        # Measuring: the bench's groups weigh more than the other work of
        # the machine, so each daemon gets its quota and the generator, the
        # balancer and PostgreSQL what they need; the quotas bound what the
        # daemons take, and the daemons' rate what the rest takes. A group
        # competes as one process of its weight with every process outside:
        # with a dozen of others' busy, 8192 left PostgreSQL and nginx
        # short of the two daemons' rate.
        for g in groups.values():
            g.set(g.cores, a.shares)
        where = f"each daemon at {q:g} of a core" if q else "on the shared cores"

        bench.log(f"1. peak decisions/s, reads on the standby vs on the primary, {where}")
        # Connections open and the servers' buffers warm, on both.
        for dmn in (on_standby, on_primary):
            bench.loadgen(dmn.api_port, *body, "--connections", CONNECTIONS, duration=d / 2,
                          warmup=0.5)
        pgs = {"postgresql": [primary, standby]}
        peak_s, peak_p, counted_on_standby = [], [], 0
        for i in range(a.rounds):
            for dmn in ((on_standby, on_primary) if i % 2 == 0 else (on_primary, on_standby)):
                r = accounted(lambda: bench.loadgen(dmn.api_port, *body, "--connections",
                                                    CONNECTIONS, duration=d),
                              [dmn], {"certregd": [dmn], **pgs},
                              {"certregd": dmn.group} if dmn.group else None)
                (peak_s if dmn is on_standby else peak_p).append(r)
                if dmn is on_standby:
                    counted_on_standby += r["requests"]
        ms = statistics.median(x["rps"] for x in peak_s)
        mp = statistics.median(x["rps"] for x in peak_p)
        cpu_peak = {side: {g: cpu_median(runs, g) for g in runs[0]["cpu_us_per_decision"]}
                    for side, runs in (("standby", peak_s), ("primary", peak_p))}
        rows.append({"what": f"peak decisions/s, reads on the standby vs on the primary, "
                     f"{where}", "a": ms, "b": mp, "ratio": ms / mp, "target": "report",
                     "pass": None, "unit": "req/s", "rounds_a": [x["rps"] for x in peak_s],
                     "rounds_b": [x["rps"] for x in peak_p],
                     "cpu_us_per_decision": cpu_peak,
                     "throttle": [x["throttle"] for x in peak_s + peak_p]})
        ca = sum(cpu_peak["standby"][g] for g in ("certregd", "postgresql"))
        cb = sum(cpu_peak["primary"][g] for g in ("certregd", "postgresql"))
        rows.append({"what": "CPU us per decision at the peak (certregd + PostgreSQL), "
                     "standby vs primary", "a": ca, "b": cb, "ratio": ca / cb,
                     "target": "report", "pass": None, "unit": "us CPU"})
        bench.log(f"peak: standby reads {ms:.0f}/s, primary reads {mp:.0f}/s; CPU us per "
                  f"decision: {cpu_peak}")

        rate = round(mp * a.load)
        # The rate is a fraction of what the quota allows, so it does not
        # move with the machine; the rounds themselves run without the
        # quota, as a throttled period (the daemon paused for the rest of
        # its 100 ms) would be the p99 of both sides. At a low rate a
        # request costs more CPU than at the peak (nothing to batch), and
        # at half the peak the daemons reached their quota in every round.
        # The shares stay: the other work of the machine waits first.
        for dmn in (on_standby, on_primary):
            if dmn.group:
                dmn.group.set(None, a.shares)
        bench.log(f"2. decision p99 at {rate} req/s ({a.load:g} of the primary's peak), "
                  f"{a.pairs} pairs of {a.p99_duration:g} s rounds, no quota")
        kept, dropped, sent = p99_pairs(a, on_standby, on_primary, body, rate, primary,
                                        standby, work)
        counted_on_standby += sent
        if len(kept) < 2:
            # The machine never let the generator run a pair without a
            # stall: say so, and judge nothing.
            notes.append(f"p99: {len(kept)} clean pairs of {len(kept) + len(dropped)}; "
                         "the ratio is over every pair and not judged")
        pairs = kept if len(kept) >= 2 else kept + dropped
        p_s = [x["p99_us"][0] for x in pairs]
        p_p = [x["p99_us"][1] for x in pairs]
        med_s, med_p = statistics.median(p_s), statistics.median(p_p)
        ratio = med_s / med_p
        lo, hi = bench.bootstrap_median_ratio(p_s, p_p)
        per_pair = statistics.median(s / p for s, p in zip(p_s, p_p))
        pool_s, pool_p, plo, phi = bench.pooled_p99([x["samples"][0] for x in pairs],
                                                    [x["samples"][1] for x in pairs])
        judged = len(kept) >= 2
        rows.append({"what": f"decision p99 us at {rate} req/s ({a.load:g} x primary's "
                     "peak), standby vs primary, median of the rounds' p99s",
                     "a": med_s, "b": med_p, "ratio": ratio, "target": "<= 1.10",
                     "pass": ratio <= 1.10 if judged else None, "unit": "us",
                     "interval90": [lo, hi], "median_pair_ratio": per_pair,
                     "pooled_p99_us": [pool_s, pool_p], "pooled_ratio": pool_s / pool_p,
                     "pooled_interval90": [plo, phi],
                     "p50_us": [statistics.median(bench.percentile(x["samples"][i], 0.5)
                                                  for x in pairs) for i in (0, 1)],
                     "pairs": [{k: v for k, v in x.items() if k != "samples"} for x in kept],
                     "dropped": [{k: v for k, v in x.items() if k != "samples"}
                                 for x in dropped],
                     "max_gap_ms": a.max_gap_ms})
        bench.log(f"p99 standby {med_s:.0f} us vs primary {med_p:.0f} us (medians of "
                  f"{len(pairs)} rounds each): {ratio:.2f} (90 % interval {lo:.2f}-{hi:.2f}); "
                  f"median of the pairs' ratios {per_pair:.2f}; pooled {pool_s:.0f} vs "
                  f"{pool_p:.0f} us, {pool_s / pool_p:.2f} ({plo:.2f}-{phi:.2f}); "
                  f"{len(dropped)} pairs run again (generator stalled > {a.max_gap_ms:g} ms)")
        bench.log("  pairs, p99 ms standby/primary (generator's longest stall ms): " + " ".join(
            f"{x['p99_us'][0] / 1000:.1f}/{x['p99_us'][1] / 1000:.1f}"
            f"({max(x['tick_gap_us']) / 1000:.0f})" for x in kept))
        # The function statistics reach the view within about a second.
        deadline = time.monotonic() + 5
        while True:
            served = decide_reads(standby) - reads_before
            if served >= 0.9 * counted_on_standby or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if served < 0.9 * counted_on_standby:
            raise RuntimeError(f"the standby served {served} decide_read() calls of the "
                               f"{counted_on_standby:.0f} decisions sent to read there")
        bench.log(f"the standby served {served} decisions (decide_read)")

        how = "nginx stream" if balancer else "loadgen split"
        daemons = [s1, s2, s3]
        net = {**pgs, "balancer": [balancer] if balancer else []}
        rest = ("postgresql", "balancer", "loadgen")

        def at_once():
            """One closed-loop run at the one-daemon address and one at the
            two-daemon address, at the same time: (one's, two's) figures."""
            if balancer:
                return loadgens_at_once([(balancer.one_port, PER_DAEMON),
                                         (balancer.two_port, 2 * PER_DAEMON)], body, d)
            one, two, three = loadgens_at_once([(x.api_port, PER_DAEMON)
                                                for x in (s1, s2, s3)], body, d)
            return one, {"rps": two["rps"] + three["rps"]}

        if q:
            bench.log(f"3. decisions/s, two daemons vs one (1 worker, {q:g} of a core each, "
                      f"{PER_DAEMON} connections each), behind {how}, both at once")
            # Both addresses in the same seconds: a round taken one after the
            # other put twice the bench's load on the machine in the
            # two-daemon rounds, and every instruction of every process got
            # dearer then (the generator's and balancer's CPU per decision,
            # the same work either way, rose 10-15 %): that measured the
            # machine. At once, the one daemon and the two share the machine
            # alike, and each is held to its own quota.
            box = {}

            def go():
                box["one"], box["two"] = at_once()
                return {}

            accounted(go, daemons, {"one": [s1], "two": [s2, s3], **net})  # warm
            runs = []
            # As many runs as the alternating rows make.
            for _ in range(2 * a.rounds):
                r = accounted(go, daemons, {"one": [s1], "two": [s2, s3], **net},
                              {"one": s1.group, "two": s2.group, "three": s3.group})
                r["rps"] = [box["one"]["rps"], box["two"]["rps"]]
                runs.append(r)
            ratios = [x["rps"][1] / x["rps"][0] for x in runs]
            r1 = statistics.median(x["rps"][0] for x in runs)
            r2 = statistics.median(x["rps"][1] for x in runs)
            ratio = statistics.median(ratios)
            lo, hi = bench.bootstrap_median_ratio(ratios, [1.0] * len(ratios))

            def bound(x):
                """Every daemon ran at its quota: throttled in most of its
                periods, and the three together used nearly 3 quotas."""
                return (all(t["nr_throttled"] >= 0.5 * t["nr_periods"]
                            for t in x["throttle"].values())
                        and x["cores"]["one"] + x["cores"]["two"] >= 0.8 * 3 * q)

            nbound = sum(bound(x) for x in runs)
            use = {"one": statistics.median(x["cores"]["one"] for x in runs),
                   "two": statistics.median(x["cores"]["two"] for x in runs),
                   "rest": statistics.median(sum(x["cores"][g] for g in rest) for x in runs),
                   "idle": statistics.median(x["idle_cores"] for x in runs)}
            rows.append({"what": f"decisions/s, two daemons vs one, {q:g} core each "
                         f"(cgroup quota), {how}, at once, median of the rounds' ratios",
                         "a": r2, "b": r1, "ratio": ratio, "target": ">= 1.80",
                         "pass": ratio >= 1.80, "unit": "req/s", "interval90": [lo, hi],
                         "median_pair_ratio": ratio, "ratio_of_medians": r2 / r1,
                         "rounds_a": [x["rps"][1] for x in runs],
                         "rounds_b": [x["rps"][0] for x in runs],
                         "rounds_at_quota": [nbound, len(runs)], "cores": use,
                         "throttle": [x["throttle"] for x in runs],
                         "decisions": [x["decisions"] for x in runs]})
            bench.log(f"at {q:g} core each, at once: two daemons {r2:.0f}/s vs one {r1:.0f}/s; "
                      f"median of the rounds' ratios {ratio:.2f} (90 % interval {lo:.2f}-"
                      f"{hi:.2f}; rounds {' '.join(f'{x:.2f}' for x in ratios)}); {nbound} of "
                      f"{len(runs)} rounds with every daemon at its quota")
            bench.log(f"  cores used: the one daemon {use['one']:.2f}, the two "
                      f"{use['two']:.2f}, PostgreSQL + balancer + generator {use['rest']:.2f}; "
                      f"the machine left {use['idle']:.2f} idle")
            # The shared-cores row: every process back in the root group and
            # on every CPU, as if no group had been made.
            for g in groups.values():
                g.release()
            for dmn in (s1, s2, s3):
                for pid in dmn.pids():
                    os.sched_setaffinity(pid, range(bench.NPROC))

        bench.log(f"{'4' if q else '3'}. decisions/s, two daemons (1 worker, {PER_DAEMON} "
                  f"connections each) vs one, behind {how}, {bench.NPROC} shared cores, no "
                  "quota, alternating")

        def one_run(two):
            """A closed-loop run at one daemon or at two, accounted."""
            def go():
                if balancer:
                    return bench.loadgen(balancer.two_port if two else balancer.one_port,
                                         *body, "--connections",
                                         (2 if two else 1) * PER_DAEMON, duration=d)
                if two:
                    pair = bench.loadgen_pair([s2.api_port, s3.api_port], *body,
                                              "--connections", PER_DAEMON, duration=d,
                                              warmup=1.0, samples=[None, None])
                    return {"rps": sum(x["rps"] for x in pair)}
                return bench.loadgen(s1.api_port, *body, "--connections", PER_DAEMON,
                                     duration=d)
            return accounted(go, daemons, {"certregd": daemons, **net})

        for two in (False, True):
            one_run(two)  # the daemons' and the balancer's connections warm
        ones, twos = [], []
        for i in range(a.rounds):
            for two in ((False, True) if i % 2 == 0 else (True, False)):
                (twos if two else ones).append(one_run(two))
        r1 = statistics.median(x["rps"] for x in ones)
        r2 = statistics.median(x["rps"] for x in twos)
        split = [sum(x["decisions"][1] for x in twos), sum(x["decisions"][2] for x in twos)]
        cores = {side: statistics.median(x["rps"] * sum(x["cpu_us_per_decision"].values()) / 1e6
                                         for x in runs)
                 for side, runs in (("two", twos), ("one", ones))}
        idle = {side: statistics.median(x["idle_cores"] for x in runs)
                for side, runs in (("two", twos), ("one", ones))}
        # The generator's and the balancer's CPU per decision: the same work
        # with one daemon or two. Above 1.00, the machine made every
        # instruction dearer in the two-daemon rounds.
        control = sum(cpu_median(twos, g) for g in ("loadgen", "balancer")) / sum(
            cpu_median(ones, g) for g in ("loadgen", "balancer"))
        rows.append({"what": f"decisions/s, two daemons vs one, {bench.NPROC} shared cores "
                     f"(no quota), {how}, alternating",
                     "a": r2, "b": r1, "ratio": r2 / r1, "target": "report", "pass": None,
                     "unit": "req/s", "rounds_a": [x["rps"] for x in twos],
                     "rounds_b": [x["rps"] for x in ones], "split": split,
                     "cores_used": cores, "idle_cores": idle, "control": control,
                     "cpu_us_per_decision": {
                         side: {g: cpu_median(runs, g) for g in runs[0]["cpu_us_per_decision"]}
                         for side, runs in (("two", twos), ("one", ones))}})
        bench.log(f"shared cores: two daemons {r2:.0f}/s vs one {r1:.0f}/s = {r2 / r1:.2f}x; "
                  f"split {split[0]:.0f}/{split[1]:.0f}; the bench's processes used "
                  f"{cores['one']:.2f} cores (one daemon) and {cores['two']:.2f} (two), the "
                  f"machine left {idle['one']:.2f} and {idle['two']:.2f} idle; control "
                  f"(generator + balancer CPU per decision, two / one) {control:.2f}")
        machine = {
            "nproc": bench.NPROC,
            "nginx": subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True,
                                    text=True).stderr.strip(),
            "postgresql": primary.psql("SHOW server_version").strip(),
            "keys": a.keys, "certs": a.certs, "duration_s": d, "pairs": a.pairs,
            "p99_duration_s": a.p99_duration, "rounds": a.rounds, "rate": rate,
            "balancer": how, "daemon_cpu": q, "shares": a.shares if q else None,
            "standby_decide_reads": served, "cores_used": cores,
            "host_stalls": stalls, "notes": notes,
        }
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as e:  # keep stopping the others
                print(f"stop: {e}", file=sys.stderr)
        if groups:
            try:
                (cpugroup.ROOT / "cgroup.procs").write_text(str(os.getpid()))
            except OSError as e:
                print(f"leaving the cpu group: {e}", file=sys.stderr)
            for g in groups.values():
                try:
                    g.remove()
                except OSError as e:
                    print(f"removing {g.path}: {e}", file=sys.stderr)

    machine["total_s"] = round(time.monotonic() - t_start)
    setup = (f"each daemon in a cgroup of its own with a quota of {q:g} of a core (the "
             "shared-cores row: no quota)" if q else "no CPU quota")
    lines = [f"machine: nproc={machine['nproc']} {machine['nginx']} PostgreSQL "
             f"{machine['postgresql']}; primary and streaming standby on 127.0.0.1 (TCP); "
             f"certregd association cache off; {setup}",
             f"dataset: {a.keys} keys; {a.certs} client certificates; {a.rounds} rounds "
             f"of {d:g} s (peak, throughput); {a.pairs} pairs of {a.p99_duration:g} s (p99); "
             f"total {machine['total_s']} s",
             *notes,
             "A, B: reads on the standby, on the primary; two daemons, one",
             "",
             f"{'measurement':<92} {'A':>8} {'B':>8} {'ratio':>6}  {'target':<8} result"]
    for r in rows:
        verdict = {True: "PASS", False: "MISS", None: "-"}[r["pass"]]
        lines.append(f"{r['what']:<92} {r['a']:>8.0f} {r['b']:>8.0f} {r['ratio']:>6.2f}  "
                     f"{r['target']:<8} {verdict}")
        if "pooled_ratio" in r:
            lines.append(f"  90 % interval {r['interval90'][0]:.2f}-{r['interval90'][1]:.2f}; "
                         f"median of the pairs' ratios {r['median_pair_ratio']:.2f}; pooled "
                         f"p99 {r['pooled_ratio']:.2f} ({r['pooled_interval90'][0]:.2f}-"
                         f"{r['pooled_interval90'][1]:.2f}); {len(r['pairs'])} pairs counted, "
                         f"{len(r['dropped'])} run again (generator stalled)")
        if "rounds_at_quota" in r:
            n, m = r["rounds_at_quota"]
            c = r["cores"]
            lines.append(f"  90 % interval {r['interval90'][0]:.2f}-{r['interval90'][1]:.2f}; "
                         f"ratio of the medians {r['ratio_of_medians']:.2f}; {n} of {m} rounds "
                         f"with every daemon at its quota; cores: one {c['one']:.2f}, two "
                         f"{c['two']:.2f}, PostgreSQL + balancer + generator {c['rest']:.2f}, "
                         f"idle {c['idle']:.2f}")
        if "control" in r:
            lines.append(f"  the bench's processes used {r['cores_used']['one']:.2f} cores (one)"
                         f" and {r['cores_used']['two']:.2f} (two), the machine left "
                         f"{r['idle_cores']['one']:.2f}/{r['idle_cores']['two']:.2f} idle; "
                         f"control (generator + balancer CPU per decision, two / one) "
                         f"{r['control']:.2f}")
    text = "\n".join(lines)
    print("\n" + text)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.with_suffix(".txt").write_text(text + "\n")
    a.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        sys.exit(f"bench-replica: stopped by {e or 'SIGINT'}; what it had started is stopped")
