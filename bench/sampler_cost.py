#!/usr/bin/env python3
"""corrald's CPU while its sampler reads /proc for N idle workers every interval.

Starts corrald with one job of N `sleep` workers (metrics.interval 1s, the
/metrics endpoint off), waits until they are all RUNNING, then measures
corrald's CPU time (/proc/PID/task/*/schedstat) over --seconds, once with
limits.memory set (the sampler runs every second to enforce it) and once
without (nothing needs the sampler: corrald polls nothing, the baseline).

    bench/sampler_cost.py [--build build] [--workers 1000] [--seconds 30]
"""
import argparse
import json
import time

import proc_watch
from corral_daemon import Daemon



def measure(build, workers, memory_limit, seconds):
    daemon = Daemon(build, f"  idle:\n    command: [sleep, '100000']\n    workers: {workers}\n"
                           "    start: {settle: 0s}\n"
                           + ("    limits: {memory: 1GiB}\n" if memory_limit else ""),
                    metrics_interval="1s")
    daemon.start_running("idle")
    try:
        time.sleep(min(2, seconds))  # let the start settle
        c0, t0 = proc_watch.cpu_seconds(daemon.proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = proc_watch.cpu_seconds(daemon.proc.pid), time.monotonic()
        stats = json.loads(daemon.ctl("--json", "stats", check=True).stdout)
        return 100 * (c1 - c0) / (t1 - t0), stats["daemon"].get("rss_bytes", 0)
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    sampling, rss = measure(args.build, args.workers, True, args.seconds)
    idle, _ = measure(args.build, args.workers, False, args.seconds)
    print(f"## corrald CPU with {args.workers} idle workers, over {args.seconds:.0f} s\n")
    print("| sampler | corrald CPU | corrald RSS |")
    print("|---|---|---|")
    print(f"| every 1s (limits.memory set) | {sampling:.2f}% | {rss / 2**20:.1f} MiB |")
    print(f"| not running (nothing to enforce) | {idle:.3f}% | |")
    print(f"\nsampling {args.workers} workers costs {sampling - idle:.2f}% of one CPU, "
          f"{(sampling - idle) * 10 / args.workers * 1000:.1f} us per worker per sample")
    print(f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
