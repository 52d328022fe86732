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
from conftest import PYTHONPATH, needs_native

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..")

TASKS = '''
def double(task):
    return str(2 * int(task))

def shout(task):
    return task.upper() + b"!"

import os
import corral.shared
import corral.worker

def counted(task):
    """Doubles, and counts in the job's shared values (shm)."""
    n = int(task)
    corral.shared.value("processed").add(1)
    corral.shared.value("balance").add(-n)
    corral.shared.value("total").add(n / 2)
    corral.shared.array("histogram").add(n % 4)
    return str(2 * n)

def probe(task):
    """What corral.shared says to a wrong question."""
    try:
        if task == "array-as-value":
            corral.shared.value("histogram")
        elif task == "undeclared":
            corral.shared.value("nothing")
        elif task == "negative-u64":
            corral.shared.value("processed").value = -1
        elif task == "index":
            corral.shared.array("histogram")[4]
        elif task == "last":
            corral.worker.stop_after_this_task()
            return str(os.getpid())
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "no error"

def crash_once(task):
    """Ends its worker (os._exit) the first time a task is 'poison'."""
    if task == "poison" and not os.path.exists("crashed"):
        open("crashed", "w").close()
        os._exit(9)
    return task
'''


def job(name, spec, tmp_path, framing="length", extra_args="", channel="pipe", extra=""):
    wiring = (f"    pipe: {{framing: {framing}}}\n" if channel == "pipe" else
              "    shared:\n      values: {processed: u64, balance: i64, total: f64}\n"
              "      arrays: {histogram: {type: u64, length: 4}}\n")
    return f"""  {name}:
    command: [{sys.executable}, -m, corral.worker, {extra_args}"{spec}"]
    workers: 2
    channel: {channel}
{wiring}    cwd: {tmp_path}
    env: {{PYTHONPATH: "{PYTHONPATH}:{tmp_path}"}}
    restart: {{backoff: {{initial: 10ms, max: 100ms}}}}
{extra}"""


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


@needs_native
def test_a_function_is_a_worker_on_shm_with_the_shared_values(start_daemon, tasks_module):
    d = start_daemon(job("doubles", "mytasks:counted", tasks_module, channel="shm") +
                     job("shouts", "mytasks:shout", tasks_module, channel="shm",
                         extra_args="--binary, "))
    client = corral.Client(d.socket, timeout=30)
    for name in ("doubles", "shouts"):
        client.wait(name, running=True, timeout=30)
    n = 2000
    with corral.Executor("doubles", socket=d.socket) as pool:
        assert list(pool.map([str(i) for i in range(n)])) == [str(2 * i) for i in range(n)]
        with pytest.raises(corral.TaskFailed, match="invalid literal for int"):
            pool.submit("x").result(timeout=30)
    # Both workers added to the same cells, atomically: nothing lost.
    shared = client.shared("doubles")
    assert shared["values"]["processed"] == n
    assert shared["values"]["balance"] == -sum(range(n))
    assert shared["values"]["total"] == sum(range(n)) / 2
    assert shared["arrays"]["histogram"] == [n // 4] * 4
    assert [r.result for r in client.submit("shouts", ["hey", "\u00e9"])] in (
        ["HEY!", "\u00e9!"], ["\u00e9!", "HEY!"])


@needs_native
def test_shared_values_say_what_is_wrong_and_stop_after_this_task_works_on_shm(
        start_daemon, tasks_module):
    d = start_daemon(job("probes", "mytasks:probe", tasks_module, channel="shm"))
    client = corral.Client(d.socket, timeout=30)
    client.wait("probes", running=True, timeout=30)

    def ask(task):
        return next(iter(client.submit("probes", [task]))).result

    assert ask("array-as-value") == ("TypeError: shared 'histogram' is an array: "
                                     "use corral.shared.array('histogram')")
    assert ask("undeclared") == ("RuntimeError: the job 'probes' declares no shared value "
                                 "or array 'nothing'")
    assert ask("negative-u64").startswith("OverflowError: -1 is out of the range of shared "
                                          "value 'processed' (u64)")
    assert ask("index") == "IndexError: shared array 'histogram' has no index 4 (length 4)"
    pid = int(ask("last"))
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}")
    # An exit 0 the worker asked for (restart: unexpected leaves it EXITED).
    states = sorted((w["state"], w.get("exit_status")) for w in client.status("probes"))
    assert states[0] == ("EXITED", 0) and states[1][0] == "RUNNING", states
    assert ask("undeclared").startswith("RuntimeError")


@needs_native
def test_a_python_worker_killed_on_shm_under_map_loses_nothing(start_daemon, tasks_module):
    d = start_daemon(job("echo", "mytasks:crash_once", tasks_module, channel="shm",
                         extra="    queue: {prefetch: 64}\n"))
    corral.Client(d.socket, timeout=30).wait("echo", running=True, timeout=30)
    payloads = [str(i) for i in range(20_000)]
    payloads[7_000] = "poison"
    with corral.Executor("echo", socket=d.socket) as pool:
        assert list(pool.map(payloads)) == payloads
    assert os.path.exists(tasks_module / "crashed")
    stats = corral.Client(d.socket).stats("echo")
    assert stats["ok"] == len(payloads), stats


def test_shared_outside_a_worker_says_why():
    import corral.shared
    with pytest.raises(RuntimeError, match="shm channel|native module"):
        corral.shared.value("processed")
