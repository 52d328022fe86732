#!/usr/bin/env python3
"""Supervision figures of corrald, measured on this machine.

  restart: kill -9 of a worker -> its replacement exec'd (median of N),
           beside the bare posix_spawn-to-exec of the same program and a
           bare restart (kill -9, waitpid, posix_spawn -> exec)
  startup: corrald launched -> all W workers of `sleep` RUNNING

Usage: bench/supervision.py [--build DIR] [--runs N] [--workers 100,1000]
                            [--initial-backoff 0ms]
Prints a markdown table and writes JSON with --json FILE.
"""
import argparse
import json
import os
import signal
import statistics
import time

import proc_watch
from corral_daemon import Daemon


# Every exec is watched by polling /proc with this pause between looks: a
# poll without pause takes a core from the processes it watches (corrald,
# corral-spawn and the dying worker share the other one with it).
POLL = 0.0001


def sleep_job(workers, backoff, program="sleep"):
    return (f"  sleepers:\n    command: [{program}, '100000']\n    workers: {workers}\n"
            f"    start: {{settle: 0}}\n"
            # reset_after below the pause between kills: every kill is a first failure.
            f"    restart: {{backoff: {{initial: {backoff}, jitter: 0}}, reset_after: 10ms, "
            f"max_restarts: 1000}}\n")


def measure_startup(build, workers, cpu=None, cgroup="off"):
    """Launch -> WORKERS `sleep` children exec'd and RUNNING.

    One `wait` request, which corrald answers when the last worker is RUNNING
    (with settle 0: when its process has exec'd), so nothing polls while the
    workers start; /proc confirms the count afterwards. CPU, a dict, gets the
    CPU seconds the start took: corrald's, corral-spawn's and the workers'
    (each from its clone to now: its exec and its own start). CGROUP:
    daemon.cgroup (a path: each worker cloned into a cgroup of its own)."""
    daemon = Daemon(build, sleep_job(workers, "100ms"), cgroup=cgroup)
    client = daemon.start()
    reply = client.request({"cmd": "wait", "job": "sleepers", "running": True})
    elapsed = time.perf_counter() - daemon.launched
    assert reply.get("ok"), reply
    sleepers = proc_watch.children(daemon.proc.pid, "sleep")
    assert len(sleepers) == workers, f"{len(sleepers)} sleep children, not {workers}"
    if cpu is not None:
        cpu["corrald"] = proc_watch.cpu_seconds(daemon.proc.pid)
        cpu["corral-spawn"] = sum(proc_watch.cpu_seconds(p) for p in
                                  proc_watch.children(daemon.proc.pid, "corral-spawn"))
        cpu["workers"] = sum(proc_watch.cpu_seconds(p) for p in sleepers)
    daemon.stop()
    return elapsed


def measure_restarts(build, runs, backoff):
    """kill -9 of the worker -> its replacement exec'd, seen in /proc the way
    measure_bare_spawn sees its child (polled every POLL). That the
    replacement is then RUNNING is checked after the clock stops: a status
    round trip is the client's time, not the restart's."""
    # The program by the path the bare spawn uses: a PATH search is not the
    # restart's cost.
    daemon = Daemon(build, sleep_job(1, backoff, program="/bin/sleep"))
    client = daemon.start()
    target = {"cmd": "status", "targets": ["sleepers:0"]}
    samples = []
    for _ in range(runs):
        while True:
            w = client.request(target)["workers"][0]
            if w["state"] == "RUNNING":
                break
        old = w["pid"]
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        new = proc_watch.wait_children(daemon.proc.pid, "sleep",
                                       lambda kids: any(p != old for p in kids), pause=POLL)
        samples.append(time.perf_counter() - t0)
        deadline = time.monotonic() + 10
        while True:
            w = client.request(target)["workers"][0]
            if w["state"] == "RUNNING" and w["pid"] != old:
                assert w["pid"] in new, f"RUNNING pid {w['pid']}, exec'd {new}"
                break
            assert time.monotonic() < deadline, f"replacement not RUNNING: {w}"
        time.sleep(0.05)
    daemon.stop()
    return samples


def measure_bare_spawn(runs):
    """The floor of a restart: posix_spawn of `sleep` -> its exec seen in
    /proc (polled every POLL), as bare as Python makes it."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pid = os.posix_spawn("/bin/sleep", ["sleep", "100000"], os.environ)
        wait_exec(pid)
        samples.append(time.perf_counter() - t0)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        time.sleep(0.02)
    return samples


def measure_bare_restart(runs):
    """A restart with nothing around it: kill -9 of a child, waitpid, then
    posix_spawn of `sleep` -> its exec seen in /proc. What any supervisor
    must do at least: learn of the death, reap, spawn."""
    samples = []
    pid = os.posix_spawn("/bin/sleep", ["sleep", "100000"], os.environ)
    wait_exec(pid)
    for _ in range(runs):
        time.sleep(0.02)
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = os.posix_spawn("/bin/sleep", ["sleep", "100000"], os.environ)
        wait_exec(pid)
        samples.append(time.perf_counter() - t0)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return samples


def wait_exec(pid):
    while True:
        try:
            if os.readlink(f"/proc/{pid}/exe").endswith("sleep"):
                return
        except OSError:
            pass
        time.sleep(POLL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--workers", default="100,1000")
    parser.add_argument("--json")
    args = parser.parse_args()

    results = {}
    # A restart against the bare spawn of the same program, interleaved in
    # rounds so that both see the same machine.
    restarts, bare, bare_restarts = [], [], []
    for _ in range(3):
        bare += measure_bare_spawn(max(1, args.runs // 3))
        bare_restarts += measure_bare_restart(max(1, args.runs // 3))
        restarts += measure_restarts(args.build, max(1, args.runs // 3), "0ms")
    for name, s in (("bare_spawn_exec_ms", bare), ("bare_restart_exec_ms", bare_restarts),
                    ("restart_ms_interleaved", restarts)):
        results[name] = {"median": statistics.median(s) * 1e3, "min": min(s) * 1e3,
                         "max": max(s) * 1e3, "runs": len(s)}
    ratio = results["restart_ms_interleaved"]["median"] / results["bare_spawn_exec_ms"]["median"]
    results["restart_vs_bare_spawn_ratio"] = {"median": ratio, "min": ratio, "max": ratio,
                                              "runs": 1}
    ratio = results["restart_ms_interleaved"]["median"] / results["bare_restart_exec_ms"]["median"]
    results["restart_vs_bare_restart_ratio"] = {"median": ratio, "min": ratio, "max": ratio,
                                                "runs": 1}
    for backoff in ("0ms", "100ms"):
        s = measure_restarts(args.build, args.runs, backoff)
        results[f"restart_ms_backoff_{backoff}"] = {
            "median": statistics.median(s) * 1e3, "min": min(s) * 1e3, "max": max(s) * 1e3,
            "runs": len(s)}
    for w in [int(x) for x in args.workers.split(",")]:
        s = [measure_startup(args.build, w) for _ in range(5)]
        results[f"startup_ms_{w}"] = {
            "median": statistics.median(s) * 1e3, "min": min(s) * 1e3, "max": max(s) * 1e3,
            "runs": len(s)}

    print("| figure | median | min | max | runs |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['median']:.2f} | {r['min']:.2f} | {r['max']:.2f} | {r['runs']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
