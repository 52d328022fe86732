"""corral from Python: corrald's control socket as a Client (status, start,
stop, stats, submit with streamed results), a concurrent.futures Executor
whose tasks run in a job's workers, and corrald's refusals as exceptions
(corral.Error and its subclasses). Standard library only.

    import corral
    with corral.Client() as client:
        for result in client.submit("sums", map(str, range(1000))):
            print(result.seq, result.result)
"""

# corral._native, the C++ module, may be built apart from these files (a
# build tree's python/corral beside the sources' one): found on sys.path.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from .client import DEFAULT_SOCKET, Client, Result, resolve_socket
from .executor import Executor
from .errors import (ConnectionFailed, ConnectionLost, DaemonError, Error, NoSuchJob, TaskDead,
                     TaskError, TaskFailed)

__version__ = "0.1.0"

__all__ = [
    "Client", "Executor", "Result", "resolve_socket", "DEFAULT_SOCKET",
    "Error", "ConnectionFailed", "ConnectionLost", "DaemonError", "NoSuchJob",
    "TaskError", "TaskFailed", "TaskDead",
]
