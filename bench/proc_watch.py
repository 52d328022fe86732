"""Watching a supervisor's children from /proc, without asking the supervisor.

Asking a daemon how its workers are while it works wakes it and takes its
CPU (and wakes a poll loop that would otherwise sleep a second), so the
supervision benchmarks watch /proc/PID/task/*/children instead and ask the
daemon only once the processes are there.
"""
import os
import time


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def children(pid, name=None):
    """The pids of PID's children (those whose comm is NAME, when given)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    if name is not None:
        found = [p for p in found if comm(p) == name]
    return found


def wait_children(pid, name, until, timeout=300, pause=0.001):
    """Polls PID's children named NAME until UNTIL(list of pids) is true; the list.

    Each poll reads only the children lists; the names (one /proc file per
    child) are read once the count could satisfy UNTIL, and only of the
    children not yet seen with NAME (a process keeps its name once it has
    exec'd), so that watching a thousand children does not take the CPU the
    daemon needs."""
    deadline = time.monotonic() + timeout
    named = set()
    while time.monotonic() < deadline:
        kids = children(pid)
        if until(kids):
            named &= set(kids)
            named.update(p for p in kids if p not in named and comm(p) == name)
            found = [p for p in kids if p in named]
            if until(found):
                return found
        time.sleep(pause)
    raise TimeoutError(f"children of {pid} named {name}: still {len(children(pid, name))}")


def cpu_seconds(pid):
    """CPU time PID's threads have used so far, in seconds (schedstat: nanoseconds,
    where /proc/PID/stat counts clock ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # the thread ended
    return total / 1e9


def memory(pids):
    """Summed RSS and PSS of PIDS, in bytes (smaps_rollup)."""
    rss = pss = 0
    for pid in pids:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
    return rss, pss
