#!/usr/bin/python3
"""The corral package against Python's own pools, side by side in one run.

    /usr/bin/python3 bench/python.py --build build-bench [--tasks 200000] [--runs 3]

The same Python functions everywhere, 2 worker processes each: a tiny one,
n * (n - 1) // 2, and a CPU-bound one of about 1 ms. corral runs them as
function workers (python3 -m corral.worker bench_functions:NAME, on the
shm channel, and the tiny one on pipes too) fed by corral.Executor.map, and
by Client.submit (completion order, no Futures); the peers are multiprocessing.Pool.map
and ProcessPoolExecutor.map, both with chunksize=1000 (10 for the CPU-bound
function, whose 2,000 tasks would be two chunks). Then one task at a
time: Executor.submit(...).result() in a loop against
ProcessPoolExecutor.submit(...).result(). Medians of --runs, interleaved.
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import corral  # noqa: E402
from bench_functions import cpu, tiny  # noqa: E402
from corral_daemon import Daemon  # noqa: E402


def jobs(build):
    path = f"{os.path.join(ROOT, 'python')}:{os.path.join(build, 'python')}:{HERE}"
    out = ""
    for name, function, channel in (("tiny", "tiny", "shm"), ("cpu", "cpu", "shm"),
                                    ("tiny-pipe", "tiny", "pipe")):
        out += (f"  {name}:\n    command: [/usr/bin/python3, -m, corral.worker, "
                f"\"bench_functions:{function}_text\"]\n    workers: 2\n"
                f"    channel: {channel}\n    queue: {{prefetch: 256}}\n"
                f"    env: {{PYTHONPATH: \"{path}\"}}\n")
    return out


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--tasks", type=int, default=200_000)
    ap.add_argument("--cpu-tasks", type=int, default=2000)
    ap.add_argument("--single", type=int, default=2000, help="tasks submitted one at a time")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    cpu_numbers = list(range(args.cpu_tasks))
    # One core's time per CPU-bound task, before any pool runs beside it.
    serial_cpu = min(timed(lambda: [cpu(n) for n in cpu_numbers[:200]]) for _ in range(3)) / 200
    build = os.path.abspath(args.build)
    daemon = Daemon(build, jobs(build))
    client = daemon.start_running("tiny")
    for job in ("cpu", "tiny-pipe"):
        client.request({"cmd": "wait", "job": job, "running": True, "timeout_s": 60})
    os.environ["CORRAL_SOCKET"] = daemon.socket
    payloads = [str(i % 100) for i in range(args.tasks)]
    client_submit = lambda tasks: corral.Client().submit("tiny", tasks)  # noqa: E731
    numbers = [i % 100 for i in range(args.tasks)]
    cpu_payloads = [str(i) for i in range(args.cpu_tasks)]
    figures = {}

    def note(name, seconds, n):
        figures.setdefault(name, []).append(n / seconds)

    try:
        with corral.Executor("tiny") as tiny_pool, corral.Executor("cpu") as cpu_pool, \
                corral.Executor("tiny-pipe") as pipe_pool, \
                multiprocessing.Pool(2) as pool, \
                concurrent.futures.ProcessPoolExecutor(2) as ppe:
            # Warm every pool once.
            list(tiny_pool.map(payloads[:1000]))
            list(pipe_pool.map(payloads[:1000]))
            pool.map(tiny, numbers[:1000], chunksize=100)
            list(ppe.map(tiny, numbers[:1000], chunksize=100))
            for _ in range(args.runs):
                note("tiny: corral Executor.map", timed(lambda: list(tiny_pool.map(payloads))),
                     args.tasks)
                note("tiny: corral Executor.map, pipe workers",
                     timed(lambda: list(pipe_pool.map(payloads))), args.tasks)
                note("tiny: corral Client.submit (results in completion order)",
                     timed(lambda: sum(1 for _ in client_submit(payloads))), args.tasks)
                note("tiny: Pool.map(chunksize=1000)",
                     timed(lambda: pool.map(tiny, numbers, chunksize=1000)), args.tasks)
                note("tiny: ProcessPoolExecutor.map(chunksize=1000)",
                     timed(lambda: list(ppe.map(tiny, numbers, chunksize=1000))), args.tasks)
                note("cpu: corral Executor.map", timed(lambda: list(cpu_pool.map(cpu_payloads))),
                     args.cpu_tasks)
                # A chunk of 1000 would give one worker every CPU-bound task.
                note("cpu: Pool.map(chunksize=10)",
                     timed(lambda: pool.map(cpu, cpu_numbers, chunksize=10)), args.cpu_tasks)
                note("one at a time: corral Executor.submit().result()",
                     timed(lambda: [tiny_pool.submit("7").result()
                                    for _ in range(args.single)]), args.single)
                note("one at a time: ProcessPoolExecutor.submit().result()",
                     timed(lambda: [ppe.submit(tiny, 7).result()
                                    for _ in range(args.single)]), args.single)
    finally:
        daemon.stop()

    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"\n## Python: corral.Executor against Python's pools (2 workers, median of "
          f"{args.runs}; load {load[0]:.2f} at start)\n")
    print("| figure | tasks/s | runs |")
    print("|---|---|---|")
    for name, rates in figures.items():
        print(f"| {name} | {med[name]:,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |")
    ideal = 2 / serial_cpu
    print(f"\n- tiny: corral / Pool.map = "
          f"{med['tiny: corral Executor.map'] / med['tiny: Pool.map(chunksize=1000)']:.2f}x")
    print(f"- cpu (one task {serial_cpu * 1000:.2f} ms serial): corral at "
          f"{med['cpu: corral Executor.map'] / ideal * 100:.0f}% of ideal 2-core scaling "
          f"({ideal:,.0f} tasks/s), Pool.map at "
          f"{med['cpu: Pool.map(chunksize=10)'] / ideal * 100:.0f}%")
    print(f"- one at a time: corral / ProcessPoolExecutor = "
          f"{med['one at a time: corral Executor.submit().result()'] / med['one at a time: ProcessPoolExecutor.submit().result()']:.1f}x")


if __name__ == "__main__":
    main()
