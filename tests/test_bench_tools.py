"""The benchmark's own instruments (tests/bench/): what they report has to
be true, or the figures in docs/PERFORMANCE.md are not.

stallprobe counts the time a CPU is taken away from a running task; here it
is taken away on purpose (its processes stopped for 200 ms), and the probe
has to see it. run.py has to refuse a configuration certregd would refuse,
before it starts a ten-minute run.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STALLPROBE = Path(__file__).resolve().parents[1] / "build" / "bench" / "stallprobe"


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
