"""Shared end-to-end harness: starts the real zinc binary on a free loopback port with a
temporary storage root and config, waits until it answers, stops it with SIGTERM, and
prints its log when a test fails.

Fixtures:
  zinc          a running server with the default test config (function scope)
  zinc_factory  zinc_factory(config_overrides=None, start=True) -> ZincServer, for custom
                configs (deep-merged into the default config); all are stopped at teardown
  s3_zinc_factory  s3_zinc_factory(bucket=None, rootdirectory="zot", config_overrides=None,
                start=True, endpoint=None) -> ZincServer on the S3 driver (storage.storageDriver)
                over a bucket (a new one when None: pass the same bucket to several servers
                for replicas); skipped unless the RGW fixture's environment is set

S3 runs. Under `test/s3/rgw.py run -- ...` the environment holds S3_ENDPOINT, S3_ACCESS_KEY,
S3_SECRET_KEY, S3_REGION. With ZINC_STORAGE=s3 as well (the e2e_s3_* ctest entries), every
server these fixtures start stores on S3, each in a new bucket, unless its overrides give a
storage.storageDriver of their own (None: the filesystem). STORAGE_S3 tells tests which.
"""
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ZINC_BIN = os.environ.get("ZINC_BIN") or os.path.join(REPO, "build", "server", "zinc")
SANITIZE = os.environ.get("ZINC_SANITIZE", "0").lower() in ("1", "true", "on", "yes")
# sanitizer builds are several times slower: scale waits by this
SLOW = 4 if SANITIZE else 1
S3_ENV = {k: os.environ[k] for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION")} \
    if "S3_ENDPOINT" in os.environ else None
STORAGE_S3 = os.environ.get("ZINC_STORAGE", "") == "s3"
if STORAGE_S3 and S3_ENV is None:
    raise RuntimeError("ZINC_STORAGE=s3 needs the RGW fixture's environment: run under test/s3/rgw.py run --")
_bucket_seq = [0]


def new_bucket():
    """Creates a fresh bucket on the RGW fixture; returns its name."""
    sys.path.insert(0, os.path.join(REPO, "test", "s3"))
    import rgw

    _bucket_seq[0] += 1
    name = "zn-e2e-%d-%d" % (os.getpid(), _bucket_seq[0])
    rgw.make_bucket(S3_ENV, name)
    return name


def s3_driver_config(bucket, rootdirectory="zot", endpoint=None, chunksize=5 << 20):
    """storage.storageDriver for the RGW fixture (zot's keys). chunksize 5 MiB, S3's least part,
    so that multi-part uploads happen with small test blobs."""
    return {"name": "s3", "region": S3_ENV["S3_REGION"], "bucket": bucket,
            "regionendpoint": endpoint or S3_ENV["S3_ENDPOINT"], "rootdirectory": rootdirectory,
            "accesskey": S3_ENV["S3_ACCESS_KEY"], "secretkey": S3_ENV["S3_SECRET_KEY"],
            "secure": False, "forcepathstyle": True, "chunksize": chunksize}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


class ZincServer:
    """One zinc process. `workdir` holds config.json, the storage root and the log."""

    def __init__(self, workdir, overrides=None):
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        self.port = free_port()
        self.config_path = os.path.join(workdir, "config.json")
        self.log_path = os.path.join(workdir, "zinc.log")
        if STORAGE_S3 and "storageDriver" not in (overrides or {}).get("storage", {}):
            overrides = deep_merge(overrides or {}, {"storage": {"storageDriver": s3_driver_config(new_bucket())}})
        self.config = deep_merge(
            {
                "distSpecVersion": "1.1.1",
                "storage": {"rootDirectory": self.root},
                "http": {"address": "127.0.0.1", "port": str(self.port)},
                "log": {"level": "info"},
            },
            overrides,
        )
        self.proc = None
        self.extra_env = {}  # added to the process's environment at start (e.g. an LD_PRELOAD shim)
        self.scheme = "https" if self.config["http"].get("tls") else "http"
        self.write_config()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.port

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    def start(self, wait=True, args=None):
        env = dict(os.environ)
        if SANITIZE:
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update(self.extra_env)
        self.logf = open(self.log_path, "ab")
        cmd = [ZINC_BIN, "serve", self.config_path] if args is None else [ZINC_BIN] + args
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("zinc exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                r = requests.get(self.url + "/readyz", timeout=1, verify=False)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("zinc did not become ready:\n" + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def failure_report(self, tail=20000):
        """What to print when a test failed: every warn/error line of the whole log (the
        tail alone may start after the line that explains the failure), then the tail."""
        text = self.log()
        bad = [l for l in text.splitlines() if '"level":"warn"' in l or '"level":"error"' in l]
        return "warn/error lines (%d):\n%s\n----- last %d bytes -----\n%s" % (
            len(bad), "\n".join(bad[-300:]), tail, text[-tail:])

    def sanitizer_errors(self):
        text = self.log()
        return [l for l in text.splitlines() if "ERROR: AddressSanitizer" in l or "runtime error:" in l]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def zinc_factory(request):
    servers = []
    dirs = []

    def make(config_overrides=None, start=True):
        d = tempfile.mkdtemp(prefix="zinc-e2e-")
        dirs.append(d)
        s = ZincServer(d, config_overrides)
        servers.append(s)
        if start:
            s.start()
        return s

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for s in servers:
        s.stop()
        errs = s.sanitizer_errors()
        if errs:
            problems.append(errs)
        if failed or errs:
            print("\n===== zinc log (%s) =====\n%s" % (s.workdir, s.failure_report()))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "sanitizer reported errors: %r" % problems


@pytest.fixture
def zinc(zinc_factory):
    return zinc_factory()


@pytest.fixture
def s3_zinc_factory(zinc_factory):
    if S3_ENV is None:
        pytest.skip("no S3 engine: run under test/s3/rgw.py run --")

    def make(bucket=None, rootdirectory="zot", config_overrides=None, start=True, endpoint=None):
        drv = s3_driver_config(bucket or new_bucket(), rootdirectory, endpoint)
        return zinc_factory(deep_merge({"storage": {"storageDriver": drv}}, config_overrides), start=start)

    return make
