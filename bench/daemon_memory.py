#!/usr/bin/env python3
"""corrald's memory: RSS and PSS of corrald and corral-spawn with 100 idle workers.

For each build given (before/after comparisons: keep the old binaries aside
and pass both), and for each kind of worker:

  sleep   100 `sleep` workers, channel none (as bench/vs_supervisord.py)
  shm     100 `corral-worker --handler echo` workers, channel shm

it starts corrald, waits (one `wait` request) until the workers are RUNNING,
lets it settle, and prints RSS and PSS (/proc/PID/smaps_rollup) of corrald,
of corral-spawn and their sum, then, per process, where the resident bytes
are (/proc/PID/smaps grouped by what each mapping is: a library, the
binary, the heap, stacks, other anonymous memory). The runs alternate build
by build; the figures are medians over --runs.

Usage: bench/daemon_memory.py [--build [NAME=]DIR ...] [--workers N] [--runs N]
                              [--kinds sleep,shm] [--settle S] [--no-breakdown]
"""
import argparse
import collections
import os
import re
import statistics
import sys
import time

import proc_watch
from corral_daemon import Daemon


def rollup(pid):
    """RSS and PSS of PID in KiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean",
                       "Shared_Dirty", "Anonymous"):
                out[key] = int(rest.split()[0])
    return out


def group(name, exe):
    """What a mapping named NAME is, in a few words."""
    if name == "":
        return "anonymous"
    if name == "[heap]":
        return "heap"
    if name.startswith("[stack"):
        return "stack"
    if name.startswith("["):
        return name
    if os.path.realpath(name) == exe:
        return "the binary"
    base = os.path.basename(name)
    m = re.match(r"(lib[A-Za-z_+-]+?)(?:[-.]\d|\.so)", base)
    if m:
        return m.group(1)
    if base.startswith("ld-linux"):
        return "ld.so"
    if name.startswith("/memfd:") or name.startswith("/dev/shm"):
        return "shm segments"
    return base


def breakdown(pid):
    """{group: (rss KiB, pss KiB)} of PID's mappings."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    sums = collections.defaultdict(lambda: [0, 0])
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = line.split(None, 5)[5].strip() if len(fields) >= 6 else ""
                current = group(name, exe)
            elif fields[0] == "Rss:":
                sums[current][0] += int(fields[1])
            elif fields[0] == "Pss:":
                sums[current][1] += int(fields[1])
    return sums


def job(kind, build, workers):
    if kind == "sleep":
        return (f"  idle:\n    command: [sleep, '100000']\n    workers: {workers}\n"
                f"    start: {{settle: 0}}\n")
    if kind == "shm":
        return (f"  idle:\n    command: [{os.path.abspath(build)}/corral-worker, --handler, echo]\n"
                f"    workers: {workers}\n    channel: shm\n")
    raise ValueError(kind)


def measure(build, kind, workers, settle):
    daemon = Daemon(build, job(kind, build, workers))
    client = daemon.start()
    try:
        reply = client.request({"cmd": "wait", "job": "idle", "running": True, "timeout_s": 120})
        assert reply.get("ok"), reply
        client.close()
        time.sleep(settle)
        spawn = proc_watch.children(daemon.proc.pid, "corral-spawn")
        pids = {"corrald": daemon.proc.pid}
        if spawn:
            pids["corral-spawn"] = spawn[0]
        return {name: (rollup(pid), breakdown(pid)) for name, pid in pids.items()}
    finally:
        daemon.stop()


def mib(kib):
    return f"{kib / 1024:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[],
                    help="[NAME=]DIR with corrald, corral-worker (repeat to compare)")
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="sleep,shm")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring")
    ap.add_argument("--no-breakdown", action="store_true")
    args = ap.parse_args()
    builds = []
    for b in args.build or ["build-bench"]:
        name, _, path = b.rpartition("=")
        builds.append((name or path, path))
    kinds = args.kinds.split(",")
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.workers} workers, "
          f"median of {args.runs}; command: {' '.join(sys.argv)}")
    results = collections.defaultdict(list)  # (build, kind) -> [run]
    for _ in range(args.runs):
        for kind in kinds:
            for name, path in builds:
                results[(name, kind)].append(measure(path, kind, args.workers, args.settle))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print()
    print("| build | workers | corrald RSS | corral-spawn RSS | sum RSS | corrald PSS "
          "| corral-spawn PSS | sum PSS | (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        for name, _ in builds:
            runs = results[(name, kind)]

            def med(proc, key):
                return statistics.median(r[proc][0][key] if proc in r else 0 for r in runs)

            cells = []
            for key in ("Rss", "Pss"):
                d, s = med("corrald", key), med("corral-spawn", key)
                cells += [mib(d), mib(s), mib(d + s)]
            print(f"| {name} | {args.workers} {kind} | " + " | ".join(cells) + " | |")
    if args.no_breakdown:
        return
    for kind in kinds:
        for name, _ in builds:
            last = results[(name, kind)][-1]
            print(f"\n{name}, {kind} (last run): RSS / PSS in KiB by mapping")
            for proc, (roll, groups) in last.items():
                print(f"  {proc}: Rss {roll['Rss']}  Pss {roll['Pss']}  "
                      f"Anonymous {roll['Anonymous']}  Private_Dirty {roll['Private_Dirty']}")
                for g, (rss, pss) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
                    if rss:
                        print(f"    {g:28s} {rss:6d} {pss:6d}")


if __name__ == "__main__":
    main()
