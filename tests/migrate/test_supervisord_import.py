"""`corralctl import supervisord` against the real supervisord, on every case of
tests/supervisord_corpus (its README.md says what each covers).

For a case supervisord runs: supervisord runs it and every process it started
is read from /proc (argv, executable, cwd, environment, uids, gids, groups,
umask); then the case is imported, the result passes `corrald --check`, the
real corrald runs it, and its workers must be the same processes, with the same
output in the same log files. Environments are compared without SUPERVISOR_*
and CORRAL_*; a program of another user gets, under corral, that user's login
environment instead of the daemon's (docs/supervision.md, *The environment*),
which is what the test expects, not something it ignores.

For a case supervisord refuses: supervisord exits with its error, and the
import exits 2 naming the same file and line, writing nothing.

Each case runs in a mount namespace of its own (supervisord_world.py), all of
them a few at a time.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "supervisord_corpus")
BUILD = os.environ.get("CORRAL_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
SUPERVISORD = shutil.which("supervisord") or "/usr/bin/supervisord"
CASES = sorted(d for d in os.listdir(CORPUS) if os.path.isdir(os.path.join(CORPUS, d)))


def expect(case):
    with open(os.path.join(CORPUS, case, "expect.json")) as f:
        return json.load(f)


REFUSED = [c for c in CASES if expect(c).get("refused")]
RUNNABLE = [c for c in CASES if not expect(c).get("refused")]

pytestmark = pytest.mark.skipif(
    not os.path.exists(SUPERVISORD),
    reason="supervisord is not installed (Debian's package supervisor; scripts/setup-deps "
    "installs it): nothing to compare the import with")


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    """Every case, run six at a time (each mostly waits on supervisord's
    one-second ticks)."""
    if os.geteuid() != 0:
        pytest.fail("these tests mount file systems in a namespace of their own: run them as root")
    work = tmp_path_factory.mktemp("supervisord-import")
    probe = str(work / "probe")
    subprocess.run(["cc", "-O1", "-o", probe, os.path.join(HERE, "probe.c")], check=True)

    def run(case):
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable,
             os.path.join(HERE, "supervisord_world.py"), os.path.join(CORPUS, case), probe,
             os.path.abspath(BUILD)],
            capture_output=True, text=True, timeout=120)
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            out = {}
        out["harness_stderr"] = proc.stderr
        out["harness_exit"] = proc.returncode
        return case, out

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        return dict(pool.map(run, CASES))


def messages(stderr):
    """The importer's `FILE:LINE: level: text` (or `FILE: level: text`) lines."""
    found = []
    for line in stderr.splitlines():
        m = re.match(r"^(.+?):(\d+): (warning|error): (.*)$", line)
        if m:
            found.append((m[1], int(m[2]), m[3], m[4]))
            continue
        m = re.match(r"^(.+?): (warning|error): (.*)$", line)
        if m:
            found.append((m[1], None, m[2], m[3]))
    return found


def same_file(printed, relative):
    """FILE as the importer prints it: the path given, or the included file's
    path, absolute under /etc/supervisor where the case is installed."""
    return printed == relative or printed.endswith("/" + relative)


def check_messages(case, r):
    e = expect(case)
    stderr = r.get("import_stderr", "")
    assert r.get("import_exit") == e["import_exit"], (
        f"{case}: corralctl import exited {r.get('import_exit')}, expected {e['import_exit']}\n"
        f"stderr:\n{stderr}")
    printed = messages(stderr)
    for want in e["messages"]:
        hits = [m for m in printed
                if same_file(m[0], want["file"]) and m[2] == want["level"]
                and m[1] == want["line"] and want["contains"] in m[3]]
        assert hits, (f"{case}: no `{want['file']}:{want['line']}: {want['level']}: "
                      f"...{want['contains']}...` in the import's stderr:\n{stderr}")
    levels = [m for m in printed if m[2] in ("warning", "error")]
    assert len(levels) == len(e["messages"]), (
        f"{case}: the import printed {len(levels)} warnings or errors, expected "
        f"{len(e['messages'])}:\n{stderr}")


# -- refused ------------------------------------------------------------------

@pytest.mark.parametrize("case", REFUSED)
def test_refused(results, case):
    r, e = results[case], expect(case)
    assert r.get("harness_exit") == 0, r.get("harness_stderr")
    assert not r["supervisord_running"] and r["supervisord_exit"] != 0, (
        f"{case}: supervisord did not refuse it:\n{r['supervisord_stderr']}")
    assert e["supervisord_error"] in r["supervisord_stderr"], r["supervisord_stderr"]
    check_messages(case, r)
    assert r.get("corral_yaml") is None, f"{case}: the import wrote a file:\n{r['corral_yaml']}"


# -- runnable -----------------------------------------------------------------

LOCALE = re.compile(r"^(LANG|LANGUAGE|LC_[A-Z_]+|TZ)$")


def expected_under_corral(p, r):
    """What corrald should run for the process P that supervisord ran."""
    env = {k: v for k, v in p["env"].items() if not k.startswith("SUPERVISOR_")}
    if p["uid"][0] != "0":
        # Another user's worker starts from that user's login environment
        # (docs/supervision.md): supervisord's child keeps supervisord's.
        name, home, shell = r["passwd"][p["uid"][0]]
        login = {"HOME": home or "/", "USER": name, "LOGNAME": name, "SHELL": shell or "/bin/sh",
                 "PATH": "/usr/local/bin:/usr/bin:/bin"}
        login.update({k: v for k, v in r["env"].items() if LOCALE.match(k)})
        program = f"{p['env']['SUPERVISOR_GROUP_NAME']}:{p['env']['SUPERVISOR_PROCESS_NAME']}"
        login.update(r["supervisord_config"][program]["environment"])
        env = login
    q = dict(p, env=env)
    del q["pid"]
    return q


def as_corral(p):
    q = dict(p, env={k: v for k, v in p["env"].items() if not k.startswith("CORRAL_")})
    del q["pid"]
    return q


def key(p):
    return json.dumps(p, sort_keys=True)


def describe(p):
    return f"argv={p['argv']}"


def diff(a, b):
    out = []
    for field in sorted(set(a) | set(b)):
        if field == "env":
            ea, eb = a["env"], b["env"]
            for k in sorted(set(ea) | set(eb)):
                if ea.get(k) != eb.get(k):
                    out.append(f"    env {k}: supervisord {ea.get(k)!r}, corral {eb.get(k)!r}")
        elif a.get(field) != b.get(field):
            out.append(f"    {field}: supervisord {a.get(field)!r}, corral {b.get(field)!r}")
    return "\n".join(out)


def started(case, r):
    e = expect(case)
    assert r.get("harness_exit") == 0, r.get("harness_stderr")
    assert r["supervisord_running"], f"{case}: supervisord did not run it:\n{r['supervisord_stderr']}"
    assert len(r["supervisord_processes"]) == e["processes"], (
        f"{case}: supervisord started {len(r['supervisord_processes'])} processes, expected "
        f"{e['processes']}\n{r['supervisord_log']}")
    assert r.get("corral_yaml") is not None, (
        f"{case}: the import wrote nothing (exit {r.get('import_exit')}):\n{r.get('import_stderr')}")
    assert r.get("check_exit") == 0, (
        f"{case}: corrald --check refused the imported config:\n{r.get('check_stderr')}\n"
        f"--- corral.yaml\n{r['corral_yaml']}")
    assert r.get("corrald_running"), (
        f"{case}: corrald did not run it:\n{r.get('corrald_stderr')}")


@pytest.mark.parametrize("case", RUNNABLE)
def test_import_messages(results, case):
    check_messages(case, results[case])


@pytest.mark.parametrize("case", RUNNABLE)
def test_same_processes(results, case):
    r, e = results[case], expect(case)
    started(case, r)
    skip = set(e.get("not_imported", []))
    want = [expected_under_corral(p, r) for p in r["supervisord_processes"]
            if p["env"].get("SUPERVISOR_GROUP_NAME") not in skip]
    got = [as_corral(p) for p in r["corral_processes"]]
    missing = [p for p in want if key(p) not in [key(q) for q in got]]
    extra = [p for p in got if key(p) not in [key(q) for q in want]]
    report = []
    for p in missing:
        # the closest of corral's: the fewest lines of difference
        close = sorted(extra, key=lambda q: (q["argv"] != p["argv"], len(diff(p, q).splitlines())))
        if close:
            report.append(f"  {describe(p)} differs:\n{diff(p, close[0])}")
        else:
            report.append(f"  {describe(p)}: run by supervisord, not by corral")
    for q in extra:
        if not any(q["argv"] == p["argv"] for p in missing):
            report.append(f"  {describe(q)}: run by corral, not by supervisord")
    assert sorted(map(key, want)) == sorted(map(key, got)), (
        f"{case}: supervisord ran {len(want)} processes, corral {len(got)}:\n" + "\n".join(report)
        + f"\n--- corral.yaml\n{r['corral_yaml']}")


AUTO_SUPERVISORD = re.compile(r"-(stdout|stderr)---[^/]*\.log$")
AUTO_CORRAL = re.compile(r"/[A-Za-z0-9_.-]+-\d+\.(out|err)\.log$")


def split_logs(logs, auto):
    named = {k: v for k, v in logs.items() if not auto.search(k)}
    automatic = sorted(line for k, v in logs.items() if auto.search(k) for line in v)
    return named, automatic


@pytest.mark.parametrize("case", RUNNABLE)
def test_same_log_files(results, case):
    """Each program's two lines land in the same files (a redirect_stderr
    program's both in one); output supervisord puts in AUTO files (named at
    random in childlogdir) is in corral's own files of daemon.log_dir."""
    r, e = results[case], expect(case)
    started(case, r)
    skip = e.get("not_imported", [])
    skipped = [" ".join(p["argv"]) for p in r["supervisord_processes"]
               if p["env"].get("SUPERVISOR_GROUP_NAME") in skip]

    def keep(line):
        return not any(line.endswith(": " + argv) for argv in skipped)
    sup = {k: [x for x in v if keep(x)] for k, v in r["supervisord_logs"].items()}
    sup = {k: v for k, v in sup.items() if v}
    sup_named, sup_auto = split_logs(sup, AUTO_SUPERVISORD)
    cor_named, cor_auto = split_logs(r["corral_logs"], AUTO_CORRAL)
    assert cor_named == sup_named, (
        f"{case}: the probes' lines are not in the same files\n"
        f"supervisord: {json.dumps(sup_named, indent=1)}\ncorral: {json.dumps(cor_named, indent=1)}"
        f"\n--- corral.yaml\n{r['corral_yaml']}")
    assert cor_auto == sup_auto, (
        f"{case}: output of AUTO logs: supervisord {sup_auto}, corral {cor_auto}")
