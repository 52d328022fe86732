"""corral.Executor: a concurrent.futures.Executor whose tasks run in a
corral job's workers.

    with corral.Executor("sums") as pool:
        print(list(pool.map(["10", "20", "30"])))        # in input order
        future = pool.submit("40")
        print(future.result(timeout=5))

A task is a payload (str or bytes, one line), not a function: the job's
workers are the function. Each executor keeps one submit stream open to
corrald, fed by a thread of its own: submit() queues the payload and
returns at once; the thread sends what is queued as corrald takes it and
completes each Future as its result comes. A result that is not ok raises
from Future.result(): TaskFailed (the worker said so; refused, expired),
TaskDead (its worker died on each attempt), CancelledError (cancelled).
"""

import bisect
import collections
import concurrent.futures
import json
import os
import selectors
import threading
import time
from typing import Iterable, Iterator, Optional

from .client import (_END, MAX_LINE, Client, Payload, Result, _connect, _Lines, _Run,
                     _task_line, resolve_socket, result_of, value_of)
from .errors import ConnectionLost, Error, from_reply

def _outcome(future: concurrent.futures.Future, result: Result) -> None:
    """Completes FUTURE with RESULT: its value, or the exception it means."""
    try:
        future.set_result(value_of(result))
    except (Error, concurrent.futures.CancelledError) as e:
        future.set_exception(e)


class _Batch:
    """The payloads of one map() call: sent as the stream has room, their
    results kept by position, the caller woken once per read rather than
    once per task (no Future per payload: a tiny task costs a line parsed
    and a list slot, as a chunk of ProcessPoolExecutor.map does)."""

    def __init__(self, lines: list):
        self.lines = lines
        self.sent = 0                      # lines[:sent] are in the stream
        # The result line of each, as parsed, or its result alone (a str)
        # when it came in a batch of ok results.
        self.results = [None] * len(lines)
        self.cond = threading.Condition(threading.Lock())
        self.waiting_for = -1              # the position the caller waits on
        self.closed = False                # the caller is gone: send no more
        self.cancelled_from = len(lines)   # shutdown(cancel_futures): not sent, cancelled
        self.error: Optional[BaseException] = None

    def wake(self) -> None:
        """After results were stored: the caller hears if it waits for one."""
        i = self.waiting_for
        if i >= 0 and (self.results[i] is not None or self.error is not None):
            with self.cond:
                self.cond.notify()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = error
            self.cond.notify()

    def cancel_unsent(self) -> None:
        with self.cond:
            self.cancelled_from = self.sent
            self.cond.notify()

    def outcome(self, i: int, end: Optional[float]):
        """Position I's answer (or its exception), waiting until END."""
        line = self.results[i]
        if line is None:
            with self.cond:
                self.waiting_for = i
                while (line := self.results[i]) is None:
                    if i >= self.cancelled_from:
                        raise concurrent.futures.CancelledError()
                    if self.error is not None:
                        raise self.error
                    if end is None:
                        self.cond.wait()
                    else:
                        left = end - time.monotonic()
                        if left <= 0:
                            raise TimeoutError()
                        self.cond.wait(left)
                self.waiting_for = -1
        self.results[i] = _TAKEN
        if type(line) is str:  # an ok result that came in a batch
            return line
        if line.get("status") == "ok":
            return line.get("result", "")
        return value_of(Result.from_line(line))


_TAKEN = {"status": "ok", "result": ""}  # a position already given to the caller
_NO_PLACE = (-1, (0, None, 0, 0))  # _Stream._take_line's place of no range


def _task_lines(payloads: Iterable[Payload]) -> list:
    """The submit lines of PAYLOADS without their line breaks ("+payload"),
    for a batch: str payloads are joined and encoded at once (C speed, not a
    Python call per payload); anything else, or a payload the protocol
    refuses, goes one by one through _task_line, which says why."""
    payloads = payloads if isinstance(payloads, list) else list(payloads)
    if not payloads:
        return []
    try:
        text = "+" + "\n+".join(payloads)
    except TypeError:  # bytes among them
        return [_task_line(p)[:-1] for p in payloads]
    lines = text.encode("utf-8", "surrogateescape").split(b"\n")
    if len(lines) != len(payloads) or max(map(len, lines)) + 1 > MAX_LINE:
        return [_task_line(p)[:-1] for p in payloads]  # raises for the one refused
    return lines


class _Stream:
    """One submit stream and the thread that feeds it and reads its results."""

    def __init__(self, path: str, job: str, timeout: Optional[float],
                 deadline: Optional[float], window: int):
        self.path = path
        self.window = window
        self.job = job
        self.sock = _connect(path, timeout)
        self.lines = _Lines(self.sock, path)
        # Ok results in batches: a line and their strings (client._Lines).
        request = {"cmd": "submit", "job": job, "wait": True, "batches": True}
        if deadline is not None:
            request["deadline_s"] = deadline
        try:
            self.sock.sendall((json.dumps(request) + "\n").encode())
            ack = self.lines.read()
        except BaseException:
            self.sock.close()
            raise
        if not ack.get("ok"):
            self.sock.close()
            raise from_reply(ack)
        self.submit_id = ack.get("submit", 0)
        self.lock = threading.Lock()
        # Submits append to `queued` under the lock; the thread takes the
        # whole deque at once (a swap, so the lock is never held for long:
        # a submitter blocked on it waits for the GIL too) into `backlog`,
        # which only the thread touches, as it does `waiting`.
        # An entry is (future, line) for a submit, (batch, None) for a map.
        self.queued = collections.deque()   # not sent yet
        self.backlog = collections.deque()  # taken by the thread, not sent yet
        self.cancel_unsent = False
        self.waiting = {}                   # seq -> future, sent
        # Batches sent: (first seq, batch, first position, count), by seq;
        # with how many of each range's results are still to come.
        self.ranges: list = []
        self.range_left: list = []
        self.in_flight = 0                  # sent, no result yet
        self.next_seq = 0
        self.closing = False
        self.failure: Optional[BaseException] = None
        self.finished = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.thread = threading.Thread(target=self._run, name=f"corral-executor-{job}",
                                       daemon=True)
        self.thread.start()

    def add(self, payload: Payload) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        self._enqueue((future, _task_line(payload)))
        return future

    def add_batch(self, batch: _Batch) -> None:
        self._enqueue((batch, None))

    def _enqueue(self, entry) -> None:
        with self.lock:
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self.failure is not None:
                raise self.failure
            # The thread takes everything queued at each turn: it needs a
            # wake-up only when the queue was empty (a write per task costs
            # more than the task).
            wake = not self.queued
            self.queued.append(entry)
        if wake:
            self._wake()

    def _wake(self) -> None:
        with self.lock:
            if self.finished:
                return  # the thread has ended (and closed the pipe)
            try:
                os.write(self.wake_w, b"x")
            except BlockingIOError:
                pass  # already awake

    def close(self, cancel_futures: bool) -> None:
        with self.lock:
            self.closing = True
            unsent = list(self.queued) if cancel_futures else []
            if cancel_futures:
                self.queued.clear()
                self.cancel_unsent = True  # the thread cancels its backlog
        for sink, line in unsent:
            if line is None:
                sink.cancel_unsent()
            else:
                sink.cancel()
        if cancel_futures and self.in_flight:
            # What corrald has queued and not started ends cancelled.
            try:
                Client(self.path).cancel(self.job, self.submit_id)
            except Error:
                pass
        self._wake()

    def _fail_all(self, error: BaseException) -> None:
        with self.lock:
            self.failure = error
            queued = list(self.backlog) + list(self.queued)
            self.queued.clear()
        self.backlog.clear()
        waiting = list(self.waiting.values())
        self.waiting.clear()
        batches = [entry[1] for entry in self.ranges]
        self.ranges.clear()
        for sink, line in queued:
            if line is None:
                batches.append(sink)
            elif sink.set_running_or_notify_cancel():
                sink.set_exception(error)
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        for batch in batches:
            batch.fail(error)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # noqa: BLE001 - every future hears it
            if not isinstance(e, Error):
                e = ConnectionLost(f"corrald at {self.path}: {e}")
            self._fail_all(e)
        finally:
            self.sock.close()
            with self.lock:
                self.finished = True
                os.close(self.wake_r)
                os.close(self.wake_w)

    def _loop(self) -> None:
        sock = self.sock
        sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        out = bytearray()
        end_sent = False
        try:
            while True:
                with self.lock:
                    if not self.backlog and self.queued:
                        self.backlog, self.queued = self.queued, collections.deque()
                    all_queued = self.closing and not self.queued
                    cancel, self.cancel_unsent = self.cancel_unsent, False
                if cancel:
                    for sink, line in self.backlog:
                        if line is None:
                            sink.cancel_unsent()
                        else:
                            sink.cancel()
                    self.backlog.clear()
                self._send_into(out)
                if all_queued and not self.backlog and not end_sent:
                    out += b".\n"
                    end_sent = True
                selector.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0))
                for key, mask in selector.select():
                    if key.fileobj == self.wake_r:
                        try:
                            os.read(self.wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    if mask & selectors.EVENT_WRITE and out:
                        try:
                            n = sock.send(out)
                            del out[:n]
                        except BlockingIOError:
                            pass
                        except OSError as e:
                            raise ConnectionLost(f"corrald at {self.path} closed the submit "
                                                 f"stream: {e.strerror or e}") from None
                    if mask & selectors.EVENT_READ:
                        try:
                            more = self.lines.feed()
                        except BlockingIOError:
                            more = True
                        # (The loop's next turn sends more into the room.)
                        if self._take_results():
                            return
                        if not more:
                            raise ConnectionLost(f"corrald at {self.path} closed the submit "
                                                 "stream before its end")
        finally:
            selector.close()


    def _send_into(self, out: bytearray) -> None:
        """Moves backlog into OUT while the stream and the window have room."""
        backlog = self.backlog
        while backlog and len(out) < 65536 and self.in_flight < self.window:
            sink, line = backlog[0]
            if line is not None:
                backlog.popleft()
                if not sink.set_running_or_notify_cancel():
                    continue  # cancelled before it was sent
                self.waiting[self.next_seq] = sink
                self.next_seq += 1
                self.in_flight += 1
                out += line
                continue
            batch = sink
            if batch.closed or batch.sent >= batch.cancelled_from:
                backlog.popleft()
                continue
            first = batch.sent
            last = min(batch.cancelled_from, first + self.window - self.in_flight)
            size = len(out)
            i = first
            while i < last and size < 65536:
                size += len(batch.lines[i]) + 1
                i += 1
            out += b"\n".join(batch.lines[first:i])
            out += b"\n"
            batch.sent = i
            self.ranges.append((self.next_seq, batch, first, i - first))
            self.range_left.append(i - first)
            self.next_seq += i - first
            self.in_flight += i - first

    def _take_results(self) -> bool:
        """Hands every result held to its future or batch; True at the end line."""
        touched = set()
        ended = False
        place = _NO_PLACE  # the range of the last line: most lines are in it
        for line in self.lines.take_all():
            if type(line) is _Run:
                self._take_run(line, touched)
                place = _NO_PLACE  # ranges may have ended
                continue
            if line.get("seq") is None:
                if result_of(line) is _END:  # (a refusal raises)
                    ended = True
                    break
                continue
            place = self._take_line(line, touched, place)
        for batch in touched:
            batch.wake()
        return ended

    def _take_line(self, line: dict, touched: set, place=_NO_PLACE):
        """One result line: to its future, or to its place in a map's batch.
        PLACE, (index, range) of the range a line before was in, saves a
        search when this one is in it too; returns this line's."""
        seq = line["seq"]
        if self.waiting:
            future = self.waiting.pop(seq, None)
            if future is not None:
                self.in_flight -= 1
                if not future.done():
                    _outcome(future, Result.from_line(line))
                return place
        k, (first, batch, position, count) = place
        if not first <= seq < first + count:
            k = bisect.bisect_right(self.ranges, seq, key=_first_seq) - 1
            if k < 0:
                return _NO_PLACE  # not ours (corrald never sends one)
            first, batch, position, count = self.ranges[k]
            if seq >= first + count:
                return _NO_PLACE
            place = (k, self.ranges[k])
        i = position + seq - first
        if batch.results[i] is not None:
            return place  # given twice
        batch.results[i] = line
        return _NO_PLACE if self._answered(k, batch, 1, touched) else place

    def _take_run(self, run: _Run, touched: set) -> None:
        """A batch's ok results: into a map's batch a slice at a time (its
        strings are the results), one by one where they are submit()'s."""
        ranges, results = self.ranges, run.results
        done, n = 0, len(results)
        while done < n:
            seq = run.seq + done
            k = bisect.bisect_right(ranges, seq, key=_first_seq) - 1
            if k >= 0:
                first, batch, position, count = ranges[k]
                take = min(n - done, first + count - seq)
                i = position + seq - first
                if take > 0 and batch.results[i:i + take].count(None) == take:
                    batch.results[i:i + take] = results[done:done + take]
                    self._answered(k, batch, take, touched)
                    done += take
                    continue
            self._take_line(run.line(done), touched)
            done += 1

    def _answered(self, k: int, batch: "_Batch", n: int, touched: set) -> bool:
        """N more results of range K (of BATCH) are in; True when that was
        its last (the range is gone, and those after it moved down)."""
        touched.add(batch)
        self.in_flight -= n
        self.range_left[k] -= n
        if self.range_left[k]:
            return False
        del self.ranges[k]
        del self.range_left[k]
        return True


def _first_seq(entry) -> int:
    return entry[0]


class Executor(concurrent.futures.Executor):
    """Runs payloads on JOB's workers through corrald.

    SOCKET: corrald's socket (corralctl's rules when None). DEADLINE: seconds
    a task may wait for a worker before it ends expired (the job's
    queue.deadline when None). TIMEOUT: how long connecting and corrald's
    first answer may take. WINDOW: how many tasks may be sent to corrald
    ahead of their results; the rest wait in the executor, where cancel()
    still takes them (a sent task is running, as concurrent.futures says)."""

    def __init__(self, job: str, socket: Optional[str] = None,
                 deadline: Optional[float] = None, timeout: Optional[float] = 30.0,
                 window: int = 10000):
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.job = job
        self.path = resolve_socket(socket)
        self.deadline = deadline
        self.timeout = timeout
        self._stream: Optional[_Stream] = None
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, payload: Payload) -> concurrent.futures.Future:  # type: ignore[override]
        """Queues PAYLOAD; its Future completes with the worker's answer (str)."""
        return self._open_stream().add(payload)

    def _open_stream(self) -> _Stream:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._stream is None:
                self._stream = _Stream(self.path, self.job, self.timeout, self.deadline,
                                       self.window)
            return self._stream

    def map(self, payloads: Iterable[Payload], timeout: Optional[float] = None,  # type: ignore[override]
            chunksize: int = 1) -> Iterator[str]:
        """The answers to PAYLOADS in their order, as concurrent.futures' map:
        the payloads are all queued at once; next() raises the task's
        exception, or TimeoutError once TIMEOUT seconds from this call have
        passed; closing the iterator early cancels what has not been sent.
        CHUNKSIZE is taken as concurrent.futures takes it, and changes
        nothing: corrald gathers the tasks it reads into chunks itself."""
        end = time.monotonic() + timeout if timeout is not None else None
        batch = _Batch(_task_lines(payloads))
        if batch.lines:
            self._open_stream().add_batch(batch)

        def results():
            try:
                for i in range(len(batch.lines)):
                    yield batch.outcome(i, end)
            finally:
                batch.closed = True  # what is not sent yet never will be
        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submits; with CANCEL_FUTURES, what has not been sent is
        cancelled, and what corrald has queued ends cancelled; with WAIT,
        returns once every submitted payload has its result."""
        with self._lock:
            self._shutdown = True
            stream = self._stream
        if stream is None:
            return
        stream.close(cancel_futures)
        if wait:
            stream.thread.join()
