#!/usr/bin/env python3
"""`corralctl status` round trip beside `supervisorctl status`, same machine, same run.

Starts corrald and supervisord (Debian's `supervisor` package) in a temp dir,
each with one program of WORKERS `sleep` processes, then times RUNS whole
commands of each, alternating, and prints the medians.

    bench/status_roundtrip.py [--build build] [--runs 100] [--workers 4]
"""
import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from corral_daemon import Daemon


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def timed(argv):
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, done.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("supervisord"):
        sys.exit("supervisord not found: apt-get install supervisor")
    tmp = tempfile.TemporaryDirectory(prefix="corral-bench-status-")
    d = tmp.name
    super_sock = f"{d}/supervisor.sock"
    corrald = Daemon(args.build, f"  sleepers:\n    command: [sleep, '1000']\n"
                                 f"    workers: {args.workers}\n")
    with open(f"{d}/supervisord.conf", "w") as f:
        f.write(f"[unix_http_server]\nfile={super_sock}\n"
                f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n"
                f"childlogdir={d}\nnodaemon=true\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                f"[supervisorctl]\nserverurl=unix://{super_sock}\n"
                f"[program:sleepers]\ncommand=sleep 1000\nnumprocs={args.workers}\n"
                "process_name=%(program_name)s_%(process_num)d\nstartsecs=0\n")
    corrald.start_running("sleepers").close()
    supervisord = subprocess.Popen(["supervisord", "-c", f"{d}/supervisord.conf"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    corralctl = [f"{args.build}/corralctl", "-s", corrald.socket, "status"]
    supervisorctl = ["supervisorctl", "-c", f"{d}/supervisord.conf", "status"]
    try:
        if not wait_for(lambda: timed(corralctl)[1] == 0):
            sys.exit("corrald did not come up")
        if not wait_for(lambda: timed(supervisorctl)[1] == 0):
            sys.exit("supervisord did not come up")
        corral_times, super_times = [], []
        for _ in range(args.runs):
            corral_times.append(timed(corralctl)[0])
            super_times.append(timed(supervisorctl)[0])
        c, s = statistics.median(corral_times), statistics.median(super_times)
        print(f"## status round trip, whole command, median of {args.runs} "
              f"({args.workers} workers each)\n")
        print("| command | median | p90 | ratio |")
        print("|---|---|---|---|")
        p90 = lambda xs: sorted(xs)[int(len(xs) * 0.9)]
        print(f"| corralctl status | {c * 1e3:.2f} ms | {p90(corral_times) * 1e3:.2f} ms | 1 |")
        print(f"| supervisorctl status | {s * 1e3:.2f} ms | {p90(super_times) * 1e3:.2f} ms "
              f"| {s / c:.1f}x slower |")
        print(f"\nload average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    finally:
        corrald.stop()
        supervisord.send_signal(signal.SIGTERM)
        try:
            supervisord.wait(timeout=15)
        except subprocess.TimeoutExpired:
            supervisord.kill()
        tmp.cleanup()


if __name__ == "__main__":
    main()
