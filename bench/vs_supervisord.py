#!/usr/bin/env python3
"""Supervision side by side: corrald and supervisord (Debian's) on the same programs.

  restart       kill -9 of a worker -> its replacement RUNNING (corral: initial backoff 0)
                (the new process is watched in /proc, not by asking the daemon)
  startup N     daemon launched -> N `sleep` workers RUNNING (corrald: one
                `wait` request; supervisord: /proc watched, then asked)
  memory 100    RSS and PSS of the daemon's own processes with 100 `sleep` workers
  idle cpu 100  the daemon's CPU over --idle-seconds with 100 idle workers

Each daemon gets its own config in a temp dir. supervisord is spoken to over
XML-RPC on its unix socket (stdlib only).

Usage: bench/vs_supervisord.py [--build DIR] [--runs N] [--json FILE]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

import proc_watch
from corral_daemon import Daemon
from supervision import measure_restarts, measure_startup, sleep_job



class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def make_connection(self, host):
        return UnixConnection(self.path)


class Supervisord:
    def __init__(self, workers):
        self.dir = tempfile.TemporaryDirectory(prefix="corral-bench-supervisord-")
        d = self.dir.name
        self.socket = f"{d}/supervisor.sock"
        self.conf = f"{d}/supervisord.conf"
        with open(self.conf, "w") as f:
            f.write(f"[unix_http_server]\nfile={self.socket}\n"
                    f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n"
                    f"childlogdir={d}\nnodaemon=true\nloglevel=warn\n"
                    "[rpcinterface:supervisor]\n"
                    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                    f"[program:sleepers]\ncommand=sleep 100000\nnumprocs={workers}\n"
                    "process_name=%(program_name)s_%(process_num)d\nstartsecs=0\n"
                    "autorestart=true\nstartretries=1000\nstdout_logfile=NONE\n"
                    "stderr_logfile=NONE\n")
        self.proc = None

    def start(self):
        self.launched = time.perf_counter()
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                rpc = xmlrpc.client.ServerProxy("http://localhost",
                                                transport=UnixTransport(self.socket))
                rpc.supervisor.getState()
                return rpc
            except (FileNotFoundError, ConnectionRefusedError, OSError):
                if self.proc.poll() is not None:
                    sys.exit("supervisord exited")
                time.sleep(0.001)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.dir.cleanup()


def supervisord_startup(workers):
    """Launch -> WORKERS `sleep` children exec'd (watched in /proc) and RUNNING."""
    s = Supervisord(workers)
    rpc = s.start()
    # supervisord has no request that waits: poll /proc (every 5 ms, a small
    # share of a start that takes seconds), then ask once they are there.
    proc_watch.wait_children(s.proc.pid, "sleep", lambda kids: len(kids) >= workers, pause=0.005)
    while True:
        infos = rpc.supervisor.getAllProcessInfo()
        if len(infos) == workers and all(i["statename"] == "RUNNING" for i in infos):
            elapsed = time.perf_counter() - s.launched
            break
        time.sleep(0.001)
    s.stop()
    return elapsed


def supervisord_restarts(runs):
    """kill -9 of the worker -> its replacement exec'd (watched in /proc) and RUNNING."""
    s = Supervisord(1)
    rpc = s.start()
    samples = []
    for _ in range(runs):
        while True:
            info = rpc.supervisor.getProcessInfo("sleepers:sleepers_0")
            if info["statename"] == "RUNNING":
                break
            time.sleep(0.001)
        old = info["pid"]
        t0 = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        proc_watch.wait_children(s.proc.pid, "sleep", lambda kids: any(p != old for p in kids))
        while True:
            info = rpc.supervisor.getProcessInfo("sleepers:sleepers_0")
            if info["statename"] == "RUNNING" and info["pid"] != old:
                samples.append(time.perf_counter() - t0)
                break
            time.sleep(0.001)
        time.sleep(0.05)
    s.stop()
    return samples


def idle_figures(start_daemon, seconds):
    """Memory (RSS and PSS, summed over the supervisor's own processes) and CPU %
    of a daemon with 100 idle workers, started by START_DAEMON."""
    pids, stop = start_daemon()
    time.sleep(2)  # past the start
    rss, pss = proc_watch.memory(pids)
    c0, t0 = sum(proc_watch.cpu_seconds(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    cpu = 100 * (sum(proc_watch.cpu_seconds(p) for p in pids) - c0) / (time.monotonic() - t0)
    stop()
    return rss, pss, cpu


def corral_idle(build):
    def start():
        daemon = Daemon(build, sleep_job(100, "100ms"))
        client = daemon.start()
        reply = client.request({"cmd": "wait", "job": "sleepers", "running": True})
        assert reply.get("ok"), reply
        # corrald and its spawn server (docs/ARCHITECTURE.md).
        pids = [daemon.proc.pid] + proc_watch.children(daemon.proc.pid, "corral-spawn")
        return pids, daemon.stop
    return start


def supervisord_idle():
    s = Supervisord(100)
    def start():
        rpc = s.start()
        while not all(i["statename"] == "RUNNING" for i in rpc.supervisor.getAllProcessInfo()):
            time.sleep(0.01)
        return [s.proc.pid], s.stop
    return start


def bench_cgroup():
    """A cgroup of the benchmark's own in the cgroup2 hierarchy, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fields = before.split()
            if after.startswith("cgroup2 ") and len(fields) >= 5 and fields[3] == "/":
                path = os.path.join(fields[4], f"corral-bench-{os.getpid()}")
                try:
                    os.mkdir(path)
                except OSError:
                    return None
                return path
    return None


def remove_bench_cgroup(path):
    for root, dirs, _files in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def spread(samples, scale=1e3):
    return {"median": statistics.median(samples) * scale, "min": min(samples) * scale,
            "max": max(samples) * scale, "mean": statistics.mean(samples) * scale,
            "runs": len(samples)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--sizes", default="100,1000", help="pool sizes to start")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not shutil.which("supervisord"):
        sys.exit("supervisord not found: apt-get install supervisor")

    rows = []  # (figure, unit, corral, peer, target text, met)
    c_restarts = measure_restarts(args.build, args.runs, "0ms")
    s_restarts = supervisord_restarts(args.runs)
    c_restart, s_restart = spread(c_restarts), spread(s_restarts)
    rows.append(("restart after kill -9", "ms", c_restart, s_restart, "<= 1/100",
                 c_restart["median"] * 100 <= s_restart["median"]))
    # supervisord restarts at the loop turn after the one that reaped the
    # child: at once when something else wakes its poll (the dead child's
    # pipes), after its one-second poll timeout otherwise. Say how often each.
    slow = lambda samples: sum(1 for x in samples if x >= 0.5)
    restart_note = (f"Restarts that took >= 0.5 s: corral {slow(c_restarts)} of {len(c_restarts)}, "
                    f"supervisord {slow(s_restarts)} of {len(s_restarts)}. Means: corral "
                    f"{c_restart['mean']:.2f} ms, supervisord {s_restart['mean']:.2f} ms "
                    f"({s_restart['mean'] / c_restart['mean']:.0f}x).")
    sizes = [int(x) for x in args.sizes.split(",")]
    targets = {100: ("<= 1/5", lambda c, s: c * 5 <= s),
               1000: ("<= 600 ms", lambda c, s: c <= 600)}
    floors = []  # (N, CPU the start took, its median): the floor it sets on this machine
    cgroup_rows = []  # (N, off, on): the same start with each worker in a cgroup of its own
    cgroup = bench_cgroup()
    try:
        for n in sizes:
            target, check = targets.get(n, ("", lambda c, s: True))
            cpu = {}
            off, on = [], []
            for _ in range(args.startup_runs):  # interleaved: off, on, off, on, ...
                off.append(measure_startup(args.build, n, cpu))
                if cgroup:
                    on.append(measure_startup(args.build, n, cgroup=cgroup))
            c = spread(off)
            s = spread([supervisord_startup(n) for _ in range(args.startup_runs)])
            rows.append((f"{n} workers RUNNING", "ms", c, s, target,
                         check(c["median"], s["median"])))
            floors.append((n, cpu, c["median"]))
            if cgroup:
                cgroup_rows.append((n, c, spread(on)))
    finally:
        if cgroup:
            remove_bench_cgroup(cgroup)
    c_rss, c_pss, c_cpu = idle_figures(corral_idle(args.build), args.idle_seconds)
    s_rss, s_pss, s_cpu = idle_figures(supervisord_idle(), args.idle_seconds)
    one = lambda v: {"median": v, "min": v, "max": v, "runs": 1}
    rows.append(("RSS with 100 workers (corral: corrald + corral-spawn)", "MiB",
                 one(c_rss / 2**20), one(s_rss / 2**20), "<= 1/3", c_rss * 3 <= s_rss))
    rows.append(("PSS with 100 workers (shared pages split)", "MiB", one(c_pss / 2**20),
                 one(s_pss / 2**20), "", c_pss * 3 <= s_pss))
    rows.append((f"idle CPU with 100 workers ({args.idle_seconds:.0f} s)", "%", one(c_cpu),
                 one(s_cpu), "~0", c_cpu < 0.05))

    print("## Supervision: corrald vs supervisord 4.2 (Debian), same programs, one run\n")
    print("| figure | corral | supervisord | ratio (supervisord/corral) | target | met |")
    print("|---|---|---|---|---|---|")
    out = []
    for name, unit, c, s, target, met in rows:
        ratio = s["median"] / c["median"] if c["median"] > 0 else float("inf")
        fmt = lambda r: (f"{r['median']:.2f} {unit}" +
                         (f" ({r['min']:.2f}-{r['max']:.2f}, n={r['runs']})" if r["runs"] > 1 else ""))
        print(f"| {name} | {fmt(c)} | {fmt(s)} | {ratio:.1f}x | {target} | {'yes' if met else 'NO'} |")
        # "better": which way the ratio should go, for bench/history.py; the idle
        # CPU ratio divides by almost nothing, so it is not watched (None).
        out.append({"figure": name, "unit": unit, "corral": c, "supervisord": s,
                    "ratio": ratio, "target": target, "met": met,
                    "better": None if name.startswith("idle CPU") else "higher"})
    print(f"\n{restart_note}")
    if cgroup_rows:
        print("\nWorkers in cgroups (daemon.cgroup: a path; each worker cloned into "
              "DIR/job:NAME/INDEX), against the same start without, interleaved:\n")
        print("| figure | cgroups off | cgroups on | on/off | target | met |")
        print("|---|---|---|---|---|---|")
        for n, off, on in cgroup_rows:
            ratio = on["median"] / off["median"]
            print(f"| {n} workers RUNNING | {off['median']:.2f} ms | {on['median']:.2f} ms "
                  f"({on['min']:.2f}-{on['max']:.2f}, n={on['runs']}) | {ratio:.2f} | <= 1.10 | "
                  f"{'yes' if ratio <= 1.10 else 'NO'} |")
            out.append({"figure": f"{n} workers RUNNING, cgroups on", "unit": "ms",
                        "corral": on, "cgroups off": off, "ratio": ratio, "target": "<= 1.10",
                        "met": ratio <= 1.10, "better": "lower"})
    else:
        print("\n(No writable cgroup2 hierarchy here: the start with cgroups was not measured.)")
    out.append({"figure": "restart after kill -9, mean", "unit": "ms",
                "corral": c_restart["mean"], "supervisord": s_restart["mean"],
                "slow (>= 0.5 s)": {"corral": slow(c_restarts), "supervisord": slow(s_restarts)}})
    cpus = os.cpu_count()
    print("\nCPU time a start took (corral, last run), and the floor it sets on "
          f"{cpus} CPUs: (all of it) / {cpus}\n")
    print("| workers | the workers' own (clone to exec'd and started) | corrald | corral-spawn "
          "| floor | measured |")
    print("|---|---|---|---|---|---|")
    for n, cpu, measured in floors:
        total = sum(cpu.values())
        print(f"| {n} | {cpu['workers'] * 1e3:.0f} ms | {cpu['corrald'] * 1e3:.0f} ms "
              f"| {cpu['corral-spawn'] * 1e3:.0f} ms | {total / cpus * 1e3:.0f} ms "
              f"| {measured:.0f} ms |")
        out.append({"figure": f"CPU to start {n} workers", "unit": "ms",
                    "workers": cpu["workers"] * 1e3, "corrald": cpu["corrald"] * 1e3,
                    "corral-spawn": cpu["corral-spawn"] * 1e3, "floor": total / cpus * 1e3})
    print(f"\nload average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
