#!/usr/bin/env python3
"""Builds of corral against each other on tiny tasks, interleaved: a change's before and after.

    bench/ab_throughput.py --build before=DIR --build after=DIR [--path submit]
                           [--variant shm] [--tasks 1000000] [--rounds 6]

One figure per round and build, the builds' order turned by one each round
so that none always runs first or after the same one; each run has a fresh
corrald of its build. Paths (the same as bench/throughput.py's, with its
`triangle` handler and `i % 100` payloads):

  submit   `corralctl submit bench - --wait < tasks > results` into a job of
           bench/throughput.py's channel VARIANT (shm, shm-spin, ...), the
           whole command timed, after a warm-up submit of a tenth as many
  range    a `source: {range: ...}` job, from its start until `stats` shows N ok
  file     a `source: {file: ...}` job of the same lines, the same way

Prints each build's median tasks/s (min-max), corrald's CPU per task (median)
and the median against the first build's. This machine's figures swing by
20-30% from one run to the next: trust a difference that holds across
rounds, and quote medians of one sitting.
"""
import argparse
import os
import statistics
import sys
import tempfile

import throughput
from throughput import CHANNELS, CorralJob, corral_source, payload, submit_corralctl


def build_arg(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--build takes NAME=DIR, not {text!r}")
    if not os.access(os.path.join(path, "corrald"), os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: no corrald there")
    return name, path


def write_tasks(path, n):
    with open(path, "w") as f:
        f.write("".join(f"{payload(i)}\n" for i in range(n)))


def measure_submit(build, variant, tasks_file, warm_file, n):
    """(tasks/s, corrald us per task) of one whole corralctl submit."""
    job = CorralJob(build, variant, submit_corralctl)
    try:
        job.throughput(warm_file, max(1, n // 10))
        rate, cpu = job.throughput(tasks_file, n)
    finally:
        job.close()
    return rate, cpu["corrald"] / rate * 1e6


def measure_source(build, kind, tasks_file, n):
    rate, cpu = corral_source(build, kind, n, tasks_file)
    return rate, cpu["corrald"] / rate * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=build_arg, action="append", required=True,
                        help="NAME=DIR, twice or more; the first is the reference")
    parser.add_argument("--path", choices=["submit", "range", "file"], default="submit")
    parser.add_argument("--variant", choices=sorted(CHANNELS), default="shm",
                        help="the job's channel keys for --path submit")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if len(args.build) < 2:
        parser.error("give --build at least twice")
    if len({name for name, _ in args.build}) != len(args.build):
        parser.error("each --build needs a name of its own")

    n = args.tasks
    tmp = tempfile.TemporaryDirectory(prefix="corral-ab-")
    tasks_file = os.path.join(tmp.name, "tasks.txt")
    warm_file = os.path.join(tmp.name, "warm.txt")
    write_tasks(tasks_file, n)
    write_tasks(warm_file, max(1, n // 10))
    load = os.getloadavg()
    rates = {name: [] for name, _ in args.build}
    corrald_us = {name: [] for name, _ in args.build}
    for round_ in range(args.rounds):
        turn = round_ % len(args.build)
        for name, build in args.build[turn:] + args.build[:turn]:
            if args.path == "submit":
                rate, us = measure_submit(build, args.variant, tasks_file, warm_file, n)
            else:
                rate, us = measure_source(build, args.path, tasks_file, n)
            rates[name].append(rate)
            corrald_us[name].append(us)
            print(f"round {round_ + 1}/{args.rounds}: {name} {rate / 1e3:,.0f} k/s, "
                  f"corrald {us:.3f} us/task", file=sys.stderr, flush=True)

    what = (f"`corralctl submit --wait`, {args.variant}" if args.path == "submit"
            else f"a `{args.path}` source job, from its start")
    print(f"## {what}: {n:,} tasks, {throughput.WORKERS} workers, {args.rounds} rounds "
          f"interleaved\n")
    print("| build | tasks/s, median (min-max) | corrald us/task | / first |")
    print("|---|---|---|---|")
    reference = statistics.median(rates[args.build[0][0]])
    for name, build in args.build:
        median = statistics.median(rates[name])
        print(f"| {name} ({build}) | {median / 1e3:,.0f} k/s ({min(rates[name]) / 1e3:,.0f}-"
              f"{max(rates[name]) / 1e3:,.0f}) | {statistics.median(corrald_us[name]):.3f} | "
              f"{median / reference:.2f}x |")
    end = os.getloadavg()
    print(f"\nload average {load[0]:.2f} at start, {end[0]:.2f} at the end; "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
