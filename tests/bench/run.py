#!/usr/bin/env python3
"""make bench: certregd against nginx and against the crypto limit, in one run.

Starts a throwaway PostgreSQL with the generated registry (tests/bench/
gen_dataset.sql: 16 offices, 8,000 units, --keys keys), a test PKI and
--certs distinct client certificates bound to units, three certregd (warm:
default caches; cold: verified-result and association caches off, on the
big and on a 10,000-key database), and nginx with `ssl_verify_client on`
on the same certificates. Then measures with build/bench/loadgen, the
sides in turn (A B, B A, ...), taking each side's median and a 90 %
interval of their ratio over the pairs of rounds (the 2M-vs-10k p99: many
short rounds of each database, in turn, pooled), and prints the table of
docs/PERFORMANCE.md (also written to build/bench/results.txt and .json):
every line a ratio of certregd to
a peer measured in the same run, its target (issue 34; TARGETS) and
whether it is met. A latency round in which the load generator itself was
kept from running (STALL_SHARE) is repeated, not counted, and the table
says how many were. --flame DIR also writes flame graphs of a worker
during handshakes and cold verifications (make flamegraph).

Rows 8 and 9 are the signed-challenge login and the login assertions
(issue 29): challenges against warm /v1/verify; signed logins, ECDSA P-256
against cold /v1/verify on the same certificates and SM2 (--sm2-certs
certificates under the test PKI's SM2 CA) against `openssl speed sm2`,
over challenges taken and signed before each round (loadgen --premake) and
sent once each; TLS /v1/login keep-alive on a fourth certregd that signs an
assertion on every OK against the warm one. `--rows 8,9` runs only those.

Everything runs on the loopback; the load generator shares the machine's
cores with the servers, as it would with nginx. Rows 3 and 8 SM2, whose
peer's rate is a bare OpenSSL loop's, are judged under the same CPU budget
(--budget, cgroup v1 quotas, tests/bench/cpugroup.py): certregd's workers
and the loop's processes in groups of the same quota on the same vCPU, the
generator and PostgreSQL outside. So is row 8 ECDSA, both of whose sides
are certregd: only the signed login writes to PostgreSQL, whose backends
took a fifth of the shared cores from it. The shared-cores figures are
kept as "report" lines, and are judged instead where CPU groups are
unavailable.
Exit status 0 when every measurement ran, whatever the ratios.
"""
import argparse
import collections
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.pg import Cluster  # noqa: E402

import cpugroup  # noqa: E402  (tests/bench, beside this file)
import flamegraph  # noqa: E402

BUILD = Path(os.environ.get("CERTREG_BUILD", ROOT / "build"))
BENCH = ROOT / "build" / "bench"
LOADGEN = BENCH / "loadgen"
VERIFY_REF = BENCH / "verify_ref"
STALLPROBE = BENCH / "stallprobe"
NPROC = os.cpu_count() or 1
# --flame: samples a second of the recorded worker, and the share of them
# under which a frame is left out of the SVG (keeps it small and legible).
FLAME_HZ = 999
FLAME_MIN_SHARE = 0.005
ROOT_UID = os.geteuid() == 0


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True,
                          **kw)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_for_nobody(path):
    """Lets nobody traverse to path (certregd and PostgreSQL run as nobody)."""
    if not ROOT_UID:
        return
    for p in [path, *path.parents]:
        if p == Path("/"):
            break
        p.chmod(p.stat().st_mode | 0o011)


def chown_nobody(path):
    if ROOT_UID:
        shutil.chown(path, "nobody", "nogroup")


# --- fixtures ------------------------------------------------------------------

SM2_SIGOPT = "distid:1234567812345678"  # GM/T 0009's default id, as tests/pki/mkpki.py


def make_certs(pki, out, n, sm2=False):
    """n ECDSA P-256 client certificates under pki's issuing CA (with sm2,
    SM2 ones under its SM2 issuing CA), with their chain files, /v1/verify
    bodies, key lists and key ids (SHA-256 of the DER SPKI)."""
    out.mkdir()
    ca = "sm2-int" if sm2 else "int"
    if sm2:
        newkey = ('openssl genpkey -algorithm SM2 -out "$f.key"\n'
                  f'openssl req -new -key "$f.key" -sm3 -sigopt {SM2_SIGOPT}')
        md = f"-sm3 -sigopt {SM2_SIGOPT} -vfyopt {SM2_SIGOPT}"
    else:
        newkey = ('openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes '
                  '-keyout "$f.key"')
        md = "-sha256"
    script = f"""
set -e
i=$1; d={out}; f=$(printf '%s/%06d' "$d" "$i")
{newkey} \\
  -subj "/O=certreg bench/CN=bench client {'sm2 ' if sm2 else ''}$i" -out "$f.csr" 2>/dev/null
openssl x509 -req -in "$f.csr" -CA {pki}/ca/{ca}.pem -CAkey {pki}/ca/{ca}.key -CAcreateserial \\
  -CAserial "$f.srl" -days 365 {md} -extfile {out}/ext.cnf -extensions leaf \\
  -out "$f.leaf" 2>/dev/null
cat "$f.leaf" {pki}/ca/{ca}.pem > "$f.pem"
openssl pkey -in "$f.key" -pubout -outform DER | sha256sum | cut -d' ' -f1 > "$f.kid"
rm -f "$f.csr" "$f.srl"
"""
    (out / "gen.sh").write_text(script)
    (out / "ext.cnf").write_text(
        "[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n")
    # gen.sh takes the key id from the private key, not from the
    # certificate: one openssl run less per certificate, and these run
    # beside the database fill.
    # In a process group of its own: a run stopped meanwhile ends the whole
    # pipeline, not only the shell (xargs would go on making certificates).
    gen = subprocess.Popen(f"seq 1 {n} | xargs -P {NPROC * 2} -n 1 bash {out}/gen.sh",
                           shell=True, start_new_session=True)
    try:
        status = gen.wait()
    except BaseException:
        # No such group: every process of it ended just before the signal.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gen.pid, signal.SIGKILL)
        gen.wait()
        raise
    if status != 0:
        raise subprocess.CalledProcessError(status, gen.args)
    kids, bodies, pems, certs, keys = [], [], [], [], []
    inter = (pki / f"ca/{ca}.pem").read_text()
    for i in range(1, n + 1):
        f = out / f"{i:06d}"
        kids.append(Path(f"{f}.kid").read_text().strip())
        leaf = Path(f"{f}.leaf").read_text()
        Path(f"{f}.json").write_text(json.dumps({"certificate": leaf, "chain": [inter]}))
        bodies.append(f"{f}.json")
        pems.append(f"{f}.pem")
        certs.append(f"{f}.pem {f}.key")
        keys.append(f"{f}.key")
    (out / "bodies.txt").write_text("\n".join(bodies) + "\n")
    (out / "keys.txt").write_text("\n".join(keys) + "\n")
    (out / "pems.txt").write_text("\n".join(pems) + "\n")
    (out / "certs.txt").write_text("\n".join(certs) + "\n")
    return kids


def key_id(pem_path):
    p = subprocess.run(f"openssl x509 -in {pem_path} -pubkey -noout | openssl pkey -pubin "
                       f"-outform DER | sha256sum", shell=True, check=True,
                       capture_output=True, text=True)
    return p.stdout.split()[0]


def start_database(cluster, name, keys):
    """Create and migrate NAME, and start filling it (gen_dataset.sql) in
    the background: the Popen of the psql that fills it."""
    cluster.psql(f'CREATE DATABASE "{name}"')
    run([BUILD / "certreg-admin", "--db", cluster.conninfo(name), "db", "migrate"])
    return subprocess.Popen(
        [str(c) for c in (cluster.bin / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v",
                          f"keys={keys}", "-d", cluster.conninfo(name), "-f",
                          ROOT / "tests/bench/gen_dataset.sql")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_database(cluster, name, keys, fill, t0, bind_ids):
    """Wait for FILL (start_database), bind the bench keys, VACUUM ANALYZE."""
    out, _ = fill.communicate(timeout=1200)
    if fill.returncode != 0:
        raise RuntimeError(f"gen_dataset.sql on {name}: {out}")
    # As key_bind() records it for a unit without a credit code: checked.
    values = ",".join(f"('{k}', '110000000001', 'approved', 'counter', 'BENCH', 'bench', true)"
                      for k in bind_ids)
    # Through stdin: thousands of rows are more than one argv string may hold.
    run([cluster.bin / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
         cluster.conninfo(name)],
        input="SET ROLE certreg_owner; INSERT INTO certreg.keys "
              "(key_id, registration_no, status, how, ticket, bound_by, credit_checked) VALUES " +
              values +
              " ON CONFLICT DO NOTHING;\n")
    cluster.psql("VACUUM ANALYZE", name)
    log(f"database {name}: {keys} generated keys + {len(bind_ids)} bench keys "
        f"in {time.monotonic() - t0:.0f} s")


class Server:
    """A server process with workers: its pids, and a graceful stop."""
    stop_signal = signal.SIGTERM

    def pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        return [self.proc.pid] + [int(p) for p in out]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Certregd(Server):
    def __init__(self, work, name, pki, conninfo, workers, cache_size=None,
                 verify_size=None, challenge_ttl=None, assertion_key=None):
        self.dir = work / name
        self.dir.mkdir()
        self.dir.chmod(0o755)
        self.api_port, self.tls_port = free_port(), free_port()
        shutil.copy(pki / "server/server.pem", self.dir / "server.pem")
        shutil.copy(pki / "server/server.key", self.dir / "server.key")
        (self.dir / "server.key").chmod(0o600)
        chown_nobody(self.dir / "server.key")
        cache = ""
        if cache_size is not None:
            cache = f"[cache]\nsize = {cache_size}\nverify_size = {verify_size}\n"
        assertion = ""
        if assertion_key is not None:
            shutil.copy(assertion_key, self.dir / "assertion.key")
            (self.dir / "assertion.key").chmod(0o600)
            chown_nobody(self.dir / "assertion.key")
            assertion += (f"key = {self.dir}/assertion.key\nissuer = https://certreg.bench\n"
                          "audience = bench-portal\n")
        if challenge_ttl is not None:
            assertion += f"challenge_ttl = {challenge_ttl}\n"
        if assertion:
            assertion = "[assertion]\n" + assertion
        (self.dir / "certreg.conf").write_text(f"""[server]
listen_api = 127.0.0.1:{self.api_port}
listen_tls = 127.0.0.1:{self.tls_port}
tls_cert = {self.dir}/server.pem
tls_key = {self.dir}/server.key
workers = {workers}
log_level = warn
max_connections = 20000
request_timeout = 60
header_timeout = 60
[trust]
ca_file = {pki}/ca/trust.pem
intermediates_file = {pki}/ca/intermediates.pem
crl_dir = {pki}/crl-all
revocation = require
[database]
conninfo = {conninfo}
timeout_ms = 2000
{cache}{assertion}""")
        args = [BUILD / "certregd", "-f", "-c", self.dir / "certreg.conf"]
        if ROOT_UID:
            args[1:1] = ["-u", "nobody"]
        self.log = open(self.dir / "certregd.log", "w")
        self.proc = subprocess.Popen([str(a) for a in args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/readyz",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"certregd {name} not ready: "
                                   f"{(self.dir / 'certregd.log').read_text()[-2000:]}")
            time.sleep(0.2)



class Nginx(Server):
    stop_signal = signal.SIGQUIT  # graceful shutdown

    def __init__(self, work, pki, reuseport=False):
        """REUSEPORT: a listening socket per worker, connections spread by
        the kernel's hash as certregd's are (--nginx-reuseport), instead of
        one socket whose connections go to whichever worker accepts first."""
        self.dir = work / "nginx"
        (self.dir / "logs").mkdir(parents=True)
        self.tls_port, self.http_port = free_port(), free_port()
        user = "user nobody nogroup;" if ROOT_UID else ""
        (self.dir / "nginx.conf").write_text(f"""{user}
worker_processes auto;
worker_rlimit_nofile 65536;
error_log {self.dir}/logs/error.log;
pid {self.dir}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{self.tls_port} ssl;
    ssl_certificate {pki}/server/server.pem;
    ssl_certificate_key {pki}/server/server.key;
    ssl_client_certificate {pki}/ca/trust.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    keepalive_requests 1000000;
    location / {{ return 200 "ok\\n"; }}
  }}
  server {{
    listen 127.0.0.1:{self.http_port}{" reuseport" if reuseport else ""};
    keepalive_requests 1000000;
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-p", str(self.dir), "-c",
                                      str(self.dir / "nginx.conf"), "-g", "daemon off;"])
        time.sleep(1)
        if self.proc.poll() is not None:
            raise RuntimeError((self.dir / "logs/error.log").read_text())



# --- measuring -----------------------------------------------------------------

def loadgen(port, *args, duration, warmup=1.0, samples=None):
    """One loadgen run: its figures; with SAMPLES (a path), every latency too."""
    cmd = loadgen_cmd(port, args, duration, warmup, samples)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       timeout=duration + warmup + 120)
    if p.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(map(str, args))} exited {p.returncode}: "
                           f"{p.stderr.strip()} {p.stdout.strip()}")
    return loadgen_result(p.stdout, args, samples)


def loadgen_split(port, *args, duration, warmup=1.0, trace=None, look_in_warmup=False):
    """loadgen() with, in its "split", how the server's processes shared
    its connections half-way through (LOOK_IN_WARMUP: half-way through the
    warm-up, so that ss runs in no measured second: for a side whose peer
    is not looked at): the number each process held, most first (ss
    -tnp). certregd's workers each have a SO_REUSEPORT socket
    and the kernel hashes connections over them; nginx's share one socket
    and take what they win. With TRACE (a path), loadgen's --trace too,
    and in "tail" what it says of the round's slowest requests and how
    the requests, not only the connections, went to each process
    (tail_structure()): the open loop uses its first free connections
    most, so the process holding those does most of the work (row 5)."""
    cmd = loadgen_cmd(port, args, duration, warmup, None)
    if trace is not None:
        cmd += ["--trace", trace]
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(warmup / 2 if look_in_warmup else warmup + duration / 2)
        owners = connection_owners(port)
        out, err = p.communicate(timeout=duration + warmup + 120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(map(str, args))} exited {p.returncode}: "
                           f"{err.strip()} {out.strip()}")
    r = loadgen_result(out, args, None)
    r["split"] = sorted(collections.Counter(owners.values()).values(), reverse=True)
    if trace is not None:
        r["tail"] = tail_structure(trace, owners, r["p99_us"])
    return r


def tail_text(t):
    """tail_structure()'s figures in a log line."""
    return (f"{t['slow']} slow in {t['episodes']} episodes, {100 * t['slow_share_all']:.0f} % "
            f"of them on every process at once, longest {t['longest_ms']} ms; per process "
            f"{t['share']} of all, {t['slow_share']} of the slow")


def connection_split(port):
    """The established connections to local PORT, counted per process
    that holds them, most first."""
    return sorted(collections.Counter(connection_owners(port).values()).values(), reverse=True)


def connection_owners(port):
    """The established connections to local PORT: the client's port -> the
    pid of the process that holds the connection."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=30).stdout
    owners = {}
    for line in out.splitlines():
        fields, pids = line.split(), sorted(set(re.findall(r"pid=(\d+)", line)))
        if len(fields) >= 4 and pids:
            owners[int(fields[3].rsplit(":", 1)[1])] = int(pids[0])
    return owners


def tail_structure(trace, owners, p99_us, gap_us=2000):
    """Row 5's question of a round: were its slowest requests (at or over
    its p99) hit together on every server process, a stop of the
    generator or of the whole machine, or on one process at a time, that
    process kept from running or busy? TRACE is loadgen's --trace (due
    time, latency, client port), OWNERS connection_owners(). Slow requests
    due less than GAP_US apart are one episode; an episode with at least a
    fifth of its requests on each of two processes counts as "all". Gives
    the episodes, the share of the slow requests in "all" episodes, the
    longest episodes (ms from the first due to the last answer), and each
    process's share of all requests and of the slow ones."""
    rows = []
    for line in Path(trace).read_text().splitlines():
        due, lat, port = (int(x) for x in line.split())
        rows.append((due, lat, owners.get(port, 0)))
    rows.sort()
    slow = [r for r in rows if r[1] >= p99_us]
    episodes, cur = [], []
    for r in slow:
        if cur and r[0] - cur[-1][0] > gap_us:
            episodes.append(cur)
            cur = []
        cur.append(r)
    if cur:
        episodes.append(cur)
    in_all = 0
    for e in episodes:
        per = collections.Counter(r[2] for r in e).most_common(2)
        if len(per) == 2 and per[1][1] >= len(e) / 5:
            in_all += len(e)
    spans = sorted((max(r[0] + r[1] for r in e) - e[0][0] for e in episodes), reverse=True)
    every, slowest = collections.Counter(r[2] for r in rows), collections.Counter(r[2] for r in slow)
    pids = [pid for pid, _ in every.most_common()]
    return {"episodes": len(episodes), "slow": len(slow),
            "slow_share_all": in_all / len(slow) if slow else 0.0,
            "longest_ms": [round(x / 1000, 1) for x in spans[:3]],
            "share": [round(every[p] / len(rows), 3) for p in pids],
            "slow_share": [round(slowest[p] / len(slow), 3) if slow else 0.0 for p in pids]}


def loadgen_pair(ports, *args, duration, warmup, samples):
    """Two loadgen runs at once, one on each of PORTS with the same ARGS,
    each writing its latencies to its path in SAMPLES: both sides go
    through the same seconds of the machine. Their figures, in order."""
    outs = run_at_once([loadgen_cmd(p, args, duration, warmup, s) for p, s in zip(ports, samples)],
                       duration + warmup + 120)
    return [loadgen_result(out, args, s) for out, s in zip(outs, samples)]


def run_at_once(cmds, timeout):
    """Every command of CMDS started at the same time: their standard
    outputs, in order. One that exits non-zero fails the call, and none
    outlives it."""
    procs = [subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in cmds]
    outs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"{Path(str(proc.args[0])).name} exited {proc.returncode}: "
                                   f"{err.strip()}")
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outs


def loadgen_cmd(port, args, duration, warmup, samples):
    cmd = [LOADGEN, "--target", f"127.0.0.1:{port}", "--duration", duration,
           "--warmup", warmup, *args]
    if samples is not None:
        cmd += ["--samples", samples]
    return cmd


def loadgen_result(out, args, samples):
    """loadgen's last line as numbers; an error when it failed 1 % or more."""
    out = out.strip().splitlines()[-1]
    r = dict(kv.split("=") for kv in out.split())
    r = {k: float(v) for k, v in r.items()}
    # unexpected: a 2xx without --expect's text (a refused signed login).
    bad = r["errors"] + r["s5xx"] + r["s4xx"] + r.get("unexpected", 0)
    if r["requests"] == 0 or bad > 0.01 * r["requests"]:
        raise RuntimeError(f"loadgen {' '.join(map(str, args))}: {out}")
    if samples is not None:
        r["samples"] = [int(x) for x in Path(samples).read_text().split()]
    return r


def accounted(go, group=None, daemon_pids=(), database_pids=()):
    """go() (a measurement returning a dict), and who used the CPU meanwhile,
    in cores (CPU seconds per second of the round): the daemon's processes,
    the database's, the caller's children waited for meanwhile (the load
    generator, or the peer loop), and the machine by kind (/proc/stat: user,
    system, softirq, steal, idle...). With GROUP (a cpugroup.Group), its
    quota periods and the throttled ones too. Added as result["cpu"]."""
    stat0 = group.stat() if group else None
    d0, db0 = cpugroup.cpu_times(daemon_pids), cpugroup.cpu_seconds(database_pids)
    ch0, sys0, t0 = cpugroup.children_cpu(), cpugroup.system_times(), time.monotonic()
    r = go()
    wall = time.monotonic() - t0
    sys1 = cpugroup.system_times()
    d1 = cpugroup.cpu_times(daemon_pids)
    cpu = {"wall_s": wall, "cores": {
        "certregd": (sum(d1) - sum(d0)) / wall,
        "certregd_system": (d1[1] - d0[1]) / wall,
        "postgresql": (cpugroup.cpu_seconds(database_pids) - db0) / wall,
        "children": (cpugroup.children_cpu() - ch0) / wall},
        "machine": {k: (sys1[k] - sys0[k]) / wall for k in sys0}}
    if group:
        stat = group.stat()
        cpu["nr_periods"] = stat["nr_periods"] - stat0["nr_periods"]
        cpu["nr_throttled"] = stat["nr_throttled"] - stat0["nr_throttled"]
    r["cpu"] = cpu
    return r


def cpu_text(cpu):
    """One round's CPU use, for the log: cores of each party and of the machine."""
    c, m = cpu["cores"], cpu["machine"]
    text = (f"certregd {c['certregd']:.2f} (system {c['certregd_system']:.2f}), generator/loop {c['children']:.2f}, PostgreSQL "
            f"{c['postgresql']:.2f} cores; machine user {m['user'] + m['nice']:.2f} system "
            f"{m['system']:.2f} softirq {m['softirq'] + m['irq']:.2f} steal {m['steal']:.2f} "
            f"idle {m['idle'] + m['iowait']:.2f}")
    if "nr_periods" in cpu:
        text += f"; throttled in {cpu['nr_throttled']} of {cpu['nr_periods']} periods"
    return text


def budget_row(what, ours, theirs, target, better="higher", unit="req/s", key="rps",
               budget_cores=None, **extra):
    """The row of budgeted rounds OURS (certregd) and THEIRS (its peer), each
    a result with "cpu" and "verdict" (cpugroup.budget_verdict: None when
    the round measured the budget): medians of KEY, the ratio, and TARGET
    judged only when every round of both sides measured the budget; else
    the row is a report and its note says why."""
    bad = [r["verdict"] for r in ours + theirs if r.get("verdict")]
    mo = statistics.median(r[key] for r in ours)
    mt = statistics.median(r[key] for r in theirs)
    row = make_row(what, mo, mt, None if bad else target, better, unit,
                   rounds_certregd=[r[key] for r in ours], rounds_peer=[r[key] for r in theirs],
                   budget_cores=budget_cores, cpu_certregd=[r["cpu"] for r in ours],
                   cpu_peer=[r["cpu"] for r in theirs], **extra)
    if bad:
        row["target_if_judged"] = target
        row["note"] = (f"not judged ({len(bad)} round(s) did not measure the budget): "
                       f"{bad[0]}")
    return row


def shared_cores_note(reason):
    """The note of a shared-cores row whose target is judged there because
    its budgeted row could not be measured (REASON: cpugroup.available()'s,
    or --budget 0)."""
    return f"target judged on the shared cores, generator on them: no CPU budget ({reason})"


def percentile(sorted_samples, q):
    return sorted_samples[int((len(sorted_samples) - 1) * q)]


def pooled_p99(ours, theirs, resamples=400):
    """The p99 of all the samples of OURS rounds and of THEIRS, and a 90 %
    bootstrap interval of their ratio over the pairs of rounds (rounds i of
    each side ran at the same time). Histograms of 1 % buckets keep the
    resampling quick."""
    def hist(samples):
        return collections.Counter(int(math.log(max(x, 1)) / math.log(1.01)) for x in samples)

    def p99(hists):
        total = collections.Counter()
        for h in hists:
            total.update(h)
        rank, seen = 0.99 * sum(total.values()), 0
        for b in sorted(total):
            seen += total[b]
            if seen >= rank:
                return 1.01 ** b
        return 0.0

    o = percentile(sorted(x for r in ours for x in r), 0.99)
    t = percentile(sorted(x for r in theirs for x in r), 0.99)
    ho, ht = [hist(r) for r in ours], [hist(r) for r in theirs]
    rng = random.Random(8)
    ratios = []
    for _ in range(resamples):
        pick = [rng.randrange(len(ours)) for _ in ours]
        ratios.append(p99([ho[i] for i in pick]) / p99([ht[i] for i in pick]))
    ratios.sort()
    return o, t, ratios[int(0.05 * resamples)], ratios[int(0.95 * resamples)]


def bootstrap_median_ratio(a_rounds, b_rounds, resamples=1000):
    """90 % interval of median(A) / median(B), resampling the pairs (round i
    of A and of B ran in the same block of alternating rounds)."""
    rng = random.Random(8)
    n = len(a_rounds)
    ratios = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(a_rounds[i] for i in pick)
                      / statistics.median(b_rounds[i] for i in pick))
    ratios.sort()
    return ratios[int(0.05 * resamples)], ratios[int(0.95 * resamples)]


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def host_stalls(when, seconds=3.0):
    """stallprobe on the idle machine: how often it takes a CPU away from a
    running task (on a VM, the host's own work). Every server waits through
    such gaps, and a p99 counts them."""
    out = run([STALLPROBE, "--seconds", seconds]).stdout.split()
    r = {k: float(v) for k, v in (kv.split("=") for kv in out)}
    r["when"] = when
    log(f"host stalls {when}: {r['gaps_per_s']:.1f}/s over 0.5 ms, longest "
        f"{r['longest_us'] / 1000:.1f} ms, {r['lost_pct']:.2f} % of CPU time")
    return r


# What PostgreSQL logs during the rows: statements slower than this, every
# autovacuum and autoanalyze, lock waits. A latency row's tail can come from
# the database (a vacuum, a checkpoint, a lock) as well as from the machine;
# this says which, per database, in the same run.
PG_SLOW_MS = 50
PG_DIAGNOSTICS = {"log_min_duration_statement": PG_SLOW_MS, "log_autovacuum_min_duration": 0,
                  "log_lock_waits": "on", "log_line_prefix": "'%m [%p] db=%d '"}


def pg_diagnostics_on(cluster):
    for name, value in PG_DIAGNOSTICS.items():
        cluster.psql(f"ALTER SYSTEM SET {name} = {value}")
    cluster.psql("SELECT pg_reload_conf()")


def pg_events(cluster, since):
    """From byte `since` of the server log: per database, the number of
    statements over PG_SLOW_MS and the longest (ms); and the autovacuum,
    autoanalyze and lock-wait lines. Returns (summary text, end offset)."""
    with open(cluster.log, "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
        end = f.tell()
    slow = collections.defaultdict(list)
    other = collections.Counter()
    for line in text.splitlines():
        db = line.split(" db=", 1)[1].split(" ", 1)[0] if " db=" in line else ""
        if 'of table "' in line:  # autovacuum workers log the table's database
            db = line.split('of table "', 1)[1].split(".", 1)[0]
        if " duration: " in line:
            slow[db or "-"].append(float(line.split(" duration: ", 1)[1].split()[0]))
        for what in ("automatic vacuum", "automatic aggressive vacuum", "automatic analyze",
                     "still waiting for", "checkpoint starting"):
            if what in line:
                other[f"{what} ({db})" if db else what] += 1
    parts = [f"{db} {len(ms)} over {PG_SLOW_MS} ms (longest {max(ms):.0f} ms)"
             for db, ms in sorted(slow.items())] or [f"no statement over {PG_SLOW_MS} ms"]
    parts += [f"{n} x {what}" for what, n in sorted(other.items())]
    return ", ".join(parts), end


def pg_buffer_counts(cluster, names):
    """Per database of NAMES: (blocks found in shared_buffers, blocks read
    from outside them) since the cluster started (pg_stat_database)."""
    out = cluster.psql("SELECT datname, blks_hit, blks_read FROM pg_stat_database "
                       "WHERE datname = ANY (string_to_array('" + ",".join(names) + "', ','))")
    counts = {}
    for line in out.split():
        name, hit, read = line.split("|")
        counts[name] = (int(hit), int(read))
    return counts


def pg_hit_ratio(before, after):
    """The share of block accesses served from shared_buffers between two
    pg_buffer_counts(), per database; None where nothing was accessed."""
    ratios = {}
    for name, (hit, read) in after.items():
        hit0, read0 = before.get(name, (0, 0))
        total = (hit - hit0) + (read - read0)
        ratios[name] = (hit - hit0) / total if total > 0 else None
    return ratios


def idle_rss(port, tls_args, pids, n):
    """Row 6: the server's RSS (all PIDS) before and while N idle TLS
    keep-alive connections (one /v1/login each) are open: (ready, before,
    after, held). ready is what the generator got answered; held, what the
    server still had open when its RSS was read (ss). Opening 10,000 takes
    seconds: a server whose keep-alive deadline is shorter than that (the
    daemon's header_timeout, 5 s by default; nginx's keepalive_timeout is
    75 s) closes the first ones before the last are open, and its figure is
    for fewer connections (the bench's daemons have 60 s)."""
    before = rss_kib(pids)
    p = subprocess.Popen([str(LOADGEN), "--target", f"127.0.0.1:{port}", *tls_args,
                          "--mode", "idle", "--path", "/v1/login", "--connections", str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("idle="):
        raise RuntimeError(f"idle loadgen: {line}")
    ready = int(line.split()[0].split("=")[1])
    time.sleep(1)
    after = rss_kib(pids)
    held = sum(connection_split(port))
    p.stdin.close()
    p.wait(timeout=30)
    return ready, before, after, held


def stop_on_signal(signum, frame):
    """SIGTERM and SIGHUP (a CI timeout, a closed terminal) end the run as
    Ctrl-C does: through the cleanup that stops PostgreSQL, the servers and
    the certificate generation, which would otherwise go on using the cores
    the next run measures."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def workers_arg(text):
    """`--workers`: as in certreg.conf, auto or a count of worker processes."""
    if text != "auto" and not (text.isdigit() and 1 <= int(text) <= 256):
        raise argparse.ArgumentTypeError(f"{text!r}: want auto or 1-256")
    return text


# Rows that take a figure of another row: row 5's rates are half of rows 3
# and 4's peaks, row 7's a quarter of row 3's first-login rate.
ROW_NEEDS = {5: {3, 4}, 7: {3}}
ROWS = range(1, 10)
# Row 8's SM2 signed login against `openssl speed sm2`'s verify rate (all
# cores): a login verifies two SM2 signatures (its certificate's, by the SM2
# issuing CA, and the challenge's), so 0.5 is the ceiling; 0.4 leaves a
# fifth of a login's time to all that is not SM2 arithmetic (parsing, HTTP,
# the database write that spends the challenge, the load generator on the
# same cores).
SM2_TARGET = 0.4


def rows_arg(text):
    """`--rows`: a comma-separated list of row numbers, with what they need."""
    try:
        want = {int(x) for x in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want row numbers like 8,9")
    if not want <= set(ROWS):
        raise argparse.ArgumentTypeError(f"{text!r}: rows are {ROWS[0]}-{ROWS[-1]}")
    for row in sorted(want):
        want |= ROW_NEEDS.get(row, set())
    return want


def openssl_speed_sm2(seconds, elapsed=False, preexec=None):
    """`openssl speed sm2` on every core (-multi, as the reference loop of
    row 3 runs NPROC processes): SM2 verifications per second, all cores.
    One openssl process without -elapsed divides its count by the user CPU
    time it got, not by the clock: in a CPU budget, a whole core's rate.
    With -multi its children count the clock either way; the budgeted row
    asks for ELAPSED all the same, so that its peer is a rate of the clock
    as loadgen's req/s are on any machine."""
    args = ["openssl", "speed", "-mr", "-seconds", str(seconds)]
    if elapsed:
        args.append("-elapsed")
    if NPROC > 1:
        args += ["-multi", str(NPROC)]
    out = run(args + ["sm2"], preexec_fn=preexec).stdout
    # -mr: "+F7:0:256:CurveSM2:<sign/s>:<verify/s>"; with -multi each
    # child's line comes after "Got:", the sum of them last on its own.
    total = [ln for ln in out.splitlines() if ln.startswith("+F7:") and "CurveSM2" in ln]
    if not total:
        raise RuntimeError(f"openssl speed sm2: no result in {out!r}")
    return float(total[-1].split(":")[5])


# --- the table -----------------------------------------------------------------

# Issue 34's targets, every one a ratio of certregd to a peer measured in the
# same run: (the ratio, and whether the row meets it at or above, "higher",
# or at or below, "lower"). Rows 8 and 9 pass theirs to ratio_row() as
# numbers: 0.5 (challenge), 0.6 (ECDSA signed login), SM2_TARGET, 0.6
# (assertions), all "higher".
TARGETS = {
    "handshake": (1.1, "higher"),
    "login": (0.9, "higher"),
    "cold": (1.5, "higher"),
    "warm": (0.7, "higher"),
    "auth": (0.7, "higher"),
    "warm_p99": (1.0, "lower"),
    "cold_p99": (2.0, "lower"),
    "keys_p99": (1.1, "lower"),
}
# A latency round is stalled, and repeated, when the generator (loadgen's
# tick_lost_us; verify_ref's lost_us for the bare loop) was kept from running,
# in gaps of a millisecond or more, for this share of the measured time:
# the requests that fell due in those gaps are then half of the 1 % a p99
# leaves out, and the round's p99 may be the generator's own.
STALL_SHARE = 0.005


def make_row(what, certregd, peer, target, better="higher", unit="req/s", **extra):
    """One line of the table: certregd's figure, its peer's, their ratio and
    whether it meets TARGET (None: reported, no target). "pass" is the key
    results.json had before "met"; both are kept."""
    ratio = certregd / peer if peer else None
    o, t = extra.get("rounds_certregd"), extra.get("rounds_peer")
    if ("interval90" not in extra and o and t and len(o) == len(t) > 1
            and all(x > 0 for x in t)):
        extra["interval90"] = list(bootstrap_median_ratio(o, t))
    if target is None or ratio is None:
        met = None
    elif better == "higher":
        met = ratio >= target
    else:
        met = ratio <= target
    return {"what": what, "certregd": certregd, "peer": peer, "ratio": ratio,
            "target": "report" if target is None else target, "better": better,
            "met": met, "pass": met, "unit": unit, **extra}


def stall_share(result, lost_key, duration):
    """The share of a round's measured time its generator was kept from running."""
    return result.get(lost_key, 0.0) / (duration * 1e6)


def unstalled(measure, lost_key, duration, retries):
    """MEASURE() repeated while its round stalled (STALL_SHARE), at most
    RETRIES more times: (the result counted, repeats, whether it stalled
    all the same). When every try stalled, the least stalled is counted."""
    tries = []
    for _ in range(1 + retries):
        r = measure()
        tries.append(r)
        if stall_share(r, lost_key, duration) < STALL_SHARE:
            return r, len(tries) - 1, False
    best = min(tries, key=lambda r: stall_share(r, lost_key, duration))
    return best, len(tries) - 1, True


def in_turn(rounds, *steps):
    """ROUNDS rounds of STEPS (each called with the round's index), in the
    order of STEPS in even rounds and reversed in odd ones (A B, B A, ...):
    with an even ROUNDS a drift of the machine falls on every step alike,
    and round i of each side ran beside the other's (the pair
    bootstrap_median_ratio() resamples)."""
    for i in range(rounds):
        for step in (steps if i % 2 == 0 else reversed(steps)):
            step(i)


def alternating_rounds(sides, duration, rounds, retries):
    """ROUNDS rounds of each of SIDES, (measure, lost_key) each, one side at
    a time, in the order A B C, C B A, A B C, ...: a drift of the machine
    falls on every side alike (with an even ROUNDS, each side as often
    first as last). Each round is repeated while it stalled (unstalled(),
    RETRIES at most), and no side more times in all than it has rounds, so
    that a stalling machine no more than doubles the row and one side's
    repeats never use up another's. Per side, in the order of SIDES: the
    results (round i of each side ran in the same block), the repeats, and
    the rounds counted stalled all the same."""
    n = len(sides)
    results, repeated, kept = [[] for _ in sides], [0] * n, [0] * n

    def step(side):
        def one_round(i):
            measure, lost_key = sides[side]
            r, again, stalled = unstalled(measure, lost_key, duration,
                                          min(retries, rounds - repeated[side]))
            results[side].append(r)
            repeated[side] += again
            kept[side] += stalled
        return one_round

    in_turn(rounds, *(step(side) for side in range(n)))
    return results, repeated, kept


def target_text(row):
    if row["target"] == "report":
        return "report"
    return f"{'>=' if row['better'] == 'higher' else '<='} {row['target']:.2f}"


def table_lines(rows):
    """The table: one ratio a line, its target, whether met, and how many
    latency rounds were repeated because the generator stalled; under a
    row with a "note" (why its target was not judged, or judged on the
    shared cores), the note."""
    width = max([len(r["what"]) for r in rows] + [11])
    lines = [f"{'measurement':<{width}} {'certregd':>9} {'peer':>9} {'ratio':>6} "
             f"{'90 % int.':>10}  {'target':<7}  result  rounds"]
    for r in rows:
        ours = "" if r["certregd"] is None else f"{r['certregd']:.0f}"
        note = r.get("note")
        peer = "" if r["peer"] is None else f"{r['peer']:.0f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        interval = "-".join(f"{x:.2f}" for x in r["interval90"]) if r.get("interval90") else ""
        verdict = {True: "PASS", False: "FAIL", None: "report"}[r["met"]]
        rounds = str(len(r.get("rounds_certregd") or [1]))
        if r.get("repeated"):
            rounds += f", {r['repeated']} repeated"
        if r.get("stalled_counted"):
            rounds += f", {r['stalled_counted']} stalled counted"
        lines.append(f"{r['what']:<{width}} {ours:>9} {peer:>9} {ratio:>6} {interval:>10}  "
                     f"{target_text(r):<7}  {verdict:<6}  {rounds}")
        if note:
            lines.append(f"  {note}")
    judged = [r for r in rows if r["met"] is not None]
    lines.append(f"{sum(r['met'] for r in judged)} of {len(judged)} targets met; "
                 f"{sum(r.get('repeated', 0) for r in rows)} latency round(s) repeated "
                 f"because the generator stalled (lost {STALL_SHARE:.1%} of a round or more)")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=2_000_000)
    ap.add_argument("--certs", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=4.0,
                    help="the length of a req/s round (default 4 s)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="rounds of each side in the req/s rows, in turn (A B, B A, ...): an "
                    "even number, or 1 (default 6)")
    ap.add_argument("--idle", type=int, default=10_000)
    ap.add_argument("--p99-pairs", type=int, default=24,
                    help="rounds of each database in the 2M-vs-10k p99 row, one at a "
                    "time, alternating (default 24)")
    ap.add_argument("--p99-rounds", type=int, default=12,
                    help="rounds of each side in row 5, alternating, an even number "
                    "(default 12)")
    ap.add_argument("--p99-seconds", type=float, default=2.0,
                    help="the length of a row 5 round (default 2 s)")
    ap.add_argument("--pair-seconds", type=float, default=3.0,
                    help="the length of a row 7 round (default 3 s)")
    ap.add_argument("--workers", default="auto", type=workers_arg,
                    help="certregd's `workers` (default auto: one per core)")
    ap.add_argument("--perf", action="store_true",
                    help="also profile the workers (perf record) during rows 1-3, 8 (SM2 "
                    "signed logins) and 9: build/bench/perf-*.txt")
    ap.add_argument("--flame", type=Path, metavar="DIR",
                    help="profile a worker during rows 1 and 3 (perf, DWARF stacks) and "
                    "write DIR/flame-handshake.svg and DIR/flame-cold-verify.svg "
                    "(make flamegraph)")
    ap.add_argument("--nginx-reuseport", action="store_true",
                    help="nginx's plain listener (rows 4 and 5) with a socket per worker, "
                    "connections spread by the kernel's hash as certregd's are (an "
                    "experiment: the targets are against nginx's default)")
    ap.add_argument("--spread", action="store_true",
                    help="row 5 (both lines): loadgen --spread, each due request on the next "
                    "free connection in turn (without it, on the first free one: a few "
                    "connections, and the server process that holds them, carry nearly all; an "
                    "experiment, the target stays against the default)")
    ap.add_argument("--stall-retries", type=int, default=2,
                    help="repeat a latency round whose generator stalled at most this many "
                    "times (default 2)")
    ap.add_argument("--sm2-certs", type=int, default=200,
                    help="SM2 client certificates for the SM2 signed-login row (default 200)")
    ap.add_argument("--budget", type=float, default=0.75, metavar="CORES",
                    help="the CPU budget of certregd and of its bare-OpenSSL peer in rows 3 "
                    "and 8, in cores of one vCPU (cgroup v1 quota; default 0.75; "
                    "0: judge those rows on the shared cores)")
    ap.add_argument("--budget-cpu", type=int, default=NPROC - 1, metavar="N",
                    help="the vCPU both budgets are pinned to (default the last)")
    ap.add_argument("--quick", action="store_true",
                    help="10,000 keys, 500 certificates, 2 s runs, 1 round, 2,000 idle")
    ap.add_argument("--rows", type=rows_arg, default=set(ROWS),
                    help="only these rows, e.g. 8,9 (the signed-challenge logins and the "
                    "assertions), and the rows they take a figure from (5 takes 3 and 4, "
                    "7 takes 3)")
    a = ap.parse_args()
    if a.stall_retries < 0:
        ap.error("--stall-retries: want 0 or more")
    if a.rounds < 1 or (a.rounds > 1 and a.rounds % 2) or a.duration <= 0:
        ap.error("--rounds, --duration: want 1 or an even number of rounds (each side as "
                 "often first as second) of more than 0 s")
    if a.p99_rounds < 2 or a.p99_rounds % 2 or a.p99_seconds <= 0 or a.pair_seconds <= 0:
        ap.error("--p99-rounds, --p99-seconds, --pair-seconds: want an even number of rounds "
                 "(each side as often first as last) of more than 0 s")
    if not 0 <= a.budget <= 1:
        ap.error("--budget: want 0 (none) or a share of one vCPU up to 1")
    if not 0 <= a.budget_cpu < NPROC:
        ap.error(f"--budget-cpu: want 0-{NPROC - 1}")
    if a.flame is not None:
        if shutil.which("perf") is None:
            sys.exit("--flame needs perf (Debian: linux-perf; make deps installs it)")
        a.flame = a.flame.resolve()
        a.flame.mkdir(parents=True, exist_ok=True)
    if a.quick:
        a.keys, a.certs, a.duration, a.rounds, a.idle = 10_000, 500, 2.0, 1, 2000
        a.p99_pairs, a.sm2_certs, a.p99_rounds, a.p99_seconds = 4, 50, 2, 1.0
        a.pair_seconds = 2.0
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)
    for tool in (LOADGEN, VERIFY_REF, STALLPROBE, BUILD / "certregd"):
        if not tool.exists():
            sys.exit(f"{tool} missing: run make all bench-tools")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * a.idle + 1024)), hard))

    work = Path(os.environ.get("CERTREG_BENCH_WORK", BENCH / "run"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    open_for_nobody(work)
    started = []
    budget, no_budget = None, None
    t_start = time.monotonic()
    try:
        # The big database fills (one backend) while openssl makes the
        # client certificates (the other core): a minute less in all.
        log("PostgreSQL, and the test PKI and client certificates meanwhile")
        cluster = Cluster(work / "pg")
        cluster.init()
        started.append(cluster)
        pg_diagnostics_on(cluster)
        t0 = time.monotonic()
        fill = start_database(cluster, "big", a.keys)
        try:
            pki = work / "pki"
            run([sys.executable, ROOT / "tests/pki/mkpki.py", pki])
            for p in pki.rglob("*"):
                p.chmod(p.stat().st_mode | 0o044 | (0o011 if p.is_dir() else 0))
            kids = make_certs(pki, work / "certs", a.certs)
            if 8 in a.rows:
                kids += make_certs(pki, work / "sm2-certs", a.sm2_certs, sm2=True)
            # For the assertions of row 9 (ES256, as the 21 us).
            run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", work / "assertion.key"])
        except BaseException:
            fill.kill()
            raise
        leaf = pki / "leaf"
        kids.append(key_id(leaf / "ec-ok.pem"))
        finish_database(cluster, "big", a.keys, fill, t0, kids)
        cluster.ensure_login("certregd", "certreg_daemon")  # the role migrate made
        if 7 in a.rows:
            t0 = time.monotonic()
            finish_database(cluster, "small", 10_000,
                            start_database(cluster, "small", 10_000), t0, kids)
        # What the fill wrote (PostgreSQL's buffers, then 1.7 GB of dirty
        # pages in the kernel) goes to disk now, not in the kernel's
        # writeback during rows 1 and 2.
        t0 = time.monotonic()
        cluster.psql("CHECKPOINT", "big")
        os.sync()
        log(f"checkpoint and sync in {time.monotonic() - t0:.0f} s")

        warm = Certregd(work, "warm", pki, cluster.conninfo("big", "certregd"), a.workers)
        started.append(warm)
        # Cold certificates: no verified-result cache, the association cache on
        # (the "cold"); no caches at all: every request a first login,
        # decide() in PostgreSQL (which writes last use once a minute per key).
        # Challenges for an hour (the longest challenge_ttl): row 8 makes
        # them before its rounds, not in them.
        coldcert = Certregd(work, "cold-cert", pki, cluster.conninfo("big", "certregd"),
                            a.workers, 100000, 0, challenge_ttl=3600)
        started.append(coldcert)
        cold = Certregd(work, "cold", pki, cluster.conninfo("big", "certregd"), a.workers,
                        0, 0)
        started.append(cold)
        if 7 in a.rows:
            small = Certregd(work, "cold-small", pki, cluster.conninfo("small", "certregd"),
                             a.workers, 0, 0)
            started.append(small)
        if 9 in a.rows:
            # The warm instance and a login assertion on every OK.
            signing = Certregd(work, "warm-assertion", pki,
                               cluster.conninfo("big", "certregd"), a.workers,
                               assertion_key=work / "assertion.key")
            started.append(signing)
        ngx = Nginx(work, pki, reuseport=a.nginx_reuseport)
        started.append(ngx)
        if a.rows & {3, 5, 8}:
            no_budget = "--budget 0" if a.budget == 0 else cpugroup.available()
            if no_budget is None:
                cpugroup.remove_stale()
                budget = cpugroup.Budget(a.budget, a.budget_cpu)
            else:
                log(f"cgroup cpu quota unavailable ({no_budget}): rows 3 and 8 "
                    "judged on the shared cores")

        tls = ["--tls", "--cert", leaf / "ec-ok.chain.pem", "--key", leaf / "ec-ok.key"]

        def tls_conns(n):
            """Rows 1 and 2, both servers alike: n connections in all, over one
            generator process per core. A full handshake costs the client
            about what it costs certregd (callgrind: 5.7 and 5.4 million
            instructions; nginx 8.2), and a keep-alive request about the
            same (25,000 and 30,000; nginx 25,000): one generator process,
            one core at most, was the bottleneck against certregd (and
            against nginx whenever the host took CPU time), and the rows
            measured the generator's TLS instead of the servers'."""
            return ["--procs", NPROC, "--connections", max(1, n // NPROC)]
        json_h = ["--header", "Accept: application/json"]
        pem = urllib.parse.quote((leaf / "ec-ok.pem").read_text(), safe="")
        d = a.duration
        cold_body = ["--mode", "keepalive", "--method", "POST", "--path", "/v1/verify",
                     "--header", "Content-Type: application/json",
                     "--body-list", work / "certs/bodies.txt"]
        warm_body = ["--mode", "keepalive", "--method", "POST", "--path", "/v1/verify",
                     "--header", "Content-Type: application/json",
                     "--body-file", work / "certs/000001.json", "--connections", 32]
        plain = lambda: loadgen(ngx.http_port, "--mode", "keepalive", "--connections", 32,  # noqa
                                duration=d)
        rows = []

        def ab(name, ours, theirs, target, unit="req/s"):
            """Alternating rounds (in_turn()); median of each side."""
            o, t = [], []
            in_turn(a.rounds, lambda i: o.append(ours()["rps"]),
                    lambda i: t.append(theirs()["rps"]))
            return ratio_row(name, o, t, target, unit)

        def ratio_row(name, o, t, target, unit="req/s", **extra):
            """The row of rounds O (certregd) and T (its peer): medians, ratio;
            it meets TARGET at or above it."""
            mo, mt = statistics.median(o), statistics.median(t)
            rows.append(make_row(name, mo, mt, target, "higher", unit, rounds_certregd=o,
                                 rounds_peer=t, **extra))
            log(f"{name}: certregd {mo:.0f} vs {mt:.0f} = {mo / mt:.2f}x "
                + (f"(target {target}x)" if target is not None else "(report)"))
            return mo, mt

        def pg_pids():
            pid = cluster.postmaster_pid()
            out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                 text=True).stdout.split()
            return [pid] + [int(p) for p in out]

        def budgeted(go, daemon=None):
            """go() in the CPU budget (cpugroup.Budget): with DAEMON, certregd's
            side (its processes in the budget, the generator this process
            starts outside it); without, the peer's (go starts it with
            budget.peer_preexec). The result gets "cpu" (accounted()) and
            "verdict" (cpugroup.budget_verdict: None when the round
            measured the budget)."""
            dpids = daemon.pids() if daemon else []
            dbpids = pg_pids()
            budget.start(dpids, dbpids)
            try:
                r = accounted(go, budget["certregd" if daemon else "peer"], dpids, dbpids)
            finally:
                budget.stop(dpids)
            c = r["cpu"]
            r["verdict"] = cpugroup.budget_verdict(
                c["nr_periods"], c["nr_throttled"], c["cores"]["children"] if daemon else None,
                budget.cores, NPROC,
                c["cores"]["certregd" if daemon else "children"])
            log(f"  budget round, {'certregd' if daemon else 'peer'}: {cpu_text(c)}"
                + (f"; NOT MEASURING THE BUDGET: {r['verdict']}" if r["verdict"] else ""))
            return r

        budget_text = f"{a.budget:g} core each on vCPU {a.budget_cpu}"

        def premade(certs, n, name):
            """N signed-login bodies over challenges of the cold-cert daemon,
            signed with the keys of CERTS (a make_certs directory), in a file:
            made before a round, neither signing nor taking the challenges
            timed. Each is sent once (a challenge is single-use)."""
            out, n, t0 = work / f"premade-{name}.txt", int(n), time.monotonic()
            cmd = [LOADGEN, "--target", f"127.0.0.1:{coldcert.api_port}", "--premake", n,
                   "--path", "/v1/challenge", "--body-list", certs / "bodies.txt",
                   "--sign-keys", certs / "keys.txt", "--out", out, "--procs", NPROC]
            p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"loadgen --premake exited {p.returncode}: "
                                   f"{p.stderr.strip()[-2000:]}")
            log(f"  {n} challenges taken and signed in {time.monotonic() - t0:.1f} s")
            return out

        def profile(name, daemon, seconds, flame=None):
            """With --perf, perf record of the workers while a measurement
            runs; with --flame and FLAME = (SVG file name, title), of one
            worker, for that flame graph (written by profile_report)."""
            flame = flame if a.flame else None
            if not (a.perf or flame) or shutil.which("perf") is None:
                return None
            data = BENCH / f"perf-{name}.data"
            if flame:
                # Debian's libcrypto and libssl have no frame pointers: the
                # stacks are unwound from a copy of each sample's stack
                # (DWARF CFI). 8 KiB of it reach from the libevent loop to
                # OpenSSL's innermost calls; a thousand samples a second
                # keep the file under 100 MB. cpu-clock: no hardware
                # counters on this VM.
                how = ["-e", "cpu-clock", "-F", str(FLAME_HZ), "--call-graph", "dwarf,8192"]
                pids = str(daemon.pids()[1])
            else:
                how = ["-g"]
                pids = ",".join(str(p) for p in daemon.pids()[1:])
            return subprocess.Popen(
                ["perf", "record", *how, "-o", str(data), "-p", pids,
                 "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL), data, flame

        def profile_report(p):
            """perf report's tops in a text file; for a flame graph, the SVG
            and what it shows in a text file."""
            if p is None:
                return
            proc, data, flame = p
            proc.wait()
            if flame:
                name, title = flame
                svg = a.flame / name
                script = subprocess.run(["perf", "script", "-i", str(data)],
                                        capture_output=True, text=True, check=True).stdout
                summary = flamegraph.write(script, svg, title, min_share=FLAME_MIN_SHARE)
                (BENCH / f"{svg.stem}.txt").write_text(summary)
                log(f"flame graph: {svg} (where the time goes: {BENCH / svg.stem}.txt)")
                return
            text = []
            for sort, top in (("dso", 12), ("dso,sym", 30)):
                rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children",
                                      "--sort", sort, "--stdio"],
                                     capture_output=True, text=True).stdout
                lines = [ln for ln in rep.splitlines() if ln.strip()
                         and not ln.startswith("#") and "%" in ln
                         and not ln.lstrip().startswith(("|", "-"))]
                text += [f"# by {sort}"] + lines[:top] + [""]
            Path(str(data).replace(".data", ".txt")).write_text("\n".join(text))
            log(f"profile: {str(data).replace('.data', '.txt')}")

        stalls = [host_stalls("before row 1")]
        pg_log = {"since": os.path.getsize(cluster.log)}

        def pg_report(rows_name):
            summary, pg_log["since"] = pg_events(cluster, pg_log["since"])
            pg_log[rows_name] = summary
            log(f"PostgreSQL during {rows_name}: {summary}")

        if 1 in a.rows:
            log("1. full mTLS handshakes")
            # With --flame, a worker through the first certregd round.
            prof = profile("handshake", warm, d + 1,
                           ("flame-handshake.svg", "certregd worker: full mTLS handshakes, "
                            "GET /v1/login (make flamegraph)"))
            ab("handshakes/s, GET /v1/login vs nginx ssl_verify_client",
               lambda: loadgen(warm.tls_port, *tls, *json_h, "--mode", "handshake", "--path",
                               "/v1/login", *tls_conns(16), duration=d),
               lambda: loadgen(ngx.tls_port, *tls, "--mode", "handshake", *tls_conns(16),
                               duration=d), TARGETS["handshake"][0], "handshakes/s")
            profile_report(prof)
        if 2 in a.rows:
            log("2. keep-alive /v1/login")
            prof = profile("login-keepalive", warm, d / 2)
            ab("keep-alive req/s, /v1/login vs nginx (TLS, client cert)",
               lambda: loadgen(warm.tls_port, *tls, *json_h, "--mode", "keepalive", "--path",
                               "/v1/login", *tls_conns(32), duration=d),
               lambda: loadgen(ngx.tls_port, *tls, "--mode", "keepalive", *tls_conns(32),
                               duration=d), TARGETS["login"][0])
            profile_report(prof)
        if 3 in a.rows:
            log("3. cold /v1/verify vs the reference verify loop")
            c, r = [], []
            # The association caches of both workers filled first (connections
            # land on either worker, so several runs): this row is about
            # verification; first logins, with decide(), are the next row.
            for _ in range(3):
                loadgen(coldcert.api_port, *cold_body, "--connections", 32, duration=d / 2)
            prof = profile("verify-cold", coldcert, d + 1 if a.flame else d / 2,
                           ("flame-cold-verify.svg", "certregd worker: cold POST /v1/verify, "
                            "distinct leaves (make flamegraph)"))
            def cold_run():
                return loadgen(coldcert.api_port, *cold_body, "--connections", 32, duration=d)

            def ref_run(preexec=None):
                out = run([VERIFY_REF, "--ca", pki / "ca/trust.pem", "--intermediates",
                           pki / "ca/intermediates.pem", "--list", work / "certs/pems.txt",
                           "--procs", NPROC, "--duration", d], preexec_fn=preexec).stdout
                r = {k: float(v) for k, v in (kv.split("=") for kv in out.split())}
                r["rps"] = r["per_sec"]
                return r

            bc, br, cpu_c, cpu_r = [], [], [], []

            def shared_certregd(i):
                # Who uses the machine in a shared-cores round: certregd, the
                # generator, PostgreSQL, and the kernel's softirq (loopback TCP).
                x = accounted(cold_run, None, coldcert.pids(), pg_pids())
                c.append(x["rps"])
                cpu_c.append(x["cpu"])
                log(f"  shared cores, certregd {x['rps']:.0f} req/s: {cpu_text(x['cpu'])}")

            def shared_loop(i):
                x = accounted(ref_run)
                r.append(x["rps"])
                cpu_r.append(x["cpu"])
                log(f"  shared cores, loop {x['rps']:.0f} chains/s: {cpu_text(x['cpu'])}")

            in_turn(a.rounds, shared_certregd, shared_loop, *(
                (lambda i: bc.append(budgeted(cold_run, coldcert)),
                 lambda i: br.append(budgeted(lambda: ref_run(budget.peer_preexec))))
                if budget else ()))
            profile_report(prof)
            if budget:
                rows.append(budget_row(
                    "cold /v1/verify req/s vs parse+X509_verify_cert loop, the same CPU "
                    f"budget ({budget_text}; {NPROC} workers, {NPROC} processes)", bc, br,
                    TARGETS["cold"][0], budget_cores=a.budget))
                mbc, mbr = rows[-1]["certregd"], rows[-1]["peer"]
                log(f"cold verify, budget of {budget_text}: {mbc:.0f} vs reference {mbr:.0f} "
                    f"= {mbc / mbr:.2f}x")
            mc, mr = statistics.median(c), statistics.median(r)
            rows.append(make_row("cold /v1/verify req/s vs parse+X509_verify_cert loop "
                                 f"({NPROC} processes), shared cores, generator on them",
                                 mc, mr, None if budget else TARGETS["cold"][0],
                                 rounds_certregd=c, rounds_peer=r, cpu_certregd=cpu_c,
                                 cpu_peer=cpu_r, shared_cores=True))
            if not budget:
                rows[-1]["note"] = shared_cores_note(no_budget)
            log(f"cold verify, shared cores: {mc:.0f} vs reference {mr:.0f} = {mc / mr:.2f}x")
            first = loadgen(cold.api_port, *cold_body, "--connections", 32, duration=d)["rps"]
            rows.append(make_row("first-login /v1/verify req/s (no caches: engine + decide() "
                                 "in PostgreSQL) vs the same loop", first, mr, None))
            log(f"no caches at all: {first:.0f} req/s")
        if 4 in a.rows:
            log("4. warm /v1/verify and /v1/auth vs nginx return 200")
            # Issue 34's targets (0.5 before it).
            warm_peak, plain_peak = ab("warm /v1/verify req/s vs nginx plain return 200",
                                       lambda: loadgen(warm.api_port, *warm_body, duration=d),
                                       plain, TARGETS["warm"][0])
            ab("/v1/auth req/s vs nginx plain return 200",
               lambda: loadgen(warm.api_port, "--mode", "keepalive", "--path", "/v1/auth",
                               "--header", f"X-SSL-Client-Cert: {pem}", "--connections", 32,
                               duration=d), plain, TARGETS["auth"][0])
        if 5 in a.rows:
            stalls.append(host_stalls("before row 5"))
            log("5. p99 at half of the peak")

            # Many short rounds, alternating: a round's p99 is where a dozen
            # stops of the machine fall, and its ratio moved from 0.19 to 1.74
            # within ten minutes in 2 s rounds; three rounds of 6 s left a
            # full run's row to chance (docs/PERFORMANCE-HISTORY.md, "Row 5 in
            # many short rounds"). The median of --p99-rounds rounds of each
            # side, with a 90 % bootstrap interval over the blocks of rounds.
            d5, warm5 = a.p99_seconds, 0.5

            def rounds_text(results, lost_key):
                """Each round's p99, ms, and the share of it the generator was
                stopped: a round whose generator stalled is repeated."""
                return " ".join(f"{r['p99_us'] / 1000:.1f}/"
                                f"{100 * stall_share(r, lost_key, d5):.2f}%" for r in results)

            def p99_row(what, key, ours, theirs, unit="us", same=None, **extra):
                """A/B alternating open-loop rounds, OURS and THEIRS giving
                (measure, lost_key) each; a stalled round repeated
                (alternating_rounds()); the medians of the p99s and of the
                p50s. SAME, (what, (measure, lost_key)): a third side in the
                same rounds, reported against OURS on a line of its own."""
                results, rep, stalled = alternating_rounds(
                    [ours, theirs] + ([same[1]] if same else []), d5, a.p99_rounds,
                    a.stall_retries)
                o, t, x = results[0], results[1], results[2] if same else []
                repeated, kept = rep[0] + rep[1], stalled[0] + stalled[1]
                x_repeated, x_kept = sum(rep[2:]), sum(stalled[2:])
                med = {k: [statistics.median(r[k] for r in y) if y else None for y in (o, t, x)]
                       for k in ("p50_us", "p99_us")}
                target, better = TARGETS[key]

                def sides_row(what, target, peer, peer_lost, **more):
                    j = 1 if peer is t else 2
                    lo, hi = bootstrap_median_ratio([r["p99_us"] for r in o],
                                                    [r["p99_us"] for r in peer])
                    return make_row(
                        what, med["p99_us"][0], med["p99_us"][j], target, better, unit,
                        p50_us=med["p50_us"][0], peer_p50_us=med["p50_us"][j],
                        interval90=[lo, hi],
                        rounds_certregd=[r["p99_us"] for r in o],
                        rounds_peer=[r["p99_us"] for r in peer],
                        stall_share_certregd=[stall_share(r, ours[1], d5) for r in o],
                        stall_share_peer=[stall_share(r, peer_lost, d5) for r in peer],
                        tick_gap_us_certregd=[r.get("tick_gap_us") for r in o],
                        tick_gap_us_peer=[r.get("tick_gap_us") for r in peer],
                        split_certregd=[r.get("split") for r in o],
                        split_peer=[r.get("split") for r in peer],
                        tail_certregd=[r.get("tail") for r in o],
                        tail_peer=[r.get("tail") for r in peer], **more)

                rows.append(sides_row(what, target, t, theirs[1], repeated=repeated,
                                      stalled_counted=kept, **extra))
                row = rows[-1]
                log(f"{what}: p50/p99 certregd {med['p50_us'][0]:.0f}/{row['certregd']:.0f} "
                    f"us, peer {med['p50_us'][1]:.0f}/{row['peer']:.0f} us: "
                    f"{row['ratio']:.2f} (90 % interval {row['interval90'][0]:.2f}-"
                    f"{row['interval90'][1]:.2f}; target {target_text(row)}); "
                    f"{repeated} round(s) "
                    f"repeated, {kept} stalled counted")
                log(f"  rounds, p99 ms/share of the round the generator was stopped: "
                    f"certregd {rounds_text(o, ours[1])}; peer {rounds_text(t, theirs[1])}")
                if any(r.get("split") for r in o + t):
                    log(f"  connections per process, each round: certregd "
                        f"{[r.get('split') for r in o]}; peer {[r.get('split') for r in t]}")
                # The tails of each side's three slowest rounds: every round's
                # are in results.json.
                for name, y in (("certregd", o), ("peer", t), ("same request", x)):
                    for r in sorted(y, key=lambda r: r["p99_us"])[-3:]:
                        if r.get("tail"):
                            log(f"  tail, {name}, p99 {r['p99_us'] / 1000:.1f} ms: "
                                f"{tail_text(r['tail'])}")
                if same is not None:
                    rows.append(sides_row(same[0], None, x, same[1][1], repeated=x_repeated,
                                          stalled_counted=x_kept))
                    log(f"{same[0]}: p50/p99 certregd {med['p50_us'][0]:.0f}/"
                        f"{med['p99_us'][0]:.0f} us, peer {med['p50_us'][2]:.0f}/"
                        f"{med['p99_us'][2]:.0f} us: {rows[-1]['ratio']:.2f} (reported; 90 % "
                        f"interval {rows[-1]['interval90'][0]:.2f}-"
                        f"{rows[-1]['interval90'][1]:.2f}); "
                        f"rounds {rounds_text(x, same[1][1])}")

            traces = collections.Counter()
            # This run's traces only: a round's file is named by its order.
            shutil.rmtree(BENCH / "row5", ignore_errors=True)
            (BENCH / "row5").mkdir()

            def trace(side):
                """A new path for loadgen's --trace of a row 5 round of SIDE."""
                traces[side] += 1
                return BENCH / "row5" / f"{side}-{traces[side]}.txt"

            # Warm: each server at half of its own peak (row 4's medians), so
            # that both are as busy relative to what they can do: certregd's
            # warm /v1/verify against nginx's plain return 200. And, reported
            # beside it, nginx's return 200 given certregd's request (the
            # same 1.8 KB POST) at certregd's rate: the same work for the
            # generator and the kernel, so what is left is the server.
            rate, ngx_rate = round(warm_peak / 2), round(plain_peak / 2)
            warm_args = warm_body + ["--connections", 64] + (["--spread"] if a.spread else [])
            spread = ["--spread"] if a.spread else []
            ngx_post = ["/" if x == "/v1/verify" else x for x in warm_args]
            p99_row(f"warm /v1/verify p99 at half its peak ({rate}/s) vs nginx return 200 "
                    f"p99 at half its own ({ngx_rate}/s)", "warm_p99",
                    (lambda: loadgen_split(warm.api_port, *warm_args, "--rate", rate,
                                           duration=d5, warmup=warm5, trace=trace("certregd")),
                     "tick_lost_us"),
                    (lambda: loadgen_split(ngx.http_port, "--mode", "keepalive",
                                           "--connections", 64, "--rate", ngx_rate, *spread,
                                           duration=d5, warmup=warm5, trace=trace("nginx")),
                     "tick_lost_us"),
                    same=(f"warm /v1/verify p99 ({rate}/s) vs nginx return 200 given the same "
                          f"POST at the same rate ({rate}/s)",
                          (lambda: loadgen_split(ngx.http_port, *ngx_post, "--rate", rate,
                                                 duration=d5, warmup=warm5,
                                                 trace=trace("nginx-post")),
                           "tick_lost_us")),
                    rate=rate, peer_rate=ngx_rate)
            # Cold as in row 3: the association caches full (those of row 3
            # have expired since, ttl 60 s, and first logins would be in this
            # row's p99). The row lasts longer than an entry (54-60 s): from
            # its second minute the rounds carry the entries' refreshes, one
            # decide() each in the background while the requests are answered
            # from the cache, as rows 3 and 8 do and as a busy service does
            # all day. Against the bare loop at half of its own peak (row 3),
            # open loop too: every chain timed from when it fell due, so its
            # p99 is the chain's own time and what the machine added to it,
            # as certregd's is the request's; both sides with the same
            # warm-up, uncounted.
            rate, ref_rate = round(mc / 2), round(mr / 2)
            loadgen(coldcert.api_port, *cold_body, "--connections", 32, duration=d / 2)

            def bare_loop(preexec=None, loop_rate=ref_rate):
                out = run([VERIFY_REF, "--ca", pki / "ca/trust.pem", "--intermediates",
                           pki / "ca/intermediates.pem", "--list", work / "certs/pems.txt",
                           "--procs", NPROC, "--duration", d5, "--warmup", warm5,
                           "--rate", loop_rate],
                          preexec_fn=preexec).stdout
                return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}

            # Judged on the shared cores, not in row 3's CPU budget: there the
            # generator runs outside the budget and its own stalls would count
            # against certregd alone, while the loop times its chains itself;
            # on the shared cores both sides wait through the same machine.
            p99_row(f"cold /v1/verify p99 at half its peak ({rate}/s) vs the bare loop's "
                    f"per-chain p99 at half its own ({ref_rate}/s), shared cores", "cold_p99",
                    (lambda: loadgen_split(coldcert.api_port, *cold_body, "--connections", 64,
                                           "--rate", rate, *spread, duration=d5, warmup=warm5,
                                           trace=trace("certregd-cold"), look_in_warmup=True),
                     "tick_lost_us"),
                    (bare_loop, "lost_us"), rate=rate, peer_rate=ref_rate, shared_cores=True)
        if 6 in a.rows:
            log("6. memory with idle keep-alive connections")
            ours = idle_rss(warm.tls_port, [str(x) for x in tls], warm.pids(), a.idle)
            theirs = idle_rss(ngx.tls_port, [str(x) for x in tls], ngx.pids(), a.idle)
            rows.append(make_row(f"RSS KiB, all processes, {a.idle} idle TLS keep-alive "
                                 "connections, vs nginx", ours[2], theirs[2], None,
                                 unit="KiB", certregd_before=ours[1], peer_before=theirs[1],
                                 ready=[ours[0], theirs[0]], held=[ours[3], theirs[3]]))
            log(f"idle: certregd {ours[1]} -> {ours[2]} KiB ({ours[0]} answered, {ours[3]} "
                f"held), nginx {theirs[1]} -> {theirs[2]} KiB ({theirs[0]} answered, "
                f"{theirs[3]} held)")
        if a.rows & {1, 2, 3, 4, 5, 6}:
            pg_report("rows 1-6")
        if 7 in a.rows:
            log("7. cold p99: full dataset vs 10,000 keys")
            # A quarter of the first-login peak on each database, one at a
            # time: many short rounds, alternating big and small (A B, B A,
            # A B, ...: a drift of the machine falls on both alike), each
            # judged by the stall rule of row 5 on its own; the p99 of all
            # the requests of each side, and a 90 % bootstrap interval over
            # the pairs of adjacent rounds. Both at once (until 2026-12-04)
            # put two daemons, two generators and PostgreSQL on two cores:
            # every generator lost 0.5 % of its time or more, every pair was
            # "stalled", and the rule decided nothing (docs/PERFORMANCE.md).
            rate = round(first / 4)
            samples = [work / "samples-big.txt", work / "samples-small.txt"]
            pair_s = a.pair_seconds

            def keys_round(port, path):
                # No cache to fill on these instances: half a second of
                # warm-up is for the connections only.
                return lambda: loadgen(port, *cold_body, "--connections", 32, "--rate", rate,
                                       duration=pair_s, warmup=0.5, samples=path)

            sides = [keys_round(cold.api_port, samples[0]),
                     keys_round(small.api_port, samples[1])]
            # One round of each first, not counted: the round right after row
            # 6 (ten thousand connections closing in both servers) had p99s of
            # 38-98 ms on both sides, against 5-23 ms for the rounds after it
            # (runs V and W in docs/PERFORMANCE-HISTORY.md).
            for side in sides:
                side()
            # Whether the big database's pages stay in shared_buffers: the
            # bench keys' index leaves are spread over 2,000,000 keys' worth.
            buffers = pg_buffer_counts(cluster, ["big", "small"])
            (big, sm), rep, stalled = alternating_rounds(
                [(side, "tick_lost_us") for side in sides], pair_s, a.p99_pairs, a.stall_retries)
            repeated, kept = sum(rep), sum(stalled)
            big_r = [r["samples"] for r in big]
            small_r = [r["samples"] for r in sm]
            gaps = [max(x["tick_gap_us"], y["tick_gap_us"]) for x, y in zip(big, sm)]
            share_big = [stall_share(r, "tick_lost_us", pair_s) for r in big]
            share_small = [stall_share(r, "tick_lost_us", pair_s) for r in sm]
            shares = [max(x, y) for x, y in zip(share_big, share_small)]
            hits = pg_hit_ratio(buffers, pg_buffer_counts(cluster, ["big", "small"]))
            b, s, lo, hi = pooled_p99(big_r, small_r)
            target, better = TARGETS["keys_p99"]
            rows.append(make_row(f"cold p99 at {rate} req/s on each, alternating: {a.keys} keys "
                                 "vs 10,000 keys", b, s, target, better, "us",
                                 interval90=[lo, hi],
                                 # loadgen writes its samples sorted
                                 rounds_certregd=[percentile(r, 0.99) for r in big_r],
                                 rounds_peer=[percentile(r, 0.99) for r in small_r],
                                 tick_gap_us=gaps, stall_share=shares, repeated=repeated,
                                 stalled_counted=kept, stall_share_certregd=share_big,
                                 stall_share_peer=share_small, order="alternating",
                                 buffer_hit_ratio=hits))
            log(f"cold p99 {a.keys} keys {b:.0f} us vs 10,000 keys {s:.0f} us: {b / s:.2f} "
                f"(90 % interval {lo:.2f}-{hi:.2f}, {len(big_r)} rounds of each, alternating; "
                f"{repeated} repeated, {kept} stalled counted)")
            log("  shared_buffers hit ratio during the rounds: " + ", ".join(
                f"{k} {'-' if v is None else f'{100 * v:.2f} %'}" for k, v in hits.items()))
            worst = max(range(len(gaps)), key=gaps.__getitem__)
            log(f"  the generator's longest tick gap: {gaps[worst] / 1000:.1f} ms, in round "
                f"{worst + 1}, whose p99s were {percentile(big_r[worst], 0.99) / 1000:.1f} ms "
                f"(big) and {percentile(small_r[worst], 0.99) / 1000:.1f} ms (small)")
            pg_report("row 7")
        ok = ["--expect", '"outcome":"OK"']  # a refusal is a 200 too
        if 8 in a.rows:
            log("8. challenges and signed-challenge logins")
            # Issuing is a random and an HMAC, no database (route_challenge.c):
            # against the warm /v1/verify of row 4, an answer from memory.
            (work / "empty.json").write_text("")
            ab("POST /v1/challenge req/s vs warm /v1/verify",
               lambda: loadgen(warm.api_port, "--mode", "keepalive", "--method", "POST",
                               "--path", "/v1/challenge", "--body-file", work / "empty.json",
                               "--connections", 32, "--expect", '"challenge":"', duration=d),
               lambda: loadgen(warm.api_port, *warm_body, duration=d), 0.5)
            # ECDSA P-256 on the certificates and the instance of row 3, A/B
            # with its cold /v1/verify: a signed login is that verification,
            # one more P-256 signature (the challenge's) and the one database
            # write that spends the challenge. The association caches filled
            # first, as in row 3; the fastest cold round so far sizes the
            # next pool (1.5 x, warm-up included: it cannot run out).
            signed = ["--mode", "keepalive", "--method", "POST", "--path", "/v1/login/signed",
                      "--header", "Content-Type: application/json", "--connections", 32, *ok]
            cold_ok = [*cold_body, "--connections", 32, *ok]

            def budgeted_signed(certs, n, name):
                """One budgeted round of signed logins over a pool of N
                premade ones (premade()), the pool removed after it."""
                pool = premade(certs, n, name)
                try:
                    return budgeted(lambda: loadgen(coldcert.api_port, *signed, "--once", pool,
                                                    duration=d), coldcert)
                finally:
                    pool.unlink()

            seen = [loadgen(coldcert.api_port, *cold_ok, duration=d / 2)["rps"]
                    for _ in range(3)]
            o, t, cpu_o, cpu_t, bo, bt = [], [], [], [], [], []

            def shared_signed(i):
                pool = premade(work / "certs", 1.5 * max(seen + t) * (d + 1) + 1000, f"ec-{i}")
                x = accounted(lambda: loadgen(coldcert.api_port, *signed, "--once", pool,
                                              duration=d), None, coldcert.pids(), pg_pids())
                o.append(x["rps"])
                cpu_o.append(x["cpu"])
                log(f"  signed ECDSA {x['rps']:.0f} req/s: {cpu_text(x['cpu'])}")
                pool.unlink()

            def shared_cold(i):
                x = accounted(lambda: loadgen(coldcert.api_port, *cold_ok, duration=d), None,
                              coldcert.pids(), pg_pids())
                t.append(x["rps"])
                cpu_t.append(x["cpu"])
                log(f"  cold verify {x['rps']:.0f} req/s: {cpu_text(x['cpu'])}")

            # Both budgeted sides are this daemon, in the same budget; the
            # consume's transaction in PostgreSQL is outside it, as the
            # database host is in production (the SM2 row's rule). On the
            # shared cores the backends took a fifth of the machine from the
            # daemon during the signed rounds and none during the cold ones.
            # The fastest cold round so far of the same kind (the warm-up's,
            # on the shared cores) sizes a signed round's pool, no larger
            # than it needs (loadgen reads the pool inside the round's CPU
            # accounting): the first round's budgeted cold round runs first.
            in_turn(a.rounds, shared_signed, shared_cold, *(
                (lambda i: bt.append(budgeted(lambda: loadgen(
                    coldcert.api_port, *cold_ok, duration=d), coldcert)),
                 lambda i: bo.append(budgeted_signed(
                     work / "certs", 1.5 * max(r["rps"] for r in bt) * (d + 1) + 1000,
                     f"ec-b{i}"))) if budget else ()))
            if budget:
                rows.append(budget_row(
                    "/v1/login/signed ECDSA P-256 req/s vs cold /v1/verify (same certificates), "
                    f"the same CPU budget ({budget_text}; PostgreSQL outside)", bo, bt, 0.6,
                    budget_cores=a.budget))
                log(f"ECDSA signed logins, budget of {budget_text}: {rows[-1]['certregd']:.0f} "
                    f"vs {rows[-1]['peer']:.0f} = {rows[-1]['ratio']:.2f}x")
            ratio_row("/v1/login/signed ECDSA P-256 req/s vs cold /v1/verify (same "
                      "certificates), shared cores, PostgreSQL on them", o, t,
                      None if budget else 0.6, cpu_certregd=cpu_o, cpu_peer=cpu_t,
                      shared_cores=True,
                      **({} if budget else {"note": shared_cores_note(no_budget)}))
            # SM2, A/B with `openssl speed sm2` on all cores: a signed SM2
            # login verifies two SM2 signatures (the certificate's, by the SM2
            # issuing CA, and the challenge's), so half the bare verify rate
            # is its limit, and a pool of 0.75 x the rate cannot run out.
            sm2 = work / "sm2-certs"
            loadgen(coldcert.api_port, "--mode", "keepalive", "--method", "POST", "--path",
                    "/v1/verify", "--header", "Content-Type: application/json", "--body-list",
                    sm2 / "bodies.txt", "--connections", 32, *ok, duration=d / 2)
            o, t, bo, bt = [], [], [], []
            secs = max(1, round(d / 2))

            def shared_sm2(i):
                pool = premade(sm2, 0.75 * max(t) * (d + 1) + 500, f"sm2-{i}")
                # --perf: the first round's workers (perf-login-sm2.txt).
                prof = profile("login-sm2", coldcert, d / 2) if i == 0 else None
                o.append(loadgen(coldcert.api_port, *signed, "--once", pool, duration=d)["rps"])
                profile_report(prof)
                pool.unlink()

            # The same budget for the daemon's workers and openssl's
            # processes; the consume's transaction in PostgreSQL is outside
            # it (recorded in each round's cpu), as the database host is in
            # production. The fastest `openssl speed` round so far sizes a
            # signed round's pool: the first round runs it first.
            in_turn(a.rounds, lambda i: t.append(openssl_speed_sm2(secs)), shared_sm2, *(
                (lambda i: bt.append(budgeted(lambda: {"rps": openssl_speed_sm2(
                    secs, elapsed=True, preexec=budget.peer_preexec)})),
                 lambda i: bo.append(budgeted_signed(sm2, 0.75 * max(t) * (d + 1) + 500,
                                                     f"sm2-b{i}"))) if budget else ()))
            if budget:
                rows.append(budget_row(
                    "/v1/login/signed SM2 req/s vs openssl speed -elapsed sm2 verify/s, the "
                    f"same CPU budget ({budget_text}; PostgreSQL outside)", bo, bt, SM2_TARGET,
                    budget_cores=a.budget))
                log(f"SM2 signed logins, budget of {budget_text}: {rows[-1]['certregd']:.0f} vs "
                    f"{rows[-1]['peer']:.0f} = {rows[-1]['ratio']:.2f}x")
            ratio_row("/v1/login/signed SM2 req/s vs openssl speed sm2 verify/s "
                      f"({NPROC} processes), shared cores", o, t,
                      None if budget else SM2_TARGET, shared_cores=True,
                      **({} if budget else {"note": shared_cores_note(no_budget)}))
        if 9 in a.rows:
            log("9. keep-alive /v1/login with login assertions")
            login = [*tls, *json_h, "--mode", "keepalive", "--path", "/v1/login",
                     "--connections", 32]
            prof = profile("login-assertions", signing, d / 2)
            ab("keep-alive req/s, TLS /v1/login with assertions vs without",
               lambda: loadgen(signing.tls_port, *login, "--expect", '"assertion":"',
                               duration=d),
               lambda: loadgen(warm.tls_port, *login, *ok, duration=d), 0.6)
            profile_report(prof)
        if a.rows & {8, 9}:
            pg_report("rows 8-9")
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as e:  # keep stopping the others
                print(f"stop: {e}", file=sys.stderr)
        if budget:
            try:
                budget.remove()
            except OSError as e:
                print(f"removing the cpu groups: {e}", file=sys.stderr)

    machine = {
        "nproc": NPROC,
        "openssl": run(["openssl", "version"]).stdout.strip(),
        "nginx": subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True,
                                text=True).stderr.strip(),
        "kernel": os.uname().release,
        "certregd_workers": a.workers,
        "keys": a.keys, "certs": a.certs, "duration_s": a.duration, "rounds": a.rounds,
        "p99_rounds": a.p99_rounds, "p99_seconds": a.p99_seconds,
        "pair_seconds": a.pair_seconds,
        "total_s": round(time.monotonic() - t_start),
        "host_stalls": stalls,
        "postgresql": {k: v for k, v in pg_log.items() if k != "since"},
        "stall_share": STALL_SHARE, "stall_retries": a.stall_retries,
        "nginx_reuseport": a.nginx_reuseport,
        "spread": a.spread,
        "budget_cores": a.budget if budget else None,
        "budget_cpu": a.budget_cpu if budget else None,
        "budget_unavailable": no_budget,
    }
    lines = [f"machine: nproc={machine['nproc']} {machine['openssl']} {machine['nginx']} "
             f"kernel {machine['kernel']}; certregd workers = {a.workers}, nginx "
             "worker_processes auto",
             f"dataset: {a.keys} keys; {a.certs} distinct client certificates; "
             f"{a.rounds} round(s) of {a.duration:g} s, in turn (A B, B A, ...), median and its "
             f"90 % interval (row 5: {a.p99_rounds} of {a.p99_seconds:g} s; row 7: "
             f"{a.p99_pairs} pairs of {a.pair_seconds:g} s pooled); "
             f"total {machine['total_s']} s",
             "host stalls (stallprobe, idle machine, gaps over 0.5 ms): " + "; ".join(
                 f"{r['when']} {r['gaps_per_s']:.1f}/s, longest {r['longest_us'] / 1000:.1f} ms, "
                 f"{r['lost_pct']:.2f} % of CPU time" for r in stalls),
             *(["CPU budget of rows 3 and 8: " + (
                 f"{a.budget:g} core each on vCPU {a.budget_cpu} (cgroup v1 quota, "
                 "generator and PostgreSQL outside)" if budget else
                 f"none ({no_budget}): those targets judged on the shared cores")]
               if a.rows & {3, 5, 8} else []),
             "PostgreSQL (build/bench/run/pg/server.log): " + "; ".join(
                 f"{k}: {v}" for k, v in machine["postgresql"].items()),
             "", *table_lines(rows)]
    text = "\n".join(lines)
    print("\n" + text)
    (BENCH / "results.txt").write_text(text + "\n")
    (BENCH / "results.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                   indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        sys.exit(f"bench: stopped by {e or 'SIGINT'}; what it had started is stopped")
