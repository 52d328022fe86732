"""corral.Client against a real corrald: the worker commands, stats, the
submit stream with its results (bounded: payloads are taken as corrald takes
them), and every bad input with a clear exception, never a hang."""
import os
import signal
import socket
import time

import pytest

import corral
from conftest import worker

SUMS = f"""  sums:
    command: {worker("--handler", "sum")}
    workers: 2
    channel: shm
"""


def sum_below(n):
    return str(n * (n - 1) // 2)


def test_status_start_stop_and_stats(start_daemon):
    d = start_daemon(SUMS)
    with d.client(timeout=30) as client:
        client.wait("sums", running=True, timeout=30)
        names = [w["name"] for w in client.status()]
        assert names == ["sums:0", "sums:1"]
        assert {w["state"] for w in client.status("sums")} == {"RUNNING"}
        client.stop("sums:1")
        assert client.status("sums:1")[0]["state"] == "STOPPED"
        client.start("sums:1")
        assert client.status("sums:1")[0]["state"] == "RUNNING"
        stats = client.stats("sums")
        assert stats["workers"] == 2 and stats["submitted"] == 0
        assert "sums" in client.stats()


def test_submit_streams_every_result_once_taking_payloads_as_corrald_takes_them(start_daemon):
    d = start_daemon(SUMS)
    total = 200_000
    produced = 0

    def payloads():
        nonlocal produced
        for i in range(total):
            produced += 1
            yield str(i % 100)

    client = d.client(timeout=60)
    client.wait("sums", running=True, timeout=30)
    seen = set()
    produced_at_first = None
    for result in client.submit("sums", payloads()):
        if produced_at_first is None:
            produced_at_first = produced
        assert result.ok, result
        assert result.result == sum_below(result.seq % 100)
        assert result.seq not in seen
        seen.add(result.seq)
    assert len(seen) == total
    # Not everything was taken up front: the stream is bounded.
    assert produced_at_first < total
    assert client.stats("sums")["ok"] == total


def test_a_batch_of_results_is_unpacked_across_reads_and_a_bad_one_is_an_error():
    from corral.client import _Lines, _Run
    ours, theirs = socket.socketpair()
    lines = _Lines(ours, "test")
    got = []

    def read(data):
        theirs.sendall(data)
        lines.feed()
        got.extend(lines.take_all())

    read(b'{"id":9,"seq":0,"status":"failed","result":"x","attempts":1}\n{"batch":3,"id":10,')
    read(b'"seq":1,"attempts":2,"bytes":15}\n"a"\n"b')
    read(b'"\n"c\\n"\n{"end":true,"submitted":4,"refused":0}\n')
    assert got[0]["status"] == "failed"
    runs = [item for item in got if type(item) is _Run]
    # "a" in the first read's whole lines, "b" and "c\n" in the next.
    assert [(r.seq, r.id, r.attempts) for r in runs] == [(1, 10, 2), (2, 11, 2)]
    assert [r for run in runs for r in run.results] == ["a", "b", "c\n"]
    assert [runs[1].line(k) for k in range(2)] == [
        {"id": 11, "seq": 2, "status": "ok", "result": "b", "attempts": 2},
        {"id": 12, "seq": 3, "status": "ok", "result": "c\n", "attempts": 2}]
    assert got[-1] == {"end": True, "submitted": 4, "refused": 0}
    for bad in (b'{"batch":2,"id":1,"seq":0,"attempts":1,"bytes":8}\n"a"\n{"x":1}\n',
                b'{"batch":0,"id":1,"seq":0,"attempts":1,"bytes":0}\n',
                b'{"batch":1,"id":-1,"seq":0,"attempts":1,"bytes":4}\n"a"\n'):
        lines = _Lines(ours, "test")
        theirs.sendall(bad)
        lines.feed()
        with pytest.raises(corral.ConnectionLost, match="batch"):
            lines.take_all()


def test_bytes_payloads_failed_and_refused_tasks_are_results(start_daemon):
    d = start_daemon(SUMS + "    queue: {max_task_bytes: 256}\n")
    client = d.client(timeout=30)
    client.wait("sums", running=True, timeout=30)
    results = {r.seq: r for r in client.submit("sums", [b"10", "not a number", "7" * 300])}
    assert results[0].ok and results[0].result == sum_below(10) and results[0].attempts == 1
    assert results[1].status == "failed" and "not a number" in results[1].result
    assert results[2].status == "refused"
    assert "exceeds queue.max_task_bytes (256)" in results[2].result


def test_bad_input_raises_with_what_is_wrong(start_daemon, tmp_path):
    d = start_daemon(SUMS)
    client = d.client(timeout=30)
    with pytest.raises(corral.NoSuchJob, match="no such job: nope"):
        client.stats("nope")
    with pytest.raises(corral.NoSuchJob, match="no such job: nope"):
        list(client.submit("nope", ["1"]))
    with pytest.raises(ValueError, match="cannot hold a newline"):
        list(client.submit("sums", ["1\n2"]))
    with pytest.raises(corral.DaemonError, match="invalid target"):
        client.status("sums:x")
    with pytest.raises(corral.ConnectionFailed, match="cannot reach corrald at"):
        corral.Client(str(tmp_path / "nobody.sock")).status()
    # The connection goes on after an error.
    assert len(client.status()) == 2


def test_daemon_gone_mid_stream_is_a_clear_exception_not_a_hang(start_daemon):
    d = start_daemon(f"""  naps:
    command: {worker("--handler", "sleep")}
    workers: 2
    channel: shm
""")
    client = d.client(timeout=30)
    client.wait("naps", running=True, timeout=30)
    got = 0
    started = time.monotonic()
    with pytest.raises(corral.ConnectionLost, match="closed the submit stream"):
        for _result in client.submit("naps", ["50"] * 1000):
            got += 1
            if got == 5:
                os.kill(d.proc.pid, signal.SIGKILL)
    assert 5 <= got < 1000
    assert time.monotonic() - started < 20


def test_shared_dead_and_retry(start_daemon):
    d = start_daemon(f"""  sums:
    command: {worker("--handler", "sum", "--crash-on", "poison")}
    workers: 1
    channel: shm
    queue: {{max_attempts: 2}}
    restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
    shared: {{values: {{processed: u64}}, arrays: {{hist: {{type: u64, length: 3}}}}}}
""")
    client = d.client(timeout=30)
    client.wait("sums", running=True, timeout=30)
    assert client.shared("sums") == {"values": {"processed": 0}, "arrays": {"hist": [0, 0, 0]}}
    results = list(client.submit("sums", ["poison", "4"]))
    assert sorted(r.status for r in results) == ["dead", "ok"]
    letters = client.dead("sums")
    assert [(x["payload"], x["status"], x["attempts"]) for x in letters] == [("poison", "dead", 2)]
    assert client.retry("sums", ids=[letters[0]["id"]]) == 1
    assert client.dead("sums") == []
    with pytest.raises(corral.DaemonError, match="no dead letter has id 999"):
        client.retry("sums", ids=[999])
