"""bench/history.py on fake JSON files: no benchmark runs.

    /usr/bin/python3 -m pytest -q bench/test_history.py   (ctest: bench.test_history)
"""
import io
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import history  # noqa: E402


def throughput_json(shm=1_000_000.0, imap=2_000_000.0, inner_p50=20.0, pipe_p50=50.0,
                    peer_imap=None):
    """The shape bench/throughput.py writes, cut down."""
    peer_imap = imap if peer_imap is None else peer_imap
    fig = lambda m, unit: {"median": m, "min": m * 0.9, "max": m * 1.1, "runs": 3,
                           "samples": [m * 0.9, m, m * 1.1], "label": "x", "unit": unit}
    return {
        "tasks": 100000, "runs": 1, "workers": 2, "client": "corralctl",
        "machine": {"cpus": 2, "loadavg_at_start": ["0.5", "0.4", "0.3"], "commit": "abc"},
        "figures": {"corral_shm": fig(shm, "tasks/s"), "py_pool_imap": fig(peer_imap, "tasks/s"),
                    "corral_shm_inner_p50": fig(inner_p50, "us"),
                    "py_pipe_rtt_p50": fig(pipe_p50, "us")},
        "comparisons": [
            {"figure": "shm vs Pool.imap(chunksize=1000)", "key": "corral_shm/py_pool_imap",
             "corral": "corral_shm", "peer": "py_pool_imap", "ratio": shm / peer_imap,
             "target": 1, "task": "main", "better": "higher"},
            {"figure": "corrald -> worker -> corrald p50, shm, vs Pipe ping-pong p50 "
                       "(lower is better)", "corral": "corral_shm_inner_p50",
             "peer": "py_pipe_rtt_p50", "ratio": inner_p50 / pipe_p50, "target": ["<", 1]},
        ],
        "reference": [{"figure": "ref", "key": "corral_shm/py_pool_imap",
                       "ratio": shm / peer_imap}],
        "cpu_share": {"corral_shm": [{"corrald": 0.6, "client": 0.2}]},
        "incidents": [],
    }


def supervision_json(restart_ratio=300.0, cgroup_ratio=1.02, idle_ratio=5.0):
    one = lambda v: {"median": v, "min": v, "max": v, "runs": 1}
    return [
        {"figure": "restart after kill -9", "unit": "ms", "corral": one(3.0),
         "supervisord": one(3.0 * restart_ratio), "ratio": restart_ratio,
         "target": "<= 1/100", "met": True, "better": "higher"},
        {"figure": "idle CPU with 100 workers (2 s)", "unit": "%", "corral": one(0.01),
         "supervisord": one(0.05), "ratio": idle_ratio, "target": "~0", "met": True,
         "better": None},
        {"figure": "100 workers RUNNING, cgroups on", "unit": "ms", "corral": one(50.0),
         "cgroups off": one(49.0), "ratio": cgroup_ratio, "target": "<= 1.10", "met": True,
         "better": "lower"},
        {"figure": "restart after kill -9, mean", "unit": "ms", "corral": 3.1,
         "supervisord": 900.0, "slow (>= 0.5 s)": {"corral": 0, "supervisord": 4}},
    ]


def scale_out_json(corral_rate=20000.0, celery_rate=700.0):
    return {"load_at_start": [1.0, 0.9, 0.8], "tasks": 20000,
            "systems": {"corral 1 node, drain (2 C++ workers)": {
                            "median_tasks_per_s": corral_rate,
                            "runs": [{"tasks_per_s": corral_rate, "lost": 0}]},
                        "celery (prefork 2, acks_late)": {
                            "median_tasks_per_s": celery_rate,
                            "runs": [{"tasks_per_s": celery_rate, "lost": 0}]}},
            "faults": {"celery": {"worker": {"lost": 0}, "node": {"lost": 7}}}}


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def append(tmp_path, history_path, mode="quick", commit="abc1234", **figures):
    files = [write(tmp_path, "throughput.json", throughput_json(**figures.get("t", {}))),
             write(tmp_path, "supervision.json", supervision_json(**figures.get("s", {}))),
             write(tmp_path, "scale_out.json", scale_out_json(**figures.get("o", {})))]
    assert history.main(["append", history_path, *files, "--mode", mode, "--commit", commit,
                         "--load-start", "0.50 0.40 0.30", "--load-end", "1.5 1.0 0.9"]) == 0


def compare(history_path):
    out = io.StringIO()
    code = history.compare(type("Args", (), {"history": history_path})(), out=out)
    return code, out.getvalue()


def test_flatten_names_every_figure_by_file_and_key(tmp_path):
    figures, better = history.figures_of([
        write(tmp_path, "throughput.json", throughput_json()),
        write(tmp_path, "supervision.json", supervision_json()),
        write(tmp_path, "scale_out.json", scale_out_json())])
    # A figure with a median stands for its median; "figures" is left out of the name.
    assert figures["throughput.corral_shm"] == 1_000_000.0
    assert figures["throughput.tasks"] == 100000
    assert figures["throughput.comparisons.corral_shm/py_pool_imap.ratio"] == 0.5
    assert figures["throughput.cpu_share.corral_shm.0.corrald"] == 0.6
    assert figures["supervision.restart after kill -9.ratio"] == 300.0
    assert figures["supervision.restart after kill -9.corral"] == 3.0
    assert figures["supervision.restart after kill -9, mean.slow (>= 0.5 s).supervisord"] == 4
    assert figures["scale_out.systems.corral 1 node, drain (2 C++ workers).median_tasks_per_s"] \
        == 20000.0
    assert figures["scale_out.faults.celery.node.lost"] == 7
    # Left out: samples, min/max, the machine, targets, booleans, raw runs, the reference copy.
    assert not [k for k in figures if "samples" in k or k.endswith((".min", ".max", ".target",
                                                                     ".met"))]
    assert not [k for k in figures if "machine" in k or ".runs." in k or "reference" in k]
    # Watched: ratios and corral's throughput; not the peers' own throughput.
    assert better["throughput.corral_shm"] == "higher"
    assert "throughput.py_pool_imap" not in better
    assert better["throughput.comparisons.corral_shm/py_pool_imap.ratio"] == "higher"
    lat = [k for k in better if "lower is better" in k]
    assert len(lat) == 1 and better[lat[0]] == "lower"
    assert better["supervision.100 workers RUNNING, cgroups on.ratio"] == "lower"
    assert "supervision.idle CPU with 100 workers (2 s).ratio" not in better
    assert better["scale_out.systems.corral 1 node, drain (2 C++ workers).median_tasks_per_s"] \
        == "higher"
    assert "scale_out.systems.celery (prefork 2, acks_late).median_tasks_per_s" not in better


def test_append_writes_one_line_per_run(tmp_path):
    path = str(tmp_path / "results" / "history.jsonl")
    append(tmp_path, path)
    append(tmp_path, path, mode="full")
    lines = open(path).read().splitlines()
    assert len(lines) == 2
    run = json.loads(lines[0])
    assert run["commit"] == "abc1234" and run["mode"] == "quick"
    assert run["loadavg_start"] == [0.5, 0.4, 0.3] and run["loadavg_end"] == [1.5, 1.0, 0.9]
    assert run["date"].endswith("Z") and "T" in run["date"]
    assert run["files"] == ["throughput.json", "supervision.json", "scale_out.json"]
    assert run["figures"]["throughput.corral_shm"] == 1_000_000.0


def test_append_defaults_to_git_commit_and_load_now(tmp_path):
    path = str(tmp_path / "history.jsonl")
    files = [write(tmp_path, "throughput.json", throughput_json())]
    assert history.main(["append", path, *files, "--mode", "quick"]) == 0
    run = json.loads(open(path).read())
    head = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert run["commit"].split("-")[0] == head
    assert len(run["loadavg_end"]) == 3 and run["loadavg_start"] is None


def test_compare_with_fewer_than_two_runs_says_so(tmp_path):
    path = str(tmp_path / "history.jsonl")
    code, out = compare(path)
    assert code == 0 and "no runs" in out
    append(tmp_path, path)
    code, out = compare(path)
    assert code == 0 and "fewer than two" in out


def test_compare_steady_run_exits_0(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path)
    append(tmp_path, path, t={"shm": 900_000.0})  # 10% slower: within the margin
    code, out = compare(path)
    assert code == 0, out
    assert f"**{history.MARK}**" not in out
    assert "| throughput.corral_shm | 900,000 | 1,000,000 | -10.0% | higher is better |" in out


def test_compare_flags_a_ratio_that_dropped_by_more_than_20_percent(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path)
    append(tmp_path, path, t={"shm": 700_000.0})  # ratio 0.5 -> 0.35, throughput -30%
    code, out = compare(path)
    assert code == 1, out
    flagged = [line for line in out.splitlines() if line.startswith(f"  {history.MARK}: ")]
    names = {line.split(": ")[1] for line in flagged}
    assert names == {"throughput.corral_shm",
                     "throughput.comparisons.corral_shm/py_pool_imap.ratio"}


def test_compare_does_not_flag_a_slower_peer_or_an_unwatched_ratio(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path)
    # The peer got faster (the ratio falls 50%... must flag) is another test; here the
    # peer's own figure and the idle CPU ratio fall, and corral's ratio rises.
    append(tmp_path, path, t={"peer_imap": 1_000_000.0}, s={"idle_ratio": 1.0},
           o={"celery_rate": 100.0})
    code, out = compare(path)
    assert code == 0, out


def test_compare_flags_a_lower_is_better_ratio_that_rose(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path)
    append(tmp_path, path, s={"cgroup_ratio": 1.40})  # 1.02 -> 1.40: 1/x fell by 27%
    code, out = compare(path)
    assert code == 1
    assert f"{history.MARK}: supervision.100 workers RUNNING, cgroups on.ratio" in out
    # And falling is an improvement, not a regression.
    append(tmp_path, path, s={"cgroup_ratio": 0.5})
    assert compare(path)[0] == 0


def test_compare_against_the_previous_run_of_the_same_mode(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path, mode="full", t={"shm": 100.0})
    append(tmp_path, path, mode="quick")
    append(tmp_path, path, mode="full", t={"shm": 100.0})
    code, out = compare(path)
    assert code == 0, out
    assert "(full," in out


def test_new_and_gone_figures_are_listed_not_flagged(tmp_path):
    path = str(tmp_path / "history.jsonl")
    files = [write(tmp_path, "throughput.json", throughput_json())]
    history.main(["append", path, *files, "--mode", "quick", "--commit", "a"])
    files = [write(tmp_path, "scale_out.json", scale_out_json())]
    history.main(["append", path, *files, "--mode", "quick", "--commit", "b"])
    code, out = compare(path)
    assert code == 0
    assert "| throughput.corral_shm | - | 1,000,000 | gone |" in out
    assert "| scale_out.tasks | 20,000 | - | new |" in out


def test_command_line_exit_status(tmp_path):
    path = str(tmp_path / "history.jsonl")
    append(tmp_path, path)
    append(tmp_path, path, t={"shm": 500_000.0})
    run = subprocess.run([sys.executable, os.path.join(HERE, "history.py"), "compare", path],
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert history.MARK in run.stdout


def test_a_broken_line_is_an_error(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"mode": "quick"}\nnot json\n')
    with pytest.raises(SystemExit) as e:
        compare(str(path))
    assert "history.jsonl:2" in str(e.value)
