"""Processes the benchmark measures: zinc, CNCF Distribution and nginx.

Each server runs on a free loopback port with its own temp directory, logs to a file
there, and is stopped by its own PID. zinc and Distribution get equivalent settings:
filesystem storage, no fsync (zinc storage.commit=false; Distribution never fsyncs), no
background GC during the run, access logs off, warnings and errors only. Peak RSS is
VmHWM from /proc/PID/status, read just before stopping.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import requests


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status_kib(pid, field):
    """A KiB field of /proc/PID/status (VmHWM, RssAnon, ...), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class AnonSampler:
    """Samples RssAnon of pid every `period` s on a thread and keeps the peak.

    VmHWM also counts file-backed pages the process maps (h2o keeps large request bodies
    in an mmap'd temp file); the anonymous peak separates those from heap and stacks.
    """

    def __init__(self, pid, period=0.02):
        self.pid, self.period, self.peak = pid, period, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.period):
            v = proc_status_kib(self.pid, "RssAnon")
            if v is None:
                return
            self.peak = max(self.peak, v)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


class Server:
    """A child process serving HTTP on 127.0.0.1:port; subclasses write the config."""

    name = "server"

    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.sampler = None
        self.authorization = None  # an Authorization header value once auth is on
        self.env = None  # the process's environment, None: ours
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        os.makedirs(workdir, exist_ok=True)

    def command(self):
        raise NotImplementedError

    def ready_url(self):
        return self.url + "/v2/"

    def start(self, timeout=20):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                r = requests.get(self.ready_url(), timeout=1)
                if r.status_code in (200, 401):
                    self.sampler = AnonSampler(self.proc.pid)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready on {self.url} after {timeout}s: {self.log_tail()}")

    def stop(self):
        """Stops the process (SIGTERM, then SIGKILL after 10 s); returns (VmHWM, sampled
        peak RssAnon) in KiB, None where unknown."""
        if self.proc is None:
            return None, None
        hwm = proc_status_kib(self.proc.pid, "VmHWM")
        anon = self.sampler.stop() if self.sampler else None
        if anon is not None:
            anon = max(anon, proc_status_kib(self.proc.pid, "RssAnon") or 0)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return hwm, anon

    def log_tail(self, n=1500):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


class Zinc(Server):
    name = "zinc"

    def __init__(self, workdir, binary, root, htpasswd=None, port=None):
        super().__init__(workdir, port)
        self.binary, self.root, self.htpasswd = binary, root, htpasswd

    def command(self):
        cfg = {
            "distSpecVersion": "1.1.0",
            "storage": {"rootDirectory": self.root, "dedupe": True, "gc": False, "commit": False},
            "http": {"address": "127.0.0.1", "port": str(self.port), "realm": "bench"},
            "log": {"level": "warn"},
        }
        if self.htpasswd:
            cfg["http"]["auth"] = {"htpasswd": {"path": self.htpasswd}}
        path = os.path.join(self.workdir, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return [self.binary, "serve", path]


class Distribution(Server):
    name = "distribution"

    def __init__(self, workdir, root, htpasswd=None, port=None, binary="docker-registry"):
        super().__init__(workdir, port)
        self.binary, self.root, self.htpasswd = binary, root, htpasswd

    def command(self):
        auth = ""
        if self.htpasswd:
            auth = f"auth:\n  htpasswd:\n    realm: bench\n    path: {self.htpasswd}\n"
        cfg = (f"version: 0.1\n"
               f"log:\n  level: warn\n  accesslog:\n    disabled: true\n"
               f"storage:\n  filesystem:\n    rootdirectory: {self.root}\n"
               f"  cache:\n    blobdescriptor: inmemory\n  delete:\n    enabled: true\n"
               f"  maintenance:\n    uploadpurging:\n      enabled: false\n"
               f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: zinc-bench-not-a-secret\n"
               f"{auth}")
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as f:
            f.write(cfg)
        return [self.binary, "serve", path]


class Nginx(Server):
    """nginx-light serving docroot, with Debian's default nginx.conf transfer settings."""

    name = "nginx"

    def __init__(self, workdir, docroot, port=None):
        super().__init__(workdir, port)
        self.docroot = docroot

    def ready_url(self):
        return self.url + "/"

    def command(self):
        w = self.workdir
        temps = " ".join(f"{k}_temp_path {w}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        cfg = (f"worker_processes {os.cpu_count()};\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n"
               f"events {{ worker_connections 4096; }}\n"
               f"http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000000;\n"
               f"  default_type application/octet-stream;\n  {temps}\n"
               f"  server {{ listen 127.0.0.1:{self.port}; root {self.docroot}; autoindex on; }}\n}}\n")
        path = os.path.join(w, "nginx.conf")
        with open(path, "w") as f:
            f.write(cfg)
        return ["nginx", "-e", f"{w}/error.log", "-p", w, "-c", path, "-g", "daemon off;"]
