"""corrald for the benchmarks: its own config in a temp dir, launched, spoken to.

    daemon = Daemon(build, jobs)        # JOBS: the YAML under `jobs:`, indented two
    client = daemon.start()             # a Client as soon as the socket takes one
    client = daemon.start_running("j")  # ...once job j's workers are all RUNNING
    daemon.ctl("stats", "--json")       # corralctl against this daemon
    daemon.stop()                       # SIGTERM, wait, remove the temp dir
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


class Client:
    """One connection to the control socket: a request line, a reply line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")

    def request(self, message):
        self.sock.sendall((json.dumps(message) + "\n").encode())
        return json.loads(self.file.readline())

    def close(self):
        self.file.close()
        self.sock.close()


class Daemon:
    def __init__(self, build, jobs, metrics_interval=None, log_level="warn", cgroup="off"):
        self.build = build
        self.dir = tempfile.TemporaryDirectory(prefix="corral-bench-")
        self.socket = os.path.join(self.dir.name, "corral.sock")
        self.config = os.path.join(self.dir.name, "corral.yaml")
        interval = f", interval: {metrics_interval}" if metrics_interval else ""
        with open(self.config, "w") as f:
            f.write(f"daemon:\n  socket: {self.socket}\n  log_dir: {self.dir.name}/logs\n"
                    f"  state_dir: {self.dir.name}/state\n  cgroup: \"{cgroup}\"\n"
                    f"  log_level: {log_level}\n  metrics: {{listen: \"off\"{interval}}}\n"
                    f"jobs:\n{jobs}")
        self.proc = None
        self.log = None
        self.launched = None

    def start(self):
        """Launches corrald; a connected Client as soon as the socket takes one."""
        self.log = open(os.path.join(self.dir.name, "log"), "w")
        self.launched = time.perf_counter()
        self.proc = subprocess.Popen([os.path.join(self.build, "corrald"), "-c", self.config],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        while True:
            try:
                return Client(self.socket)
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None:
                    sys.exit("corrald exited: " + open(self.log.name).read())
                time.sleep(0.0005)

    def start_running(self, job, timeout_s=120):
        """start(), then waits (one request) until JOB's workers are all RUNNING."""
        client = self.start()
        reply = client.request({"cmd": "wait", "job": job, "running": True, "timeout_s": timeout_s})
        if not reply.get("ok"):
            self.stop(keep_logs=True)
            sys.exit(f"the workers of {job} did not start: {reply}")
        return client

    def ctl(self, *args, **run_args):
        """corralctl ARGS against this daemon (subprocess.run's result)."""
        return subprocess.run([os.path.join(self.build, "corralctl"), "-s", self.socket, *args],
                              capture_output=True, **run_args)

    def worker_pids(self, client, job):
        return [w["pid"] for w in client.request({"cmd": "status", "targets": [job]})["workers"]]

    def stop(self, keep_logs=False):
        """Stops corrald; KEEP_LOGS copies its log and the workers' logs to a kept dir."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()
        if keep_logs:
            kept = tempfile.mkdtemp(prefix="corral-bench-incident-")
            shutil.copytree(self.dir.name, kept, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.sock"))
            print(f"logs of the daemon kept in {kept}", file=sys.stderr)
        self.dir.cleanup()
