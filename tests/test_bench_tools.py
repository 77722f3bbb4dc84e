"""The benchmark's own instruments (tests/bench/): what they report has to
be true, or the figures in docs/PERFORMANCE.md are not.

stallprobe counts the time a CPU is taken away from a running task; here it
is taken away on purpose (its processes stopped for 200 ms), and the probe
has to see it. run.py has to refuse a configuration certregd would refuse,
before it starts a ten-minute run. What it says PostgreSQL logged during a
row has to be what PostgreSQL did then, per database. Its pair of loadgen
runs has to put both sides through the same seconds, or the 2M-vs-10k row
compares two moments of the machine instead of two databases, and its
own stops have to show in what it reports. replica.py's balancer has to
put half of the connections on each of two daemons, or its "two daemons
vs one" row measures one daemon twice. Its CPU groups have to hold a
daemon to its quota and say so in their counters, and leave nothing behind,
or "a core of its own" is a figure of speech. make bench's rows in a CPU
budget have to be judged only when the quota, not the generator or the
machine, was the limit, and say so when they are not (or when there are
no CPU groups and the shared cores take the target). A run
stopped halfway must stop everything it started, or the next run measures
a machine still busy with the last one.
"""
import collections
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import cpugroup  # noqa: E402
import flamegraph  # noqa: E402
import replica as bench_replica  # noqa: E402
import run as bench_run  # noqa: E402
from fixtures.pg import Cluster  # noqa: E402

STALLPROBE = Path(__file__).resolve().parents[1] / "build" / "bench" / "stallprobe"
OCSPCOST = STALLPROBE.parent / "ocspcost"


def figures(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def test_stallprobe_sees_the_time_its_cpus_are_taken_away():
    assert STALLPROBE.exists(), "run make bench-tools"
    probe = subprocess.Popen([str(STALLPROBE), "--seconds", "1.5"], stdout=subprocess.PIPE,
                             text=True)
    try:
        time.sleep(0.4)
        spinners = subprocess.run(["pgrep", "-P", str(probe.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(spinners) == os.cpu_count()
        for pid in spinners:
            os.kill(int(pid), signal.SIGSTOP)
        time.sleep(0.2)
        for pid in spinners:
            os.kill(int(pid), signal.SIGCONT)
        out, _ = probe.communicate(timeout=10)
    finally:
        probe.kill()
    assert probe.returncode == 0
    r = figures(out)
    assert r["cpus"] == os.cpu_count()
    assert r["gaps"] >= os.cpu_count()
    assert r["longest_us"] >= 190_000
    # 0.2 s of 1.5 on every CPU.
    assert r["lost_pct"] >= 12


def test_stallprobe_rejects_bad_arguments():
    for args in (["--seconds", "0"], ["--gap-us", "-5"], ["--bogus"]):
        p = subprocess.run([str(STALLPROBE), *args], capture_output=True, text=True)
        assert p.returncode == 2, args
        assert p.stdout == ""
        assert "stallprobe" in p.stderr


def test_bench_reports_what_postgresql_logged_since_a_point_per_database(tmp_path):
    cluster = Cluster(tmp_path / "pg")
    cluster.init()
    try:
        bench_run.pg_diagnostics_on(cluster)
        # Every autovacuum is logged now: one of the new databases' catalogs
        # must not land in the middle of what this test counts.
        cluster.psql("ALTER SYSTEM SET autovacuum = off")
        cluster.psql("SELECT pg_reload_conf()")
        for name in ("big", "small"):
            cluster.psql(f'CREATE DATABASE "{name}"')
        cluster.psql("SELECT pg_sleep(0.2)", "big")  # before the point: not counted
        since = os.path.getsize(cluster.log)
        summary, end = bench_run.pg_events(cluster, since)
        assert summary == "no statement over 50 ms"
        assert end == since
        cluster.psql("SELECT pg_sleep(0.08)", "big")
        cluster.psql("SELECT pg_sleep(0.12)", "big")
        cluster.psql("SELECT pg_sleep(0.001)", "small")  # under the threshold
        cluster.psql("SELECT pg_sleep(0.06)", "small")
        cluster.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g", "small")
        cluster.psql("CHECKPOINT")
        # No logging collector: a backend writes its line before it answers.
        summary, end = bench_run.pg_events(cluster, since)
        # A statement lasts at least its sleep, and longer when the machine
        # stalls (make check runs beside other suites): lower bounds only.
        big = re.match(r"big 2 over 50 ms \(longest (\d+) ms\)", summary)
        small = re.search(r", small 1 over 50 ms \(longest (\d+) ms\)", summary)
        assert big and int(big[1]) >= 120, summary
        assert small and int(small[1]) >= 60, summary
        assert "1 x checkpoint starting" in summary, summary
        assert end == os.path.getsize(cluster.log)
    finally:
        cluster.stop(mode="immediate")


def test_bench_reports_each_databases_shared_buffers_hit_ratio(tmp_path):
    """pg_buffer_counts()/pg_hit_ratio() (row 7): a table read again is
    served from shared_buffers, one never touched is no access at all."""
    cluster = Cluster(tmp_path / "pg")
    cluster.init()
    try:
        for name in ("big", "small"):
            cluster.psql(f'CREATE DATABASE "{name}"')
        cluster.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g", "big")
        cluster.psql("SELECT count(*) FROM t", "big")
        cluster.psql("SELECT pg_stat_force_next_flush()", "big")
        before = bench_run.pg_buffer_counts(cluster, ["big", "small"])
        assert set(before) == {"big", "small"}
        for _ in range(3):
            cluster.psql("SELECT count(*) FROM t; SELECT pg_stat_force_next_flush()", "big")
        # the statistics collector of PostgreSQL 15 publishes at its own pace
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ratio = bench_run.pg_hit_ratio(before, bench_run.pg_buffer_counts(
                cluster, ["big", "small"]))
            if ratio["big"] is not None:
                break
            time.sleep(0.2)
        assert ratio["big"] > 0.99, ratio
        assert bench_run.pg_hit_ratio({"small": (5, 5)}, {"small": (5, 5)}) == {"small": None}
        assert bench_run.pg_hit_ratio({"big": (10, 10)}, {"big": (40, 20)}) == {"big": 0.75}
    finally:
        cluster.stop(mode="immediate")


def test_bench_refuses_a_bad_worker_count_before_starting_anything():
    run_py = Path(__file__).resolve().parent / "bench" / "run.py"

    def bench(workers):
        # A bad --keys after it: were --workers taken, the run still stops
        # at the arguments instead of starting PostgreSQL.
        return subprocess.run([sys.executable, str(run_py), "--workers", workers,
                               "--keys", "x"], capture_output=True, text=True, timeout=30)

    for value in ("0", "257", "-1", "two", ""):
        p = bench(value)
        error = p.stderr.strip().splitlines()[-1]  # after the usage lines
        assert p.returncode == 2, value
        assert "--workers" in error and "want auto or 1-256" in error, p.stderr
    for value in ("auto", "1", "4", "256"):
        p = bench(value)
        error = p.stderr.strip().splitlines()[-1]
        assert p.returncode == 2, value
        assert "--workers" not in error and "--keys" in error, p.stderr


def _processes_naming(text):
    """pid: command line of every process whose command line contains text."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if text in cmd:
            found[int(proc.name)] = cmd
    return found


def test_a_bench_stopped_by_sigterm_leaves_nothing_of_it_running(tmp_path):
    """SIGTERM (a CI timeout) while PostgreSQL runs and the client
    certificates are being made: the run ends, saying why, and no process
    of it is left: neither the postmaster nor xargs and its openssl runs."""
    run_py = Path(__file__).resolve().parent / "bench" / "run.py"
    work = tmp_path / "work"
    env = dict(os.environ, CERTREG_BENCH_WORK=str(work))
    # More certificates than it could make in the test's time: what is
    # still running after the run exits was left behind, not finishing.
    p = subprocess.Popen([sys.executable, str(run_py), "--keys", "10000", "--certs", "100000"],
                         env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list((work / "certs").glob("*.kid"))) < 3:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no certificates made in 120 s"
            time.sleep(0.05)
        assert any("gen.sh" in c for c in _processes_naming(str(work)).values())
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (out, err)
    assert "bench: stopped by SIGTERM" in err, err
    deadline = time.monotonic() + 10
    while _processes_naming(str(work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_naming(str(work)) == {}


class _Stamping(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive `200 ok`, noting when each request came, and
    each connection (the client's port)."""
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.clients.add(self.client_address[1])

    def do_GET(self):
        self.server.stamps.append(time.monotonic())
        # One write: head and body apart would wait on delayed ACKs.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def log_message(self, *args):
        pass


class _StampingServer(http.server.ThreadingHTTPServer):
    # Room for a run's connections at once: beyond the backlog a connect
    # waits a second for the SYN to be sent again.
    request_queue_size = 128


@pytest.fixture
def stamping_servers():
    servers = []
    for _ in range(2):
        srv = _StampingServer(("127.0.0.1", 0), _Stamping)
        srv.daemon_threads = True
        srv.stamps = []
        srv.clients = set()
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    yield servers
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_loadgen_pair_runs_both_sides_through_the_same_seconds(stamping_servers, tmp_path):
    assert bench_run.LOADGEN.exists(), "run make bench-tools"
    ports = [srv.server_address[1] for srv in stamping_servers]
    samples = [tmp_path / "a.txt", tmp_path / "b.txt"]
    t0 = time.monotonic()
    res = bench_run.loadgen_pair(ports, "--mode", "keepalive", "--connections", 2,
                                 "--rate", 200, duration=1.5, warmup=0.2, samples=samples)
    for r, srv in zip(res, stamping_servers):
        assert r["s2xx"] == r["requests"] > 200
        assert len(r["samples"]) == r["requests"]
        assert r["samples"] == sorted(r["samples"])
        assert len(srv.stamps) >= r["requests"]
    # Each side's requests span the run, and the spans overlap by most of it.
    (a0, a1), (b0, b1) = [(min(s.stamps), max(s.stamps)) for s in stamping_servers]
    assert a1 - a0 > 1.4 and b1 - b0 > 1.4
    assert min(a1, b1) - max(a0, b0) > 1.2
    # One after the other would take twice as long.
    assert time.monotonic() - t0 < 2 * 1.7


def test_loadgen_split_counts_the_connections_each_server_process_holds(stamping_servers,
                                                                      tmp_path):
    """loadgen_split() (row 5): the round's figures, and how its connections
    were spread over the processes of the server, most first: here one
    process (this one) holds all 6."""
    port = stamping_servers[0].server_address[1]
    # Long enough that a slow start on a loaded machine (make check runs
    # beside other suites) still has all 6 connected when ss looks.
    r = bench_run.loadgen_split(port, "--mode", "keepalive", "--connections", 6, "--rate", 200,
                                duration=4, warmup=0.5)
    assert r["requests"] > 0 and r["errors"] == 0
    assert r["split"] == [6], r["split"]
    # With a trace, what it says of the slowest: all on this one process.
    r = bench_run.loadgen_split(port, "--mode", "keepalive", "--connections", 6, "--rate", 200,
                                duration=4, warmup=0.5, trace=tmp_path / "trace.txt")
    assert r["split"] == [6] and r["tail"]["share"] == [1.0], r
    assert r["tail"]["slow"] >= r["requests"] / 100 and r["tail"]["episodes"] >= 1


def test_loadgen_traces_each_request_when_it_fell_due_and_on_which_connection(
        stamping_servers, tmp_path):
    """--trace (row 5's tail, in time): one line a measured request, its
    due time from the start of the measured seconds, its latency and its
    connection's local port. The latencies are the samples', the due times
    follow the open loop's schedule, the ports are the server's clients."""
    srv = stamping_servers[0]
    trace, samples = tmp_path / "trace.txt", tmp_path / "samples.txt"
    out = subprocess.run([str(bench_run.LOADGEN), "--target",
                          f"127.0.0.1:{srv.server_address[1]}", "--mode", "keepalive",
                          "--connections", "3", "--rate", "400", "--duration", "1.5",
                          "--warmup", "0.3", "--samples", str(samples), "--trace", str(trace)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    r = figures(out.strip().splitlines()[-1])
    rows = [tuple(int(x) for x in line.split()) for line in trace.read_text().splitlines()]
    assert len(rows) == r["requests"] > 500
    assert sorted(lat for _, lat, _ in rows) == [int(x) for x in samples.read_text().split()]
    due = sorted(d for d, _, _ in rows)
    # Due every 2.5 ms from before the measured seconds (answered inside
    # them) to their end; none answered before it was due.
    assert due[0] > -100_000 and due[-1] <= 1_500_000
    gaps = [b - a for a, b in zip(due, due[1:])]
    assert sorted(gaps)[len(gaps) // 2] in range(2_400, 2_600), sorted(gaps)[len(gaps) // 2]
    assert all(lat >= 0 for _, lat, _ in rows)
    ports = {p for _, _, p in rows}
    assert 1 <= len(ports) <= 3 and ports <= srv.clients, (ports, srv.clients)


def test_loadgen_spread_sends_on_every_connection_in_turn(stamping_servers, tmp_path):
    """Open loop at a rate one connection keeps up with: without --spread
    the first connection carries nearly every request; with it, each of
    the 8 carries its share (row 5: the server process holding the first
    connections would otherwise do nearly all the work)."""
    port = stamping_servers[0].server_address[1]
    shares = []
    for spread in ([], ["--spread"]):
        trace = tmp_path / f"trace{len(spread)}.txt"
        subprocess.run([str(bench_run.LOADGEN), "--target", f"127.0.0.1:{port}", "--mode",
                        "keepalive", "--connections", "8", "--rate", "400", "--duration", "1.5",
                        "--warmup", "0.3", "--trace", str(trace), *spread],
                       capture_output=True, text=True, timeout=30, check=True)
        per = collections.Counter(line.split()[2] for line in trace.read_text().splitlines())
        shares.append(sorted((n / sum(per.values()) for n in per.values()), reverse=True))
    assert shares[0][0] > 0.5, shares[0]
    assert len(shares[1]) == 8 and shares[1][0] < 0.2, shares[1]


def test_the_tail_of_a_round_says_whether_its_stalls_hit_one_worker_or_all(tmp_path):
    """tail_structure() (row 5): the requests at or over the p99, grouped
    into episodes (due within 2 ms of each other); an episode with a fifth
    or more of its requests on each of two processes is a stop of all
    (the generator, the machine), one on a single process that process's
    own. Here: 1,000 fast requests over two workers' connections, one
    stall of worker 11 (10 slow requests on its connections) and, 50 ms
    later, one of everything (5 slow on each)."""
    owners = {1001: 11, 1002: 11, 2001: 22, 2002: 22}
    lines = [f"{i * 100} 50 {(1001, 2001, 1002, 2002)[i % 4]}" for i in range(1000)]
    lines += [f"{20_000 + i * 100} {3000 - i * 100} {(1001, 1002)[i % 2]}" for i in range(10)]
    lines += [f"{70_000 + i * 100} 2500 {(1001, 2001)[i % 2]}" for i in range(10)]
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join(lines) + "\n")
    t = bench_run.tail_structure(trace, owners, p99_us=1000)
    assert t["slow"] == 20 and t["episodes"] == 2
    assert t["slow_share_all"] == 0.5
    assert t["longest_ms"] == [3.4, 3.0]
    # Worker 11 holds 510 + 5 of the 1,020 requests and 15 of the 20 slow.
    assert t["share"] == [0.505, 0.495] and t["slow_share"] == [0.75, 0.25]
    assert "50 % of them on every process at once" in bench_run.tail_text(t)


def test_bench_nginx_with_reuseport_spreads_connections_by_the_kernels_hash(pki, tmp_path):
    """--nginx-reuseport: each nginx worker has its own listening socket on
    the plain port (without it, one socket for all), and 64 connections
    land on both workers, none on the master."""
    for reuseport, sockets in ((False, 1), (True, bench_run.NPROC)):
        work = tmp_path / f"reuseport-{reuseport}"
        work.mkdir()
        bench_run.open_for_nobody(work)
        ngx = bench_run.Nginx(work, pki.dir, reuseport=reuseport)
        try:
            out = subprocess.run(["ss", "-tlnH", f"( sport = :{ngx.http_port} )"],
                                 capture_output=True, text=True, check=True).stdout
            assert len(out.splitlines()) == sockets, out
            if reuseport and bench_run.NPROC > 1:
                r = bench_run.loadgen_split(ngx.http_port, "--mode", "keepalive",
                                            "--connections", 64, "--rate", 500,
                                            duration=1, warmup=0.3)
                assert len(r["split"]) == bench_run.NPROC and sum(r["split"]) == 64, r
                assert str(ngx.proc.pid) not in subprocess.run(
                    ["ss", "-tnpH", "state", "established", f"( sport = :{ngx.http_port} )"],
                    capture_output=True, text=True).stdout
        finally:
            ngx.stop()


def run_with_its_loop_stopped(args):
    """Runs the bench tool ARGS (--procs 1: one child process runs its
    loop for 2 s), stops that child for 300 ms 0.8 s in, and returns the
    finished process and its output. When the test itself was kept from
    running so long that the stop may have missed the loop (sent more than
    1.2 s in), the run is made again, up to three times."""
    for _ in range(3):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        try:
            time.sleep(0.8)
            kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                  text=True).stdout.split()
            assert len(kids) == 1
            os.kill(int(kids[0]), signal.SIGSTOP)
            stopped_at = time.monotonic() - started
            time.sleep(0.3)
            os.kill(int(kids[0]), signal.SIGCONT)
            out, _ = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        if stopped_at <= 1.2:
            break
    return p, out


def test_loadgen_reports_how_long_it_was_itself_kept_from_running(stamping_servers):
    """tick_gap_us is the longest the generator's own loop went without
    running, within the measured seconds: a run whose process is stopped
    for 300 ms must report at least that, and a run left alone far less.
    The stop shows in the p99 too: latency counts from when a request was
    due, and the requests due meanwhile went out late."""
    port = stamping_servers[0].server_address[1]
    args = [str(bench_run.LOADGEN), "--target", f"127.0.0.1:{port}", "--mode", "keepalive",
            "--connections", "2", "--rate", "500", "--duration", "2", "--warmup", "0.2"]
    alone = figures(subprocess.run(args, capture_output=True, text=True, timeout=30,
                                   check=True).stdout.strip().splitlines()[-1])
    p, out = run_with_its_loop_stopped(args)
    stopped = figures(out.strip().splitlines()[-1])
    assert p.returncode == 0
    assert stopped["tick_gap_us"] >= 290_000
    assert alone["tick_gap_us"] < 200_000
    assert stopped["p99_us"] >= 100_000 > alone["p99_us"]
    # tick_lost_us adds the stops up: the 300 ms is 15 % of the 2 s, a
    # stalled round by run.py's measure. (Alone, it is whatever the other
    # work on the machine took: on the shared VM, up to a third of a run.)
    assert stopped["tick_lost_us"] >= 290_000
    assert stopped["tick_lost_us"] >= alone["tick_gap_us"]
    assert bench_run.stall_share(stopped, "tick_lost_us", 2) >= bench_run.STALL_SHARE


def test_loadgen_pair_fails_when_a_side_fails_and_leaves_nothing_running(
        stamping_servers, tmp_path):
    # The failing side first (loadgen refuses a port that is no port at
    # once, with status 2): the other side is still running when it fails.
    ports = ["x", stamping_servers[0].server_address[1]]
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="loadgen exited 2"):
        bench_run.loadgen_pair(ports, "--mode", "keepalive", "--connections", 2,
                               "--rate", 100, duration=5.0, warmup=0.1,
                               samples=[tmp_path / "a.txt", tmp_path / "b.txt"])
    assert time.monotonic() - t0 < 3
    left = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "loadgen"],
                          capture_output=True, text=True).stdout.split()
    assert left == []


def test_loadgen_refuses_a_target_that_is_no_address_and_port():
    for target in ("127.0.0.1:x", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:80x",
                   "localhost:80", "127.0.0.1"):
        p = subprocess.run([str(bench_run.LOADGEN), "--target", target, "--duration", "1"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, target
        assert "usage: loadgen" in p.stderr, target
        assert p.stdout == "", target


@pytest.mark.skipif(not bench_replica.STREAM_MODULE.exists(),
                    reason="nginx stream module not installed (make deps)")
def test_replica_balancer_puts_half_the_connections_on_each_daemon(stamping_servers,
                                                                    tmp_path):
    """The "two" address of replica.py's nginx stream balancer spreads a
    run's connections evenly over both daemons; the "one" address reaches
    the first only."""
    tmp_path.chmod(0o755)
    first, second = (types.SimpleNamespace(api_port=srv.server_address[1])
                     for srv in stamping_servers)
    balancer = bench_replica.Balancer(tmp_path, first, [first, second])
    try:
        for port, expect in ((balancer.two_port, [16, 16]), (balancer.one_port, [32, 0])):
            for srv in stamping_servers:
                srv.clients.clear()
            r = bench_run.loadgen(port, "--mode", "keepalive", "--connections", 32,
                                  "--rate", 400, duration=1.0, warmup=0.3)
            assert r["s2xx"] == r["requests"] > 300
            assert [len(srv.clients) for srv in stamping_servers] == expect
    finally:
        balancer.stop()


NO_CPU_GROUPS = cpugroup.available()
# 0.4 s of CPU time: 2 s of the clock at 0.2 of a core.
SPIN = [sys.executable, "-c", "import time\nwhile time.process_time() < 0.4: pass"]


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cpu_groups_say_why_they_are_unavailable(tmp_path, monkeypatch):
    """Where there is no cgroup v1 cpu hierarchy (cgroup v2 only, a
    container), replica.py is told why, and runs without quotas."""
    monkeypatch.setattr(cpugroup, "ROOT", tmp_path / "cpu")
    assert cpugroup.available() == f"no cgroup v1 cpu hierarchy at {tmp_path / 'cpu'}"


@pytest.mark.skipif(NO_CPU_GROUPS is not None, reason=f"no cpu cgroups: {NO_CPU_GROUPS}")
def test_cpu_group_holds_a_process_to_its_quota_and_counts_the_throttling():
    """A process that spins for 0.4 s of CPU gets 0.2 of a core in a group
    with that quota, its children too, and cpu.stat counts the periods it
    was stopped in; removed, the group is gone."""
    g = cpugroup.Group.make("test-quota", cores=0.2)
    try:
        before = g.stat()
        t0 = time.monotonic()
        # A shell that spins in a child: the child is born in the group.
        p = subprocess.Popen(["sh", "-c", '"$@"; true', "sh", *SPIN], preexec_fn=g.preexec)
        time.sleep(1.0)
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                              text=True).stdout.split()
        assert len(kids) == 1
        used = cpu_of(int(kids[0]))
        wall = time.monotonic() - t0
        assert int(kids[0]) in g.pids()
        p.wait(timeout=30)
        done = time.monotonic()
        after = g.stat()
    finally:
        g.remove()
    assert not g.path.exists()
    # 0.2 of a core over `wall`, a clock tick and a period of slack.
    assert used <= 0.2 * wall + 0.05, (used, wall)
    assert used >= 0.1 * wall, (used, wall)
    assert after["nr_throttled"] - before["nr_throttled"] >= 5
    assert done - t0 >= 0.4 / 0.2 * 0.8  # 0.4 s of CPU took 2 s


@pytest.mark.skipif(NO_CPU_GROUPS is not None, reason=f"no cpu cgroups: {NO_CPU_GROUPS}")
def test_cpu_group_removal_moves_its_processes_out_and_stale_groups_go():
    """remove() works with a process still in the group (it goes back to the
    root group, alive); remove_stale() removes the groups of a bench run
    that is gone (SIGKILL) and leaves those of a live one."""
    g = cpugroup.Group.make("test-busy")
    sleeper = subprocess.Popen(["sleep", "30"], preexec_fn=g.preexec)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = cpugroup.ROOT / f"{cpugroup.PREFIX}{gone.pid}-rest"
    live = cpugroup.ROOT / f"{cpugroup.PREFIX}{sleeper.pid}-rest"
    try:
        stale.mkdir()
        live.mkdir()
        g.remove()
        assert not g.path.exists()
        assert sleeper.poll() is None
        cpu_line = [x for x in Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()
                    if x.split(":")[1] == "cpu"]
        assert cpu_line and cpu_line[0].endswith(":/"), cpu_line
        cpugroup.remove_stale()
        assert not stale.exists()
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        for d in (stale, live):
            if d.exists():
                d.rmdir()
        g.remove()


def test_a_budget_verdict_says_when_the_quota_or_the_generator_was_the_limit():
    """A closed-loop round in a CPU budget counts only when its group was
    throttled in most periods (it had more work than its quota) and the
    generator had room to spare."""
    v = cpugroup.budget_verdict
    assert v(100, 90, 0.8, 0.5, 2) is None
    assert v(100, 90, None, 0.5, 2) is None  # the peer needs no generator
    assert v(100, 30, 0.8, 0.5, 2) == "the quota was not the limit (throttled in 30 of 100 periods)"
    assert v(100, 90, 1.4, 0.5, 2) == ("the generator used 1.40 of the 1.5 cores outside the "
                                       "budget")
    assert v(0, 0, 0.1, 0.5, 2) == "no quota period elapsed"
    assert v(100, 90, 0.8, 0.5, 2, used_cores=0.45) is None
    assert v(100, 90, 0.8, 0.5, 2, used_cores=0.3) == ("the quota was not the limit (used "
                                                       "0.30 of 0.5 cores)")


def budgeted_round(rps, verdict=None):
    return {"rps": rps, "verdict": verdict, "cpu": {"cores": {}, "machine": {}}}


def test_a_budgeted_row_refuses_a_target_when_a_round_did_not_measure_the_budget():
    ok = bench_run.budget_row("cold", [budgeted_round(x) for x in (900, 1100, 1000)],
                              [budgeted_round(x) for x in (500, 700, 600)], 1.5,
                              budget_cores=0.5)
    assert (ok["ratio"], ok["target"], ok["met"]) == (1000 / 600, 1.5, True)
    assert "note" not in ok and ok["budget_cores"] == 0.5
    starved = bench_run.budget_row(
        "cold", [budgeted_round(900), budgeted_round(1000, "the generator used 1.40 of the "
                                                         "1.5 cores outside the budget")],
        [budgeted_round(500), budgeted_round(600)], 1.5)
    assert (starved["target"], starved["met"], starved["target_if_judged"]) == ("report", None,
                                                                               1.5)
    assert starved["note"] == ("not judged (1 round(s) did not measure the budget): the "
                               "generator used 1.40 of the 1.5 cores outside the budget")
    lines = bench_run.table_lines([ok, starved])
    assert re.search(r"1\.67  1\.57-1\.80  >= 1\.50  PASS", lines[1]), lines[1]
    assert re.search(r"report   report", lines[2]), lines[2]
    assert lines[3] == "  " + starved["note"]
    assert lines[-1].startswith("1 of 1 targets met")
    json.dumps([ok, starved])


def test_without_cpu_groups_the_shared_cores_row_is_judged_and_says_so(tmp_path, monkeypatch):
    """Not root, cgroup v2 only, a container: the shared-cores figure takes
    the target, and the table says why under it."""
    monkeypatch.setattr(cpugroup, "ROOT", tmp_path / "cpu")
    reason = cpugroup.available()
    row = bench_run.make_row("cold, shared cores", 7500, 6000, 1.5, shared_cores=True,
                             note=bench_run.shared_cores_note(reason))
    lines = bench_run.table_lines([row])
    assert "FAIL" in lines[1]
    assert lines[2] == ("  target judged on the shared cores, generator on them: no CPU "
                        f"budget (no cgroup v1 cpu hierarchy at {tmp_path / 'cpu'})")


# 0.2 s of CPU time: 1 s of the clock at 0.2 of a core.
SHORT_SPIN = [sys.executable, "-c", "import time\nwhile time.process_time() < 0.2: pass"]


@pytest.mark.skipif(NO_CPU_GROUPS is not None, reason=f"no cpu cgroups: {NO_CPU_GROUPS}")
def test_a_budgeted_round_measures_the_quota_and_the_budget_leaves_nothing_behind():
    """In a Budget, the peer's processes are held to the quota on the
    budget's vCPU and counted throttled; one that waits instead of working
    is told apart (its quota was not the limit). Removed, the budget's
    groups are gone, a daemon left in one is back in the root group and on
    every CPU, and so is the caller."""
    cpu = os.cpu_count() - 1
    b = cpugroup.Budget(0.2, cpu)
    daemon = subprocess.Popen(["sleep", "30"])
    paths = [g.path for g in b.groups.values()]
    try:
        b.start([daemon.pid], [])
        assert daemon.pid in b["certregd"].pids()
        assert os.sched_getaffinity(daemon.pid) == {cpu}
        assert os.getpid() in b["generator"].pids()

        def peer(cmd):
            def go():
                p = subprocess.run(cmd, preexec_fn=b.peer_preexec, capture_output=True,
                                   text=True, check=True)
                return {"out": p.stdout}
            return go

        where = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
        assert peer(where)()["out"].strip() == f"[{cpu}]"
        busy = bench_run.accounted(peer(SHORT_SPIN), b["peer"])
        idle = bench_run.accounted(peer(["sleep", "0.5"]), b["peer"])
        b.stop([daemon.pid])
        assert os.sched_getaffinity(daemon.pid) == set(range(os.cpu_count()))
        assert daemon.pid not in b["certregd"].pids()
        b.start([daemon.pid], [])  # left in the budget: remove() takes it out
    finally:
        b.remove()
        b.remove()  # twice is harmless
    try:
        assert not any(p.exists() for p in paths)
        for pid in (daemon.pid, os.getpid()):
            cpu_line = [x for x in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                        if x.split(":")[1] == "cpu"]
            assert cpu_line and cpu_line[0].endswith(":/"), cpu_line
        assert daemon.poll() is None
    finally:
        daemon.kill()
        daemon.wait()
    c = busy["cpu"]
    # 0.2 s of CPU at 0.2 of a core: about a second, throttled in most 20 ms
    # periods; the machine's times are all there. The slack: the kernel
    # hands out a group's quota in slices of 5 ms (sched_cfs_bandwidth_slice_us)
    # and 4 ms periods overrun by up to a slice at first.
    assert c["wall_s"] >= 0.2 / 0.2 * 0.7, c
    assert c["cores"]["children"] <= 0.2 * 1.4, c
    assert cpugroup.budget_verdict(c["nr_periods"], c["nr_throttled"], None, 0.2, 2,
                                   used_cores=c["cores"]["children"]) is None, c
    assert set(c["machine"]) == set(cpugroup.STAT_FIELDS)
    i = idle["cpu"]
    assert cpugroup.budget_verdict(i["nr_periods"], i["nr_throttled"], None, 0.2, 2,
                                   used_cores=i["cores"]["children"]) \
        .startswith("the quota was not the limit"), i


@pytest.mark.skipif(NO_CPU_GROUPS is not None, reason=f"no cpu cgroups: {NO_CPU_GROUPS}")
def test_openssl_speed_in_a_budget_counts_the_clock_not_its_cpu_time():
    """The budgeted SM2 row's peer: `openssl speed -elapsed` in a budget of
    0.2 of a core verifies at most about that share of what it does on the
    shared cores. Without -elapsed, one openssl process divides by the
    user CPU time it got, not by the clock: a whole core's rate whatever
    the budget (with -multi its children count the clock either way)."""
    b = cpugroup.Budget(0.2, os.cpu_count() - 1)
    try:
        free = bench_run.openssl_speed_sm2(1, elapsed=True)
        b.start([], [])
        held = bench_run.openssl_speed_sm2(1, elapsed=True, preexec=b.peer_preexec)
        out = subprocess.run(["openssl", "speed", "-mr", "-seconds", "1", "sm2"],
                             preexec_fn=b.peer_preexec, capture_output=True, text=True,
                             check=True).stdout
    finally:
        b.remove()
    per_cpu_second = float([ln for ln in out.splitlines() if ln.startswith("+F7:")][-1]
                           .split(":")[5])
    assert held < 0.5 * free, (held, free)
    assert per_cpu_second > 2 * held, (per_cpu_second, held)


def ocspcost_args(pki):
    return ["--ca", str(pki.path("ca/trust.pem")), "--intermediates",
            str(pki.path("ca/intermediates.pem")), "--crl-dir", str(pki.path("crl-all")),
            "--issuer-cert", str(pki.path("ca/int.pem"))]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (callgrind)")
def test_ocspcost_counts_both_modes_on_the_same_leaves(pki, tmp_path):
    assert OCSPCOST.exists(), "run make bench-tools"
    p = subprocess.run([str(OCSPCOST), *ocspcost_args(pki), "--issuer-key",
                        str(pki.path("ca/int.key")), "--leaves", "4", "--out-dir",
                        str(tmp_path), "--json", str(tmp_path / "ocsp.json")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"cold /v1/verify with a cached OCSP answer vs without \(instructions\)"
                     r"  (\d+)  (\d+)  ([\d.]+)  target <= 1\.05  (PASS|MISS)\n", p.stdout)
    assert m, p.stdout
    without, with_, ratio = int(m[1]), int(m[2]), float(m[3])
    r = json.loads((tmp_path / "ocsp.json").read_text())
    assert (r["without"], r["with"], r["leaves"]) == (without, with_, 4)
    assert r["pass"] == (m[4] == "PASS") == (r["ratio"] <= 1.05)
    assert abs(ratio - with_ / without) < 0.001
    # Only the counted pass over 4 chains: a verification is some hundred
    # thousand instructions, the set-up (key generation, the untimed pass)
    # would be millions more; and the OCSP id costs something.
    assert 4 * 300_000 < without < 4 * 20_000_000
    assert with_ > without
    # Both runs verified the same 4 leaves the driver made.
    assert (tmp_path / "ocspcost.leaves.pem").read_text().count("BEGIN CERTIFICATE") == 4


def test_ocspcost_run_refuses_chains_it_would_count_as_something_else(pki, tmp_path):
    """A count of refusals, or of decisions with no cached answer to find,
    is not the row's: a run checks that every chain verified and, with
    OCSP on, that each leaf names a responder and its answer came from the
    cache."""
    assert OCSPCOST.exists(), "run make bench-tools"
    (tmp_path / "expired.pem").write_text(pki.read("expired"))
    (tmp_path / "ok.pem").write_text(pki.read("ec-ok"))

    def run(mode, chains):
        return subprocess.run([str(OCSPCOST), *ocspcost_args(pki), "--run", mode, "--chains",
                               str(tmp_path / chains)], capture_output=True, text=True,
                              timeout=60)

    p = run("plain", "ok.pem")
    assert p.returncode == 0, p.stderr
    assert "failures=0 done=2 ocsp_cache_hits=0" in p.stdout
    p = run("plain", "expired.pem")
    assert p.returncode == 1
    assert "2 failures, 2 of 2 steps done" in p.stderr, p.stderr
    # The test PKI's leaves name no OCSP responder (ocspcost's own do).
    p = run("ocsp", "ok.pem")
    assert p.returncode == 2
    assert "ocspcost: leaf 0" in p.stderr


VERIFY_REF = STALLPROBE.parent / "verify_ref"


def verify_ref_args(pki, tmp_path, *more):
    (tmp_path / "list.txt").write_text(f"{pki.path('leaf/ec-ok.chain.pem')}\n")
    return [str(VERIFY_REF), "--ca", str(pki.path("ca/trust.pem")), "--intermediates",
            str(pki.path("ca/intermediates.pem")), "--list", str(tmp_path / "list.txt"),
            *map(str, more)]


def test_verify_ref_open_loop_times_each_chain_from_when_it_fell_due(pki, tmp_path):
    """The reference of the cold p99 row: verify_ref --rate runs the bare
    loop at a fixed rate and times every chain from when it was due. A
    process stopped for 300 ms must show it three ways: lost_us (its late
    wake-up, what run.py repeats a round for) and the p99 (the chains due
    meanwhile waited)."""
    assert VERIFY_REF.exists(), "run make bench-tools"
    args = verify_ref_args(pki, tmp_path, "--procs", 1, "--duration", 2, "--rate", 200)
    alone = figures(subprocess.run(args, capture_output=True, text=True, timeout=30,
                                   check=True).stdout)
    assert alone["failures"] == 0
    # 200 a second for 2 s, open loop: as many chains as fell due.
    assert 380 <= alone["chains"] <= 401
    assert 0 < alone["p50_us"] <= alone["p99_us"] < 200_000
    p, out = run_with_its_loop_stopped(args)
    assert p.returncode == 0
    stopped = figures(out)
    # (Alone, lost_us is whatever the machine's other work took: on the
    # shared VM, up to a sixth of a run.)
    assert stopped["lost_us"] >= 250_000
    # 60 of the 400 chains fell due in the stop, the first of them waiting
    # 300 ms: the p99 is among them.
    assert stopped["p99_us"] >= 200_000
    assert bench_run.stall_share(stopped, "lost_us", 2) >= bench_run.STALL_SHARE
    # Due faster than it can verify, the loop never sleeps: a stop can only
    # land in the middle of a chain, and must count all the same (CI once
    # stopped it there at 200 a second, and lost_us read 4 ms).
    behind = verify_ref_args(pki, tmp_path, "--procs", 1, "--duration", 2, "--rate", 100_000)
    p, out = run_with_its_loop_stopped(behind)
    assert p.returncode == 0
    assert figures(out)["lost_us"] >= 250_000


def test_verify_ref_counts_nothing_of_its_warm_up(pki, tmp_path):
    """--warmup S (row 5's cold line, as loadgen's warm-up for certregd):
    the loop runs S seconds at the rate first and counts none of it. A
    stop of 300 ms inside the warm-up shows neither in lost_us nor in the
    p99, and only the measured second's chains are counted."""
    args = verify_ref_args(pki, tmp_path, "--procs", 1, "--warmup", 1.5, "--duration", 1,
                           "--rate", 200)
    started = time.monotonic()
    p, out = run_with_its_loop_stopped(args)
    assert p.returncode == 0 and time.monotonic() - started >= 2.5
    r = figures(out)
    assert r["failures"] == 0
    # 200 a second for the measured second only (1.5 s more were run).
    assert 190 <= r["chains"] <= 201
    # The 60 chains due in the stop waited up to 300 ms, all in the warm-up.
    assert r["p99_us"] < 200_000
    assert r["lost_us"] < 250_000
    # Without --warmup the same stop is in the figures (the test above).
    bad = verify_ref_args(pki, tmp_path, "--procs", 1, "--warmup", -1, "--duration", 1)
    assert subprocess.run(bad, capture_output=True, timeout=30).returncode == 2


def test_verify_ref_processes_that_end_together_report_whole(pki, tmp_path):
    """In make bench's CPU budget verify_ref's processes share one vCPU and
    end together: each must hand its tally and latencies over whole (they
    once shared a pipe, interleaved, and the run failed with status 1)."""
    args = verify_ref_args(pki, tmp_path, "--procs", 2, "--duration", 1, "--rate", 20000)
    for _ in range(3):
        p = subprocess.run(["taskset", "-c", str(os.cpu_count() - 1), *args],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        r = figures(p.stdout)
        assert r["failures"] == 0 and r["chains"] > 0


def test_verify_ref_closed_loop_prints_what_it_printed_before(pki, tmp_path):
    """Row 3 reads per_sec from the closed loop, which has no latencies."""
    p = subprocess.run(verify_ref_args(pki, tmp_path, "--procs", 2, "--duration", 0.5),
                       capture_output=True, text=True, timeout=30, check=True)
    r = figures(p.stdout)
    assert set(r) == {"chains", "seconds", "per_sec", "failures"}
    assert r["failures"] == 0 and r["chains"] > 0


def test_a_stalled_round_is_repeated_a_bounded_number_of_times():
    """unstalled(): a round whose generator lost STALL_SHARE of its time or
    more is measured again, at most RETRIES times more; when all stalled,
    the least stalled counts and says so."""
    def rounds(*lost_ms):
        seq = iter([{"p99_us": i, "tick_lost_us": ms * 1000} for i, ms in enumerate(lost_ms)])
        return lambda: next(seq)

    # 2 s rounds: 0.5 % is 10 ms.
    r, repeated, stalled = bench_run.unstalled(rounds(0, 50), "tick_lost_us", 2, 2)
    assert (r["p99_us"], repeated, stalled) == (0, 0, False)
    r, repeated, stalled = bench_run.unstalled(rounds(50, 11, 9, 0), "tick_lost_us", 2, 2)
    assert (r["p99_us"], repeated, stalled) == (2, 2, False)
    r, repeated, stalled = bench_run.unstalled(rounds(50, 11, 30, 0), "tick_lost_us", 2, 2)
    assert (r["p99_us"], repeated, stalled) == (1, 2, True)
    r, repeated, stalled = bench_run.unstalled(rounds(50, 0), "tick_lost_us", 2, 0)
    assert (r["p99_us"], repeated, stalled) == (0, 0, True)


def test_latency_rows_alternate_their_sides_and_judge_each_round_alone():
    """alternating_rounds() (rows 5 and 7): A B, B A, A B, ... (A B C,
    C B A, ... with three sides); a round that stalled is repeated on its
    own side only, the other sides' rounds are not; and no side is
    repeated more times in all than it has rounds, so that one side's
    stalls never use up another's repeats."""
    calls = []

    def side(name, lost_ms):
        seq = iter(lost_ms)

        def measure():
            calls.append(name)
            return {"side": name, "tick_lost_us": next(seq) * 1000}
        return measure

    # 2 s rounds: 0.5 % is 10 ms. Round 2 of A stalls once; B never does.
    (a, b), repeated, kept = bench_run.alternating_rounds(
        [(side("A", [0, 50, 0, 0]), "tick_lost_us"), (side("B", [0, 0, 0]), "tick_lost_us")],
        2, 3, 2)
    assert calls == ["A", "B", "B", "A", "A", "A", "B"]
    assert [r["side"] for r in a] == ["A"] * 3 and [r["side"] for r in b] == ["B"] * 3
    assert [r["tick_lost_us"] for r in a] == [0, 0, 0]
    assert (repeated, kept) == ([1, 0], [0, 0])
    # Everything stalls: 2 pairs are 4 rounds, so 4 repeats at most in all,
    # and each round counted says it stalled.
    calls.clear()
    (a, b), repeated, kept = bench_run.alternating_rounds(
        [(side("A", [50] * 10), "tick_lost_us"), (side("B", [50] * 10), "tick_lost_us")],
        2, 2, 2)
    assert (len(a), len(b), sum(repeated), sum(kept)) == (2, 2, 4, 4)
    assert len(calls) == 4 + 4
    # Three sides, each with its own lost key (row 5: certregd, nginx, and
    # nginx given certregd's request): A B C, C B A; C's one stall is C's.
    calls.clear()
    lost_c = iter([50, 0, 0])

    def side_c():
        calls.append("C")
        return {"side": "C", "lost_us": next(lost_c) * 1000, "tick_lost_us": 50_000}

    (a, b, c), repeated, kept = bench_run.alternating_rounds(
        [(side("A", [0, 0]), "tick_lost_us"), (side("B", [0, 0]), "tick_lost_us"),
         (side_c, "lost_us")], 2, 2, 2)
    assert calls == ["A", "B", "C", "C", "C", "B", "A"]
    assert [r["side"] for r in c] == ["C", "C"] and [r["lost_us"] for r in c] == [0, 0]
    assert (repeated, kept) == ([0, 0, 1], [0, 0, 0])
    # A side that always stalls gets no more repeats than it has rounds,
    # however many retries a round may have, and the other side none.
    calls.clear()
    (a, b), repeated, kept = bench_run.alternating_rounds(
        [(side("A", [50] * 20), "tick_lost_us"), (side("B", [0] * 20), "tick_lost_us")],
        2, 2, 5)
    assert (repeated, kept) == ([2, 0], [2, 0])
    assert calls.count("A") == 4 and calls.count("B") == 2
    # Three sides that always stall: each doubles its rounds, no more.
    calls.clear()
    sides3 = [(side(x, [50] * 20), "tick_lost_us") for x in "ABC"]
    _, repeated, kept = bench_run.alternating_rounds(sides3, 2, 4, 2)
    assert (repeated, kept) == ([4, 4, 4], [4, 4, 4]) and len(calls) == 3 * 8


def test_a_median_ratio_comes_with_an_interval_over_the_pairs_of_rounds():
    """bootstrap_median_ratio() (rows 5 and the replica rows): the interval
    holds the ratio of the medians, is a point when every pair agrees, and
    widens when the pairs disagree."""
    lo, hi = bench_run.bootstrap_median_ratio([2.0] * 9, [1.0] * 9)
    assert lo == hi == 2.0
    # The pairs are resampled together: B twice A round by round gives
    # exactly 0.5 whatever the rounds (resampling each side on its own, or
    # any mix of A's rounds with other rounds of B, would not).
    a = [float(x) for x in range(1, 10)]
    assert bench_run.bootstrap_median_ratio(a, [2 * x for x in a]) == (0.5, 0.5)
    a = [1.0, 5.0, 1.2, 4.0, 0.9, 3.0, 1.1, 6.0, 1.0]
    b = [2.0, 1.0, 2.2, 1.5, 1.9, 1.0, 2.1, 1.2, 2.0]
    lo, hi = bench_run.bootstrap_median_ratio(a, b)
    assert lo < 1.2 / 1.9 < hi and hi / lo > 2


def test_every_line_of_the_table_is_a_ratio_against_its_target():
    rows = [bench_run.make_row("handshakes", 1200, 1000, 1.1),
            bench_run.make_row("keep-alive", 899, 1000, 0.9),
            bench_run.make_row("warm p99", 900, 1000, 1.0, "lower", "us", repeated=2),
            bench_run.make_row("2M vs 10k p99", 1111, 1000, 1.1, "lower", "us",
                               stalled_counted=1),
            bench_run.make_row("RSS", 110, 100, None, unit="KiB")]
    assert [r["met"] for r in rows] == [True, False, True, False, None]
    assert [r["pass"] for r in rows] == [r["met"] for r in rows]  # the old key
    assert rows[4]["target"] == "report"
    lines = bench_run.table_lines(rows)
    assert len(lines) == 1 + len(rows) + 1
    for line, want in zip(lines[1:], [r" 1\.20 +>= 1\.10  PASS    1$",
                                      r" 0\.90 +>= 0\.90  FAIL    1$",
                                      r" 0\.90 +<= 1\.00  PASS    1, 2 repeated$",
                                      r" 1\.11 +<= 1\.10  FAIL    1, 1 stalled counted$",
                                      r" 1\.10 +report   report  1$"]):
        assert re.search(want, line), line
    assert lines[-1].startswith("2 of 4 targets met; 2 latency round(s) repeated")
    json.dumps(rows)  # results.json takes them as they are


def test_a_line_of_rounds_gives_its_ratio_a_90_percent_interval_over_the_pairs():
    """A req/s line judged on the ratio of its medians shows how far the
    pairs of rounds let that ratio move; a line's own interval (rows 5
    and 7 compute theirs) is kept."""
    row = bench_run.make_row("keep-alive", 950, 1000, 0.9,
                             rounds_certregd=[900, 950, 1000, 600, 1200, 980],
                             rounds_peer=[1000, 1000, 1000, 1000, 1000, 1000])
    lo, hi = row["interval90"]
    assert lo < row["ratio"] < hi and lo >= 0.6 and hi <= 1.2
    assert re.search(r" 0\.95 +\d\.\d\d-\d\.\d\d  >= 0\.90  PASS    6$",
                     bench_run.table_lines([row])[1])
    kept = bench_run.make_row("p99", 1, 1, 1.0, "lower", "us", interval90=[0.5, 2.0],
                              rounds_certregd=[1, 2], rounds_peer=[2, 1])
    assert kept["interval90"] == [0.5, 2.0]
    assert "interval90" not in bench_run.make_row("one round", 1, 1, 1.0,
                                                  rounds_certregd=[1], rounds_peer=[1])


def test_rounds_in_turn_put_each_side_as_often_first_as_second():
    """in_turn(): A B, B A, A B, ... (every step of a round, reversed in odd
    rounds), each step told its round."""
    seen = []
    bench_run.in_turn(4, lambda i: seen.append(("A", i)), lambda i: seen.append(("B", i)))
    assert "".join(x for x, _ in seen) == "ABBAABBA"
    assert [i for _, i in seen] == [0, 0, 1, 1, 2, 2, 3, 3]
    seen.clear()
    bench_run.in_turn(2, *(lambda i, x=x: seen.append(x) for x in "ABCD"))
    assert "".join(seen) == "ABCDDCBA"


PERF_SCRIPT = """\
certregd 100 [000] 1.000:    3000000 cpu-clock:
\t    7f01 ecp_nistz256_mul_mont+0x10 (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)
\t    7f02 X509_verify_cert+0x20 (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)
\t    5501 verify_bytes+0x30 (/usr/sbin/certregd)
\t    5502 main+0x40 (/usr/sbin/certregd)

certregd 100 [000] 1.001:    1000000 cpu-clock:
\t    7f03 [unknown] (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)
\t    5503 inlined_helper+0x5 (inlined)
\t    5501 verify_bytes+0x50 (/usr/sbin/certregd)
\t    5502 main+0x40 (/usr/sbin/certregd)

certregd 100 [000] 1.002:       1000 cpu-clock:
\tffffffff81 tiny_kernel_thing+0x1 ([kernel.kallsyms])
\t    5502 main+0x40 (/usr/sbin/certregd)
"""


def test_flamegraph_folds_perf_script_stacks_weighted_by_period(tmp_path):
    samples = flamegraph.parse(PERF_SCRIPT)
    assert [w for w, _ in samples] == [3000000, 1000000, 1000]
    # Root first, offsets dropped; an unnamed function shows its library,
    # an inlined one takes its caller's library.
    assert [f for f, _ in samples[0][1]] == ["certregd", "main", "verify_bytes",
                                              "X509_verify_cert", "ecp_nistz256_mul_mont"]
    assert samples[1][1][-1] == ("[libcrypto.so.3]",
                                 "/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
    assert samples[1][1][-2] == ("inlined_helper", "/usr/sbin/certregd")
    svg = tmp_path / "f.svg"
    summary = flamegraph.write(PERF_SCRIPT, svg, "a <title>", min_share=0.005)
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert "a &lt;title&gt;" in text
    # verify_bytes is 4 of the 4.001 ms: its tooltip says so; the kernel
    # frame (0.02 %) is under the 0.5 % cut and left out.
    assert "<title>verify_bytes (certregd): 100.0 %</title>" in text
    assert "<title>X509_verify_cert (libcrypto): 75.0 %</title>" in text
    assert "tiny_kernel_thing" not in text
    assert "  100.0 %  libcrypto" in summary
    assert "   75.0 %  X509_verify_cert" in summary


@pytest.mark.skipif(shutil.which("perf") is None, reason="needs perf (linux-perf, make deps)")
def test_flamegraph_of_a_real_profile_reaches_into_libcrypto(pki, tmp_path):
    """make flamegraph's recording: cpu-clock with DWARF call chains. Debian's
    libcrypto has no frame pointers; through it the stacks must still reach
    from the bare loop's verify_one() to X509_verify_cert and the
    signature check below it."""
    data = tmp_path / "perf.data"
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(bench_run.FLAME_HZ),
                    "--call-graph", "dwarf,8192", "-o", str(data), "--",
                    *verify_ref_args(pki, tmp_path, "--procs", 1, "--duration", 1)],
                   check=True, capture_output=True, timeout=60)
    script = subprocess.run(["perf", "script", "-i", str(data)], check=True,
                            capture_output=True, text=True, timeout=120).stdout
    summary = flamegraph.write(script, tmp_path / "f.svg", "verify_ref")
    svg = (tmp_path / "f.svg").read_text()
    samples = flamegraph.parse(script)
    below = [s for _, s in samples if any(f == "verify_one" for f, _ in s)
             and any(f == "X509_verify_cert" for f, _ in s)]
    assert len(below) >= 0.1 * len(samples)
    assert "<title>X509_verify_cert (libcrypto)" in svg
    assert re.search(r"^ +\d+\.\d %  libcrypto$", summary, re.M)
    assert (tmp_path / "f.svg").stat().st_size < 1_000_000
