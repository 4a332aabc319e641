"""Execution trace, mutex and block profiles, checked with the real Go tools.

A zinc with two workers is loaded while a trace is taken: clients hammer /v2/ and the
symbol endpoint with addresses it has not seen (the workers contend for the symbolizer's
lock), push and pull blobs (storage syscalls), and skopeo pushes and pulls an image. The trace must parse in `go tool trace`
(Go 1.19 from Debian, and Go 1.23 from bookworm-backports when installed), every -pprof
mode must give a profile `go tool pprof -top` reads with zinc's function names, and the
viewer must serve its pages. The golden traces of the encoder's unit test are re-checked
with every Go found, so what the unit test compares against is what Go accepts.
"""
import glob
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import SANITIZE, SLOW, ZincServer, free_port
from images_build import build_oci_layout

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = sorted(glob.glob(os.path.join(HERE, "..", "data", "trace", "*.trace")))
GO119 = "/usr/bin/go"
GO123 = "/usr/lib/go-1.23/bin/go"
PPROF = "/v2/_zot/pprof/"


def go_versions():
    out = [pytest.param(GO119, id="go1.19")]
    mark = pytest.mark.skipif(not os.path.exists(GO123), reason="Go 1.23 (bookworm-backports golang-1.23-go) not installed")
    out.append(pytest.param(GO123, id="go1.23", marks=mark))
    return out


def debug_flag(go):
    # Go 1.19: -d (bool); Go 1.22+: -d=1 (parsed events)
    return "-d" if go == GO119 else "-d=1"


def run(cmd, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def pprof_top(go, trace, mode, tmp_path):
    r = run([go, "tool", "trace", "-pprof=" + mode, trace])
    assert r.returncode == 0, r.stderr.decode()
    prof = os.path.join(str(tmp_path), "%s.%s.pb" % (os.path.basename(go), mode))
    with open(prof, "wb") as f:
        f.write(r.stdout)
    top = run([go, "tool", "pprof", "-top", prof])
    assert top.returncode == 0, top.stderr.decode()
    return top.stdout.decode()


def top_functions(top):
    """Function names of the -top rows (last column), empty when the profile is empty."""
    names = []
    for line in top.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].endswith("%") and parts[4].endswith("%"):
            names.append(parts[5])
    return names


# ---- golden traces -----------------------------------------------------------------------


@pytest.mark.parametrize("go", go_versions())
def test_golden_traces_accepted(go, tmp_path):
    assert len(GOLDEN) >= 2
    for path in GOLDEN:
        r = run([go, "tool", "trace", debug_flag(go), path])
        assert r.returncode == 0, "%s: %s" % (path, r.stderr.decode())
    start = [p for p in GOLDEN if p.endswith("start.trace")][0]
    want = {"net": "epoll_wait", "sync": "zn_mutex_lock", "syscall": "zn_syscall_begin", "sched": "epoll_wait"}
    for mode, fn in want.items():
        assert fn in top_functions(pprof_top(go, start, mode, tmp_path)), mode


# ---- a loaded server ---------------------------------------------------------------------


MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


class Load:
    """Client threads that keep zinc busy until stop()."""

    def __init__(self, srv):
        self.url = srv.url
        self.hostport = srv.hostport
        self.workdir = srv.workdir
        self.text = text_segment(srv.proc.pid)
        self.skopeo_runs = 0
        self.stop_at = None
        self.done = threading.Event()
        self.errors = []
        self.threads = []
        self.pushes = 0

    def loop(self, fn):
        s = requests.Session()
        while not self.done.is_set():
            try:
                fn(s)
            except (requests.RequestException, AssertionError, subprocess.SubprocessError) as e:
                self.errors.append(repr(e))
                time.sleep(0.05)

    def start(self):
        jobs = [lambda s: s.get(self.url + "/v2/", timeout=10)] * 2
        # symbolizing addresses it has not seen takes the symbolizer's lock for a while each:
        # the two workers contend for it (zn_pprof_sym_lookup holds it, others wait)
        jobs += [self.symbols] * 4
        self.oci = oci_api_present(self.url)
        self.with_skopeo = self.oci and shutil.which("skopeo") is not None
        if self.oci:
            jobs += [self.push_pull] * 2
            if self.with_skopeo:
                src = os.path.join(self.workdir, "img")
                build_oci_layout(src, "v1", [{"a.txt": os.urandom(512 * 1024)}, {"b.txt": b"b" * 4096}], "trace")
                jobs += [lambda s: self.skopeo_round_trip(src)]
        for fn in jobs:
            t = threading.Thread(target=self.loop, args=(fn,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def symbols(self, s):
        lo, hi = self.text
        addrs = "+".join("%#x" % random.randrange(lo, hi) for _ in range(200))
        # a new connection each time, so that both workers get some (kept-alive ones could
        # all land on one worker, which never contends with itself)
        r = requests.post(self.url + PPROF + "symbol", data=addrs, timeout=30)
        assert r.status_code == 200, r.text

    def upload(self, s, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = s.post(self.url + "/v2/e2e/trace/blobs/uploads/?digest=" + digest, data=data,
                   headers={"Content-Type": "application/octet-stream"}, timeout=30)
        if r.status_code == 202:  # no monolithic upload: POST then PUT
            loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else self.url + loc
            sep = "&" if "?" in loc else "?"
            r = s.put(loc + sep + "digest=" + digest, data=data, timeout=30)
        assert r.status_code == 201, r.text
        return digest

    def push_pull(self, s):
        data = os.urandom(256 * 1024)
        digest = self.upload(s, data)
        assert s.get(self.url + "/v2/e2e/trace/blobs/" + digest, timeout=30).content == data
        self.pushes += 1

    def manifest_round(self, s):
        """One manifest PUT and GET (tasks manifest_put and manifest_get) in e2e/trace."""
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        layer = os.urandom(1024)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.upload(s, config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": self.upload(s, layer), "size": len(layer)}]}).encode()
        r = s.put(self.url + "/v2/e2e/trace/manifests/traced", data=manifest,
                  headers={"Content-Type": MANIFEST_TYPE}, timeout=30)
        assert r.status_code == 201, r.text
        r = s.get(self.url + "/v2/e2e/trace/manifests/traced", headers={"Accept": MANIFEST_TYPE}, timeout=30)
        assert r.status_code == 200 and r.content == manifest, r.text

    def skopeo_round_trip(self, src):
        """skopeo pushes the image under a new tag and pulls it back."""
        n = self.skopeo_runs
        ref = "docker://%s/e2e/skopeo:t%d" % (self.hostport, n)
        dst = os.path.join(self.workdir, "pulled%d" % n)
        for args in (["--dest-tls-verify=false", "oci:%s:v1" % src, ref],
                     ["--src-tls-verify=false", ref, "oci:%s:v1" % dst]):
            r = run(["skopeo", "--insecure-policy", "copy", "-q"] + args, timeout=60)
            assert r.returncode == 0, r.stderr.decode()
        shutil.rmtree(dst, ignore_errors=True)
        self.skopeo_runs += 1

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=30)


def text_segment(pid):
    """(start, limit) of zinc's executable text mapping."""
    exe = os.readlink("/proc/%d/exe" % pid)
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[1].startswith("r-x") and parts[5] == exe:
                lo, hi = parts[0].split("-")
                return int(lo, 16), int(hi, 16)
    raise AssertionError("no text mapping for %s" % exe)


def oci_api_present(url):
    try:
        r = requests.post(url + "/v2/e2e/probe/blobs/uploads/", timeout=5)
    except requests.RequestException:
        return False
    return r.status_code == 202


def stop_checked(srv):
    """Stops a server started by a module fixture; its log is printed if it died or the
    sanitizers complained (function fixtures get that from conftest)."""
    died = srv.proc is not None and srv.proc.poll() is not None
    srv.stop()
    errs = srv.sanitizer_errors()
    if died or errs:
        print("\n===== zinc log (%s) =====\n%s" % (srv.workdir, srv.log()[-20000:]))
    assert not died, "zinc died"
    assert not errs, errs


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """(server, trace path, load) for a 2 s trace taken under load."""
    d = str(tmp_path_factory.mktemp("trace"))
    srv = ZincServer(d, {"http": {"workers": 2}})
    srv.start()
    load = Load(srv).start()
    try:
        # the trace should see every kind of work: wait until each job has done a round
        deadline = time.time() + 60 * SLOW
        while (load.oci and load.pushes == 0) or (load.with_skopeo and load.skopeo_runs == 0):
            assert time.time() < deadline and not load.errors, load.errors[:3]
            time.sleep(0.2)
        # skopeo's rounds take seconds and may miss the 2 s window: manifest requests of our
        # own run back to back for as long as the trace request is open, so the whole window
        # is covered by rounds of a few ms
        # On a machine so loaded that this client gets no whole round into the window (the
        # trace's string table then lacks the task names), the trace is taken again: the
        # checks below need a window that saw the work, not a lucky schedule.
        s = requests.Session()
        for attempt in range(5):
            answer = {}
            tracer = threading.Thread(target=lambda: answer.update(
                r=requests.get(srv.url + PPROF + "trace?seconds=2", timeout=60 * SLOW)))
            tracer.start()
            while tracer.is_alive():
                if load.oci:
                    load.manifest_round(s)
                else:
                    tracer.join()
            tracer.join()
            r = answer["r"]
            if not load.oci or r.status_code != 200 or (b"manifest_put" in r.content and b"manifest_get" in r.content):
                break
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"] == 'attachment; filename="trace"'
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert not load.errors, load.errors[:3]
        path = os.path.join(d, "t.out")
        with open(path, "wb") as f:
            f.write(r.content)
        # the tests read the trace file, not the server: the load has done its job, and
        # left running it would only take CPU from the rest of a parallel `make test`
        load.stop()
        yield srv, path, load
    finally:
        load.stop()
        stop_checked(srv)


@pytest.mark.parametrize("go", go_versions())
def test_trace_parses(loaded, go):
    srv, path, load = loaded
    with open(path, "rb") as f:
        assert f.read(16) == b"go 1.19 trace\x00\x00\x00"
    r = run([go, "tool", "trace", debug_flag(go), path])
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    events = r.stdout.decode()
    for ev in ("GoCreate", "ProcStart", "GoStart", "GoBlockNet", "GoUnblock", "UserTaskCreate", "UserRegion") if go == GO119 else ():
        assert ev in events, ev
    if go == GO119 and load.oci:
        # OCI requests' tasks carry their repository and their route
        assert "category=repo message=e2e/trace" in events
        assert "name=manifest_put" in events and "name=manifest_get" in events


@pytest.mark.parametrize("go", go_versions())
def test_trace_pprof_modes(loaded, go, tmp_path):
    _, path, _ = loaded
    net = top_functions(pprof_top(go, path, "net", tmp_path))
    assert "epoll_wait" in net and "worker_main" in net, net
    sync = top_functions(pprof_top(go, path, "sync", tmp_path))
    assert "zn_mutex_lock" in sync and "zn_pprof_sym_lookup" in sync, sync
    sched = top_functions(pprof_top(go, path, "sched", tmp_path))
    assert "worker_main" in sched, sched


@pytest.mark.parametrize("go", go_versions())
def test_trace_pprof_syscall(loaded, go, tmp_path):
    _, path, load = loaded
    if load.pushes == 0:
        pytest.skip("no OCI blob API on this build: no storage syscalls to trace")
    syscall = top_functions(pprof_top(go, path, "syscall", tmp_path))
    assert "zn_syscall_begin" in syscall, syscall


@pytest.mark.parametrize("go", go_versions())
def test_trace_viewer_pages(loaded, go):
    _, path, _ = loaded
    port = free_port()
    proc = subprocess.Popen([go, "tool", "trace", "-http=127.0.0.1:%d" % port, path], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ, BROWSER="/bin/true"))
    try:
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 60 * SLOW
        while True:
            try:
                requests.get(base + "/", timeout=5)
                break
            except requests.RequestException:
                assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
                assert time.time() < deadline, "go tool trace did not come up"
                time.sleep(0.2)
        for page in ("/", "/trace", "/jsontrace", "/goroutines", "/usertasks"):
            r = requests.get(base + page, timeout=60)
            assert r.status_code == 200, (page, r.text[:500])
        assert "worker_main" in requests.get(base + "/goroutines", timeout=60).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---- one trace at a time, early end, parameters -------------------------------------------


def test_second_trace_refused(zinc_factory):
    srv = zinc_factory({"http": {"workers": 2}})
    # stream=True returns once the headers came, and a trace's 200 is sent only after
    # tracing was enabled: from here on the first trace is running, for as long as its client
    # stays (60 s is only the bound; it is closed below), however slow the second request is.
    first = requests.get(srv.url + PPROF + "trace?seconds=60", stream=True, timeout=60 * SLOW)
    assert first.status_code == 200
    head = b""
    while len(head) < 13:  # the header is streamed at once
        chunk = first.raw.read(13 - len(head))
        assert chunk, head
        head += chunk
    assert head == b"go 1.19 trace"
    r = requests.get(srv.url + PPROF + "trace?seconds=1", timeout=30)
    assert r.status_code == 500
    assert r.text == "Could not enable tracing: tracing is already enabled\n"
    assert r.headers["X-Go-Pprof"] == "1"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    first.close()  # the trace ends (test_client_going_away_ends_trace checks that it does)


def test_client_going_away_ends_trace(zinc_factory):
    srv = zinc_factory({"http": {"workers": 1}})
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"GET " + PPROF.encode() + b"trace?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in s.recv(4096)
    s.close()
    deadline = time.time() + 10 * SLOW
    while True:
        r = requests.get(srv.url + PPROF + "trace?seconds=0.2", timeout=30)
        if r.status_code == 200:
            break
        assert r.text == "Could not enable tracing: tracing is already enabled\n"
        assert time.time() < deadline, "the abandoned trace was still running"
        time.sleep(0.2)


def test_seconds_parameter(zinc):
    """seconds= is honoured, and a missing or bad value means Go's default, 1 s. The lower
    bounds are what the timers guarantee; the upper ones only catch a wrong default (Go's
    profile endpoint uses 30 s) and are far from what a loaded machine adds."""
    def logged():
        return [l for l in zinc.log_lines() if l.get("message") == "request" and l.get("path") == "/v2/_zot/pprof/trace"]

    cases = (("seconds=0.3", 0.25, 0.95), ("seconds=abc", 0.9, 10), ("", 0.9, 10), ("seconds=-2", 0.9, 10))
    for i, (q, lo, hi) in enumerate(cases):
        t0 = time.time()
        r = requests.get(zinc.url + PPROF + "trace?" + q, timeout=30 * SLOW)
        took = time.time() - t0
        assert r.status_code == 200 and r.content.startswith(b"go 1.19 trace"), q
        assert took >= lo, (q, took)
        # the server's own measure of the request (timer to last byte), not the client's
        deadline = time.time() + 30 * SLOW  # the access log line may follow the last byte
        while len(logged()) <= i:
            assert time.time() < deadline, "no access log line for trace?" + q
            time.sleep(0.05)
        ms = logged()[i]["duration_ms"]
        assert lo * 1000 <= ms, (q, ms)
        if not SANITIZE:  # 0.3 s must not have become the 1 s default
            assert ms <= hi * 1000, (q, ms)

# ---- mutex and block profiles ---------------------------------------------------------------


@pytest.fixture(scope="module")
def contended(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("lockprof"))
    srv = ZincServer(d, {"http": {"workers": 2}})
    srv.start()
    load = Load(srv).start()
    try:
        deadline = time.time() + 30 * SLOW
        for name in ("mutex", "block"):
            while "zn_pprof_sym_lookup" not in requests.get(srv.url + PPROF + name + "?debug=1", timeout=30).text:
                assert time.time() < deadline, "no contention recorded in the %s profile" % name
                time.sleep(0.5)
        # the profiles are cumulative: what the load recorded stays in them without it
        load.stop()
        yield srv
    finally:
        load.stop()
        stop_checked(srv)


def fetch_profile(url, path, tmp_path, name):
    r = requests.get(url + PPROF + path, timeout=60 * SLOW)
    assert r.status_code == 200, r.text
    p = os.path.join(str(tmp_path), name)
    with open(p, "wb") as f:
        f.write(r.content)
    return r, p


def test_mutex_profile_names_holders(contended, tmp_path):
    r, p = fetch_profile(contended.url, "mutex", tmp_path, "mutex.pb")
    assert r.headers["Content-Disposition"] == 'attachment; filename="mutex"'
    top = run([GO119, "tool", "pprof", "-top", p])
    assert top.returncode == 0, top.stderr.decode()
    names = top_functions(top.stdout.decode())
    assert "zn_mutex_unlock" in names and "zn_pprof_sym_lookup" in names, names
    text = requests.get(contended.url + PPROF + "mutex?debug=1", timeout=30).text
    assert text.startswith("--- mutex:\ncycles/second=1000000000\nsampling period=1\n"), text[:200]
    assert "zn_pprof_sym_lookup" in text


def test_block_profile_names_waiters(contended, tmp_path):
    _, p = fetch_profile(contended.url, "block", tmp_path, "block.pb")
    top = run([GO119, "tool", "pprof", "-top", "-sample_index=delay", p])
    assert top.returncode == 0, top.stderr.decode()
    names = top_functions(top.stdout.decode())
    assert "zn_mutex_lock" in names and "zn_pprof_sym_lookup" in names, names
    text = requests.get(contended.url + PPROF + "block?debug=1", timeout=30).text
    assert text.startswith("--- contention:\ncycles/second=1000000000\n"), text[:200]


def test_lock_profiles_delta_and_errors(contended, tmp_path):
    r, p = fetch_profile(contended.url, "block?seconds=1", tmp_path, "block-delta.pb")
    assert r.headers["Content-Disposition"] == 'attachment; filename="block-delta"'
    assert run([GO119, "tool", "pprof", "-top", p]).returncode == 0
    r = requests.get(contended.url + PPROF + "mutex?seconds=1&debug=1", timeout=30)
    assert r.status_code == 400 and r.text == "seconds and debug params are incompatible\n"
