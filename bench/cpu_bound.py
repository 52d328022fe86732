#!/usr/bin/env python3
"""CPU-heavy tasks: how close 2 workers come to twice the speed of 1.

Submits --tasks `primes` tasks of size --n (each tens of milliseconds of one
core) with `corralctl submit --wait` to a shm job of 1 worker, then of 2,
alternating, --runs times, and prints the medians and the speed-up (ideal 2x
on 2 free cores; the target is within 5% of it).

    bench/cpu_bound.py [--build build] [--tasks 100] [--n 20000000] [--runs 3]
"""
import argparse
import os
import statistics
import time

from corral_daemon import Daemon


def run(build, workers, tasks, n):
    daemon = Daemon(build, f"  primes:\n    command: [{build}/corral-worker, --handler, primes]\n"
                           f"    channel: shm\n    workers: {workers}\n    queue: {{prefetch: 1}}\n")
    daemon.start_running("primes")
    try:
        payload = ("%d\n" % n) * tasks
        t0 = time.perf_counter()
        done = daemon.ctl("submit", "primes", "-", "--wait", input=payload.encode(), check=True)
        elapsed = time.perf_counter() - t0
        assert done.stdout.count(b'"status":"ok"') == tasks, done.stdout[:200]
        return elapsed
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--n", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    one, two = [], []
    for _ in range(args.runs):
        one.append(run(args.build, 1, args.tasks, args.n))
        two.append(run(args.build, 2, args.tasks, args.n))
    o, t = statistics.median(one), statistics.median(two)
    print(f"## CPU-bound tasks: {args.tasks} x primes({args.n:,}), median of {args.runs}\n")
    print("| workers | time | tasks/s |")
    print("|---|---|---|")
    print(f"| 1 | {o:.2f} s ({min(one):.2f}-{max(one):.2f}) | {args.tasks / o:.1f} |")
    print(f"| 2 | {t:.2f} s ({min(two):.2f}-{max(two):.2f}) | {args.tasks / t:.1f} |")
    print(f"\nspeed-up {o / t:.3f}x of the ideal 2x ({100 * (o / t) / 2:.1f}%); "
          f"{os.cpu_count()} CPUs, load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
