"""Runs one case of tests/supervisord_corpus under the real supervisord, then
imports it with `corralctl import supervisord`, checks the result with
`corrald --check` and runs it under the real corrald, and prints what each
daemon started as one JSON object on stdout (test_supervisord_import.py
compares them).

It must run in a mount namespace of its own (`unshare --mount --propagation
private`): it mounts empty tmpfs file systems over /srv, /var/log, /run,
/usr/local/bin, /etc/supervisor and /tmp, so that the configs keep the
absolute paths real deployments use (/srv/app, /var/log/supervisor/web.log,
/var/run/supervisor.sock, /etc/supervisor/conf.d/*.conf) without touching the
machine's own, and binds over /etc/passwd and /etc/group a copy holding one
more user, `app` (uid 1500, also in group www-data). The case's files are
copied to /etc/supervisor (supervisord.conf there, as Debian installs it), and
copies of the probe (probe.c) are installed at the paths of the case's
expect.json `world.probes`.

Each daemon gets the same world, made afresh: the same environment (`ENV`
below plus the case's `world.env`), working directory / and umask 022.

    python3 supervisord_world.py CASE_DIR PROBE_BINARY BUILD_DIR
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

CASE, PROBE, BUILD = sys.argv[1:4]
EXPECT = json.load(open(os.path.join(CASE, "expect.json")))
WORLD = EXPECT.get("world", {})
MOUNTS = ["/srv", "/var/log", "/run", "/usr/local/bin", "/etc/supervisor", "/tmp"]
SCRATCH = "/media"  # the harness' own files: daemons' stdout and stderr
CONF = "/etc/supervisor/supervisord.conf"
CORRAL_CONF = "/etc/supervisor/corral.yaml"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "USER": "root", "LOGNAME": "root", "LANG": "C.UTF-8",
       "HOSTNAME": os.uname().nodename}
ENV.update(WORLD.get("env", {}))
SCALE = float(os.environ.get("CORRAL_TEST_TIME_SCALE", "1"))


def run(*argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def mount_world():
    for m in MOUNTS:
        run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", m)
    os.makedirs("/run/lock", exist_ok=True)
    for name in os.listdir(CASE):
        src = os.path.join(CASE, name)
        if name == "expect.json":
            continue
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join("/etc/supervisor", name))
        else:
            shutil.copy(src, "/etc/supervisor")
    for d in WORLD.get("dirs", []) + ["/var/log/supervisor"]:
        os.makedirs(d, exist_ok=True)
    for owner_dir in WORLD.get("app_dirs", []):
        os.makedirs(owner_dir, exist_ok=True)
        os.chown(owner_dir, 1500, 1500)
    for p in WORLD.get("probes", []):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copy(PROBE, p)
        os.chmod(p, 0o755)


def unmount_world():
    for m in reversed(MOUNTS):
        subprocess.run(["umount", "-l", m], check=False)


def add_user():
    global PROBE, CASE, BUILD
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", SCRATCH)
    shutil.copy(PROBE, f"{SCRATCH}/probe")
    PROBE = f"{SCRATCH}/probe"
    # The case and corral's binaries may live below a directory the world
    # mounts over (a clone in /tmp): kept in the scratch mount instead.
    shutil.copytree(CASE, f"{SCRATCH}/case")
    CASE = f"{SCRATCH}/case"
    os.makedirs(f"{SCRATCH}/bin")
    for tool in ("corrald", "corralctl", "corralctl-full"):
        shutil.copy(os.path.join(BUILD, tool), f"{SCRATCH}/bin/{tool}")
    BUILD = f"{SCRATCH}/bin"
    with open("/etc/passwd") as f:
        passwd = f.read()
    with open("/etc/group") as f:
        groups = f.read().splitlines()
    with open(f"{SCRATCH}/passwd", "w") as f:
        f.write(passwd.rstrip("\n") + "\napp:x:1500:1500:app:/srv/app:/bin/bash\n")
    out = []
    for line in groups:
        fields = line.split(":")
        if fields[0] == "www-data":
            fields[3] = ",".join([m for m in fields[3].split(",") if m] + ["app"])
        out.append(":".join(fields))
    out.append("app:x:1500:")
    with open(f"{SCRATCH}/group", "w") as f:
        f.write("\n".join(out) + "\n")
    run("mount", "--bind", f"{SCRATCH}/passwd", "/etc/passwd")
    run("mount", "--bind", f"{SCRATCH}/group", "/etc/group")


def children_of(pid):
    """Every descendant of PID."""
    parents = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(d))
    found, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return sorted(found)


def status_fields(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def snapshot_process(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if e)
    st = status_fields(pid)
    return {
        "pid": pid,
        "argv": argv,
        "exe": os.readlink(f"/proc/{pid}/exe"),
        "cwd": os.readlink(f"/proc/{pid}/cwd"),
        "env": env,
        "uid": st["Uid"].split(),
        "gid": st["Gid"].split(),
        "groups": sorted(st["Groups"].split(), key=int),
        "umask": st.get("Umask"),
    }


def snapshot(pid, marker):
    """The daemon's programs: its descendants with MARKER (SUPERVISOR_ENABLED,
    CORRAL_JOB) in their environment (corrald has a helper process of its
    own)."""
    procs = []
    for c in children_of(pid):
        try:
            p = snapshot_process(c)
        except (OSError, ValueError):
            continue
        if marker in p["env"]:
            procs.append(p)
    return procs


def settle(daemon, marker, expected, deadline):
    """Waits until DAEMON has EXPECTED programs running, then 0.6 s more to
    see that no more come and the one-shot ones are gone."""
    def probes():
        out = []
        for p in children_of(daemon.pid):
            try:
                with open(f"/proc/{p}/status") as f:
                    if "State:\tZ" in f.read():
                        continue
                with open(f"/proc/{p}/environ", "rb") as f:
                    if f"\0{marker}=".encode() not in b"\0" + f.read():
                        continue
                out.append(p)
            except OSError:
                pass
        return out
    stable_since, last = None, None
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            return
        now = probes()
        if len(now) == expected and now == last:
            if stable_since and time.monotonic() - stable_since > 0.6 * SCALE:
                return
            stable_since = stable_since or time.monotonic()
        else:
            stable_since = None
        last = now
        time.sleep(0.05)


OUTPUT = {}


def start(argv, name):
    """Starts a daemon with pipes for stdout and stderr, as a container runtime
    gives it (a file there would be truncated by each program that opens
    /dev/stdout), read by threads into OUTPUT[NAME.stdout] and .stderr."""
    import threading
    os.umask(0o022)
    d = subprocess.Popen(argv, env=ENV, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL,
                         preexec_fn=lambda: __import__("ctypes").CDLL(None).prctl(1, 9))
    d.readers = []
    for stream in ("stdout", "stderr"):
        key = f"{name}.{stream}"
        OUTPUT[key] = b""

        def pump(pipe=getattr(d, stream), key=key):
            for chunk in iter(lambda: pipe.read1(65536), b""):
                OUTPUT[key] += chunk
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        d.readers.append(t)
    return d


def stop(daemon):
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20 * SCALE)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    for t in daemon.readers:
        t.join(timeout=5)
    return daemon.returncode


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def output(key):
    return OUTPUT.get(key, b"").decode(errors="replace")


def probe_lines(text):
    return sorted(line for line in text.splitlines() if line.startswith("probe std"))


def collect_logs(name):
    """Every file of the world holding a probe's line, with those lines; the
    daemon's own stdout and stderr as <stdout> and <stderr>."""
    logs = {}
    for top in ["/srv", "/var/log", "/run", "/tmp"]:
        for root, _, files in os.walk(top):
            for fn in files:
                path = os.path.join(root, fn)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                lines = probe_lines(read(path))
                if lines:
                    logs[path] = lines
    for stream in ("stdout", "stderr"):
        lines = probe_lines(output(f"{name}.{stream}"))
        if lines:
            logs[f"<{stream}>"] = lines
    return logs


def supervisord_config():
    """What supervisord's own parser makes of the case: per process, its
    configured environment and log settings."""
    os.environ.clear()
    os.environ.update(ENV)  # its %(ENV_X)s are the daemon's
    from supervisor.options import ServerOptions
    opts = ServerOptions()
    opts.configfile = CONF
    opts.here = os.path.dirname(CONF)
    opts.process_config(do_usage=False)
    out = {}
    for group in opts.process_group_configs:
        for p in group.process_configs:
            def name(v):
                return v if isinstance(v, str) or v is None else "AUTO"
            out[f"{group.name}:{p.name}"] = {
                "environment": p.environment or {},
                "stdout_logfile": name(p.stdout_logfile),
                "stderr_logfile": name(p.stderr_logfile),
                "stdout_logfile_maxbytes": p.stdout_logfile_maxbytes,
                "stdout_logfile_backups": p.stdout_logfile_backups,
                "redirect_stderr": p.redirect_stderr,
                "uid": p.uid,
            }
    return out


def run_supervisord(result):
    expected = EXPECT.get("processes", 0)
    d = start(["supervisord", "-n", "-c", CONF], "supervisord")
    try:
        if EXPECT.get("refused"):
            try:
                d.wait(timeout=15 * SCALE)
            except subprocess.TimeoutExpired:
                pass
        else:
            settle(d, "SUPERVISOR_ENABLED", expected, time.monotonic() + 15 * SCALE)
        result["supervisord_running"] = d.poll() is None
        result["supervisord_processes"] = snapshot(d.pid, "SUPERVISOR_ENABLED") if d.poll() is None else []
        if result["supervisord_running"]:
            result["supervisord_config"] = supervisord_config()
    finally:
        log_time("snapshot")
        result["supervisord_exit"] = stop(d)
        log_time("stopped")
    result["supervisord_stderr"] = output("supervisord.stderr")
    result["supervisord_stdout"] = output("supervisord.stdout")[-4000:]
    result["supervisord_logs"] = collect_logs("supervisord")
    # supervisord's own log, for the failures' messages
    result["supervisord_log"] = read("/var/log/supervisor/supervisord.log")[-4000:]


def normalized_for_test(text):
    """The normalized config of `corrald --check`, with what only the test
    changes: no cgroups (the test's own cgroup is not corrald's to take), a
    state_dir in the world, no metrics port."""
    out = []
    section = None
    for line in text.splitlines():
        if re.match(r"^\S", line):
            section = line.split(":")[0]
        if section == "daemon":
            if re.match(r"^  cgroup:", line):
                line = '  cgroup: "off"'
            elif re.match(r"^  state_dir:", line):
                line = "  state_dir: /run/corral-test-state"
            elif re.match(r"^  metrics:", line):
                line = "  metrics: {listen: off, interval: 1s}"
            elif re.match(r"^    (listen|interval):", line):
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def run_corral(result):
    imp = subprocess.run([f"{BUILD}/corralctl", "import", "supervisord", CONF, "-o", CORRAL_CONF],
                         env=ENV, cwd="/", capture_output=True, text=True, timeout=30 * SCALE)
    result["import_exit"] = imp.returncode
    result["import_stderr"] = imp.stderr
    result["import_stdout"] = imp.stdout
    result["corral_yaml"] = read(CORRAL_CONF) if os.path.exists(CORRAL_CONF) else None
    if result["corral_yaml"] is None or not result.get("supervisord_running"):
        return
    check = subprocess.run([f"{BUILD}/corrald", "-c", CORRAL_CONF, "--check"], env=ENV, cwd="/",
                           capture_output=True, text=True, timeout=30 * SCALE)
    result["check_exit"] = check.returncode
    result["check_stderr"] = check.stderr
    result["normalized"] = check.stdout
    if check.returncode != 0:
        return
    test_conf = f"{SCRATCH}/corral-run.yaml"
    with open(test_conf, "w") as f:
        f.write(normalized_for_test(check.stdout))
    d = start([f"{BUILD}/corrald", "-c", test_conf], "corrald")
    try:
        settle(d, "CORRAL_JOB", EXPECT.get("corral_processes", EXPECT.get("processes", 0)),
               time.monotonic() + 15 * SCALE)
        result["corrald_running"] = d.poll() is None
        result["corral_processes"] = snapshot(d.pid, "CORRAL_JOB") if d.poll() is None else []
    finally:
        result["corrald_exit"] = stop(d)
    result["corrald_stderr"] = output("corrald.stderr")[-6000:]
    result["corral_logs"] = collect_logs("corrald")


def main():
    result = {"env": ENV}
    t0 = time.monotonic()
    global log_time

    def log_time(what):
        result.setdefault("times", []).append([what, round(time.monotonic() - t0, 2)])
    add_user()
    try:
        mount_world()
        import pwd
        result["passwd"] = {str(p.pw_uid): [p.pw_name, p.pw_dir, p.pw_shell] for p in pwd.getpwall()}
        run_supervisord(result)
        log_time("supervisord")
        unmount_world()
        mount_world()
        run_corral(result)
        log_time("corral")
    finally:
        unmount_world()
        json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
