#!/usr/bin/env python3
"""Task throughput of corral next to Python's multiprocessing, in one run.

Every figure moves N tiny tasks (payload i % 100) through 2 worker processes
on this machine. The main line of every comparison gives both sides the same
O(1) task, n * (n - 1) // 2: `corral-worker --handler triangle` and the
peers' Python function bench_functions.tiny. A second line, labelled
"50-iteration loop", keeps the earlier pairing: the peers run a Python loop
adding 0..n-1 (50 iterations on average, microseconds) while corral's
workers run the same loop in C++ (`--handler sum`, nanoseconds), which
compares languages as much as frameworks.

  corral, end to end: `corralctl submit JOB - --wait < tasks > results`; the
      whole command is timed, the results counted afterwards. For channel
      shm, pipe with length framing and pipe with line framing (and shm with
      `sum` for the loop line).
  corral, no client: a job whose `source` feeds the tasks and that has no
      sink; `start` of the job (`autostart: false`, corrald already up, as
      the peers' pools are made before their clocks start; the workers'
      spawn is timed) -> `stats` shows ok == N. `range` (0..N-1, so the
      payload is i, not i % 100: the task is O(1) all the same) and `file`
      (the same i % 100 lines), both with `triangle`; `file` with `sum` for
      the loop line.
  Python peers (fork, 2 worker processes, the same function in Python):
      multiprocessing.Queue (1 producer, 2 consumers, None sentinels, results
      through a second Queue), ProcessPoolExecutor.submit per task (on N/20
      tasks: it is slow), ProcessPoolExecutor.map(chunksize=1000),
      Pool.imap(chunksize=1000), Pool.map(chunksize=1000); each with
      n * (n - 1) // 2, then with the loop.
  Round trip of one task at a time: a persistent submit stream spoken over
      the control socket (one `+n` line, wait for its result, 2,000 times),
      against a multiprocessing.Pipe ping-pong between two processes.

Pools and daemons are started before the clock starts, except for the source
jobs, whose figure is from corrald's start by definition. Runs are
interleaved (run 1 of every figure, then run 2, ...), so that drift of a
shared machine spreads over all of them.

Worker restarts or redelivered tasks during a corral measurement are listed
as incidents under the tables (and their daemon's logs kept); a submit or
source job that takes longer than 60 s + N / 10,000 s ends the benchmark
with the job's stats instead of hanging.

  --rss-tasks N   instead: push N tasks through one shm job with corralctl in
                  batches of --rss-batch and sample corrald's VmRSS after
                  each batch (and its peak during them).

Usage: bench/throughput.py [--build DIR] [--tasks N] [--runs R] [--quick]
                           [--client auto|corralctl|socket] [--json FILE]
       bench/throughput.py --rss-tasks 10000000 [--rss-batch 1000000]
Prints markdown tables and writes JSON with --json FILE.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

import proc_watch
from throughput_peers import (LATENCY_SAMPLES, LATENCY_WARMUP, PPE_SUBMIT_DIVISOR,
                              WORKERS, payload, peer_mp_queue, peer_pipe_latency, peer_pool,
                              peer_ppe_map, peer_ppe_submit, percentiles_us)
from bench_functions import tiny
from corral_daemon import Client, Daemon
from throughput_report import (FIGURES, figure, loadavg, machine, print_report, summary)


# The corral variants measured through a client: name -> the job's channel keys.
CHANNELS = {
    "shm": "channel: shm",
    # A hot worker: shm.spin 1ms, so that one task at a time finds the
    # worker and corrald polling, not asleep (docs/configuration.md).
    "shm-spin": "channel: shm\n    shm: {spin: 1ms}",
    # `shm` holds up to 4,096 tiny tasks per worker ahead of its results
    # (queue.prefetch: auto, the default), four of Pool.imap(chunksize=1000)'s
    # chunks, where the pool queues them all at once; this is a count of 64, SPEC's example and the default
    # before auto.
    "shm-prefetch64": "channel: shm\n    queue: {prefetch: 64}",
    # The same with every task and result committed to the job's spool
    # (queue.durable, durability crash) in the state_dir of the bench's temp dir.
    "shm-durable": "channel: shm\n    queue: {durable: true}",
    "pipe-length": "channel: pipe\n    pipe: {fds: extra, framing: length}",
    "pipe-lines": "channel: pipe\n    pipe: {fds: extra, framing: lines}",
}


# The task of the main line, on both sides: n * (n - 1) // 2 (tiny), which
# `corral-worker --handler triangle` computes in O(1) too.
MAIN_HANDLER = "triangle"


def loop(n):
    """The loop line's Python task: 0 + 1 + ... + (n-1) one addition at a time,
    what `corral-worker --handler sum` does in C++."""
    s = 0
    for i in range(n):
        s += i
    return s


LOOP_HANDLER = "sum"

TASK = {
    "main": "n * (n - 1) // 2 of the payload: corral-worker --handler triangle, "
            "the peers' bench_functions.tiny",
    "loop": "0 + 1 + ... + (n-1), one addition at a time (50 iterations on average): "
            "corral-worker --handler sum in C++, a Python loop in the peers",
}


# ---------------------------------------------------------------- corral side

def bench_daemon(build, job_keys, handler=MAIN_HANDLER):
    """corrald with one job, `bench`, of WORKERS corral-worker processes."""
    worker = os.path.abspath(os.path.join(build, "corral-worker"))
    return Daemon(build, f"  bench:\n    command: [{worker}, --handler, {handler}]\n"
                         f"    workers: {WORKERS}\n    start: {{settle: 0}}\n    {job_keys}\n")


def bench_workers(client):
    return client.request({"cmd": "status", "targets": ["bench"]})["workers"]


# Worker restarts and redeliveries seen during the measurements: a figure
# measured across one is not a clean one, so the report lists them.
INCIDENTS = []


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def corralctl_has_submit(build):
    out = subprocess.run([os.path.join(build, "corralctl"), "help"], capture_output=True,
                         text=True).stdout
    return any(line.split()[:1] == ["submit"] for line in out.splitlines())


def stall_timeout(tasks_file):
    """How long a submit may take before the benchmark calls it stuck: 10 k tasks/s."""
    with open(tasks_file, "rb") as f:
        return 60 + sum(1 for _ in f) / 10_000


SUBMIT_COMMAND = "corralctl submit bench - --wait < tasks.txt > results.txt"


def submit_corralctl(build, sock, tasks_file, on_poll=None):
    """`corralctl submit bench - --wait < tasks_file > results`, the whole command
    timed; returns (result lines, seconds). on_poll, if given, is called every
    20 ms while the command runs (on a thread: the clock stops when the
    command exits, not at the next poll)."""
    deadline = time.monotonic() + stall_timeout(tasks_file)
    results_file = tasks_file + ".results"
    done = threading.Event()
    stalled = []

    def watch():
        while not done.wait(0.02):
            if on_poll is not None:
                on_poll()
            if time.monotonic() > deadline:
                stalled.append(Client(sock).request({"cmd": "stats", "job": "bench"}))
                ctl.kill()
                return

    with open(tasks_file, "rb") as stdin, open(results_file, "wb") as stdout:
        t0 = time.perf_counter()
        ctl = subprocess.Popen([os.path.join(build, "corralctl"), "-s", sock, "submit", "bench",
                                "-", "--wait"], stdin=stdin, stdout=stdout)
        watcher = threading.Thread(target=watch)
        watcher.start()
        code = ctl.wait()
        elapsed = time.perf_counter() - t0
        done.set()
        watcher.join()
    if stalled:
        sys.exit(f"corralctl submit stalled; stats: {stalled[0]}")
    if code != 0:
        sys.exit(f"corralctl submit exited {code}")
    with open(results_file, "rb") as f:
        count = sum(1 for _ in f)
    os.unlink(results_file)
    return count, elapsed


def submit_socket(build, sock, tasks_file, on_poll=None):
    """The same stream spoken from Python (while corralctl has no submit)."""
    with open(tasks_file, "rb") as f:
        stream = b"".join(b"+" + line for line in f) + b".\n"
    t0 = time.perf_counter()
    client = Client(sock)
    client.sock.settimeout(stall_timeout(tasks_file))
    reply = client.request({"cmd": "submit", "job": "bench", "wait": True})
    if not reply["ok"]:
        sys.exit(f"submit: {reply}")
    writer = threading.Thread(target=client.sock.sendall, args=(stream,))
    writer.start()
    count = 0
    for line in client.file:
        if line.startswith(b'{"end"'):
            break
        count += 1
    writer.join()
    client.close()
    return count, time.perf_counter() - t0


class SubmitStream:
    """A persistent submit stream with --wait: one task at a time."""

    def __init__(self, sock):
        self.client = Client(sock)
        reply = self.client.request({"cmd": "submit", "job": "bench", "wait": True,
                                     "timing": True})
        if not reply["ok"]:
            sys.exit(f"submit: {reply}")

    def round_trip(self, n):
        """One task; corrald's own dispatch -> result time for it, in us."""
        self.client.sock.sendall(b"+%d\n" % n)
        result = json.loads(self.client.file.readline())
        if result.get("status") != "ok":
            sys.exit(f"task {n}: {result}")
        return result["run_us"]

    def close(self):
        self.client.sock.sendall(b".\n")
        while not json.loads(self.client.file.readline()).get("end"):
            pass
        self.client.close()


class CorralJob:
    """One running daemon per channel variant, kept for the whole benchmark."""

    def __init__(self, build, variant, submit, handler=MAIN_HANDLER):
        self.build, self.submit = build, submit
        self.variant = variant if handler == MAIN_HANDLER else f"{variant} ({handler})"
        self.daemon = bench_daemon(build, CHANNELS[variant], handler)
        self.client = self.daemon.start_running("bench", timeout_s=30)
        self.incidents = 0
        self.check("start")

    def check(self, what):
        """Notes worker restarts and redelivered tasks since the last check, and
        takes the current pids."""
        workers = bench_workers(self.client)
        stats = self.client.request({"cmd": "stats", "job": "bench"})["jobs"]["bench"]
        state = (sum(w["restarts"] for w in workers), stats["redelivered"], stats["dead"])
        if what != "start" and state != self.state:
            self.incidents += 1
            INCIDENTS.append({"variant": self.variant, "during": what,
                              "restarts": state[0] - self.state[0],
                              "redelivered": state[1] - self.state[1],
                              "dead": state[2] - self.state[2],
                              "workers": [w["description"] for w in workers]})
            print(f"INCIDENT: {INCIDENTS[-1]}", file=sys.stderr)
        self.state = state
        self.pids = {"corrald": self.daemon.proc.pid}
        for i, w in enumerate(workers):
            self.pids[f"worker{i}"] = w["pid"]

    def throughput(self, tasks_file, n):
        """Tasks/s of the whole client command, and the CPU each process used meanwhile."""
        before = {name: proc_watch.cpu_seconds(pid) for name, pid in self.pids.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        count, elapsed = self.submit(self.build, self.daemon.socket, tasks_file)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if count != n:
            sys.exit(f"{self.variant}: {count} results for {n} tasks")
        pids = self.pids
        self.check("throughput")
        # A worker replaced meanwhile has no figure.
        cpu = {name: (proc_watch.cpu_seconds(pid) - before[name]) / elapsed for name, pid in pids.items()
               if self.pids.get(name) == pid}
        # corralctl is the only child reaped meanwhile.
        cpu["client"] = (after.ru_utime + after.ru_stime - children.ru_utime -
                         children.ru_stime) / elapsed
        return n / elapsed, cpu

    def latency(self):
        """p50 and p99 of one task at a time: through the control socket (client ->
        corrald -> worker -> corrald -> client), and inside corrald (dispatch ->
        result, the run_us corrald reports)."""
        stream = SubmitStream(self.daemon.socket)
        for i in range(LATENCY_WARMUP):
            stream.round_trip(payload(i))
        samples, inner = [], []
        for i in range(LATENCY_SAMPLES):
            t0 = time.perf_counter_ns()
            inner.append(stream.round_trip(payload(i)) * 1e3)
            samples.append(time.perf_counter_ns() - t0)
        stream.close()
        self.check("latency")
        return percentiles_us(samples) + percentiles_us(inner)

    def close(self):
        self.client.close()
        self.daemon.stop(keep_logs=self.incidents > 0)


def corral_source(build, kind, n, tasks_file, handler=MAIN_HANDLER):
    """Tasks/s from the `start` of a source job (corrald up, the job not
    started: `autostart: false`) until stats shows ok == n, and the CPU
    corrald and the workers used meanwhile (shares of the wall time). The
    peers' pools are made before their clocks start; the workers' spawn is
    in this figure, corrald's own start (about 10 ms) is not."""
    keys = "autostart: false\n    channel: shm\n    source: "
    if kind == "range":
        daemon = bench_daemon(build, keys + f"{{range: {{from: 0, to: {n}}}}}", handler)
    elif kind == "range-sink":
        # The same with every result appended to a sink file in the daemon's
        # temp dir; the lines are counted at the end.
        sink = os.path.join(tempfile.mkdtemp(prefix="corral-bench-sink-"), "results.jsonl")
        daemon = bench_daemon(build, keys + f"{{range: {{from: 0, to: {n}}}}}"
                                     f"\n    sink: {{file: {sink}}}", handler)
    else:
        daemon = bench_daemon(build, keys + f"{{file: {tasks_file}}}", handler)
    client = daemon.start()
    request = {"cmd": "stats", "job": "bench"}
    if client.request(request)["jobs"]["bench"]["ok"] != 0:
        daemon.stop(keep_logs=True)
        sys.exit(f"source {kind}: tasks ran before the job was started")
    corrald_before = proc_watch.cpu_seconds(daemon.proc.pid)
    started = time.perf_counter()
    reply = client.request({"cmd": "start", "targets": ["bench"]})
    if not reply.get("ok"):
        daemon.stop(keep_logs=True)
        sys.exit(f"source {kind}: start failed: {reply}")
    deadline = time.monotonic() + 60 + n / 10_000
    while True:
        stats = client.request(request)["jobs"]["bench"]
        if time.monotonic() > deadline:
            daemon.stop(keep_logs=True)
            sys.exit(f"source {kind} stalled: {stats}")
        if stats["ok"] + stats["failed"] + stats["dead"] >= n:
            elapsed = time.perf_counter() - started
            break
        time.sleep(0.002)
    cpu = {"corrald": (proc_watch.cpu_seconds(daemon.proc.pid) - corrald_before) / elapsed}
    for i, pid in enumerate(daemon.worker_pids(client, "bench")):
        cpu[f"worker{i}"] = proc_watch.cpu_seconds(pid) / elapsed
    client.close()
    daemon.stop()
    if stats["ok"] != n:
        sys.exit(f"source {kind}: {stats}")
    if kind == "range-sink":
        with open(sink) as f:
            lines = sum(1 for _ in f)
        os.unlink(sink)
        os.rmdir(os.path.dirname(sink))
        if lines != n:
            sys.exit(f"source {kind}: {lines} sink lines for {n} tasks")
    return n / elapsed, cpu


# --------------------------------------------------------------- the load

def describe_load(n, client_name, command):
    """What the figures moved, and how: printed above them in the report."""
    submit = SUBMIT_COMMAND if client_name == "corralctl" else \
        "the submit stream spoken over the control socket from Python (--wait)"
    print(f"Load: {n:,} tasks, payload `i % 100` (the `range` source: `i`, 0..N-1), "
          f"{WORKERS} worker processes on each side, Python's peers forked. "
          f"Main line: `n * (n - 1) // 2` everywhere (`corral-worker --handler "
          f"{MAIN_HANDLER}`, the peers' Python function); the lines marked "
          f"\"50-iteration loop\": a Python loop in the peers, `--handler {LOOP_HANDLER}` "
          f"(the same loop in C++) in corral's workers.\n")
    print(f"Command: `{command}`; corral's end-to-end figures time the whole "
          f"`{submit}`; source jobs from the job's `start` (corrald up) until `stats` shows N ok.\n")



# ---------------------------------------------------------------- the runs

def run_throughput(args, submit, client_name, command):
    host = machine()
    n = args.tasks
    payloads = [payload(i) for i in range(n)]
    tmp = tempfile.TemporaryDirectory(prefix="corral-bench-tasks-")
    tasks_file = os.path.join(tmp.name, "tasks.txt")
    with open(tasks_file, "w") as f:
        f.write("".join(f"{p}\n" for p in payloads))

    measures = []   # (name, function returning {figure key: value})
    jobs = {variant: CorralJob(args.build, variant, submit) for variant in CHANNELS}
    # The loop line's corral side: the shm job with `sum`.
    jobs["shm_loop"] = CorralJob(args.build, "shm", submit, LOOP_HANDLER)
    cpu = {}   # figure key -> [{process: CPU share of the wall time}], one per run

    def corral_submit(variant):
        label = f"corral {variant}, {client_name} submit --wait"
        if variant.endswith("_loop"):
            label = f"corral {variant[:-5]} ({LOOP_HANDLER} handler), {client_name} submit --wait"
        key = figure(f"corral_{variant}", label, "tasks/s")

        def measure():
            rate, shares = jobs[variant].throughput(tasks_file, n)
            cpu.setdefault(key, []).append(shares)
            return {key: rate}
        return measure

    def corral_latency(variant):
        p50 = figure(f"corral_{variant}_rtt_p50", f"corral {variant} round trip p50", "us")
        p99 = figure(f"corral_{variant}_rtt_p99", f"corral {variant} round trip p99", "us")
        in50 = figure(f"corral_{variant}_inner_p50",
                      f"corral {variant} corrald -> worker -> corrald p50", "us")
        in99 = figure(f"corral_{variant}_inner_p99",
                      f"corral {variant} corrald -> worker -> corrald p99", "us")
        return lambda: dict(zip((p50, p99, in50, in99), jobs[variant].latency()))

    def source(kind, label, handler=MAIN_HANDLER):
        suffix = "" if handler == MAIN_HANDLER else "_loop"
        key = figure(f"corral_source_{kind}{suffix}", label, "tasks/s")

        def measure():
            rate, shares = corral_source(args.build, kind, n, tasks_file, handler)
            cpu.setdefault(key, []).append(shares)
            return {key: rate}
        return measure

    def peer(key, label, function, fn):
        figure(key, label, "tasks/s")
        return lambda: {key: function(payloads, fn)}

    for variant in CHANNELS:
        measures.append((f"corral {variant}", corral_submit(variant)))
    measures.append(("corral shm, sum", corral_submit("shm_loop")))
    measures.append(("corral source range", source(
        "range", f"corral source range 0..N-1, {MAIN_HANDLER} handler, from its start")))
    measures.append(("corral source range, sink", source(
        "range-sink", f"corral source range 0..N-1 into a sink file, {MAIN_HANDLER} handler, "
                      "from its start")))
    measures.append(("corral source file", source(
        "file", f"corral source file (i % 100), {MAIN_HANDLER} handler, from its start")))
    measures.append(("corral source file, sum", source(
        "file", f"corral source file (i % 100), {LOOP_HANDLER} handler, from its start",
        LOOP_HANDLER)))
    python_peers = [
        ("mp.Queue", "py_mp_queue", "multiprocessing.Queue, 1 producer, 2 consumers",
         peer_mp_queue),
        ("ProcessPoolExecutor.submit", "py_ppe_submit",
         f"ProcessPoolExecutor.submit, N/{PPE_SUBMIT_DIVISOR} tasks", peer_ppe_submit),
        ("ProcessPoolExecutor.map", "py_ppe_map", "ProcessPoolExecutor.map(chunksize=1000)",
         peer_ppe_map),
        ("Pool.imap", "py_pool_imap", "Pool.imap(chunksize=1000)", peer_pool("imap")),
        ("Pool.map", "py_pool_map", "Pool.map(chunksize=1000)", peer_pool("map")),
    ]
    for name, key, label, function in python_peers:
        measures.append((name, peer(key, label, function, tiny)))
    for name, key, label, function in python_peers:
        measures.append((f"{name}, loop", peer(f"{key}_loop", f"{label}, 50-iteration loop",
                                               function, loop)))
    for variant in CHANNELS:
        measures.append((f"corral {variant} round trip", corral_latency(variant)))
    p50 = figure("py_pipe_rtt_p50", "multiprocessing.Pipe ping-pong p50", "us")
    p99 = figure("py_pipe_rtt_p99", "multiprocessing.Pipe ping-pong p99", "us")
    measures.append(("Pipe ping-pong", lambda: dict(zip((p50, p99), peer_pipe_latency()))))

    samples = {}
    try:
        for run in range(args.runs):
            for name, measure in measures:
                print(f"run {run + 1}/{args.runs}: {name} ...", file=sys.stderr, flush=True)
                for key, value in measure().items():
                    samples.setdefault(key, []).append(value)
    finally:
        for job in jobs.values():
            job.close()
        tmp.cleanup()

    results = {key: summary(values) for key, values in samples.items()}
    rows, reference = print_report(results, cpu, n, host,
                                   lambda: describe_load(n, client_name, command))
    if INCIDENTS:
        print(f"\n**{len(INCIDENTS)} incident(s)**: worker restarts or redeliveries during the "
              "corral measurements above:")
        for incident in INCIDENTS:
            print(f"- {incident}")
    host["loadavg_at_end"] = loadavg()
    print(f"\nload average (1, 5, 15 min) at start {' '.join(host['loadavg_at_start'])}, "
          f"at end {' '.join(host['loadavg_at_end'])}; {host['cpus']} CPUs")
    return {"tasks": n, "ppe_submit_tasks": n // PPE_SUBMIT_DIVISOR, "runs": args.runs,
            "workers": WORKERS, "client": client_name, "machine": host,
            "task": TASK, "command": command,
            "submit_command": SUBMIT_COMMAND if client_name == "corralctl" else None,
            "figures": {k: dict(v, label=FIGURES[k][0], unit=FIGURES[k][1])
                        for k, v in results.items()},
            "comparisons": rows, "reference": reference, "cpu_share": cpu,
            "incidents": INCIDENTS}


def run_rss(args, submit, client_name):
    """corrald's RSS while args.rss_tasks tasks go through one shm job in batches."""
    batch = min(args.rss_batch, args.rss_tasks)
    tmp = tempfile.TemporaryDirectory(prefix="corral-bench-tasks-")
    job = CorralJob(args.build, "shm", submit)
    pid = job.daemon.proc.pid
    idle = rss_bytes(pid)
    after, peak = [], [idle]
    done = 0
    t0 = time.perf_counter()
    try:
        while done < args.rss_tasks:
            size = min(batch, args.rss_tasks - done)
            tasks_file = os.path.join(tmp.name, f"tasks-{size}.txt")
            if not os.path.exists(tasks_file):
                with open(tasks_file, "w") as f:
                    f.write("".join(f"{payload(i)}\n" for i in range(size)))
            count, _ = submit(args.build, job.daemon.socket, tasks_file,
                              on_poll=lambda: peak.append(rss_bytes(pid)))
            if count != size:
                sys.exit(f"batch: {count} results for {size} tasks")
            done += size
            job.check(f"batch ending at task {done}")
            after.append(rss_bytes(pid))
            print(f"{done:,} tasks: corrald RSS {after[-1] / 2**20:.1f} MiB", file=sys.stderr)
    finally:
        elapsed = time.perf_counter() - t0
        job.close()
        tmp.cleanup()
    within = max(after) <= after[0] * 1.10
    mib = lambda b: f"{b / 2**20:.1f} MiB"
    print(f"\n## corrald RSS, {done:,} tasks through one shm job in batches of {batch:,} "
          f"({client_name} submit --wait)\n")
    print("| idle | after first batch | after last batch | max after a batch "
          "| peak during batches | every batch within 10% of the first | last / first "
          "| tasks/s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {mib(idle)} | {mib(after[0])} | {mib(after[-1])} | {mib(max(after))} "
          f"| {mib(max(peak))} | {'yes' if within else 'NO'} | {after[-1] / after[0]:.2f} "
          f"| {done / elapsed:,.0f} |")
    for incident in INCIDENTS:
        print(f"- incident: {incident}")
    return {"tasks": done, "batch": batch, "client": client_name, "machine": machine(),
            "rss_idle": idle, "rss_after_batches": after, "rss_peak": max(peak),
            "within_10_percent": within, "tasks_per_s": done / elapsed, "incidents": INCIDENTS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N = 100,000 and 1 run")
    parser.add_argument("--client", choices=["auto", "corralctl", "socket"], default="auto",
                        help="what submits: corralctl (the figure to report), or the protocol "
                        "spoken from Python; auto: corralctl when its help lists submit")
    parser.add_argument("--rss-tasks", type=int, help="run the RSS check instead")
    parser.add_argument("--rss-batch", type=int, default=1_000_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.runs = 100_000, 1

    client = args.client
    if client == "auto":
        client = "corralctl" if corralctl_has_submit(args.build) else "socket"
    if client == "socket":
        print("note: submitting over the socket from Python, not with corralctl",
              file=sys.stderr)
    submit = submit_corralctl if client == "corralctl" else submit_socket

    if args.rss_tasks:
        report = run_rss(args, submit, client)
    else:
        command = " ".join(["bench/throughput.py", *sys.argv[1:]])
        report = run_throughput(args, submit, client, command)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
