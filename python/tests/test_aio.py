"""corral.aio against a real corrald: run() from many coroutines at once on
one shared stream, submit() as an async iterator, failures as exceptions,
and a daemon gone mid-stream as ConnectionLost, never a hang."""
import asyncio
import os
import signal
import time

import pytest

import corral
import corral.aio
from conftest import worker


def jobs(handler="sum"):
    return f"""  sums:
    command: {worker("--handler", handler, "--crash-on", "poison")}
    workers: 2
    channel: shm
    restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
"""


def sum_below(n):
    return str(n * (n - 1) // 2)


def started(start_daemon, handler="sum"):
    d = start_daemon(jobs(handler))
    corral.Client(d.socket, timeout=30).wait("sums", running=True, timeout=30)
    return d


def test_run_from_many_coroutines_shares_one_stream(start_daemon):
    d = started(start_daemon)

    async def main():
        async with corral.aio.Client(d.socket) as client:
            assert await client.run("sums", "10") == sum_below(10)
            answers = await asyncio.gather(*(client.run("sums", str(n % 100))
                                             for n in range(2000)))
            assert answers == [sum_below(n % 100) for n in range(2000)]
            with pytest.raises(corral.TaskFailed, match="not a number"):
                await client.run("sums", "not a number")
            with pytest.raises(corral.TaskDead):
                await client.run("sums", "poison")
            assert (await client.stats("sums"))["ok"] == 2001
            workers = await client.status("sums")
            assert [w["name"] for w in workers] == ["sums:0", "sums:1"]
    asyncio.run(main())


def test_submit_is_an_async_iterator_of_results(start_daemon):
    d = started(start_daemon)

    async def payloads():
        for n in range(5000):
            yield str(n % 100)

    async def main():
        client = corral.aio.Client(d.socket)
        seqs = set()
        async for result in client.submit("sums", payloads()):
            assert result.ok and result.result == sum_below(result.seq % 100)
            seqs.add(result.seq)
        assert seqs == set(range(5000))
        plain = [r async for r in client.submit("sums", ["3", "4"])]
        assert sorted(r.result for r in plain) == [sum_below(3), sum_below(4)]
        await client.close()
    asyncio.run(main())


def test_bad_input_and_a_daemon_gone(start_daemon, tmp_path):
    d = started(start_daemon, "sleep")

    async def main():
        client = corral.aio.Client(d.socket)
        with pytest.raises(corral.NoSuchJob):
            await client.run("nope", "1")
        with pytest.raises(corral.NoSuchJob):
            [r async for r in client.submit("nope", ["1"])]
        with pytest.raises(ValueError, match="newline"):
            [r async for r in client.submit("sums", ["1", "a\nb"])]
        with pytest.raises(corral.ConnectionFailed):
            await corral.aio.Client(str(tmp_path / "none.sock")).run("sums", "1")
        calls = [asyncio.ensure_future(client.run("sums", "200")) for _ in range(50)]
        await asyncio.sleep(0.3)
        os.kill(d.proc.pid, signal.SIGKILL)
        begun = time.monotonic()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert time.monotonic() - begun < 10
        assert any(isinstance(r, corral.ConnectionLost) for r in results)
        assert all(r == "ok" or isinstance(r, corral.ConnectionLost) for r in results)
    asyncio.run(main())
