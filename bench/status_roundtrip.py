#!/usr/bin/env python3
"""`corralctl status` round trip beside `supervisorctl status` and `/bin/true`, same run.

Starts corrald and supervisord (Debian's `supervisor` package) in a temp dir,
each with one program of WORKERS `sleep` processes, then times RUNS whole
commands of each, interleaved, and prints the medians. Every command is
timed the same way: posix_spawn, waitpid, its output to /dev/null.

The second table sets `corralctl -s SOCK status` against `/bin/true` started
the same way (issue 22: within 1.5x), beside the floor of such a command
(BUILD/bench/status_floor: connect, send the request a text status sends,
copy the reply line out, linked as corralctl is) and, with --old-corralctl,
another corralctl binary against the same daemon. Then the daemon's share:
on an open connection after corrald sat idle long enough to sample /proc
(metrics.interval / 2; woken by a version request first), a text status's
request (no sampled field: nothing sampled), a whole status (sampled for
it) and one right after (answered from that sample).

    bench/status_roundtrip.py [--build build] [--runs 100] [--workers 4]
        [--old-corralctl PATH] [--no-supervisord] [--idle-requests 10]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from corral_daemon import Client, Daemon


TEXT_STATUS_REQUEST = json.dumps(
    {"cmd": "status",
     "fields": ["name", "job", "state", "description", "restarts", "tasks_ok", "tasks_failed",
                "broker"]},
    separators=(",", ":"))


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


DEVNULL = os.open(os.devnull, os.O_WRONLY)
SPAWN_OUTPUT = [(os.POSIX_SPAWN_DUP2, DEVNULL, 1), (os.POSIX_SPAWN_DUP2, DEVNULL, 2)]


def timed(argv):
    """fork+exec+wait of ARGV (found on PATH), its output to /dev/null: (seconds, exit code)."""
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=SPAWN_OUTPUT)
    _, status = os.waitpid(pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status)


def daemon_share(socket_path, idle_s, requests):
    """Status requests on one connection, in microseconds: (a text status's request, which
    asks for no sampled field, after the idle spell; a whole status that samples /proc; one
    that does not). corrald is woken from its idle spell of IDLE_S by a version request
    first, so that all are timed awake."""
    client = Client(socket_path)

    def request(message):
        t0 = time.perf_counter()
        reply = client.request(message)
        if not reply.get("ok"):
            sys.exit(f"{message} failed: {reply}")
        return (time.perf_counter() - t0) * 1e6

    text, sampling, cached = [], [], []
    for _ in range(requests):
        time.sleep(idle_s)
        request({"cmd": "version"})
        text.append(request(json.loads(TEXT_STATUS_REQUEST)))
        sampling.append(request({"cmd": "status"}))
        cached.append(request({"cmd": "status"}))
    client.close()
    return statistics.median(text), statistics.median(sampling), statistics.median(cached)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--old-corralctl", help="another corralctl to time in the same run")
    parser.add_argument("--no-supervisord", action="store_true", help="leave supervisord out")
    parser.add_argument("--idle-requests", type=int, default=10,
                        help="status requests after an idle spell, for the daemon's share")
    args = parser.parse_args()
    with_super = not args.no_supervisord
    if with_super and not shutil.which("supervisord"):
        sys.exit("supervisord not found: apt-get install supervisor (or --no-supervisord)")
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
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    corrald.start_running("sleepers").close()
    supervisord = None
    if with_super:
        supervisord = subprocess.Popen(["supervisord", "-c", f"{d}/supervisord.conf"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    corralctl = [f"{args.build}/corralctl", "-s", corrald.socket, "status"]
    supervisorctl = ["supervisorctl", "-c", f"{d}/supervisord.conf", "status"]
    # The whole-command figures, interleaved: name -> argv.
    commands = {"/bin/true": ["/bin/true"], "corralctl status": corralctl}
    floor = f"{args.build}/bench/status_floor"
    if os.path.exists(floor):
        # The request corralctl's text status sends (ctl/replies.cc,
        # status_text_fields()): the floor asks corrald for the same reply.
        commands["floor (bench/status_floor)"] = [floor, corrald.socket, TEXT_STATUS_REQUEST]
    if args.old_corralctl:
        commands[f"{args.old_corralctl} status"] = [args.old_corralctl, "-s", corrald.socket,
                                                    "status"]
    if with_super:
        commands["supervisorctl status"] = supervisorctl
    try:
        if not wait_for(lambda: timed(corralctl)[1] == 0):
            sys.exit("corrald did not come up")
        if with_super and not wait_for(lambda: timed(supervisorctl)[1] == 0):
            sys.exit("supervisord did not come up")
        for name, argv in commands.items():
            if timed(argv)[1] != 0:
                sys.exit(f"{name} failed")
        times = {name: [] for name in commands}
        names = list(commands)
        for run in range(args.runs):
            # Each round in another order: no command always follows the same one.
            for name in names[run % len(names):] + names[:run % len(names)]:
                times[name].append(timed(commands[name])[0])
        median = {name: statistics.median(xs) for name, xs in times.items()}
        p90 = lambda xs: sorted(xs)[int(len(xs) * 0.9)]
        c = median["corralctl status"]
        if with_super:
            s = median["supervisorctl status"]
            print(f"## status round trip, whole command, median of {args.runs} "
                  f"({args.workers} workers each)\n")
            print("| command | median | p90 | ratio |")
            print("|---|---|---|---|")
            print(f"| corralctl status | {c * 1e3:.2f} ms | "
                  f"{p90(times['corralctl status']) * 1e3:.2f} ms | 1 |")
            print(f"| supervisorctl status | {s * 1e3:.2f} ms | "
                  f"{p90(times['supervisorctl status']) * 1e3:.2f} ms | {s / c:.1f}x slower |")
            print()
        t = median["/bin/true"]
        print(f"## whole commands against /bin/true, fork+exec+wait, median of {args.runs}, "
              f"interleaved ({args.workers} workers)\n")
        print("| command | median | p90 | / `/bin/true` |")
        print("|---|---|---|---|")
        for name in commands:
            if name == "supervisorctl status":
                continue
            print(f"| {name} | {median[name] * 1e3:.3f} ms | {p90(times[name]) * 1e3:.3f} ms "
                  f"| {median[name] / t:.2f}x |")
        if args.idle_requests > 0:
            idle_s = 0.55  # metrics.interval is 1s: a status samples after 0.5 s
            text, sampling, cached = daemon_share(corrald.socket, idle_s, args.idle_requests)
            print(f"\ncorrald's share, a status request on an open connection, median of "
                  f"{args.idle_requests}: {text:.0f} us for a text status's request (the fields "
                  f"it shows, nothing sampled) after an idle spell; a whole status {sampling:.0f}"
                  f" us when it samples /proc for it (the last sample over {idle_s} s old), "
                  f"{cached:.0f} us right after (from that sample)")
        load_after = " ".join(open("/proc/loadavg").read().split()[:3])
        print(f"\nload average {load_before} at start, {load_after} at the end")
    finally:
        corrald.stop()
        if supervisord:
            supervisord.send_signal(signal.SIGTERM)
            try:
                supervisord.wait(timeout=15)
            except subprocess.TimeoutExpired:
                supervisord.kill()
        tmp.cleanup()


if __name__ == "__main__":
    main()
