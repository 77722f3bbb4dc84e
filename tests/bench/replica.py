#!/usr/bin/env python3
"""make bench-replica: decisions read on a standby, and two daemons behind one address.

The performance half of issue 30 (contract section 9). Starts a throwaway
PostgreSQL primary with the generated registry (tests/bench/gen_dataset.sql,
--keys keys, --certs bench certificates bound) and a streaming hot standby
made from it (pg_basebackup -R), both on 127.0.0.1 over TCP as in
production, then certregd with the association cache off (size = 0), so
that every decision reads the database, and measures with build/bench/loadgen:

1. the p99 of decisions (POST /v1/verify, keep-alive) read on the standby
   (read_conninfo) against the same read on the primary (no read_conninfo),
   two daemons alike but for that, at the same offered rate (--load: half
   the primary-read daemon's peak): short rounds alternating A/B and B/A, the
   p99 of all the samples of each side and a 90 % bootstrap interval of
   the ratio over the pairs of rounds;
2. the throughput of two daemons (one worker each) behind one address, an
   nginx `stream` balancer, against one of them behind the same balancer,
   closed loop, alternating rounds, medians. On a 2-core machine shared by
   the generator, the database and the balancer, two daemons cannot get
   twice the cores, so the measured ratio is reported as such, and the row
   with the target projects it from what the machine can measure: each
   daemon's CPU time per decision (a CPU-bound daemon on cores of its own
   makes cores / CPU per decision decisions a second). A control row, the
   generator's and the balancer's CPU per decision (the same work either
   way), two / one, says how far the machine itself moved that figure.

Prints one line per ratio with its target (build/bench/replica.txt) and
writes build/bench/replica.json. Exit status 0 when every measurement ran
(and reads did go to the standby), whatever the ratios. The helpers
(dataset, certificates, loadgen runs, pooled p99) are run.py's.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (definitions only; main() runs under __main__)

ROOT, BUILD, BENCH = bench.ROOT, bench.BUILD, bench.BENCH
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLE = "certregd"
# Closed-loop and open-loop connections: as run.py's cold rows.
CONNECTIONS = 32


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

    def __init__(self, work, name, pki, conninfo, read_conninfo=None, workers="auto"):
        self.name = name
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
        self.proc = subprocess.Popen([str(a) for a in args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
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


def cpu_seconds(pids):
    """User + system CPU time of pids so far (processes gone are not counted)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def accounted(go, daemons, groups):
    """go() (a loadgen run), and the CPU time each group of processes
    ({name: [Server]}) and the generator spent per decision the daemons
    counted, in microseconds: the decisions of the warm-up as well, as
    the CPU time covers it."""
    pids = {g: [p for srv in servers for p in srv.pids()] for g, servers in groups.items()}
    cpu0 = {g: cpu_seconds(p) for g, p in pids.items()}
    gen0 = children_cpu()
    dec0 = [x.decisions() for x in daemons]
    r = go()
    dec = [x.decisions() - y for x, y in zip(daemons, dec0)]
    cpu = {g: cpu_seconds(p) - cpu0[g] for g, p in pids.items()}
    cpu["loadgen"] = children_cpu() - gen0
    n = max(sum(dec), 1)
    r["decisions"] = dec
    r["cpu_us_per_decision"] = {g: 1e6 * c / n for g, c in cpu.items()}
    return r


def cpu_median(runs, group):
    return statistics.median(x["cpu_us_per_decision"][group] for x in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--certs", type=int, default=200)
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds of each measured round (default 3)")
    ap.add_argument("--pairs", type=int, default=12,
                    help="A/B pairs of rounds of the p99 row (default 12)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="A/B rounds of the peak and throughput rows (default 5)")
    ap.add_argument("--load", type=float, default=0.5,
                    help="the p99 row's offered rate, a fraction of the primary-read "
                    "daemon's peak (default 0.5)")
    ap.add_argument("--work", type=Path, default=BENCH / "replica",
                    help="scratch directory, emptied first (default build/bench/replica)")
    ap.add_argument("--json", type=Path, default=BENCH / "replica.json",
                    help="where the results go (default build/bench/replica.json; "
                    "the table beside it, .txt)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 10,000 keys, 50 certificates, 1 s rounds, 3 pairs, "
                    "1 round (the figures mean nothing)")
    a = ap.parse_args()
    if a.quick:
        a.keys, a.certs, a.duration, a.pairs, a.rounds = 10_000, 50, 1.0, 3, 1
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.stop_on_signal)
    for tool in (bench.LOADGEN, bench.STALLPROBE, BUILD / "certregd", BUILD / "certreg-admin"):
        if not tool.exists():
            sys.exit(f"{tool} missing: run make all bench-tools")

    work = a.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bench.open_for_nobody(work)
    started = []
    t_start = time.monotonic()
    d = a.duration
    rows, machine = [], {}
    try:
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
        on_standby = Daemon(work, "standby-reads", pki, write, read)
        started.append(on_standby)
        on_primary = Daemon(work, "primary-reads", pki, write)
        started.append(on_primary)
        s1 = Daemon(work, "one", pki, write, read, workers=1)
        started.append(s1)
        s2 = Daemon(work, "two", pki, write, read, workers=1)
        started.append(s2)
        balancer = None
        if STREAM_MODULE.exists():
            balancer = Balancer(work, s1, [s1, s2])
            started.append(balancer)
        else:
            bench.log(f"{STREAM_MODULE} missing (make deps installs libnginx-mod-stream): "
                      "traffic split by the load generator instead, half the connections "
                      "on each daemon")

        body = ["--mode", "keepalive", "--method", "POST", "--path", "/v1/verify",
                "--header", "Content-Type: application/json",
                "--body-list", work / "certs/bodies.txt"]
        stalls = [] if a.quick else [bench.host_stalls("before the rows")]
        reads_before = decide_reads(standby)

        bench.log("1. peak decisions/s, reads on the standby vs on the primary")
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
                              [dmn], {"certregd": [dmn], **pgs})
                (peak_s if dmn is on_standby else peak_p).append(r)
                if dmn is on_standby:
                    counted_on_standby += r["requests"]
        ms = statistics.median(x["rps"] for x in peak_s)
        mp = statistics.median(x["rps"] for x in peak_p)
        cpu_peak = {side: {g: cpu_median(runs, g) for g in runs[0]["cpu_us_per_decision"]}
                    for side, runs in (("standby", peak_s), ("primary", peak_p))}
        rows.append({"what": "peak decisions/s, reads on the standby vs on the primary",
                     "a": ms, "b": mp, "ratio": ms / mp, "target": "report", "pass": None,
                     "unit": "req/s", "rounds_a": [x["rps"] for x in peak_s],
                     "rounds_b": [x["rps"] for x in peak_p],
                     "cpu_us_per_decision": cpu_peak})
        ca = sum(cpu_peak["standby"][g] for g in ("certregd", "postgresql"))
        cb = sum(cpu_peak["primary"][g] for g in ("certregd", "postgresql"))
        rows.append({"what": "CPU us per decision at the peak (certregd + PostgreSQL), "
                     "standby vs primary", "a": ca, "b": cb, "ratio": ca / cb,
                     "target": "report", "pass": None, "unit": "us CPU"})
        bench.log(f"peak: standby reads {ms:.0f}/s, primary reads {mp:.0f}/s; CPU us per "
                  f"decision: {cpu_peak}")

        rate = round(mp * a.load)
        bench.log(f"2. decision p99 at {rate} req/s ({a.load:g} of the primary's "
                  f"peak), {a.pairs} pairs of {d:g} s rounds")
        samples = work / "samples.txt"
        sa, sb, gaps = [], [], []
        for i in range(a.pairs):
            for dmn in ((on_standby, on_primary) if i % 2 == 0 else (on_primary, on_standby)):
                r = bench.loadgen(dmn.api_port, *body, "--connections", CONNECTIONS, "--rate",
                                  rate, duration=d, warmup=0.5, samples=samples)
                (sa if dmn is on_standby else sb).append(r["samples"])
                gaps.append(r["tick_gap_us"])
                if dmn is on_standby:
                    counted_on_standby += r["requests"]
        p_s, p_p, lo, hi = bench.pooled_p99(sa, sb)
        ratio = p_s / p_p
        med_s = statistics.median(bench.percentile(r, 0.99) for r in sa)
        med_p = statistics.median(bench.percentile(r, 0.99) for r in sb)
        rows.append({"what": f"decision p99 us at {rate} req/s ({a.load:g} x primary's "
                     "peak), standby vs primary",
                     "a": p_s, "b": p_p, "ratio": ratio, "target": "<= 1.10",
                     "pass": ratio <= 1.10, "unit": "us", "interval90": [lo, hi],
                     "median_round_p99": [med_s, med_p],
                     "p50_us": [statistics.median(bench.percentile(r, 0.5) for r in x)
                                for x in (sa, sb)],
                     "rounds_a": [bench.percentile(r, 0.99) for r in sa],
                     "rounds_b": [bench.percentile(r, 0.99) for r in sb],
                     "tick_gap_us": gaps})
        bench.log(f"p99 standby {p_s:.0f} us vs primary {p_p:.0f} us: {ratio:.2f} (90 % "
                  f"interval {lo:.2f}-{hi:.2f}; median of the rounds' p99s {med_s:.0f} vs "
                  f"{med_p:.0f} us)")
        bench.log(f"  the generator's longest tick gap per round (ms): "
                  f"{' '.join(f'{g / 1000:.0f}' for g in gaps)}")
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

        bench.log("3. decisions/s, two daemons (1 worker each) vs one, behind "
                  + ("nginx stream" if balancer else "the load generator's split"))
        daemons = [s1, s2]

        def one_run(two):
            """A closed-loop run at one daemon or at two, accounted."""
            def go():
                if balancer:
                    return bench.loadgen(balancer.two_port if two else balancer.one_port,
                                         *body, "--connections", CONNECTIONS, duration=d)
                if two:
                    pair = bench.loadgen_pair([s1.api_port, s2.api_port], *body,
                                              "--connections", CONNECTIONS // 2, duration=d,
                                              warmup=1.0, samples=[None, None])
                    return {"rps": sum(x["rps"] for x in pair)}
                return bench.loadgen(s1.api_port, *body, "--connections", CONNECTIONS,
                                     duration=d)
            return accounted(go, daemons, {"certregd": daemons, **pgs,
                                           "balancer": [balancer] if balancer else []})

        for two in (False, True):
            one_run(two)  # the daemons' and the balancer's connections warm
        ones, twos = [], []
        for i in range(a.rounds):
            for two in ((False, True) if i % 2 == 0 else (True, False)):
                (twos if two else ones).append(one_run(two))
        r1 = statistics.median(x["rps"] for x in ones)
        r2 = statistics.median(x["rps"] for x in twos)

        c1, c2 = cpu_median(ones, "certregd"), cpu_median(twos, "certregd")
        split = [sum(x["decisions"][0] for x in twos), sum(x["decisions"][1] for x in twos)]
        how = "nginx stream" if balancer else "loadgen split"
        rows.append({"what": f"decisions/s, two daemons vs one (1 worker each), {how}, "
                     f"{bench.NPROC} cores",
                     "a": r2, "b": r1, "ratio": r2 / r1, "target": "report", "pass": None,
                     "unit": "req/s", "rounds_a": [x["rps"] for x in twos],
                     "rounds_b": [x["rps"] for x in ones], "split": split,
                     "cpu_us_per_decision": {
                         side: {g: cpu_median(runs, g) for g in runs[0]["cpu_us_per_decision"]}
                         for side, runs in (("two", twos), ("one", ones))}})
        # What the daemons cannot change: the generator's and the
        # balancer's CPU per request, the same work in both. Above 1.00,
        # the machine made every instruction dearer in the two-daemon runs
        # (others' processes, cache and scheduler contention), and the
        # projection below reads low by as much.
        control = sum(cpu_median(twos, g) for g in ("loadgen", "balancer")) / sum(
            cpu_median(ones, g) for g in ("loadgen", "balancer"))
        cores = {side: statistics.median(x["rps"] * sum(x["cpu_us_per_decision"].values()) / 1e6
                                         for x in runs)
                 for side, runs in (("two", twos), ("one", ones))}
        bench.log(f"the bench's processes used {cores['one']:.2f} cores (one daemon) and "
                  f"{cores['two']:.2f} (two) of {bench.NPROC}; control ratio {control:.2f}")
        projected = 2 * c1 / c2
        rows.append({"what": "projected, a core per daemon: 2 x certregd CPU/decision, "
                     "one / two", "a": c2, "b": c1, "ratio": projected,
                     "target": ">= 1.80", "pass": projected >= 1.80, "unit": "us CPU"})
        fixed = [sum(cpu_median(runs, g) for g in ("loadgen", "balancer"))
                 for runs in (twos, ones)]
        rows.append({"what": "control: generator + balancer CPU per decision, two / one "
                     "(1.00 if fair)", "a": fixed[0], "b": fixed[1], "ratio": control,
                     "target": "report", "pass": None, "unit": "us CPU", "cores_used": cores})
        bench.log(f"two daemons {r2:.0f}/s vs one {r1:.0f}/s = {r2 / r1:.2f}x here; "
                  f"split {split[0]:.0f}/{split[1]:.0f}; certregd CPU per decision "
                  f"{c2:.0f} us (two) vs {c1:.0f} us (one): projected {projected:.2f}x")
        machine = {
            "nproc": bench.NPROC,
            "nginx": subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True,
                                    text=True).stderr.strip(),
            "postgresql": primary.psql("SHOW server_version").strip(),
            "keys": a.keys, "certs": a.certs, "duration_s": d, "pairs": a.pairs,
            "rounds": a.rounds, "rate": rate, "balancer": how,
            "standby_decide_reads": served, "cores_used": cores,
            "host_stalls": stalls,
        }
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as e:  # keep stopping the others
                print(f"stop: {e}", file=sys.stderr)

    machine["total_s"] = round(time.monotonic() - t_start)
    lines = [f"machine: nproc={machine['nproc']} {machine['nginx']} PostgreSQL "
             f"{machine['postgresql']}; primary and streaming standby on 127.0.0.1 (TCP); "
             "certregd association cache off",
             f"dataset: {a.keys} keys; {a.certs} client certificates; rounds of {d:g} s, "
             f"{a.pairs} A/B pairs (p99), {a.rounds} A/B rounds (throughput); "
             f"total {machine['total_s']} s",
             f"the bench's processes used {machine['cores_used']['one']:.2f} of the "
             f"{machine['nproc']} cores with one daemon, {machine['cores_used']['two']:.2f} "
             "with two (the rest: other processes of the machine)",
             "A, B: reads on the standby, on the primary; two daemons, one",
             "",
             f"{'measurement':<80} {'A':>8} {'B':>8} {'ratio':>6}  {'target':<8} result"]
    for r in rows:
        verdict = {True: "PASS", False: "MISS", None: "-"}[r["pass"]]
        lines.append(f"{r['what']:<80} {r['a']:>8.0f} {r['b']:>8.0f} {r['ratio']:>6.2f}  "
                     f"{r['target']:<8} {verdict}")
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
