"""The benchmark's own instruments (tests/bench/): what they report has to
be true, or the figures in docs/PERFORMANCE.md are not.

stallprobe counts the time a CPU is taken away from a running task; here it
is taken away on purpose (its processes stopped for 200 ms), and the probe
has to see it.
"""
import os
import signal
import subprocess
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
