"""corral workers in Python: serve a function over the channel corrald gives
the process. Pure Python 3, no dependencies.

As a command, naming a plain function the way gunicorn names an app:

    command: [python3, -m, corral.worker, "package.module:function"]
    command: [python3, -m, corral.worker, --binary, "package.module:function"]

or from a program of your own:

    import corral.worker          # `import corral_worker` still works

    def handle(task):            # task: str (or bytes with binary=True)
        return task.upper()      # str or bytes: an ok result
        # raise ValueError("why")  -> a failed result with that message

    if __name__ == "__main__":
        raise SystemExit(corral.worker.serve(handle))

serve() reads the channel corrald gave the process from its environment
(CORRAL_CHANNEL=pipe, CORRAL_FRAMING=lines|length, CORRAL_FDS="IN,OUT"; see
docs/worker-protocol.md), says READY (length framing; with CORRAL_CHUNKS=1,
that it takes chunks of tasks, each answered on its own), runs the handler for
each task on the calling thread, one at a time, and returns 0 when the daemon
sends the sentinel (SHUTDOWN, or EOF of the input). A handler that raises
fails its task with the exception's text and the worker goes on, under
length framing (the default for fds 3/4). Lines framing has no status to
carry a failure: there the worker says why on stderr and exits 3, and corrald
charges the task as it charges a crash (redelivered, then a dead letter),
never reporting it ok. Heartbeat
frames are written from a thread when CORRAL_HEARTBEAT_MS is set.

On the shm channel (CORRAL_CHANNEL=shm) the loop is the C++ SDK's, in
corral's native module (corral._native, built and installed with corral
where python3-dev is): the handler is called with the GIL held and the rest
runs without it. Without the module (a pip install of the package alone),
shm is refused with exit 2 and pipes are served in Python. There, Python
signal handlers run between tasks.
Exit codes as in C++: 0 after the sentinel, 2 for an environment that names
no usable channel (or, as a command, a function that cannot be loaded), 1
when the channel broke, 3 when a task failed under lines framing.
"""

import os
import struct
import sys
import threading

__all__ = ["serve", "job_name", "worker_index", "stop_after_this_task", "load", "main"]

TASK, RESULT, SHUTDOWN, READY, HEARTBEAT, TASKS = 1, 2, 3, 4, 5, 6
OK, FAILED = 0, 1
TAKES_CHUNKS = 1  # READY's features: TASKS frames (docs/worker-protocol.md, Chunks)
EXIT_TASK_FAILED_ON_LINES = 3

_DEFAULT_MAX_TASK_BYTES = 65536
_READ_CHUNK = 65536
_LENGTH = struct.Struct("<I")
_TASK_HEADER = struct.Struct("<BQ")  # type, id
_TASKS_HEADER = struct.Struct("<BQI")  # type, first id, count
_READY_FEATURES = struct.Struct("<IBI")  # length, type, features
_RESULT_HEADER = struct.Struct("<IBQB")  # length, type, id, status

_stop_requested = False


class _EnvError(Exception):
    """The environment names no usable channel: exit 2."""


def job_name():
    """CORRAL_JOB, or "" when not under corrald."""
    return os.environ.get("CORRAL_JOB", "")


def worker_index():
    """CORRAL_WORKER as an int, or -1 when not under corrald."""
    try:
        return int(os.environ.get("CORRAL_WORKER", ""))
    except ValueError:
        return -1


def stop_after_this_task():
    """Called from the handler: serve() returns 0 once this task's result is sent."""
    global _stop_requested
    _stop_requested = True
    if _native is not None:
        _native.request_stop()


def _load_native():
    """corral._native, or None when it is not built (pipes only)."""
    try:
        from . import _native as module
    except ImportError:
        return None
    return module


_native = None  # the module, once serve() runs on shm


def _complain(message):
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    try:
        os.write(2, f"{name}: {message}\n".encode("utf-8", "replace"))
    except OSError:
        pass


def _env_int(name, default, low, high):
    text = os.environ.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise _EnvError(f"{name}={text}: expected a number between {low} and {high}")
    return int(text)


def _env_fds(name, default):
    text = os.environ.get(name, "") or default
    parts = text.split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise _EnvError(f'{name}={text}: expected two fds, as in "3,4"')
    fds = (int(parts[0]), int(parts[1]))
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError as e:
            raise _EnvError(f"{name}={text}: fd {fd} is not open ({e.strerror})")
    return fds


class _Out:
    """The OUT fd, shared by the serving thread and the heartbeat thread:
    every frame is written whole under the lock."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def write(self, data):
        view = memoryview(data)
        with self.lock:
            while view:
                n = os.write(self.fd, view)  # blocks; EINTR is retried by Python
                view = view[n:]


class _Heartbeat:
    """Writes a HEARTBEAT frame every PERIOD seconds until stopped."""

    def __init__(self, out, period):
        self.out = out
        self.period = period
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="corral-heartbeat", daemon=True)
        self.thread.start()

    def _run(self):
        frame = _LENGTH.pack(1) + bytes([HEARTBEAT])
        while not self.stopped.wait(self.period):
            try:
                self.out.write(frame)
            except OSError:
                return  # the serving thread sees the same broken pipe and reports it

    def stop(self):
        self.stopped.set()
        self.thread.join()


def _run_handler(handler, task, binary):
    """(ok, result bytes) for one task; exceptions become failures."""
    try:
        result = handler(task if binary else task.decode("utf-8", "surrogateescape"))
        if isinstance(result, str):
            return True, result.encode("utf-8", "surrogateescape")
        if isinstance(result, (bytes, bytearray, memoryview)):
            return True, bytes(result)
        raise TypeError(f"the handler returned {type(result).__name__}, not str or bytes")
    except Exception as e:  # noqa: BLE001 - any failure of the handler fails its task
        message = str(e) or type(e).__name__
        return False, message.encode("utf-8", "replace")


def _limit(ok, data, max_bytes):
    if len(data) <= max_bytes:
        return ok, data
    what = "result" if ok else "failure message"
    message = (f"{what} of {len(data)} bytes exceeds the limit of {max_bytes} bytes"
               " (CORRAL_MAX_TASK_BYTES)")
    return False, message.encode()[:max_bytes]


def _serve_lines(handler, fd_in, out, max_bytes, binary):
    # Each result is written before the next task starts: a worker that dies
    # takes no finished result with it.
    buffer = bytearray()
    scanned = 0  # bytes at the start of buffer known to hold no newline
    while True:
        chunk = os.read(fd_in, _READ_CHUNK)
        if not chunk:
            if buffer:
                _complain(f"ignored {len(buffer)} bytes after the last newline"
                          " at the end of the input")
            return 0  # EOF: the sentinel of line workers
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, scanned))
            if end < 0 or end - start > max_bytes:
                scanned = len(buffer)
                break
            line = bytes(buffer[start:end])
            start = end + 1
            ok, data = _limit(*_run_handler(handler, line, binary), max_bytes)
            if not ok:
                # A line has no status: written, the failure would read as a result.
                _complain("task failed: " + data.decode("utf-8", "replace") +
                          "; framing: lines cannot report a failed task, so the worker"
                          " exits (framing: length reports it)")
                return EXIT_TASK_FAILED_ON_LINES
            # A line result cannot hold a line break: each becomes a space.
            out.write(data.replace(b"\n", b" ") + b"\n")
            if _stop_requested:
                return 0
        del buffer[:start]
        scanned = max(0, scanned - start)
        if len(buffer) > max_bytes and buffer.find(b"\n", 0, max_bytes + 1) < 0:
            _complain(f"reading tasks: a line longer than {max_bytes} bytes"
                      " (CORRAL_MAX_TASK_BYTES)")
            return 1


def _answer(handler, out, task_id, task, binary, max_bytes):
    ok, data = _limit(*_run_handler(handler, task, binary), max_bytes)
    status = OK if ok else FAILED
    # Written before the next task starts: a worker that dies takes no
    # finished result with it.
    out.write(_RESULT_HEADER.pack(len(data) + 10, RESULT, task_id, status) + data)


def _chunk_tasks(buffer, body_start, body_end):
    """A TASKS frame's (first id, [payloads]), or an error message."""
    if body_end - body_start < _TASKS_HEADER.size:
        return None, (f"reading tasks: a TASKS frame of {body_end - body_start} bytes"
                      " is too short")
    _, first, count = _TASKS_HEADER.unpack_from(buffer, body_start)
    at = body_start + _TASKS_HEADER.size
    payloads = []
    for i in range(count):
        if body_end - at < _LENGTH.size:
            break
        (size,) = _LENGTH.unpack_from(buffer, at)
        at += _LENGTH.size
        if size > body_end - at:
            break
        payloads.append(bytes(buffer[at:at + size]))
        at += size
    if count == 0 or len(payloads) != count or at != body_end:
        return None, f"reading tasks: a TASKS frame of {count} tasks does not hold them exactly"
    return (first, payloads), None


def _serve_length(handler, fd_in, out, max_bytes, binary, heartbeat_ms, chunks):
    if chunks:
        out.write(_READY_FEATURES.pack(5, READY, TAKES_CHUNKS))
    else:
        out.write(_LENGTH.pack(1) + bytes([READY]))
    heartbeat = _Heartbeat(out, heartbeat_ms / 1000.0) if heartbeat_ms > 0 else None
    try:
        buffer = bytearray()
        warned = False
        while True:
            start = 0
            while len(buffer) - start >= 4:
                (length,) = _LENGTH.unpack_from(buffer, start)
                if length == 0 or length > max_bytes + 10:
                    _complain(f"reading tasks: a frame of {length} bytes"
                              f" (the limit is {max_bytes + 10})")
                    return 1
                if len(buffer) - start - 4 < length:
                    break
                kind = buffer[start + 4]
                body_start, body_end = start + 4, start + 4 + length
                start = body_end
                if kind == SHUTDOWN:
                    return 0
                if kind == TASKS:
                    # A chunk: its tasks in order, each answered before the next.
                    chunk, error = _chunk_tasks(buffer, body_start, body_end)
                    if error is not None:
                        _complain(error)
                        return 1
                    first, payloads = chunk
                    for i, task in enumerate(payloads):
                        _answer(handler, out, first + i, task, binary, max_bytes)
                        if _stop_requested:
                            return 0
                    continue
                if kind != TASK:
                    if not warned:
                        _complain(f"ignoring a frame of type {kind} from the daemon"
                                  " (only TASK, TASKS and SHUTDOWN are expected)")
                        warned = True
                    continue
                if length < _TASK_HEADER.size:
                    _complain(f"reading tasks: a TASK frame of {length} bytes is too short")
                    return 1
                _, task_id = _TASK_HEADER.unpack_from(buffer, body_start)
                task = bytes(buffer[body_start + _TASK_HEADER.size:body_end])
                _answer(handler, out, task_id, task, binary, max_bytes)
                if _stop_requested:
                    return 0
            del buffer[:start]
            chunk = os.read(fd_in, _READ_CHUNK)
            if not chunk:
                if buffer:
                    _complain("the daemon closed the channel inside a frame"
                              f" ({len(buffer)} bytes ignored)")
                return 0  # EOF: the daemon is done with this worker
            buffer += chunk
    finally:
        if heartbeat is not None:
            heartbeat.stop()


def serve(handler, binary=False):
    """Serves tasks until the sentinel; returns the exit code for the process.

    HANDLER takes the task payload (str decoded as UTF-8 with surrogateescape,
    so any bytes survive a round trip; bytes when BINARY is true) and returns
    str or bytes; an exception fails the task with its text."""
    try:
        channel = os.environ.get("CORRAL_CHANNEL", "")
        if channel == "":
            raise _EnvError("CORRAL_CHANNEL is not set: this worker runs under corrald,"
                            " which sets it (see docs/worker-protocol.md)")
        if channel == "none":
            raise _EnvError("CORRAL_CHANNEL=none: this worker needs a task channel (pipe)")
        if channel == "shm":
            global _native
            _native = _load_native()
            if _native is None:
                raise _EnvError("CORRAL_CHANNEL=shm: the shm channel needs corral's native "
                                "module (corral._native), which is built and installed with "
                                "corral where python3-dev is; this corral package has none "
                                "(use channel: pipe)")
            return _native.serve(handler, bool(binary))
        if channel != "pipe":
            raise _EnvError(f"CORRAL_CHANNEL={channel}: expected pipe or shm")
        framing = os.environ.get("CORRAL_FRAMING", "") or "lines"
        if framing not in ("lines", "length"):
            raise _EnvError(f"CORRAL_FRAMING={framing}: expected lines or length")
        fd_in, fd_out = _env_fds("CORRAL_FDS", "3,4")
        max_bytes = _env_int("CORRAL_MAX_TASK_BYTES", _DEFAULT_MAX_TASK_BYTES, 1, 1 << 32)
        heartbeat_ms = _env_int("CORRAL_HEARTBEAT_MS", 0, 0, 86_400_000)
        chunks = os.environ.get("CORRAL_CHUNKS", "") or "0"
        if chunks not in ("0", "1"):
            raise _EnvError(f"CORRAL_CHUNKS={chunks}: expected 0 or 1")
    except _EnvError as e:
        _complain(str(e))
        return 2
    out = _Out(fd_out)
    try:
        # The loops below block; a daemon may hand over non-blocking ends.
        os.set_blocking(fd_in, True)
        os.set_blocking(fd_out, True)
        if framing == "lines":
            return _serve_lines(handler, fd_in, out, max_bytes, binary)
        return _serve_length(handler, fd_in, out, max_bytes, binary, heartbeat_ms,
                             chunks == "1")
    except OSError as e:
        _complain(f"the channel broke: {e}")
        return 1


def load(spec):
    """The function that SPEC ("package.module:function") names, or
    ValueError saying why not."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ValueError(f"{spec!r}: expected package.module:function")
    import importlib
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure to import is the spec's
        raise ValueError(f"{spec!r}: cannot import {module_name}: {type(e).__name__}: {e}") \
            from None
    target = module
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"{spec!r}: {module_name} has no {name}")
    if not callable(target):
        raise ValueError(f"{spec!r}: {name} is not callable")
    return target


def main(argv=None):
    """python3 -m corral.worker [--binary] package.module:function"""
    args = list(sys.argv[1:] if argv is None else argv)
    binary = False
    if args and args[0] == "--binary":
        binary = True
        args.pop(0)
    if len(args) != 1:
        _complain("usage: python3 -m corral.worker [--binary] package.module:function")
        return 2
    # The working directory's modules, as `python3 script.py` would find a
    # module beside it (-m puts the cwd on sys.path already).
    try:
        handler = load(args[0])
    except ValueError as e:
        _complain(str(e))
        return 2
    return serve(handler, binary=binary)


if __name__ == "__main__":
    # Served from corral.worker itself, not this __main__ copy: a handler's
    # corral.worker.stop_after_this_task() must reach the loop that runs it.
    from corral.worker import main as _main
    raise SystemExit(_main())
