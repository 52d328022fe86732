"""A corrald of each test's own (its config, socket and logs in a temp dir),
from the build ctest names in CORRAL_BUILD_DIR; stopped after the test."""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

BUILD = os.environ.get("CORRAL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build"))
PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# The build's python/corral holds corral._native (the package finds it there).
NATIVE_DIR = os.path.abspath(os.path.join(BUILD, "python"))
PYTHONPATH = f"{PYTHON_DIR}:{NATIVE_DIR}"
HAVE_NATIVE = bool(glob.glob(os.path.join(NATIVE_DIR, "corral", "_native*.so")))
# For the tests of Python workers on shm.
needs_native = pytest.mark.skipif(
    not HAVE_NATIVE, reason="corral._native is not built (python3-dev missing): "
    "no Python worker on shm")
sys.path.insert(0, PYTHON_DIR)
sys.path.insert(1, NATIVE_DIR)

import corral  # noqa: E402


class Daemon:
    def __init__(self, directory, jobs):
        self.dir = str(directory)
        self.socket = os.path.join(self.dir, "corral.sock")
        self.config = os.path.join(self.dir, "corral.yaml")
        with open(self.config, "w") as f:
            f.write(f"daemon:\n  socket: {self.socket}\n  log_dir: {self.dir}/logs\n"
                    f"  state_dir: {self.dir}/state\n  cgroup: \"off\"\n"
                    f"  metrics: {{listen: off}}\njobs:\n{jobs}")
        self.log = open(os.path.join(self.dir, "corrald.log"), "w")
        self.proc = subprocess.Popen([os.path.join(BUILD, "corrald"), "-c", self.config],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        # Until it answers (the file appears at bind, before listen).
        deadline = time.monotonic() + 30
        while True:
            try:
                corral.Client(self.socket, timeout=10).request({"cmd": "version"})
                break
            except corral.ConnectionFailed:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("corrald did not start: " + self.log_text()) from None
                time.sleep(0.01)

    def client(self, **kwargs):
        return corral.Client(self.socket, **kwargs)

    def log_text(self):
        with open(os.path.join(self.dir, "corrald.log")) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def worker(*args):
    """A job's command: corral-worker with ARGS, as a YAML flow list."""
    return "[" + ", ".join([os.path.join(BUILD, "corral-worker"), *args]) + "]"


@pytest.fixture
def start_daemon(tmp_path):
    started = []

    def start(jobs):
        directory = tmp_path / f"d{len(started)}"
        directory.mkdir()
        d = Daemon(directory, jobs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
    # A sanitizer's report in a corrald of the test fails it (scripts/test --asan).
    for d in started:
        log = d.log_text()
        assert "Sanitizer" not in log and "runtime error" not in log, log
