#!/usr/bin/env python3
"""Writes cmake/corrald-hot-text.ld: the code corrald runs, gathered at the front of its text.

corrald links its libraries in, so its text is 4 MiB, of which a running
daemon executes about 800 KiB scattered across all of it. The kernel maps
a file page with the 64 KiB around it (fault-around), so a scattered 800 KiB
is nearly 3 MiB of RSS. Put together, it is what it is (docs/performance.md,
"corrald's memory").

This profiles a Release corrald under callgrind, one daemon per scenario
(supervision alone; tasks over shm; over pipes; a range source and a
reload), finds the input section of each function it ran in the link map,
and writes a linker script that places those sections first, in an output
section of their own: supervision's first, then what each later scenario
added, the hottest first within each. A corrald that only supervises maps
the first part alone. GNU ld takes the script beside its default one
(INSERT).

    bench/hot_text.py [--build DIR] [--out FILE]

DIR (default build-hot) is configured Release with the link map on
(CORRAL_LINK_MAP) and built; valgrind must be installed. Run it again when
corrald's code moved a lot: a function the script does not name still links,
only further back, and a name the code lost matches nothing.
"""
import argparse
import bisect
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from corral_daemon import Daemon

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Input sections that hold a whole object's code rather than one function's:
# a pattern must name their file too.
WHOLE_OBJECT_SECTIONS = {".text", ".text.startup", ".text.unlikely", ".text.hot", ".text.exit"}
OUTPUT_SECTION = ".text.corrald_hot"


def executed_functions(callgrind_text, program):
    """{function name: instructions it ran itself} for the functions of the
    object whose path ends with PROGRAM, from a callgrind output file written
    with --demangle=no. Names carry no recursion suffix ('2)."""
    # Names are compressed: "(id) name" the first time, "(id)" after; objects,
    # functions and files number apart.
    tables = {"ob": {}, "fn": {}, "fl": {}}
    current_object = current_function = None
    costs = collections.Counter()
    call_cost_next = False
    for line in callgrind_text.splitlines():
        m = re.match(r"^(c?ob|c?fn|c?fi|c?fl|fe)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, index, name = m.groups()
            table = tables[kind[-2:] if kind[-2:] in tables else "fl"]
            if name is not None:
                table[index] = name
            name = table.get(index)
            if kind == "ob":
                current_object = name
            elif kind == "fn":
                current_function = None
                if current_object and current_object.endswith("/" + program):
                    current_function = re.sub(r"'\d+$", "", name)
                    costs[current_function] += 0
            continue
        if line.startswith("calls="):
            call_cost_next = True  # the next cost line is the callee's, inclusive
            continue
        if line and (line[0].isdigit() or line[0] in "+-*"):
            if call_cost_next:
                call_cost_next = False
            elif current_function:
                fields = line.split()
                if len(fields) >= 2:
                    costs[current_function] += int(fields[1])
    return dict(costs)


def symbol_addresses(nm_text):
    """{symbol: address} of `nm --defined-only` output."""
    out = {}
    for line in nm_text.splitlines():
        fields = line.split()
        if len(fields) == 3:
            out.setdefault(fields[2], int(fields[0], 16))
    return out


def input_sections(map_text):
    """[(address, size, section, file)] of the code input sections placed by
    the link whose map (ld -Map) is MAP_TEXT, sorted by address."""
    out = []
    lines = map_text.splitlines()
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        raise SystemExit("not a GNU ld map: no 'Linker script and memory map'")
    pending = None
    for line in lines[start + 1:]:
        if pending is not None:
            fields = line.split()
            if len(fields) >= 3 and fields[0].startswith("0x"):
                out.append((int(fields[0], 16), int(fields[1], 16), pending, fields[2]))
            pending = None
            continue
        if not line.startswith(" .text"):
            continue
        fields = line.split()
        if len(fields) == 1:
            pending = fields[0]  # a long name: address, size and file on the next line
        elif len(fields) >= 4 and fields[1].startswith("0x"):
            out.append((int(fields[1], 16), int(fields[2], 16), fields[0], fields[3]))
    return sorted(s for s in out if s[0] and s[1])


def section_pattern(section, file):
    """The linker-script input pattern that names SECTION of FILE (a map's
    spelling: /path/libx.a(member.o) or /path/obj.o)."""
    if section not in WHOLE_OBJECT_SECTIONS:
        return f"*({section})"  # one function's section, named after it
    m = re.match(r"^(.*)\((.*)\)$", file)
    where = f"{os.path.basename(m.group(1))}:{m.group(2)}" if m else os.path.basename(file)
    return f"*{where}({section})"


def hot_patterns(profiles, addresses, sections):
    """The patterns of the sections that hold the functions of PROFILES (a
    list of {function: cost}), a list per profile: each holds the sections
    no profile before it ran, the function that ran most first. A daemon
    that does only what the first profile did maps the first list alone.
    Functions not in the binary are skipped."""
    starts = [s[0] for s in sections]
    groups, seen = [], set()
    for costs in profiles:
        group = []
        for name, _ in sorted(costs.items(), key=lambda kv: (-kv[1], kv[0])):
            address = addresses.get(name)
            if address is None:
                continue
            i = bisect.bisect_right(starts, address) - 1
            if i < 0 or address >= sections[i][0] + sections[i][1]:
                continue
            pattern = section_pattern(sections[i][2], sections[i][3])
            if pattern not in seen:
                seen.add(pattern)
                group.append(pattern)
        groups.append(group)
    return groups


def linker_script(groups, titles, command):
    """The script: GROUPS of patterns, each under its title, in one output
    section placed before .text."""
    header = [
        "/* The code corrald runs, first in its text (docs/performance.md, \"corrald's memory\").",
        f"   Written by {command}; do not edit. */",
    ]
    body = ["SECTIONS", "{", f"  {OUTPUT_SECTION} :", "  {"]
    for title, patterns in zip(titles, groups):
        body.append(f"    /* {title} */")
        body += [f"    {p}" for p in patterns]
    body += ["  }", "}", "INSERT BEFORE .text;"]
    return "\n".join(header + body) + "\n"


# ------------------------------------------------------------------ the run

def build(build_dir):
    subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release", "-DCORRAL_BUILD_TESTS=OFF",
                    "-DCORRAL_BUILD_BENCH=OFF", "-DCORRAL_LINK_MAP=ON",
                    # Valgrind names the object of the code in .text alone.
                    "-DCORRAL_HOT_TEXT=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build_dir, "corrald", "corral-spawn", "corral-worker",
                    "corralctl"], check=True, stdout=subprocess.DEVNULL)


def wait_running(client, job):
    reply = client.request({"cmd": "wait", "job": job, "running": True, "timeout_s": 300})
    assert reply.get("ok"), reply


def submit(daemon, work, job, n=20000):
    tasks = os.path.join(work, "tasks")
    with open(tasks, "w") as f:
        f.write("".join(f"{i % 100}\n" for i in range(n)))
    with open(tasks) as stdin:
        ran = daemon.ctl("submit", job, "-", "--wait", stdin=stdin, timeout=600)
    assert ran.returncode == 0, ran.stderr


def supervise(daemon, client, work):
    """What every corrald does: its workers started, looked at, one killed
    and restarted."""
    wait_running(client, "idle")
    for args in (("status",), ("stats",), ("--json", "status")):
        assert daemon.ctl(*args, timeout=120).returncode == 0
    os.kill(daemon.worker_pids(client, "idle")[0], signal.SIGKILL)
    time.sleep(1)
    wait_running(client, "idle")
    assert daemon.ctl("restart", "idle", timeout=300).returncode == 0
    assert daemon.ctl("status", timeout=120).returncode == 0


def with_tasks(channel):
    def run(daemon, client, work):
        supervise(daemon, client, work)
        wait_running(client, "tasks")
        submit(daemon, work, "tasks")
        assert daemon.ctl("status", timeout=120).returncode == 0
    return run


def sources_and_reload(daemon, client, work):
    supervise(daemon, client, work)
    wait_running(client, "tasks")
    assert daemon.ctl("reload", timeout=300).returncode == 0
    assert daemon.ctl("restart", "tasks", timeout=300).returncode == 0


IDLE = "  idle:\n    command: [sleep, '100000']\n    workers: 20\n    start: {settle: 0}\n"
TASKS = "  tasks:\n    command: [WORKER, --handler, triangle]\n    workers: 2\n    channel: "
# (what it is, the jobs, what is done): the code of the first goes first.
SCENARIOS = [
    ("supervision", IDLE, supervise),
    ("tasks over shm", IDLE + TASKS + "shm\n", with_tasks("shm")),
    ("tasks over pipes", IDLE + TASKS + "pipe\n", with_tasks("pipe")),
    ("a range source, reload", IDLE + TASKS + "shm\n    source: {range: {from: 0, to: 20000}}\n",
     sources_and_reload),
]


def callgrind_bin(build_dir, work):
    """A directory of BUILD_DIR's programs in WORK whose corrald runs under
    callgrind, writing WORK/callgrind.PID."""
    build_dir = os.path.abspath(build_dir)
    bin_dir = os.path.join(work, "bin")
    os.mkdir(bin_dir)
    for program in ("corral-spawn", "corral-worker", "corralctl"):
        os.symlink(os.path.join(build_dir, program), os.path.join(bin_dir, program))
    shutil.copy(os.path.join(build_dir, "corrald"), os.path.join(bin_dir, "corrald.real"))
    with open(os.path.join(bin_dir, "corrald"), "w") as f:
        f.write(f"#!/bin/sh\nexec valgrind -q --tool=callgrind --demangle=no "
                f"--callgrind-out-file={work}/callgrind.%p "
                "\"$(dirname \"$0\")/corrald.real\" \"$@\"\n")
    os.chmod(os.path.join(bin_dir, "corrald"), 0o755)
    return bin_dir


def profile(bin_dir, work, jobs, scenario):
    """Runs the corrald of BIN_DIR (callgrind_bin) with JOBS through
    SCENARIO, then stops it; the text of its callgrind output."""
    daemon = Daemon(bin_dir, jobs.replace("WORKER", os.path.join(bin_dir, "corral-worker")))
    client = daemon.start()
    try:
        scenario(daemon, client, work)
        client.close()
    finally:
        daemon.stop()
    # corrald's own: a child it forks writes one of its own until it execs.
    with open(os.path.join(work, f"callgrind.{daemon.proc.pid}")) as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-hot"))
    ap.add_argument("--out", default=os.path.join(ROOT, "cmake", "corrald-hot-text.ld"))
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("bench/hot_text.py needs valgrind (apt-get install valgrind)")
    build(args.build)
    corrald = os.path.join(args.build, "corrald")
    profiles = []
    with tempfile.TemporaryDirectory(prefix="corral-hot-text-") as work:
        bin_dir = callgrind_bin(args.build, work)
        for what, jobs, scenario in SCENARIOS:
            profiles.append(executed_functions(profile(bin_dir, work, jobs, scenario),
                                               "corrald.real"))
            print(f"{what}: {len(profiles[-1])} functions ran")
    nm = subprocess.run(["nm", "--defined-only", corrald], check=True, capture_output=True,
                        text=True).stdout
    with open(corrald + ".map") as f:
        sections = input_sections(f.read())
    groups = hot_patterns(profiles, symbol_addresses(nm), sections)
    titles = [f"{what}: {len(group)} sections" if i == 0 else
              f"what {what} add: {len(group)} sections"
              for i, ((what, _, _), group) in enumerate(zip(SCENARIOS, groups))]
    with open(args.out, "w") as f:
        f.write(linker_script(groups, titles, "bench/hot_text.py"))
    print(f"{sum(len(g) for g in groups)} sections: {args.out}")


if __name__ == "__main__":
    main()
