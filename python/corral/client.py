"""corral.Client: corrald's control socket from Python, the way corralctl
speaks it (docs/control-protocol.md): one JSON object per line each way, a
connection per client, and a connection of its own for each submit stream.

    import corral
    client = corral.Client()                 # $CORRAL_SOCKET, else /run/corral/corral.sock
    client.status()                          # [{"name": "sums:0", "state": "RUNNING", ...}, ...]
    for result in client.submit("sums", ["10", "20"]):
        print(result.seq, result.status, result.result)

Standard library only. Not thread-safe: one Client per thread (each submit
opens its own connection, so several can run at once from one thread).
"""

import concurrent.futures
import json
import os
import selectors
import socket
import stat
import struct
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union

from .errors import ConnectionFailed, ConnectionLost, DaemonError, TaskDead, TaskFailed, from_reply

DEFAULT_SOCKET = "/run/corral/corral.sock"
MAX_LINE = 1 << 20  # the protocol's longest line
_BATCH_START = b'{"batch":'  # a batch of results' line (docs/control-protocol.md)

Payload = Union[str, bytes]


def resolve_socket(path: Optional[str] = None) -> str:
    """corralctl's rule: the path given, else $CORRAL_SOCKET, else the default."""
    return path or os.environ.get("CORRAL_SOCKET") or DEFAULT_SOCKET


@dataclass(frozen=True)
class Result:
    """One finished task, as corrald's result line tells it."""

    seq: int            # its position in the submit (0-based)
    status: str         # ok, failed, dead, cancelled, expired, or refused (never queued)
    result: str         # the worker's answer, or why the task did not end ok
    attempts: int = 0
    id: int = 0         # corrald's task id (0 for a broker job's: see `task`)
    task: str = ""      # a broker job's entry id in the stream
    run_us: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_line(cls, line: dict) -> "Result":
        if line.get("status") == "refused":
            return cls(seq=line.get("seq", 0), status="refused", result=line.get("error", ""))
        return cls(seq=line.get("seq", 0), status=line.get("status", ""),
                   result=line.get("result", ""), attempts=line.get("attempts", 0),
                   id=line.get("id", 0), task=line.get("task", ""), run_us=line.get("run_us"))


def _check_peer(sock: socket.socket, path: str) -> None:
    """corralctl's rule: talk only to root, to ourselves, or to the owner of a
    socket directory no one else may write (a socket planted by another user
    in a shared directory is never taken for corrald)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid in (0, os.getuid()):
        return
    directory = os.path.dirname(os.path.abspath(path)) or "/"
    try:
        st = os.stat(directory)
    except OSError as e:
        raise ConnectionFailed(f"cannot reach corrald at {path}: {e.strerror}") from None
    if st.st_uid == uid and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return
    raise ConnectionFailed(
        f"cannot reach corrald at {path}: the process serving it runs as uid {uid}, which is "
        "neither root nor you (nor the owner of its private directory): nothing was sent")


def _connect(path: str, timeout: Optional[float]) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise ConnectionFailed(f"cannot reach corrald at {path}: {e.strerror or e}") from None
    try:
        _check_peer(sock, path)
    except BaseException:
        sock.close()
        raise
    return sock


def value_of(result: "Result", cancelled=concurrent.futures.CancelledError) -> str:
    """RESULT's answer, or the exception its status means: TaskDead (its
    worker died on each attempt), CANCELLED (cancelled), TaskFailed (the
    rest: failed, refused, expired)."""
    if result.ok:
        return result.result
    if result.status == "dead":
        raise TaskDead(result.result, result)
    if result.status == "cancelled":
        raise cancelled(result.result)
    raise TaskFailed(f"task {result.status}: {result.result}", result)


_END = object()  # what result_of() gives for a stream's end line


def result_of(line: dict):
    """A submit stream's line read: its Result, _END for the end line, None
    for anything else; a refusal ({"ok": false}) raises DaemonError."""
    if "seq" in line:
        return Result.from_line(line)
    if line.get("end"):
        return _END
    if not line.get("ok", True):
        raise from_reply(line)
    return None


class _Run:
    """Ok results that came packed in a batch (docs/control-protocol.md,
    submit): RESULTS[k] is the result of seq SEQ + k, id ID + k, after
    ATTEMPTS attempts."""

    __slots__ = ("seq", "id", "attempts", "results")

    def __init__(self, seq: int, id: int, attempts: int, results: list):
        self.seq, self.id, self.attempts, self.results = seq, id, attempts, results

    def line(self, k: int) -> dict:
        """Result K as the line corrald sends without batches, parsed."""
        return {"id": self.id + k, "seq": self.seq + k, "status": "ok",
                "result": self.results[k], "attempts": self.attempts}


def _results_held(lines: "_Lines"):
    """Yields the Results of the whole lines held; returns True at the end line."""
    for line in lines.take_all():
        if type(line) is _Run:
            seq, id, attempts = line.seq, line.id, line.attempts
            for k, r in enumerate(line.results):
                yield Result(seq=seq + k, status="ok", result=r, attempts=attempts, id=id + k)
            continue
        result = result_of(line)
        if result is _END:
            return True
        if result is not None:
            yield result
    return False


def _task_line(payload: Payload) -> bytes:
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else bytes(payload)
    if b"\n" in data:
        raise ValueError("a task payload cannot hold a newline (one line per task)")
    if len(data) + 2 > MAX_LINE:
        raise ValueError(f"a task payload of {len(data)} bytes is over the protocol's 1 MiB line")
    return b"+" + data + b"\n"


class _Lines:
    """Lines read from a socket, with the protocol's bound on each."""

    def __init__(self, sock: socket.socket, path: str):
        self.sock = sock
        self.path = path
        self.buffer = bytearray()
        # A batch of results under way: how many are still to come, and the
        # seq, id and attempts of the next.
        self.batch_left = 0
        self.batch_next = (0, 0, 0)

    def _parse(self, line: bytes):
        try:
            return json.loads(line)
        except ValueError:
            raise ConnectionLost(f"corrald at {self.path} sent a line that is not JSON: "
                                 f"{line[:200]!r}") from None

    def _check_partial(self) -> None:
        if len(self.buffer) > MAX_LINE and self.buffer.find(b"\n") < 0:
            raise ConnectionLost(f"corrald at {self.path} sent a line over 1 MiB")

    def take(self) -> Optional[dict]:
        """The next whole line held, parsed, or None."""
        end = self.buffer.find(b"\n")
        if end < 0:
            self._check_partial()
            return None
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return self._parse(line)

    def take_all(self) -> list:
        """Every whole line held, parsed: one json.loads for them all (a
        stream of results costs one call per read, not one per line). The
        results of a batch come as one _Run each (of those read so far)."""
        end = self.buffer.rfind(b"\n")
        if end < 0:
            self._check_partial()
            return []
        held = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        self._check_partial()
        try:
            # A JSON line holds no raw line break: each is a separator.
            items = json.loads(b"[" + held.replace(b"\n", b",") + b"]")
        except ValueError:
            items = [self._parse(line) for line in held.split(b"\n")]  # names the bad one
        return self._unpack(items, held) if self.batch_left or _BATCH_START in held else items

    def _unpack(self, items: list, held: bytes) -> list:
        """ITEMS, the lines of HELD parsed, with each batch line and its
        results as one _Run. The batch lines are found in HELD's bytes, so
        that the lines between them are taken a slice at a time."""
        out = []
        i = 0            # ITEMS before I are taken
        line, at = 0, 0  # LINE lines of HELD end before byte AT
        while True:
            if self.batch_left:
                results = items[i:i + self.batch_left]
                if set(map(type, results)) - {str}:
                    raise ConnectionLost(f"corrald at {self.path} sent a batch of results "
                                         "that are not all strings")
                seq, id, attempts = self.batch_next
                taken = len(results)
                if taken:
                    out.append(_Run(seq, id, attempts, results))
                self.batch_next = (seq + taken, id + taken, attempts)
                self.batch_left -= taken
                i += taken
            pos = held.find(_BATCH_START, at)
            while pos > 0 and held[pos - 1] != 10:  # only a line's start
                pos = held.find(_BATCH_START, pos + 1)
            if pos < 0:
                out.extend(items[i:])
                return out
            line += held.count(b"\n", at, pos)
            at = pos + 1
            out.extend(items[i:line])
            item = items[line]
            fields = [item.get(key) for key in ("batch", "seq", "id", "attempts")] \
                if type(item) is dict else [None]
            if not all(type(f) is int and f >= 0 for f in fields) or fields[0] == 0:
                raise ConnectionLost(f"corrald at {self.path} sent a malformed batch "
                                     f"line: {item!r}")
            self.batch_left = fields[0]
            self.batch_next = tuple(fields[1:])
            i = line + 1

    def feed(self) -> bool:
        """Reads what is there; False at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def read(self) -> dict:
        """The next line, waiting for it (the socket's timeout applies)."""
        while True:
            line = self.take()
            if line is not None:
                return line
            try:
                more = self.feed()
            except socket.timeout:
                raise TimeoutError(f"corrald at {self.path} did not answer in time") from None
            if not more:
                raise ConnectionLost(f"corrald at {self.path} closed the connection")


class Client:
    """A connection to corrald's control socket (opened at the first request).

    SOCKET: the socket's path (corralctl's default rules when None).
    TIMEOUT: the longest a request waits for its reply, in seconds (None:
    no limit; `start` and `stop` wait for their workers)."""

    def __init__(self, socket: Optional[str] = None, timeout: Optional[float] = None):
        self.path = resolve_socket(socket)
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._lines: Optional[_Lines] = None

    # ---- plumbing ----
    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = self._lines = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, message: dict) -> dict:
        """Sends MESSAGE and returns its reply as it is."""
        if self._sock is None:
            self._sock = _connect(self.path, self.timeout)
            self._lines = _Lines(self._sock, self.path)
        try:
            self._sock.sendall((json.dumps(message) + "\n").encode())
            reply = self._lines.read()
        except (ConnectionLost, TimeoutError):
            self.close()
            raise
        except OSError as e:
            self.close()
            raise ConnectionLost(f"corrald at {self.path}: {e.strerror or e}") from None
        if reply.get("refused"):
            self.close()
            raise ConnectionFailed(f"cannot reach corrald at {self.path}: {reply.get('error')}")
        return reply

    def request(self, message: dict) -> dict:
        """Sends one request and returns its reply; an {"ok": false} reply
        raises DaemonError (NoSuchJob for an unknown job) with its message."""
        reply = self._exchange(message)
        if not reply.get("ok", False):
            raise from_reply(reply)
        return reply

    @staticmethod
    def _targets(targets) -> list:
        return [t for t in targets] if targets else ["all"]

    # ---- workers ----
    def status(self, *targets: str) -> list:
        """Each worker as corralctl status --json shows it (all without TARGETS)."""
        message = {"cmd": "status"}
        if targets:
            message["targets"] = list(targets)
        return self.request(message)["workers"]

    def _act(self, cmd: str, targets, **fields) -> list:
        # start/stop/restart answer {"ok": false, "workers": [...]} when a
        # worker failed: that is the workers' news, said per worker.
        reply = self._exchange({"cmd": cmd, "targets": self._targets(targets), **fields})
        if "workers" not in reply:
            raise from_reply(reply)
        failed = [w for w in reply["workers"] if not w.get("ok", True)]
        if failed:
            raise DaemonError("; ".join(f"{w.get('name')}: {w.get('message')}" for w in failed),
                              reply)
        return reply["workers"]

    def start(self, *targets: str) -> list:
        """Starts workers and waits until each is RUNNING (DaemonError if one fails)."""
        return self._act("start", targets)

    def stop(self, *targets: str) -> list:
        return self._act("stop", targets)

    def restart(self, *targets: str, rolling: bool = False) -> list:
        return self._act("restart", targets, **({"rolling": True} if rolling else {}))

    # ---- jobs and tasks ----
    def stats(self, job: Optional[str] = None) -> dict:
        """The job's counts (or every job's, by name, without JOB)."""
        reply = self.request({"cmd": "stats", **({"job": job} if job else {})})
        return reply["jobs"][job] if job else reply["jobs"]

    def wait(self, job: str, running: bool = False, drained: bool = False,
             timeout: Optional[float] = None) -> None:
        """Until JOB's workers are all RUNNING and/or its tasks drained."""
        message = {"cmd": "wait", "job": job, "running": running, "drained": drained}
        if timeout is not None:
            message["timeout_s"] = timeout
        self.request(message)

    def shared(self, job: str) -> dict:
        """{"values": {name: n}, "arrays": {name: [...]}} of JOB's shared memory."""
        reply = self.request({"cmd": "shared", "job": job})
        return {"values": reply.get("values", {}), "arrays": reply.get("arrays", {})}

    def dead(self, job: str) -> list:
        """JOB's dead letters, oldest first."""
        return self.request({"cmd": "dead", "job": job})["dead"]

    def retry(self, job: str, ids: Optional[Iterable[int]] = None) -> int:
        """Queues dead letters again (all, or those of IDS); how many."""
        message = {"cmd": "retry", "job": job}
        if ids is not None:
            message["ids"] = list(ids)
        return self.request(message)["requeued"]

    def cancel(self, job: str, submit: int, running: bool = False) -> dict:
        """Cancels what is left of submit SUBMIT of JOB."""
        return self.request({"cmd": "cancel", "job": job, "submit": submit, "running": running})

    def submit(self, job: str, payloads: Iterable[Payload], deadline: Optional[float] = None,
               wait: bool = True, on_accept=None) -> Iterator[Result]:
        """Submits PAYLOADS (str or bytes, one line each) to JOB on a connection
        of its own and yields each Result as it finishes, in completion order.

        Payloads are taken from the iterable only as corrald takes them (its
        back-pressure), and results are yielded as they come, so memory stays
        bounded whatever the number of tasks. DEADLINE: seconds a task may wait
        for a worker. ON_ACCEPT(submit_id): called once corrald has accepted
        the stream (the id `cancel` takes). Without WAIT nothing is yielded;
        the tasks' results go to the job's sink."""
        sock = _connect(self.path, self.timeout)
        lines = _Lines(sock, self.path)
        try:
            # Ok results in batches: a line and their strings (_Lines._unpack).
            request = {"cmd": "submit", "job": job, "wait": wait, "batches": wait}
            if deadline is not None:
                request["deadline_s"] = deadline
            sock.sendall((json.dumps(request) + "\n").encode())
            ack = lines.read()
            if not ack.get("ok"):
                raise from_reply(ack)
            if on_accept is not None:
                on_accept(ack.get("submit", 0))
            yield from self._stream(sock, lines, iter(payloads))
        finally:
            sock.close()

    def _stream(self, sock: socket.socket, lines: _Lines, payloads) -> Iterator[Result]:
        sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        out = bytearray()
        sent_all = False   # the end line is in OUT
        last_progress = time.monotonic()
        try:
            while True:
                # Whatever lines are held first.
                if (yield from _results_held(lines)):
                    return
                if not sent_all:
                    while len(out) < 65536:
                        try:
                            out += _task_line(next(payloads))
                        except StopIteration:
                            out += b".\n"
                            sent_all = True
                            break
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
                selector.modify(sock, events)
                ready = selector.select(timeout=1.0)
                if not ready:
                    if self.timeout is not None and time.monotonic() - last_progress > self.timeout:
                        raise TimeoutError(f"corrald at {self.path}: no result for "
                                           f"{self.timeout} s")
                    continue
                for _key, mask in ready:
                    if mask & selectors.EVENT_WRITE and out:
                        try:
                            n = sock.send(out)
                        except BlockingIOError:
                            n = 0
                        except OSError as e:
                            # corrald went away: what it said last is still to be read.
                            out.clear()
                            sent_all = True
                            if not _drain(lines):
                                raise ConnectionLost(
                                    f"corrald at {self.path} closed the submit stream: "
                                    f"{e.strerror or e}") from None
                            continue
                        del out[:n]
                        last_progress = time.monotonic()
                    if mask & selectors.EVENT_READ:
                        try:
                            more = lines.feed()
                        except BlockingIOError:
                            continue
                        except OSError as e:
                            raise ConnectionLost(f"corrald at {self.path}: {e.strerror or e}") \
                                from None
                        if not more:
                            # Lines already read still count; then it is lost.
                            if (yield from _results_held(lines)):
                                return
                            raise ConnectionLost(
                                f"corrald at {self.path} closed the submit stream before its end")
                        last_progress = time.monotonic()
        finally:
            selector.close()


def _drain(lines: _Lines) -> bool:
    """After a failed write: reads what corrald sent before it closed."""
    try:
        lines.sock.setblocking(True)
        lines.sock.settimeout(1.0)
        while lines.feed():
            pass
    except OSError:
        pass
    return bool(lines.buffer)
