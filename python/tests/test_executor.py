"""corral.Executor against the documented semantics of concurrent.futures
(result order, exceptions, timeouts, cancel, shutdown, wait and
as_completed), with a real corrald and real workers; a worker killed under
map loses nothing and gives nothing twice; a daemon gone mid-map is an
exception, not a hang."""
import concurrent.futures
import os
import signal
import threading
import time

import pytest

import corral
from conftest import worker


def jobs(handler="sum", extra=""):
    return f"""  sums:
    command: {worker("--handler", handler, "--crash-on", "poison")}
    workers: 2
    channel: shm
    restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
{extra}"""


def sum_below(n):
    return str(n * (n - 1) // 2)


@pytest.fixture
def executor(start_daemon):
    d = start_daemon(jobs())
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    with corral.Executor("sums", socket=d.socket) as pool:
        yield pool


def test_map_gives_the_results_in_input_order(executor):
    payloads = [str(i % 1000) for i in range(20_000)]
    assert list(executor.map(payloads)) == [sum_below(i % 1000) for i in range(20_000)]


def test_maps_and_submitted_futures_on_one_stream_each_get_their_own_results(executor):
    # Their seqs interleave in one stream, and corrald packs ok results in
    # batches that run across them: each batch is split at every edge.
    maps = []

    def mapper(offset):
        maps.append((offset, list(executor.map([str((i + offset) % 1000) for i in range(30_000)]))))

    threads = [threading.Thread(target=mapper, args=(offset,)) for offset in (0, 7)]
    for t in threads:
        t.start()
    futures = [executor.submit(str(n % 1000)) for n in range(3_000)]
    for t in threads:
        t.join()
    assert [f.result(timeout=60) for f in futures] == [sum_below(n % 1000) for n in range(3_000)]
    assert len(maps) == 2
    for offset, results in maps:
        assert results == [sum_below((i + offset) % 1000) for i in range(30_000)]


def test_submit_returns_futures_that_wait_and_as_completed_understand(executor):
    futures = [executor.submit(str(n)) for n in range(100)]
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done and len(done) == 100
    assert sorted(int(f.result()) for f in concurrent.futures.as_completed(futures)) == \
        sorted(int(sum_below(n)) for n in range(100))
    assert futures[7].result() == sum_below(7)
    assert futures[7].done() and not futures[7].cancelled()


def test_a_failed_task_raises_from_its_future_and_map(executor):
    future = executor.submit("not a number")
    with pytest.raises(corral.TaskFailed, match="not a number") as info:
        future.result(timeout=30)
    assert info.value.attempts == 1
    assert isinstance(future.exception(), corral.TaskFailed)
    results = executor.map(["1", "x", "3"])
    assert next(results) == "0"
    with pytest.raises(corral.TaskFailed):
        next(results)


def test_a_task_that_kills_its_worker_each_time_raises_task_dead(executor):
    with pytest.raises(corral.TaskDead) as info:
        executor.submit("poison").result(timeout=60)
    assert info.value.attempts == 3
    assert executor.submit("5").result(timeout=30) == sum_below(5)  # the pool goes on


def test_map_times_out_from_the_call(start_daemon):
    d = start_daemon(jobs("sleep"))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    with corral.Executor("sums", socket=d.socket) as pool:
        started = time.monotonic()
        results = pool.map(["3000", "3000"], timeout=0.5)
        with pytest.raises(concurrent.futures.TimeoutError):
            next(results)
        assert time.monotonic() - started < 2.5
        results.close()


def test_cancel_and_shutdown(start_daemon):
    # One slow worker, a queue of 2: most submits wait in the executor, unsent.
    d = start_daemon(jobs("sleep", "    queue: {capacity: 2, prefetch: 1}\n").replace(
        "workers: 2", "workers: 1"))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    pool = corral.Executor("sums", socket=d.socket, window=4)
    futures = [pool.submit("300") for _ in range(20)]
    time.sleep(0.3)
    last = futures[-1]
    assert last.cancel()
    assert last.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        last.result()
    assert futures[0].result(timeout=30) == "ok"
    pool.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in futures)
    cancelled = [f for f in futures if f.cancelled() or isinstance(f.exception(),
                                                                   concurrent.futures.CancelledError)]
    assert len(cancelled) >= 10  # most never ran
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit("1")


def test_shutdown_waits_for_every_result(start_daemon):
    d = start_daemon(jobs("sleep"))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    pool = corral.Executor("sums", socket=d.socket)
    futures = [pool.submit("20") for _ in range(20)]
    pool.shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == ["ok"] * 20


def test_a_worker_killed_under_map_loses_nothing_and_gives_nothing_twice(start_daemon):
    d = start_daemon(jobs())
    client = corral.Client(d.socket, timeout=30)
    client.wait("sums", running=True, timeout=30)
    victim = client.status("sums:0")[0]["pid"]
    killer = threading.Timer(0.05, lambda: os.kill(victim, signal.SIGKILL))
    killer.start()
    with corral.Executor("sums", socket=d.socket) as pool:
        results = list(pool.map([str(i % 1000) for i in range(200_000)]))
    killer.join()
    assert results == [sum_below(i % 1000) for i in range(200_000)]
    assert client.status("sums:0")[0]["pid"] != victim  # it really died, and came back


def test_bad_input_unknown_job_and_a_daemon_gone_mid_map(start_daemon, tmp_path):
    d = start_daemon(jobs("sleep"))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    with pytest.raises(corral.NoSuchJob, match="no such job: nope"):
        corral.Executor("nope", socket=d.socket).submit("1")
    with corral.Executor("sums", socket=d.socket) as pool:
        with pytest.raises(ValueError, match="newline"):
            pool.submit("a\nb")
    with pytest.raises(corral.ConnectionFailed):
        corral.Executor("sums", socket=str(tmp_path / "none.sock")).submit("1")
    pool = corral.Executor("sums", socket=d.socket)
    results = pool.map(["30"] * 200)
    assert next(results) == "ok"
    os.kill(d.proc.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(corral.ConnectionLost):
        for _ in results:
            pass
    assert time.monotonic() - started < 10
    pool.shutdown(wait=True)


def test_an_oversized_payload_is_a_failed_future_not_a_broken_pool(start_daemon):
    d = start_daemon(jobs(extra="    queue: {max_task_bytes: 64}\n"))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    with corral.Executor("sums", socket=d.socket) as pool:
        too_big = pool.submit("9" * 100)
        with pytest.raises(corral.TaskFailed, match="exceeds queue.max_task_bytes \\(64\\)"):
            too_big.result(timeout=30)
        assert pool.submit("6").result(timeout=30) == sum_below(6)
