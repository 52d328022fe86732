#!/usr/bin/python3
"""corral's broker jobs against Celery and RQ on the same Redis and the same tiny tasks.

    bench/scale_out.py --build build-bench [--tasks 20000] [--runs 3] [--json out.json]

One redis-server of its own (a temp dir, a Unix socket, appendonly yes,
appendfsync everysec), fresh for each run. Each system runs the same task,
the O(1) function n * (n - 1) // 2 of a payload i % 100, with 2 worker
processes unless said otherwise; a producer adds every task, then the time
runs until every result is in Redis:

  corral 1 node   one corrald, 2 workers; tasks XADDed by redis-py (pipelined,
                  as any producer would), results read from the results stream
  corral 3 nodes  three corralds of 2 workers each (6 workers on this machine)
  corral python   one corrald, 2 Python workers (corral_worker.serve, pipes):
                  the function in Python, as the peers run it
  celery          Celery 5 (Debian), Redis broker and result backend, prefork
                  pool of 2, acks_late, prefetch 4; delay() then get()
  rq              RQ (Debian), 2 `rq worker` processes (a fork per job, RQ's
                  default); enqueue() then polling the jobs

Then the faults: a kill -9 of one worker process mid-run, and of a whole
node (corrald with its workers, or Celery's main process with its pool, or
an RQ worker), counting the tasks that have no result 30 s (or claim_idle +
a margin) later, and for corral how long after the kill the dead node's
tasks finished elsewhere. Redis commands per task come from INFO
commandstats; CPU per process from /proc.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corral_daemon import Daemon  # noqa: E402
from redis_server import RedisServer, diff, proc_cpu_s  # noqa: E402
from scale_out_peers import celery_faults, rq_faults, run_celery, run_rq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------------------
# corral

def corral_jobs(url, consumer, workers, python_worker, build, claim_idle="30s"):
    if python_worker:
        command = (f"[/usr/bin/python3, {os.path.join(HERE, 'scale_out_worker.py')}]")
        channel = "pipe"
        env = f"    env: {{PYTHONPATH: {os.path.join(ROOT, 'python')}}}\n"
    else:
        command = f"[{os.path.join(build, 'corral-worker')}, --handler, sum]"
        channel = "shm"
        env = ""
    return textwrap.indent(textwrap.dedent(f"""\
        tiny:
          command: {command}
          workers: {workers}
          channel: {channel}
          queue: {{prefetch: 256}}
          restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
          broker: {{redis: {{url: "{url}", consumer: {consumer}, claim_idle: {claim_idle}}}}}
        """), "  ") + env


class CorralCluster:
    def __init__(self, build, server, nodes, workers, python_worker=False, claim_idle="30s"):
        self.daemons = []
        for i in range(nodes):
            d = Daemon(build, corral_jobs(server.url, f"node-{i}", workers, python_worker, build,
                                          claim_idle))
            client = d.start_running("tiny")
            client.close()
            self.daemons.append(d)

    def pids(self):
        return [d.proc.pid for d in self.daemons if d.proc and d.proc.poll() is None]

    def worker_pids(self, node=0):
        out = self.daemons[node].ctl("status", "--json")
        return [w["pid"] for w in json.loads(out.stdout) if w.get("pid")]

    def stop(self):
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.stop()


def corral_produce(r, n):
    ids = []
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd("corral:tiny", {"payload": str(i % 100)})
        if len(pipe) >= 1000:
            ids += pipe.execute()
    ids += pipe.execute()
    return ids


def corral_wait(r, ids, timeout, watched=()):
    """Reads the results stream until every id has a result; lost = those
    without. With WATCHED (ids), also when the last of them got its result."""
    wanted = set(ids)
    watched = set(watched)
    watched_first_at = None
    watched_done_at = None
    last = b"0-0"
    deadline = time.time() + timeout
    wrong = 0
    while wanted and time.time() < deadline:
        got = r.xread({"corral:tiny:results": last}, count=10000, block=200)
        for _stream, entries in got or []:
            for entry_id, fields in entries:
                last = entry_id
                task = fields.get(b"task")
                if task in wanted:
                    wanted.discard(task)
                    if fields.get(b"status") != b"ok":
                        wrong += 1
                if watched and task in watched:
                    # When Redis wrote it: its id's milliseconds (the reader
                    # may be behind).
                    written_ms = int(entry_id.split(b"-")[0])
                    watched.discard(task)
                    if watched_first_at is None:
                        watched_first_at = written_ms
                    if not watched:
                        watched_done_at = written_ms
    if watched_done_at is not None:
        return len(wanted), wrong, watched_first_at, watched_done_at
    return len(wanted), wrong


def run_corral(build, n, nodes, workers, python_worker=False, drain=False):
    """End to end (a producer adds while the nodes run), or DRAIN: the tasks
    are in the stream before the nodes start, and the time runs from their
    launch to the last result (what the nodes can take, without the producer)."""
    server = RedisServer()
    r = server.client()
    cluster = None
    try:
        if drain:
            ids = corral_produce(r, n)
        before = server.commands()
        redis_before = server.cpu_s()
        self_before = time.process_time()
        start = time.perf_counter()
        cluster = CorralCluster(build, server, nodes, workers, python_worker)
        if not drain:
            ids = corral_produce(r, n)
        lost, wrong = corral_wait(r, ids, timeout=300)
        seconds = time.perf_counter() - start
        commands = diff(server.commands(), before)
        cpu = {"redis": server.cpu_s() - redis_before,
               "corrald": sum(proc_cpu_s(p) for p in cluster.pids()),
               "workers": sum(proc_cpu_s(w) for i in range(nodes) for w in cluster.worker_pids(i)),
               # This script: the producer (end to end only) and the results' reader.
               "bench client": time.process_time() - self_before}
        return {"tasks_per_s": n / seconds, "seconds": seconds, "lost": lost, "failed": wrong,
                "commands_per_task": {k: v / n for k, v in sorted(commands.items())},
                "cpu_us_per_task": {k: 1e6 * v / n for k, v in cpu.items()}}
    finally:
        if cluster:
            cluster.stop()
        server.stop()


def corral_faults(build, n):
    """kill -9 of a worker process, then of a whole node, mid-run."""
    out = {}
    for fault in ("worker", "node"):
        server = RedisServer()
        # The tasks first, so that the kill comes while both nodes are busy.
        r = server.client()
        ids = corral_produce(r, n)
        cluster = CorralCluster(build, server, 2, 2, claim_idle="2s")
        try:
            while r.xlen("corral:tiny:results") < n // 3:
                time.sleep(0.001)
            killed_at = time.perf_counter()
            seconds, micros = r.time()  # Redis's clock, that of the results' ids
            killed_ms = seconds * 1000 + micros // 1000
            held = []
            if fault == "worker":
                os.kill(cluster.worker_pids(0)[0], signal.SIGKILL)
            else:
                pids = cluster.worker_pids(0)
                os.kill(cluster.daemons[0].proc.pid, signal.SIGKILL)
                # What the dead node held: pending under its name.
                held = [p["message_id"] for p in
                        r.xpending_range("corral:tiny", "corral", "-", "+", 1000000, "node-0")]
                for pid in pids:  # they die with it (PR_SET_PDEATHSIG); make sure
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            waited = corral_wait(r, ids, timeout=60, watched=held)
            lost = waited[0]
            out[fault] = {"lost": lost, "all_done_s_after_kill": time.perf_counter() - killed_at,
                          "claim_idle_s": 2, "held_by_killed_node": len(held)}
            if len(waited) == 4:
                out[fault]["its_first_task_done_s_after_kill"] = (waited[2] - killed_ms) / 1000
                out[fault]["its_tasks_done_s_after_kill"] = (waited[3] - killed_ms) / 1000
        finally:
            cluster.stop()
            server.stop()
    return out


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--tasks", type=int, default=20000, help="tasks per corral run")
    ap.add_argument("--peer-tasks", type=int, default=3000, help="tasks per Celery or RQ run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fault-tasks", type=int, default=3000, help="per peer fault run")
    ap.add_argument("--corral-fault-tasks", type=int, default=200000,
                    help="per corral fault run: enough that the kill comes mid-run")
    ap.add_argument("--fault-wait", type=float, default=30.0,
                    help="seconds a peer gets to finish after a fault")
    ap.add_argument("--only", choices=["throughput", "faults"],
                    help="one of the two comparisons (each is side by side on its own)")
    ap.add_argument("--json")
    args = ap.parse_args()
    build = os.path.abspath(args.build)

    load = os.getloadavg()
    systems = {
        "corral 1 node (2 C++ workers)": lambda: run_corral(build, args.tasks, 1, 2),
        "corral 3 nodes (2 C++ workers each)": lambda: run_corral(build, args.tasks, 3, 2),
        "corral 1 node (2 Python workers)": lambda: run_corral(build, args.tasks, 1, 2, True),
        "corral 1 node, drain (2 C++ workers)":
            lambda: run_corral(build, args.tasks, 1, 2, drain=True),
        "corral 3 nodes, drain (2 C++ workers each)":
            lambda: run_corral(build, args.tasks, 3, 2, drain=True),
        "celery (prefork 2, acks_late)": lambda: run_celery(args.peer_tasks),
        "rq (2 workers, a fork per job)": lambda: run_rq(args.peer_tasks // 10),
        "rq (2 SimpleWorkers, no fork)": lambda: run_rq(args.peer_tasks, simple=True),
    }
    figures = {}
    report = {"load_at_start": load, "tasks": args.tasks, "peer_tasks": args.peer_tasks,
              "systems": {}}
    if args.only != "faults":
        throughput(args, systems, figures, report)
    if args.only != "throughput":
        faults(args, build, report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    # Celery's AsyncResults complain at interpreter exit once their Redis is
    # gone; everything is written.
    sys.stdout.flush()
    os._exit(0)


def throughput(args, systems, figures, report):
    load = report["load_at_start"]
    for run in range(args.runs):
        for name, fn in systems.items():  # interleaved, so that a slow minute hits all
            r = fn()
            figures.setdefault(name, []).append(r)
            print(f"run {run + 1}: {name}: {r['tasks_per_s']:.0f} tasks/s, lost {r['lost']}",
                  file=sys.stderr)
    celery_median = statistics.median(x["tasks_per_s"] for x in figures["celery (prefork 2, acks_late)"])
    print(f"\n## Scale-out: tiny tasks through Redis (n * (n - 1) // 2), median of {args.runs}")
    print(f"load average at start {load[0]:.2f}\n")
    print("| system | tasks/s (median) | runs | vs Celery | lost | Redis commands per task |")
    print("|---|---|---|---|---|---|")
    for name, runs in figures.items():
        rates = [x["tasks_per_s"] for x in runs]
        median = statistics.median(rates)
        per_task = runs[-1]["commands_per_task"]
        total = sum(per_task.values())
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_task.items(), key=lambda kv: -kv[1])[:5])
        print(f"| {name} | {median:,.0f} | {', '.join(f'{x:,.0f}' for x in rates)} | "
              f"{median / celery_median:.1f}x | {sum(x['lost'] for x in runs)} | "
              f"{total:.2f} ({top}) |")
        report["systems"][name] = {"median_tasks_per_s": median, "runs": runs}
    for name in ("corral 1 node, drain (2 C++ workers)",
                 "corral 3 nodes, drain (2 C++ workers each)"):
        cpu = figures[name][-1]["cpu_us_per_task"]
        print(f"\nCPU per task, {name}: " + ", ".join(f"{k} {v:.2f} us" for k, v in cpu.items()))


def faults(args, build, report):
    faults = {"corral (2 nodes, claim_idle 2s)": corral_faults(build, args.corral_fault_tasks),
              "celery": celery_faults(args.fault_tasks // 3, args.fault_wait),
              "rq": rq_faults(args.fault_tasks // 3, args.fault_wait)}
    print("\n## Faults mid-run: tasks without a result\n")
    print("| system | kill -9 of a worker process | kill -9 of a whole node |")
    print("|---|---|---|")
    for name, f in faults.items():
        def cell(x):
            text = f"{x['lost']} lost"
            if "all_done_s_after_kill" in x:
                text += f", all done {x['all_done_s_after_kill']:.1f} s after the kill"
            if x.get("held_by_killed_node"):
                text += (f"; of the {x['held_by_killed_node']} tasks it held, the first done "
                         f"elsewhere {x['its_first_task_done_s_after_kill']:.1f} s after the "
                         f"kill, the last {x['its_tasks_done_s_after_kill']:.1f} s "
                         f"(claim_idle {x['claim_idle_s']} s)")
            if "waited_s" in x:
                text += f" after {x['waited_s']:.0f} s"
            return text
        print(f"| {name} | {cell(f['worker'])} | {cell(f['node'])} |")
    report["faults"] = faults


if __name__ == "__main__":
    main()
