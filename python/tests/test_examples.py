"""examples/python: Python's multiprocessing patterns in corral, each run
against a corrald on the examples' own jobs.yaml."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
from conftest import HAVE_NATIVE, PYTHONPATH, needs_native

EXAMPLES = os.path.abspath(os.path.join(HERE, "..", "..", "examples", "python"))


@pytest.fixture
def daemon(start_daemon):
    with open(os.path.join(EXAMPLES, "jobs.yaml")) as f:
        text = f.read()
    # This python3, the examples' directory, the package from the tree.
    jobs = text.split("jobs:\n", 1)[1]
    jobs = jobs.replace("command: [python3,", f"command: [{sys.executable},")
    for channel in ("pipe", "shm"):
        jobs = jobs.replace(f"    channel: {channel}\n", f"    channel: {channel}\n"
                            f"    cwd: {EXAMPLES}\n"
                            f"    env: {{PYTHONPATH: \"{PYTHONPATH}\"}}\n")
    d = start_daemon(jobs)
    import corral
    client = corral.Client(d.socket, timeout=30)
    for job in ("squares", "flaky") + (("wordcount",) if HAVE_NATIVE else ()):
        client.wait(job, running=True, timeout=30)
    return d


def run(example, d):
    env = dict(os.environ, CORRAL_SOCKET=d.socket, PYTHONPATH=PYTHONPATH)
    done = subprocess.run([sys.executable, os.path.join(EXAMPLES, example)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pool_map(daemon):
    assert run("pool_map.py", daemon) == "sum of squares below 10000: 333283335000\n"


def test_producer_consumer(daemon):
    assert run("producer_consumer.py", daemon) == "consumed 100 items; total 328350\n"


def test_retries(daemon):
    out = run("retries.py", daemon)
    assert out.startswith("20 of 20 ok, after up to "), out


def test_monitoring(daemon):
    out = run("monitoring.py", daemon)
    assert "squares:0 RUNNING" in out and "squares: 0 ok, 0 failed, 0 queued" in out, out


@needs_native
def test_shared_counters(daemon):
    assert run("shared_counters.py", daemon) == ("words: 4500\n"
                                                 "by length: [0, 0, 0, 2000, 1000, 1500, 0, 0]\n")
