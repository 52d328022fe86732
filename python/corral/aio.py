"""corral for asyncio: the control socket on the running event loop.

    import asyncio, corral.aio

    async def main():
        async with corral.aio.Client() as client:
            print(await client.run("sums", "10"))                  # one task, its answer
            answers = await asyncio.gather(*(client.run("sums", str(n)) for n in range(1000)))
            async for result in client.submit("sums", map(str, range(10_000))):
                print(result.seq, result.result)

run() shares one submit stream per job among every call (corrald allows a
client a few dozen connections, not one per task); submit() opens a stream
of its own and yields results in completion order, taking payloads (an
iterable or an async iterable) only as corrald takes them.
"""

import asyncio
import json
from typing import AsyncIterator, Dict, Optional

from .client import (_END, MAX_LINE, Payload, Result, _check_peer, _task_line, resolve_socket,
                     result_of, value_of)
from .errors import ConnectionFailed, ConnectionLost, from_reply


async def _open(path: str, timeout: Optional[float]):
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(path, limit=MAX_LINE + 1), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        raise ConnectionFailed(f"cannot reach corrald at {path}: "
                               f"{getattr(e, 'strerror', None) or e or 'timed out'}") from None
    try:
        _check_peer(writer.get_extra_info("socket"), path)
    except BaseException:
        writer.close()
        raise
    return reader, writer


async def _read_line(reader: asyncio.StreamReader, path: str) -> dict:
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise ConnectionLost(f"corrald at {path} sent a line over 1 MiB") from None
    except OSError as e:
        raise ConnectionLost(f"corrald at {path}: {e.strerror or e}") from None
    if not line.endswith(b"\n"):
        raise ConnectionLost(f"corrald at {path} closed the connection")
    try:
        return json.loads(line)
    except ValueError:
        raise ConnectionLost(f"corrald at {path} sent a line that is not JSON") from None


class _Stream:
    """One job's shared submit stream for run(): a reader task completes each
    call's future by its seq."""

    def __init__(self, path: str, reader, writer):
        self.path = path
        self.reader = reader
        self.writer = writer
        self.waiting: Dict[int, asyncio.Future] = {}
        self.next_seq = 0
        self.failure: Optional[BaseException] = None
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path: str, job: str, timeout: Optional[float]) -> "_Stream":
        reader, writer = await _open(path, timeout)
        writer.write((json.dumps({"cmd": "submit", "job": job, "wait": True}) + "\n").encode())
        ack = await _read_line(reader, path)
        if not ack.get("ok"):
            writer.close()
            raise from_reply(ack)
        return cls(path, reader, writer)

    async def run(self, payload: Payload) -> str:
        if self.failure is not None:
            raise self.failure
        line = _task_line(payload)
        future = asyncio.get_running_loop().create_future()
        self.waiting[self.next_seq] = future
        self.next_seq += 1
        self.writer.write(line)
        try:
            await self.writer.drain()  # corrald's back-pressure
        except OSError as e:
            raise ConnectionLost(f"corrald at {self.path}: {e.strerror or e}") from None
        return value_of(await future, cancelled=asyncio.CancelledError)

    async def _read(self) -> None:
        try:
            while True:
                result = result_of(await _read_line(self.reader, self.path))
                if result is _END:
                    return
                if result is not None:
                    future = self.waiting.pop(result.seq, None)
                    if future is not None and not future.done():
                        future.set_result(result)
        except BaseException as e:  # noqa: BLE001 - every waiting call hears it
            self.failure = e if isinstance(e, ConnectionLost) else ConnectionLost(str(e))
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(self.failure)
            self.waiting.clear()

    async def close(self) -> None:
        if not self.task.done():
            try:
                self.writer.write(b".\n")
                await self.writer.drain()
                await self.task
            except OSError:
                pass
        self.writer.close()


class Client:
    """corrald's control socket on the running loop; see the module's doc."""

    def __init__(self, socket: Optional[str] = None, timeout: Optional[float] = 30.0):
        self.path = resolve_socket(socket)
        self.timeout = timeout
        self._streams: Dict[str, _Stream] = {}
        self._opening: Dict[str, asyncio.Lock] = {}
        self._control = None
        self._control_lock = asyncio.Lock()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Ends the shared streams (their calls' results come first)."""
        streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            await stream.close()
        if self._control is not None:
            self._control[1].close()
            self._control = None

    async def request(self, message: dict) -> dict:
        """One request on the client's connection; DaemonError for a refusal."""
        async with self._control_lock:
            if self._control is None:
                self._control = await _open(self.path, self.timeout)
            reader, writer = self._control
            try:
                writer.write((json.dumps(message) + "\n").encode())
                await writer.drain()
                reply = await asyncio.wait_for(_read_line(reader, self.path), self.timeout)
            except BaseException:
                writer.close()
                self._control = None
                raise
        if not reply.get("ok", False):
            raise from_reply(reply)
        return reply

    async def status(self, *targets: str) -> list:
        message = {"cmd": "status", **({"targets": list(targets)} if targets else {})}
        return (await self.request(message))["workers"]

    async def stats(self, job: Optional[str] = None) -> dict:
        reply = await self.request({"cmd": "stats", **({"job": job} if job else {})})
        return reply["jobs"][job] if job else reply["jobs"]

    async def run(self, job: str, payload: Payload) -> str:
        """Runs one task on JOB's workers: its answer, or TaskFailed/TaskDead."""
        stream = self._streams.get(job)
        if stream is None or stream.failure is not None:
            lock = self._opening.setdefault(job, asyncio.Lock())
            async with lock:
                stream = self._streams.get(job)
                if stream is None or stream.failure is not None:
                    stream = await _Stream.open(self.path, job, self.timeout)
                    self._streams[job] = stream
        return await stream.run(payload)

    async def submit(self, job: str, payloads, deadline: Optional[float] = None
                     ) -> AsyncIterator[Result]:
        """Submits PAYLOADS (an iterable or async iterable of str or bytes) on a
        connection of its own; yields each Result in completion order."""
        reader, writer = await _open(self.path, self.timeout)
        try:
            request = {"cmd": "submit", "job": job, "wait": True}
            if deadline is not None:
                request["deadline_s"] = deadline
            writer.write((json.dumps(request) + "\n").encode())
            ack = await _read_line(reader, self.path)
            if not ack.get("ok"):
                raise from_reply(ack)

            async def feed():
                try:
                    if hasattr(payloads, "__aiter__"):
                        async for p in payloads:
                            writer.write(_task_line(p))
                            await writer.drain()
                    else:
                        for p in payloads:
                            writer.write(_task_line(p))
                            await writer.drain()
                    writer.write(b".\n")
                    await writer.drain()
                except OSError:
                    pass  # corrald went away: the reader says so

            loop = asyncio.get_running_loop()
            feeder = loop.create_task(feed())
            read = loop.create_task(_read_line(reader, self.path))
            try:
                while True:
                    # A payload the feeder refuses (a newline) ends the submit
                    # at once: corrald would wait for the rest forever.
                    waiting = {read} if feeder.done() else {read, feeder}
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if feeder in done and feeder.exception() is not None:
                        raise feeder.exception()
                    if read not in done:
                        continue
                    result = result_of(read.result())
                    if result is _END:
                        return
                    if result is not None:
                        yield result
                    read = loop.create_task(_read_line(reader, self.path))
            finally:
                feeder.cancel()
                read.cancel()
        finally:
            writer.close()
