#!/usr/bin/env python3
"""Writes cmake/corrald-hot.ld: the code and read-only data corrald uses, each gathered in one place.

corrald links its libraries in, so its text is 4 MiB, of which a running
daemon executes about 800 KiB scattered across all of it, and its read-only
data 360 KiB, of which it reads some 50 KiB here and there. The kernel maps
a file page with the 64 KiB around it (fault-around), so what is scattered
is resident many times over. Put together, it is what it is
(docs/performance.md, "corrald's memory").

This profiles a Release corrald under valgrind, one daemon per scenario
(supervision alone; tasks over shm; over pipes; a range source and a
reload), twice: under callgrind for the instructions it runs, under lackey
for the read-only data it reads. It finds the input section of each in the
link map, and writes a linker script that gathers those sections in two
output sections of their own: the code first in the text, the data after
the rest of .rodata (before it would put it in the text's executable
segment), with the data named after each function that ran (what it hands
the kernel is read where lackey does not see it). Within each, supervision's
comes first, then what each later scenario added, the most used first
within each. A corrald that only supervises maps the first part alone. GNU
ld takes the script beside its default one (INSERT).

    bench/hot_layout.py [--build DIR] [--out FILE]

DIR (default build-hot) is configured Release with the link map on
(CORRAL_LINK_MAP) and built; valgrind must be installed. Run it again when
corrald's code moved a lot: a section the script does not name still links,
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

TEXT, RODATA = ".text", ".rodata"
# The output section each kind of hot input section is gathered in, and where
# it goes.
OUTPUT_SECTION = {TEXT: ".text.corrald_hot", RODATA: ".rodata.corrald_hot"}
INSERT = {TEXT: "INSERT BEFORE .text;", RODATA: "INSERT AFTER .rodata;"}
# Input sections that hold a whole object's code or data rather than one
# function's or object's: a pattern must name their file too. (A compiler
# names a function's own sections after it: .text.NAME, .rodata.NAME and
# .rodata.NAME.str1.1.)
WHOLE_OBJECT_SECTION = re.compile(
    r"\.text(\.(startup|unlikely|hot|exit))?|\.rodata(\.(str\d+\.\d+|cst\d+))?")


def executed_instructions(callgrind_text, program):
    """{link address: times it ran} of each instruction of the object whose
    path ends with PROGRAM (position-independent, linked at 0), from a
    callgrind output file written with --dump-instr=yes --dump-line=no
    --compress-pos=no: a cost line is an instruction's address in its object
    and what it ran itself, but the one after a calls= line, which is the
    call's inclusive cost. By address, not by
    function name: a name may be many functions (each object's __tcf_0, a
    clone local to each object), and some code has no name callgrind knows
    (_start's neighbours in crtbeginS.o)."""
    # Names are compressed: "(id) name" the first time, "(id)" after; objects
    # number apart from functions and files.
    objects = {}
    ours = False
    costs = collections.Counter()
    call_cost_next = False
    for line in callgrind_text.splitlines():
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, index, name = m.groups()
            if name is not None:
                objects[index] = name
            if kind == "ob":
                ours = objects.get(index, "").endswith("/" + program)
        elif line.startswith("calls="):
            call_cost_next = True  # the next cost line is the callee's, inclusive
        elif line.startswith("0x"):
            if call_cost_next:
                call_cost_next = False
            elif ours:
                address, cost = line.split()[:2]
                costs[int(address, 16)] += int(cost)
    return dict(costs)


def load_base(maps_text, program):
    """Where PROGRAM (a path's ending) is loaded in the process whose
    /proc/PID/maps is MAPS_TEXT: the start of its mapping at file offset 0,
    which a position-independent executable links at address 0."""
    for line in maps_text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].endswith(program) and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise SystemExit(f"{program} is not mapped at offset 0")


def data_reads(trace_lines, base):
    """{link address: 1} of each distinct address read in a lackey trace
    (--trace-mem=yes: " L ADDR,SIZE" a load, " M ADDR,SIZE" a load and a
    store, " S" a store, "I" an instruction) of a program loaded at BASE."""
    out = {}
    for line in trace_lines:
        if line[:3] in (" L ", " M "):
            address = int(line[3:].split(",", 1)[0], 16) - base
            if address >= 0:
                out[address] = 1
    return out


def input_sections(map_text, kind=TEXT):
    """[(address, size, section, file)] of the input sections of KIND
    (.text or .rodata, by the start of their names) placed by the link whose
    map (ld -Map) is MAP_TEXT, sorted by address."""
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
        if not line.startswith(" " + kind):
            continue
        fields = line.split()
        if fields[0] != kind and not fields[0].startswith(kind + "."):
            continue  # .rodata1, .text_hot: another kind
        if len(fields) == 1:
            pending = fields[0]  # a long name: address, size and file on the next line
        elif len(fields) >= 4 and fields[1].startswith("0x"):
            out.append((int(fields[1], 16), int(fields[2], 16), fields[0], fields[3]))
    return sorted(s for s in out if s[0] and s[1])


def section_pattern(section, file):
    """The linker-script input pattern that names SECTION of FILE (a map's
    spelling: /path/libx.a(member.o) or /path/obj.o)."""
    if not WHOLE_OBJECT_SECTION.fullmatch(section):
        return f"*({section})"  # one function's or object's section, named after it
    m = re.match(r"^(.*)\((.*)\)$", file)
    where = f"{os.path.basename(m.group(1))}:{m.group(2)}" if m else os.path.basename(file)
    return f"*{where}({section})"


def hot_patterns(profiles, sections):
    """The patterns of the SECTIONS that hold the addresses of PROFILES (a
    list of {address: cost}), a list per profile: each holds the sections
    no profile before it used, the most used first (a section's cost is its
    addresses' sum). A daemon that does only what the first profile did
    maps the first list alone. Addresses in no section are skipped."""
    starts = [s[0] for s in sections]
    groups, seen = [], set()
    for costs in profiles:
        cost = collections.Counter()
        for address, n in costs.items():
            i = bisect.bisect_right(starts, address) - 1
            if i >= 0 and address < sections[i][0] + sections[i][1]:
                cost[section_pattern(sections[i][2], sections[i][3])] += n
        group = [p for p, _ in sorted(cost.items(), key=lambda kv: (-kv[1], kv[0]))
                 if p not in seen]
        seen.update(group)
        groups.append(group)
    return groups


def own_data(code_groups, data_sections):
    """For each group of code patterns, the read-only data sections of
    DATA_SECTIONS named after its functions (.rodata.NAME,
    .rodata.NAME.str1.1, ...): what a function that ran may read, or hand to
    the kernel (a path it opens), which no trace of reads sees."""
    by_function = collections.defaultdict(list)
    for _, _, section, file in data_sections:
        if section.startswith(RODATA + ".") and not WHOLE_OBJECT_SECTION.fullmatch(section):
            function = re.sub(r"\.(str\d+\.\d+|cst\d+)$", "", section[len(RODATA) + 1:])
            by_function[function].append(section_pattern(section, file))
    out = []
    for group in code_groups:
        names = [m.group(1) for m in (re.fullmatch(r"\*\(\.text\.(.+)\)", p) for p in group) if m]
        out.append([p for name in names for p in by_function.get(name, [])])
    return out


def merged(first, second):
    """Group by group, FIRST's patterns and then SECOND's, each pattern once,
    where it first comes."""
    out, seen = [], set()
    for a, b in zip(first, second):
        group = [p for p in dict.fromkeys(a + b) if p not in seen]
        seen.update(group)
        out.append(group)
    return out


def linker_script(layout, command):
    """The script: for each (KIND, GROUPS, TITLES) of LAYOUT, the GROUPS of
    patterns, each under its title, in KIND's output section, inserted where
    KIND's hot sections go."""
    out = [
        "/* The code and read-only data corrald uses, each in one place",
        "   (docs/performance.md, \"corrald's memory\").",
        f"   Written by {command}; do not edit. */",
    ]
    for kind, groups, titles in layout:
        out += ["SECTIONS", "{", f"  {OUTPUT_SECTION[kind]} :", "  {"]
        for title, patterns in zip(titles, groups):
            out.append(f"    /* {title} */")
            out += [f"    {p}" for p in patterns]
        out += ["  }", "}", INSERT[kind]]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ the run

def build(build_dir, linker_flags=""):
    subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release", "-DCORRAL_BUILD_TESTS=OFF",
                    "-DCORRAL_BUILD_BENCH=OFF", "-DCORRAL_LINK_MAP=ON",
                    # Valgrind names the object of the code in .text alone.
                    "-DCORRAL_HOT_LAYOUT=OFF",
                    f"-DCMAKE_EXE_LINKER_FLAGS={linker_flags}"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build_dir, "corrald", "corral-spawn", "corral-worker",
                    "corralctl"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(build_dir, "corrald.map")) as f:
        return f.read()


# The data's profile links corrald with each read-only input section in an
# output section of its own: the linker merges equal strings and constants
# within an output section, and a read of a string that another object's copy
# stood for would be charged to that object's section. (callgrind finds no
# function of a program linked so: the code's profile links it plainly.)
DATA_LINK = "-Wl,--unique=.rodata*"


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
        # At once, while the workers start: a wait that waits on a job with
        # a feed listens to it.
        wait_running(client, "tasks")
        supervise(daemon, client, work)
        submit(daemon, work, "tasks")
        assert daemon.ctl("status", timeout=120).returncode == 0
    return run


def sources_and_reload(daemon, client, work):
    wait_running(client, "tasks")
    supervise(daemon, client, work)
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


def valgrind_bin(build_dir, work, name, tool):
    """A directory WORK/NAME of BUILD_DIR's programs whose corrald runs under
    valgrind with the arguments TOOL, in which {work} is WORK."""
    build_dir = os.path.abspath(build_dir)
    bin_dir = os.path.join(work, name)
    os.mkdir(bin_dir)
    for program in ("corral-spawn", "corral-worker", "corralctl"):
        os.symlink(os.path.join(build_dir, program), os.path.join(bin_dir, program))
    shutil.copy(os.path.join(build_dir, "corrald"), os.path.join(bin_dir, "corrald.real"))
    with open(os.path.join(bin_dir, "corrald"), "w") as f:
        f.write(f"#!/bin/sh\nexec valgrind -q {tool.format(work=work)} "
                "\"$(dirname \"$0\")/corrald.real\" \"$@\"\n")
    os.chmod(os.path.join(bin_dir, "corrald"), 0o755)
    return bin_dir


def run_scenario(bin_dir, jobs, scenario, work, started=lambda daemon: None):
    """Runs the corrald of BIN_DIR (valgrind_bin) with JOBS through
    SCENARIO, calling STARTED with the daemon once it is up, then stops it;
    the daemon."""
    daemon = Daemon(bin_dir, jobs.replace("WORKER", os.path.join(bin_dir, "corral-worker")))
    client = daemon.start()
    try:
        started(daemon)
        scenario(daemon, client, work)
        client.close()
    finally:
        daemon.stop()
    return daemon


def base_of(daemon, into):
    """Appends to INTO where the corrald of DAEMON (under valgrind) is loaded."""
    with open(f"/proc/{daemon.proc.pid}/maps") as f:
        into.append(load_base(f.read(), "corrald.real"))


def executed(bin_dir, work, jobs, scenario):
    """{link address: times it ran} of corrald's instructions (callgrind)
    through SCENARIO."""
    daemon = run_scenario(bin_dir, jobs, scenario, work)
    # corrald's own: a child it forks writes one of its own until it execs.
    with open(os.path.join(work, f"callgrind.{daemon.proc.pid}")) as f:
        return executed_instructions(f.read(), "corrald.real")


def read(bin_dir, work, jobs, scenario):
    """{link address: 1} of what corrald (lackey, its trace into the FIFO
    WORK/trace) read through SCENARIO."""
    trace, reads = os.path.join(work, "trace"), os.path.join(work, "reads")
    # Distinct addresses only: a trace is gigabytes, the addresses read a few MB.
    sift = subprocess.Popen(f"grep -E '^ [LM] ' < {trace} | sort -u > {reads}", shell=True)
    base = []
    try:
        run_scenario(bin_dir, jobs, scenario, work, started=lambda d: base_of(d, base))
    finally:
        if sift.wait() != 0:
            raise SystemExit("the trace's filter failed")
    with open(reads) as f:
        return data_reads(f, base[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-hot"))
    ap.add_argument("--out", default=os.path.join(ROOT, "cmake", "corrald-hot.ld"))
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("bench/hot_layout.py needs valgrind (apt-get install valgrind)")
    code, data = [], []
    with tempfile.TemporaryDirectory(prefix="corral-hot-layout-") as work:
        code_map = build(args.build)
        callgrind = valgrind_bin(args.build, work, "callgrind",
                                 "--tool=callgrind --dump-instr=yes --dump-line=no "
                                 "--compress-pos=no --callgrind-out-file={work}/callgrind.%p")
        data_map = build(args.build, DATA_LINK)
        os.mkfifo(os.path.join(work, "trace"))
        lackey = valgrind_bin(args.build, work, "lackey",
                              "--tool=lackey --trace-mem=yes --log-file={work}/trace")
        for what, jobs, scenario in SCENARIOS:
            code.append(executed(callgrind, work, jobs, scenario))
            data.append(read(lackey, work, jobs, scenario))
            print(f"{what}: {len(code[-1])} instructions ran, {len(data[-1])} addresses read")
    code_groups = hot_patterns(code, input_sections(code_map, TEXT))
    data_sections = input_sections(data_map, RODATA)
    data_groups = merged(hot_patterns(data, data_sections), own_data(code_groups, data_sections))
    layout = []
    for kind, groups in ((TEXT, code_groups), (RODATA, data_groups)):
        titles = [f"{what}: {len(group)} sections" if i == 0 else
                  f"what {what} add: {len(group)} sections"
                  for i, ((what, _, _), group) in enumerate(zip(SCENARIOS, groups))]
        layout.append((kind, groups, titles))
    with open(args.out, "w") as f:
        f.write(linker_script(layout, "bench/hot_layout.py"))
    print(f"{sum(len(g) for _, groups, _ in layout for g in groups)} sections: {args.out}")


if __name__ == "__main__":
    main()
