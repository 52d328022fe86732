"""Celery and RQ on a RedisServer, as bench/scale_out.py runs them: the same
tiny task, 2 worker processes, end to end and under faults."""
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from redis_server import RedisServer, diff


# ---------------------------------------------------------------------------
# Celery

CELERY_APP = """
import os
from celery import Celery
url = "redis+socket://" + os.environ["BENCH_REDIS_SOCKET"]
app = Celery("bench_tasks", broker=url, backend=url)
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=4,
                task_reject_on_worker_lost=True, result_expires=3600,
                broker_connection_retry_on_startup=True)

@app.task
def tiny(n):
    return n * (n - 1) // 2
"""


class CeleryWorker:
    def __init__(self, server, workdir):
        self.env = dict(os.environ, BENCH_REDIS_SOCKET=server.socket, PYTHONPATH=workdir)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "celery", "-A", "bench_tasks", "worker", "--pool=prefork",
             "--concurrency=2", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=workdir, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def children(self):
        try:
            return [int(p) for p in
                    open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()]
        except OSError:
            return []

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def celery_setup(server):
    workdir = tempfile.mkdtemp(prefix="corral-bench-celery-")
    with open(os.path.join(workdir, "bench_tasks.py"), "w") as f:
        f.write(CELERY_APP)
    os.environ["BENCH_REDIS_SOCKET"] = server.socket
    sys.path.insert(0, workdir)
    import importlib
    if "bench_tasks" in sys.modules:
        del sys.modules["bench_tasks"]
    module = importlib.import_module("bench_tasks")
    sys.path.pop(0)
    return workdir, module


def celery_wait(results, timeout):
    lost = 0
    deadline = time.time() + timeout
    for res in results:
        left = deadline - time.time()
        try:
            res.get(timeout=max(left, 0.01))
        except Exception:  # noqa: BLE001 (a timeout, or the task's failure)
            lost += 1
    return lost


def run_celery(n):
    server = RedisServer()
    workdir, module = celery_setup(server)
    worker = CeleryWorker(server, workdir)
    try:
        # Warm: the pool is up once a task comes back.
        module.tiny.delay(3).get(timeout=60)
        before = server.commands()
        cpu_before = server.cpu_s()
        start = time.perf_counter()
        results = [module.tiny.delay(i % 100) for i in range(n)]
        lost = celery_wait(results, timeout=600)
        seconds = time.perf_counter() - start
        del results
        gc.collect()
        commands = diff(server.commands(), before)
        return {"tasks_per_s": n / seconds, "seconds": seconds, "lost": lost,
                "commands_per_task": {k: v / n for k, v in sorted(commands.items())},
                "cpu_s_per_1000": {"redis": 1000 * (server.cpu_s() - cpu_before) / n}}
    finally:
        worker.stop()
        module.app.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def celery_faults(n, wait_s):
    out = {}
    for fault in ("worker", "node"):
        server = RedisServer()
        workdir, module = celery_setup(server)
        worker = CeleryWorker(server, workdir)
        try:
            module.tiny.delay(3).get(timeout=60)
            results = [module.tiny.delay(i % 100) for i in range(n)]
            while sum(1 for r in results[: n // 3] if r.ready()) < n // 4:
                time.sleep(0.01)
            if fault == "worker":
                os.kill(worker.children()[0], signal.SIGKILL)
            else:
                # The whole worker node: its main process and its pool, then a
                # new worker, as a supervisor would start one.
                worker.stop()
                worker = CeleryWorker(server, workdir)
            lost = celery_wait(results, timeout=wait_s)
            del results
            gc.collect()
            out[fault] = {"lost": lost, "waited_s": wait_s}
        finally:
            worker.stop()
            module.app.close()
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------
# RQ

RQ_TASKS = """
def tiny(n):
    return n * (n - 1) // 2
"""


def rq_setup():
    workdir = tempfile.mkdtemp(prefix="corral-bench-rq-")
    with open(os.path.join(workdir, "rq_tasks.py"), "w") as f:
        f.write(RQ_TASKS)
    return workdir


def rq_workers(server, workdir, count, simple=False):
    kind = ["--worker-class", "rq.worker.SimpleWorker"] if simple else []
    return [subprocess.Popen(["/usr/bin/python3", "-m", "rq.cli", "worker", "--url",
                              f"unix://{server.socket}", "--quiet", *kind, "bench"],
                             cwd=workdir, env=dict(os.environ, PYTHONPATH=workdir),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            for _ in range(count)]


def rq_stop(workers):
    for w in workers:
        try:
            os.killpg(w.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        w.wait()


def rq_wait(queue, jobs, timeout):
    from rq.job import Job
    pending = {j.id for j in jobs}
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        fetched = Job.fetch_many(list(pending)[:1000], connection=queue.connection)
        for job in fetched:
            if job is not None and job.get_status(refresh=False) == "finished":
                pending.discard(job.id)
        time.sleep(0.01)
    return len(pending)


def run_rq(n, simple=False):
    from rq import Queue
    server = RedisServer()
    workdir = rq_setup()
    workers = rq_workers(server, workdir, 2, simple)
    sys.path.insert(0, workdir)
    try:
        queue = Queue("bench", connection=server.client())
        import rq_tasks
        before = server.commands()
        start = time.perf_counter()
        jobs = [queue.enqueue(rq_tasks.tiny, i % 100) for i in range(n)]
        lost = rq_wait(queue, jobs, timeout=600)
        seconds = time.perf_counter() - start
        commands = diff(server.commands(), before)
        return {"tasks_per_s": n / seconds, "seconds": seconds, "lost": lost,
                "commands_per_task": {k: v / n for k, v in sorted(commands.items())}}
    finally:
        sys.path.remove(workdir)
        rq_stop(workers)
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def rq_faults(n, wait_s):
    from rq import Queue
    out = {}
    for fault in ("worker", "node"):
        server = RedisServer()
        workdir = rq_setup()
        workers = rq_workers(server, workdir, 2)
        sys.path.insert(0, workdir)
        try:
            queue = Queue("bench", connection=server.client())
            import rq_tasks
            jobs = [queue.enqueue(rq_tasks.tiny, i % 100) for i in range(n)]
            while queue.count > n * 2 // 3:
                time.sleep(0.01)
            victim = workers[0]
            if fault == "worker":
                # The work horse: the child RQ forks for the job it runs.
                children = open(f"/proc/{victim.pid}/task/{victim.pid}/children").read().split()
                os.kill(int(children[0]) if children else victim.pid, signal.SIGKILL)
            else:
                os.killpg(victim.pid, signal.SIGKILL)
                workers[0] = rq_workers(server, workdir, 1)[0]
            lost = rq_wait(queue, jobs, timeout=wait_s)
            out[fault] = {"lost": lost, "waited_s": wait_s}
        finally:
            sys.path.remove(workdir)
            rq_stop(workers)
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return out
