"""A plain function served as a worker: `python3 -m corral.worker
module:function` on pipes (both framings), failures as failed results, bytes
with --binary, a function that cannot be loaded as exit 2 with the reason;
and `import corral_worker`, the SDK's first name, still works."""
import glob
import os
import sys
import time

import pytest

import corral
from conftest import worker  # noqa: F401 (the daemon fixture's module)

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..")

TASKS = '''
def double(task):
    return str(2 * int(task))

def shout(task):
    return task.upper() + b"!"
'''


def job(name, spec, tmp_path, framing="length", extra_args=""):
    return f"""  {name}:
    command: [{sys.executable}, -m, corral.worker, {extra_args}"{spec}"]
    workers: 2
    channel: pipe
    pipe: {{framing: {framing}}}
    cwd: {tmp_path}
    env: {{PYTHONPATH: "{os.path.abspath(PYTHON_DIR)}:{tmp_path}"}}
    restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
"""


@pytest.fixture
def tasks_module(tmp_path):
    (tmp_path / "mytasks.py").write_text(TASKS)
    return tmp_path


def test_a_function_is_a_worker_on_both_framings(start_daemon, tasks_module):
    d = start_daemon(job("doubles", "mytasks:double", tasks_module) +
                     job("lines", "mytasks:double", tasks_module, framing="lines") +
                     job("shouts", "mytasks:shout", tasks_module, extra_args="--binary, "))
    client = corral.Client(d.socket, timeout=30)
    for name in ("doubles", "lines", "shouts"):
        client.wait(name, running=True, timeout=30)
    with corral.Executor("doubles", socket=d.socket) as pool:
        assert list(pool.map([str(n) for n in range(1000)])) == [str(2 * n) for n in range(1000)]
        with pytest.raises(corral.TaskFailed, match="invalid literal for int"):
            pool.submit("x").result(timeout=30)
    assert sorted(r.result for r in client.submit("lines", ["1", "2", "3"])) == ["2", "4", "6"]
    assert [r.result for r in client.submit("shouts", ["hey"])] == ["HEY!"]


def test_a_function_that_cannot_be_loaded_is_exit_2_with_why(start_daemon, tasks_module):
    d = start_daemon(job("missing", "mytasks:nothing", tasks_module) +
                     job("nomodule", "nosuchmodule:f", tasks_module) +
                     job("badspec", "no-colon", tasks_module))
    client = corral.Client(d.socket, timeout=30)
    logs = os.path.join(d.dir, "logs")

    def said(name, text):
        for path in glob.glob(os.path.join(logs, f"{name}*")):
            with open(path, errors="replace") as f:
                if text in f.read():
                    return True
        return False

    expected = {"missing": "mytasks has no nothing",
                "nomodule": "cannot import nosuchmodule: ModuleNotFoundError",
                "badspec": "expected package.module:function"}
    deadline = time.monotonic() + 30
    while not all(said(n, t) for n, t in expected.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name, text in expected.items():
        assert said(name, text), (name, os.listdir(logs))
        status = client.status(f"{name}:0")[0]
        assert status["state"] in ("BACKOFF", "FATAL", "STARTING"), status
        assert status["exit_status"] in (2, None), status


def test_import_corral_worker_is_the_same_sdk():
    sys.path.insert(0, PYTHON_DIR)
    import corral_worker
    import corral.worker
    assert corral_worker.serve is corral.worker.serve
    assert corral_worker.stop_after_this_task is corral.worker.stop_after_this_task
