#!/usr/bin/env python3
"""The benchmarks' record: one JSON line per `scripts/bench` run, and the last
run held against the one before it.

  bench/history.py append HISTORY --mode quick|full --load-start "1.0 0.9 0.8" FILE.json...
      Appends one line to HISTORY: {"date", "commit", "mode", "loadavg_start",
      "loadavg_end", "files", "figures", "better"}. "figures" holds every
      number of the JSON files, flattened to "FILE.key.key" names (FILE: the
      file's name without .json); "better" says which of them are watched and
      which way is good. --commit, --date and --load-end default to
      `git rev-parse --short HEAD` (+ "-dirty"), now (UTC) and /proc/loadavg.

  bench/history.py compare HISTORY
      Prints each figure of the last run against the previous run of the same
      mode (value, previous, change %). A watched figure that got more than
      20% worse is marked REGRESSION and makes the exit status 1; otherwise 0,
      also when there are fewer than two runs to compare.

How numbers are flattened: a dict with a "median" stands for its median
(min, max, samples are left out); a list of dicts that have a "key" or a
"figure" is keyed by it, other lists of dicts by position, lists of plain
numbers (raw samples, load averages) are left out, as are the "machine"
block, throughput.json's "reference" (a copy of two of its comparisons),
targets and booleans.

What is watched (the "better" map):
  - ratios to a peer: every name ending in ".ratio", "higher" is better
    unless its row says otherwise (a "better" field, "lower" or null for a
    ratio not worth watching, or "lower is better" in its label);
  - corral's throughput: figures in tasks/s and names ending in "per_s"
    whose name holds "corral". A peer's own throughput (Pool.map, Celery)
    is printed, not flagged: when it falls, the machine got slower, which
    the ratio to it already takes out.
A "higher" figure regresses when it falls by more than 20%; a "lower" one
when it rises by more than 25% (its inverse falls by more than 20%).
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys

THRESHOLD = 0.20          # a watched figure that got this much worse is flagged
MARK = "REGRESSION"
# machine: the host (the load averages are kept apart); reference: a copy of
# two of throughput.json's comparisons.
SKIPPED_KEYS = {"machine", "samples", "reference"}
TRANSPARENT_KEYS = {"figures"}   # throughput.json's figures: "throughput.corral_shm"


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _ratio_direction(row):
    """Which way a row's ratio should go: its "better" field when it has one
    (null: not watched), else "lower" when its label says "lower is better"."""
    if "better" in row:
        return row["better"] if row["better"] in ("higher", "lower") else None
    return "lower" if "lower is better" in str(row.get("figure", "")) else "higher"


def flatten(data, prefix, figures, better):
    """Adds every number of DATA under PREFIX to FIGURES; watched ones to BETTER."""
    if _number(data):
        figures[prefix] = data
        return
    if isinstance(data, dict):
        if _number(data.get("median")):
            figures[prefix] = data["median"]
            if data.get("unit") == "tasks/s" and "corral" in prefix:
                better[prefix] = "higher"
            return
        for key, value in data.items():
            if key in SKIPPED_KEYS or key == "target" or isinstance(value, bool):
                continue
            if key == "runs" and isinstance(value, list):
                continue  # each run's raw figures; their median is the figure
            name = prefix if key in TRANSPARENT_KEYS else f"{prefix}.{key}"
            if key == "ratio" and _number(value):
                figures[name] = value
                direction = _ratio_direction(data)
                if direction:
                    better[name] = direction
                continue
            flatten(value, name, figures, better)
            if _number(value) and key.endswith("per_s") and "corral" in name:
                better[name] = "higher"
        return
    if isinstance(data, list):
        if not any(isinstance(item, (dict, list)) for item in data):
            return  # samples, load averages
        for i, item in enumerate(data):
            label = i
            if isinstance(item, dict):
                label = item.get("key", item.get("figure", i))
            flatten(item, f"{prefix}.{label}", figures, better)


def figures_of(paths):
    figures, better = {}, {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        name = os.path.basename(path)
        if name.endswith(".json"):
            name = name[:-5]
        flatten(data, name, figures, better)
    return figures, better


def git_commit(root):
    git = lambda *argv: subprocess.run(["git", "-C", root, *argv], capture_output=True,
                                       text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # The record itself changes with every run: it does not make the tree dirty.
    changes = git("status", "--porcelain", "--", ".", ":!bench/results/history.jsonl")
    return commit + ("-dirty" if changes else "")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def parse_load(text):
    return [float(x) for x in text.split()[:3]]


def append(args):
    figures, better = figures_of(args.files)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entry = {
        "date": args.date or datetime.datetime.now(datetime.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": args.commit or git_commit(root),
        "mode": args.mode,
        "loadavg_start": parse_load(args.load_start) if args.load_start else None,
        "loadavg_end": parse_load(args.load_end) if args.load_end else loadavg(),
        "files": [os.path.basename(p) for p in args.files],
        "figures": figures,
        "better": better,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.history)), exist_ok=True)
    with open(args.history, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    print(f"{args.history}: run of {entry['date']} at {entry['commit']} ({args.mode}), "
          f"{len(figures)} figures, {len(better)} watched", file=sys.stderr)
    return 0


def read_history(path):
    runs = []
    if not os.path.exists(path):
        return runs
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not a JSON line: {e}")
    return runs


def change(value, previous):
    """The relative change from PREVIOUS to VALUE, or None when undefined."""
    if previous == 0:
        return None
    return (value - previous) / abs(previous)


def regressed(value, previous, direction):
    if direction == "higher":
        return previous > 0 and value < previous * (1 - THRESHOLD)
    if direction == "lower":
        return value > 0 and previous < value * (1 - THRESHOLD)  # 1/value fell by > 20%
    return False


def compare(args, out=sys.stdout):
    runs = read_history(args.history)
    if not runs:
        print(f"{args.history}: no runs recorded yet: nothing to compare", file=out)
        return 0
    last = runs[-1]
    previous = next((r for r in reversed(runs[:-1]) if r.get("mode") == last.get("mode")), None)
    if previous is None:
        print(f"{args.history}: fewer than two {last.get('mode')} runs recorded "
              f"({len(runs)} run(s) in all): nothing to compare", file=out)
        return 0

    def load(run):
        start, end = run.get("loadavg_start"), run.get("loadavg_end")
        show = lambda l: "?" if not l else f"{l[0]:.2f}"
        return f"load {show(start)} -> {show(end)}"

    print(f"last run:     {last['date']} {last['commit']} ({last.get('mode')}, {load(last)})",
          file=out)
    print(f"previous run: {previous['date']} {previous['commit']} ({previous.get('mode')}, "
          f"{load(previous)})", file=out)
    print(f"(watched: ratios to a peer and corral's tasks/s; {MARK} = more than "
          f"{THRESHOLD:.0%} worse)\n", file=out)
    print("| figure | value | previous | change | |", file=out)
    print("|---|---|---|---|---|", file=out)
    better = dict(previous.get("better", {}), **last.get("better", {}))
    flagged = []
    names = list(last["figures"]) + [k for k in previous["figures"] if k not in last["figures"]]
    for name in names:
        value, before = last["figures"].get(name), previous["figures"].get(name)
        direction = better.get(name)
        note = {"higher": "higher is better", "lower": "lower is better"}.get(direction, "")
        if value is None or before is None:
            shown = "new" if before is None else "gone"
            print(f"| {name} | {fmt(value)} | {fmt(before)} | {shown} | {note} |", file=out)
            continue
        c = change(value, before)
        cell = "-" if c is None else f"{c * 100:+.1f}%"
        if regressed(value, before, direction):
            flagged.append(name)
            note = f"**{MARK}** ({note})"
        print(f"| {name} | {fmt(value)} | {fmt(before)} | {cell} | {note} |", file=out)
    print(file=out)
    if flagged:
        print(f"{len(flagged)} watched figure(s) more than {THRESHOLD:.0%} worse than the "
              f"previous run ({MARK}):", file=out)
        for name in flagged:
            print(f"  {MARK}: {name}: {fmt(last['figures'][name])} against "
                  f"{fmt(previous['figures'][name])}", file=out)
        return 1
    print(f"no watched figure more than {THRESHOLD:.0%} worse than the previous run", file=out)
    return 0


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("append", help="append one run's figures to HISTORY")
    a.add_argument("history")
    a.add_argument("files", nargs="+", help="the run's JSON files")
    a.add_argument("--mode", required=True, choices=["quick", "full"])
    a.add_argument("--load-start", help='the load average at the start: "1.0 0.9 0.8"')
    a.add_argument("--load-end", help="default: /proc/loadavg now")
    a.add_argument("--commit", help="default: git rev-parse --short HEAD, + -dirty")
    a.add_argument("--date", help="default: now, UTC, ISO 8601")
    c = sub.add_parser("compare", help="the last run against the previous one")
    c.add_argument("history")
    args = parser.parse_args(argv)
    return append(args) if args.command == "append" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
