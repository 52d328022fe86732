"""A redis-server of a benchmark's own (a temp dir, a Unix socket, appendonly
yes, appendfsync everysec, noeviction), and what bench/scale_out.py reads
of processes and of Redis's command counts."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis  # Debian: python3-redis


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="corral-bench-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--maxmemory-policy", "noeviction", "--logfile",
             os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "unix://" + self.socket
        for _ in range(500):
            try:
                self.client().ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.01)
        sys.exit("redis-server did not start")

    def client(self):
        return redis.Redis(unix_socket_path=self.socket)

    def commands(self):
        """Calls per command so far (INFO commandstats)."""
        stats = self.client().info("commandstats")
        return {name[len("cmdstat_"):]: value["calls"] for name, value in stats.items()}

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def diff(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
