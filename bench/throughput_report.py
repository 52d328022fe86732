"""The report of bench/throughput.py: its figures' names and units, the
comparisons between corral and the Python peers (with issue 22's targets),
the tables printed from the medians, and the machine they ran on.
"""
import os
import platform
import statistics
import subprocess

from throughput_peers import PPE_SUBMIT_DIVISOR, WORKERS

# figure key -> (label, unit)
FIGURES = {}


def figure(key, label, unit):
    FIGURES[key] = (label, unit)
    return key


# Comparisons: (label, corral key, peer key, target ratio or None). Throughput
# ratios are corral/peer (higher is better); latency ratios are corral/peer
# too, where lower is better. The main line first (the same O(1) function on
# both sides; the targets apply to it), then the 50-iteration loop line.
LOOP_LABEL = ", 50-iteration loop (C++ vs Python)"

# Issue 22's two reference comparisons, printed on their own with the load.
REFERENCE = [("corral_shm", "py_pool_imap"), ("corral_shm-prefetch64", "py_pool_imap"),
             ("corral_source_range", "py_pool_map")]


def comparisons():
    ppe = f"ProcessPoolExecutor.submit (N/{PPE_SUBMIT_DIVISOR})"
    return [
        ("shm vs " + ppe, "corral_shm", "py_ppe_submit", 100),
        ("shm vs mp.Queue", "corral_shm", "py_mp_queue", 10),
        # Issue 22's targets for tiny tasks: 1.5x the chunked pool end to
        # end, 2x with a range source (an earlier issue's were 1x and 1.5x).
        ("shm vs Pool.imap(chunksize=1000)", "corral_shm", "py_pool_imap", 1.5),
        ("shm, prefetch 64, vs Pool.imap(chunksize=1000)", "corral_shm-prefetch64",
         "py_pool_imap", None),
        ("pipe length vs " + ppe, "corral_pipe-length", "py_ppe_submit", 20),
        ("pipe lines vs " + ppe, "corral_pipe-lines", "py_ppe_submit", None),
        ("source range vs Pool.map(chunksize=1000)", "corral_source_range",
         "py_pool_map", 2),
        ("source file vs Pool.map(chunksize=1000)", "corral_source_file",
         "py_pool_map", None),
        ("source range into a sink vs Pool.map(chunksize=1000)", "corral_source_range-sink",
         "py_pool_map", None),
        ("shm vs " + ppe + LOOP_LABEL, "corral_shm_loop", "py_ppe_submit_loop", None),
        ("shm vs mp.Queue" + LOOP_LABEL, "corral_shm_loop", "py_mp_queue_loop", None),
        ("shm vs Pool.imap(chunksize=1000)" + LOOP_LABEL, "corral_shm_loop",
         "py_pool_imap_loop", None),
        ("source file vs Pool.map(chunksize=1000)" + LOOP_LABEL, "corral_source_file_loop",
         "py_pool_map_loop", None),
        ("corrald -> worker -> corrald p50, shm, vs Pipe ping-pong p50 (lower is better)",
         "corral_shm_inner_p50", "py_pipe_rtt_p50", ("<", 1)),
        ("corrald -> worker -> corrald p99, shm, vs Pipe ping-pong p99 (lower is better)",
         "corral_shm_inner_p99", "py_pipe_rtt_p99", None),
        ("round trip p50 through corralctl's socket, shm, vs Pipe ping-pong p50 "
         "(lower is better)", "corral_shm_rtt_p50", "py_pipe_rtt_p50", None),
        ("round trip p99 shm vs Pipe ping-pong p99 (lower is better)", "corral_shm_rtt_p99",
         "py_pipe_rtt_p99", None),
    ]


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values), "samples": values}


def show(key, s):
    unit = FIGURES[key][1]
    if unit == "tasks/s":
        return f"{s['median'] / 1e3:,.0f} k/s ({s['min'] / 1e3:,.0f}-{s['max'] / 1e3:,.0f})"
    return f"{s['median']:,.1f} us ({s['min']:,.1f}-{s['max']:,.1f})"


def better(label, ours):
    """Which way a comparison's ratio should go, for bench/history.py: null for
    the p99 ratios, which a shared machine's scheduling swings several times
    over from one run to the next (not worth a regression flag)."""
    if ours.endswith("_p99"):
        return None
    return "lower" if "lower is better" in label else "higher"


def print_report(results, cpu, n, host, describe_load):
    """The report on stdout, DESCRIBE_LOAD() printing what was measured below
    its heading; returns the comparisons and the reference ones, for the
    JSON record."""
    print(f"\n## corral vs Python, N = {n:,} tasks, {WORKERS} workers, median (min-max)\n")
    describe_load()
    load = f"load average (1, 5, 15 min) at start {' '.join(host['loadavg_at_start'])}, " \
           f"now {' '.join(loadavg())}; {host['cpus']} CPUs"
    print("### Issue 22's reference comparisons (the same O(1) function on both sides)\n")
    print("| comparison | corral | peer | corral/peer |")
    print("|---|---|---|---|")
    reference = []
    for ours, peer in REFERENCE:
        if ours not in results or peer not in results:
            continue
        ratio = results[ours]["median"] / results[peer]["median"]
        label = f"{FIGURES[ours][0]} vs {FIGURES[peer][0]}"
        print(f"| {label} | {show(ours, results[ours])} | {show(peer, results[peer])} "
              f"| {ratio:.2f}x |")
        reference.append({"figure": label, "key": f"{ours}/{peer}", "corral": ours,
                          "peer": peer, "ratio": ratio, "better": "higher", "tasks": n})
    print(f"\n{load}\n")
    print("### Every comparison\n")
    print("| figure | corral | peer | ratio (corral/peer) | target |")
    print("|---|---|---|---|---|")
    rows = []
    for label, ours, peer, target in comparisons():
        if ours not in results or peer not in results:
            continue
        ratio = results[ours]["median"] / results[peer]["median"]
        if target is None:
            verdict = ""
        elif isinstance(target, tuple):  # lower is better: ("<", bound)
            verdict = f"< {target[1]}x: " + ("met" if ratio < target[1] else "MISSED")
        else:
            verdict = f">= {target}x: " + ("met" if ratio >= target else "MISSED")
        print(f"| {label} | {show(ours, results[ours])} | {show(peer, results[peer])} "
              f"| {ratio:.2f}x | {verdict} |")
        rows.append({"figure": label, "key": f"{ours}/{peer}", "corral": ours, "peer": peer,
                     "ratio": ratio, "target": target,
                     "task": "loop" if ours.endswith("_loop") else "main",
                     "better": better(label, ours)})

    print("\n## Raw figures\n")
    print("| figure | unit | median | min | max | runs |")
    print("|---|---|---|---|---|---|")
    for key, s in results.items():
        label, unit = FIGURES[key]
        print(f"| {label} | {unit} | {s['median']:,.1f} | {s['min']:,.1f} | {s['max']:,.1f} "
              f"| {s['runs']} |")

    print("\n## CPU of corral's processes: us of CPU per task (share of wall time), "
          "median\n")
    names = sorted({name for shares in cpu.values() for s in shares for name in s})
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key, shares in cpu.items():
        rate = results[key]["median"]
        cells = []
        for name in names:
            values = [s[name] for s in shares if name in s]
            if not values:
                cells.append("-")
                continue
            share = statistics.median(values)
            cells.append(f"{share / rate * 1e6:.2f} us ({share * 100:.0f}%)")
        print(f"| {FIGURES[key][0]} | " + " | ".join(cells) + " |")
    return rows, reference


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def machine():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = lambda *argv: subprocess.run(["git", "-C", root, *argv], capture_output=True,
                                       text=True).stdout
    commit = git("describe", "--always", "--dirty").strip()
    # The build may hold uncommitted changes: name them.
    changed = git("status", "--short").split("\n")
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_at_start": loadavg(), "commit": commit,
            "uncommitted": [line for line in changed if line]}
