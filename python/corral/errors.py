"""The exceptions of the corral package: one base, corral.Error, and a
subclass for each way a call can fail. Each carries a whole message for a
person; a daemon's refusal carries the daemon's own words."""


class Error(Exception):
    """Anything corral could not do: the base of every exception here."""


class ConnectionFailed(Error):
    """corrald could not be reached, or would not talk to us (the socket is
    missing, someone else serves it, we were refused)."""


class ConnectionLost(Error):
    """corrald closed the connection before its answer was complete (it was
    stopped, or restarted)."""


class DaemonError(Error):
    """corrald answered {"ok": false, "error": ...}: what it said."""

    def __init__(self, message, reply=None):
        super().__init__(message)
        self.reply = reply or {}


class NoSuchJob(DaemonError):
    """The job named is not in corrald's config."""


class TaskError(Error):
    """A task that did not end ok (the base of TaskFailed and TaskDead)."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result

    @property
    def attempts(self):
        return self.result.attempts if self.result is not None else 0


class TaskFailed(TaskError):
    """The worker reported the task failed (or it was refused, cancelled or
    expired): message is what it said."""


class TaskDead(TaskError):
    """The task ended dead: its worker died on each of its attempts."""


def from_reply(reply):
    """The DaemonError for an {"ok": false} reply."""
    message = str(reply.get("error", "corrald refused the request"))
    if message.startswith("no such job"):
        return NoSuchJob(message, reply)
    return DaemonError(message, reply)
