"""The Python side of bench/throughput.py: multiprocessing's queues, pools
and executors running the same tasks as corral's workers, each timed
alone in forked processes, and a Pipe ping-pong for latency."""
import concurrent.futures
import multiprocessing
import time

from bench_functions import tiny

WORKERS = 2
CHUNKSIZE = 1000
PPE_SUBMIT_DIVISOR = 20        # ProcessPoolExecutor.submit runs N / 20 tasks
LATENCY_SAMPLES = 2000
LATENCY_WARMUP = 200


def payload(i):
    return i % 100


def percentiles_us(samples_ns):
    s = sorted(samples_ns)
    return s[len(s) // 2] / 1e3, s[min(len(s) - 1, int(len(s) * 0.99))] / 1e3


FORK = multiprocessing.get_context("fork")


def queue_consumer(tasks, results, fn):
    while True:
        n = tasks.get()
        if n is None:
            return
        results.put(fn(n))


def peer_mp_queue(payloads, fn):
    tasks, results = FORK.Queue(), FORK.Queue()
    consumers = [FORK.Process(target=queue_consumer, args=(tasks, results, fn))
                 for _ in range(WORKERS)]
    for c in consumers:
        c.start()
    t0 = time.perf_counter()
    for n in payloads:
        tasks.put(n)
    for _ in consumers:
        tasks.put(None)
    for _ in payloads:
        results.get()
    elapsed = time.perf_counter() - t0
    for c in consumers:
        c.join()
    return len(payloads) / elapsed


def peer_ppe_submit(payloads, fn):
    payloads = payloads[:len(payloads) // PPE_SUBMIT_DIVISOR]
    with concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=FORK) as pool:
        for f in [pool.submit(fn, 0) for _ in range(4 * WORKERS)]:
            f.result()
        t0 = time.perf_counter()
        futures = [pool.submit(fn, n) for n in payloads]
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - t0
    return len(payloads) / elapsed


def peer_ppe_map(payloads, fn):
    with concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=FORK) as pool:
        list(pool.map(fn, [0] * 4 * WORKERS))
        t0 = time.perf_counter()
        count = sum(1 for _ in pool.map(fn, payloads, chunksize=CHUNKSIZE))
        elapsed = time.perf_counter() - t0
    assert count == len(payloads)
    return count / elapsed


def peer_pool(method):
    def measure(payloads, fn):
        with FORK.Pool(WORKERS) as pool:
            pool.map(fn, [0] * 4 * WORKERS)
            t0 = time.perf_counter()
            count = sum(1 for _ in getattr(pool, method)(fn, payloads, chunksize=CHUNKSIZE))
            elapsed = time.perf_counter() - t0
        assert count == len(payloads)
        return count / elapsed
    return measure


def pipe_echo(conn):
    while True:
        n = conn.recv()
        if n is None:
            return
        conn.send(tiny(n))


def peer_pipe_latency():
    ours, theirs = FORK.Pipe()
    child = FORK.Process(target=pipe_echo, args=(theirs,))
    child.start()
    for i in range(LATENCY_WARMUP):
        ours.send(payload(i))
        ours.recv()
    samples = []
    for i in range(LATENCY_SAMPLES):
        t0 = time.perf_counter_ns()
        ours.send(payload(i))
        ours.recv()
        samples.append(time.perf_counter_ns() - t0)
    ours.send(None)
    child.join()
    return percentiles_us(samples)
