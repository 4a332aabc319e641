"""/v2/_zot/pprof/* read by the real Go tools.

Every profile is fetched from a running zinc and handed to `go tool pprof` (-top, -traces,
-png, -raw, and -http whose flame graph page is fetched); stderr must hold nothing but the
tool's own progress lines. Headers and error answers are checked against net/http/pprof's.
"""
import gzip
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import SLOW, free_port

GO = shutil.which("go") or "/usr/bin/go"
# the pprof binary itself, so that -http runs as our child and is stopped by its own PID
PPROF_BIN = os.path.join(subprocess.run([GO, "env", "GOTOOLDIR"], capture_output=True, text=True).stdout.strip(),
                         "pprof")
WRK = shutil.which("wrk")
PREFIX = "/v2/_zot/pprof/"
WORKERS = 3
# lines go tool pprof prints on stderr that are progress, not trouble
BENIGN = ("Generating report in ", "Serving web UI on ")
SNAPSHOT_PROFILES = ["heap", "allocs", "goroutine", "threadcreate"]


@pytest.fixture
def server(zinc_factory):
    return zinc_factory({"http": {"workers": WORKERS}})


@pytest.fixture(scope="module")
def gohome():
    d = tempfile.mkdtemp(prefix="zinc-gohome-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def get(server, name, **kw):
    return requests.get(server.url + PREFIX + name, timeout=120 * SLOW, **kw)


def go_env(home):
    env = dict(os.environ)
    env.update(HOME=home, PPROF_TMPDIR=home, GOCACHE=os.path.join(home, "cache"), GOFLAGS="")
    return env


def pprof(home, args, path):
    """Runs go tool pprof; returns stdout after checking the exit code and stderr."""
    p = subprocess.run([GO, "tool", "pprof"] + args + [path], capture_output=True, text=True, env=go_env(home),
                       timeout=120)
    assert p.returncode == 0, "pprof %s failed: %s" % (args, p.stderr)
    noise = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith(BENIGN)]
    assert not noise, "pprof %s wrote to stderr: %s" % (args, noise)
    return p.stdout


def save(tmp_path, name, body):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(body)
    return path


def check_binary_headers(r, filename):
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == 'attachment; filename="%s"' % filename
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.content[:2] == b"\x1f\x8b", "not gzip"
    gzip.decompress(r.content)


def check_error(r, status, message):
    assert r.status_code == status
    assert r.text == message + "\n"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["X-Go-Pprof"] == "1"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def check_with_tools(home, tmp_path, path):
    """-top, -traces, -png and -raw accept the file; returns (-top -lines output, -raw output)."""
    top = pprof(home, ["-top", "-lines"], path)
    pprof(home, ["-traces"], path)
    png = str(tmp_path / (os.path.basename(path) + ".png"))
    pprof(home, ["-png", "-output", png], path)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    raw = pprof(home, ["-raw"], path)
    # every mapping that holds locations was symbolized by zinc (so pprof does not try again),
    # and zinc's own with files and lines
    locs, maps = raw.split("Locations", 1)[1].split("Mappings", 1)
    used = set(re.findall(r" M=(\d+) ", locs))
    mapping = dict(re.findall(r"^(\d+): (.*)$", maps, re.M))
    for m in used:
        assert "[FN]" in mapping[m], maps
        if mapping[m].split()[1].endswith("/zinc"):
            assert re.search(r" [0-9a-f]{16,} \[FN\]\[FL\]\[LN\]", mapping[m]), maps
    assert mapping["1"].split()[1].endswith("/zinc"), maps
    return top, raw


def flamegraph(home, path):
    """go tool pprof -http serves the flame graph page for path; the process is ours, killed by PID."""
    port = free_port()
    proc = subprocess.Popen([PPROF_BIN, "-http=127.0.0.1:%d" % port, "-no_browser", path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=go_env(home))
    try:
        deadline = time.time() + 30
        while True:
            try:
                r = requests.get("http://127.0.0.1:%d/ui/flamegraph" % port, timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.time() < deadline, "pprof -http did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        assert "flame" in r.text.lower()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=10)[0].decode()
    noise = [l for l in out.splitlines() if l.strip() and not l.startswith(BENIGN)]
    assert not noise, noise


class Load:
    """Keeps zinc's workers busy: wrk on GET /v2/ (or a Python loop when wrk is missing)."""

    def __init__(self, server, seconds):
        self.proc = None
        self.stop_flag = threading.Event()
        url = server.url + "/v2/"
        if WRK:
            self.proc = subprocess.Popen([WRK, "-t1", "-c4", "-d%ds" % seconds, url], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        else:
            self.thread = threading.Thread(target=self.loop, args=(url, seconds), daemon=True)
            self.thread.start()

    def loop(self, url, seconds):
        s = requests.Session()
        end = time.time() + seconds
        while time.time() < end and not self.stop_flag.is_set():
            s.get(url, timeout=5)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        else:
            self.stop_flag.set()
            self.thread.join(timeout=10)


# ---- index, redirect, unknown names ----------------------------------------------------------


def test_index_lists_profiles_with_counts(server):
    r = requests.get(server.url + "/v2/_zot/pprof", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == PREFIX
    assert r.headers["X-Content-Type-Options"] == "nosniff"

    r = get(server, "")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    rows = re.findall(r"<tr><td>(\d+)</td><td><a href='([a-z]+)\?debug=1'>([a-z]+)</a></td></tr>", r.text)
    names = [name for _, _, name in rows]
    assert names == sorted(names)
    for name in ["allocs", "cmdline", "goroutine", "heap", "profile", "threadcreate"]:
        assert name in names
    counts = {name: int(count) for count, _, name in rows}
    assert counts["goroutine"] >= WORKERS + 1  # workers and main
    assert counts["threadcreate"] >= WORKERS
    assert 'href="goroutine?debug=2"' in r.text
    assert "symbol" not in names


def test_unknown_profile(server):
    index = get(server, "").text
    for name in ["nope", "trace", "mutex", "block"]:
        if "'%s?debug=1'" % name in index:
            continue  # implemented by now: its own tests cover it
        check_error(get(server, name), 404, "Unknown profile")


def test_cmdline(server):
    r = get(server, "cmdline")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.content.split(b"\0") == [os.fsencode(a) for a in server.proc.args]


def test_symbol(server):
    r = get(server, "symbol")
    assert r.status_code == 200 and r.text == "num_symbols: 1\n"
    # an address zinc knows, taken from its own goroutine dump
    text = get(server, "goroutine", params={"debug": "1"}).text
    m = re.search(r"#\t(0x[0-9a-f]+)\tworker_main\+", text)
    assert m, text
    addr = m.group(1)
    r = requests.get(server.url + PREFIX + "symbol?" + addr + "+0x1", timeout=10)
    assert r.text == "num_symbols: 1\n%s worker_main\n" % addr
    r = requests.post(server.url + PREFIX + "symbol", data=addr, timeout=10)
    assert r.text == "num_symbols: 1\n%s worker_main\n" % addr


# ---- CPU ----------------------------------------------------------------------------------------


def test_cpu_profile_under_load(server, gohome, tmp_path):
    load = Load(server, 5)
    try:
        r = get(server, "profile", params={"seconds": "3"})
    finally:
        load.stop()
    check_binary_headers(r, "profile")
    path = save(tmp_path, "cpu.pb.gz", r.content)
    top, raw = check_with_tools(gohome, tmp_path, path)
    assert "Type: cpu" in top
    assert re.search(r"Duration: 3\.\d+s|Duration: 3s", top), top
    # zinc's own functions, with the file and line they are at
    assert re.search(r"\bon_req \S*server/http\.c:\d+", top), top
    tags = pprof(gohome, ["-tags"], path)
    assert re.search(r"worker-\d", tags), tags
    assert "route:" in tags and "base" in tags, tags
    # -tagfocus selects the requests of one route
    traces = pprof(gohome, ["-traces", "-tagfocus", "route=base"], path)
    blocks = [b for b in traces.split("-----------+") if "ms " in b or "s " in b][1:]
    assert blocks, traces
    assert all("route:  base" in b for b in blocks), traces
    flamegraph(gohome, path)


def test_cpu_profile_one_at_a_time(server):
    out = {}

    def first():
        out["r"] = get(server, "profile", params={"seconds": "2"})

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.5)
    check_error(get(server, "profile", params={"seconds": "1"}), 500,
                "Could not enable CPU profiling: cpu profiling already in use")
    t.join()
    check_binary_headers(out["r"], "profile")
    # and once it is over, the next one may start
    check_binary_headers(get(server, "profile", params={"seconds": "1"}), "profile")


def test_cpu_profile_client_gone_frees_the_profiler(server):
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + PREFIX + "profile?seconds=30", timeout=0.5)
    # the abandoned request stopped its profile: a new one can start at once
    deadline = time.time() + 5
    while True:
        r = get(server, "profile", params={"seconds": "1"})
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    check_binary_headers(r, "profile")


# ---- snapshot profiles ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SNAPSHOT_PROFILES)
def test_snapshot_profile_with_tools(server, gohome, tmp_path, name):
    r = get(server, name)
    check_binary_headers(r, name)
    path = save(tmp_path, name + ".pb.gz", r.content)
    check_with_tools(gohome, tmp_path, path)
    flamegraph(gohome, path)


@pytest.mark.parametrize("name", SNAPSHOT_PROFILES)
def test_delta_profile(server, gohome, tmp_path, name):
    t0 = time.time()
    r = get(server, name, params={"seconds": "1"})
    assert time.time() - t0 >= 1.0
    check_binary_headers(r, name + "-delta")
    path = save(tmp_path, name + "-delta.pb.gz", r.content)
    pprof(gohome, ["-top"], path)
    pprof(gohome, ["-traces"], path)


def test_delta_errors(server):
    msg = 'invalid value for "seconds" - must be a positive integer'
    for bad in ["abc", "0", "-3", "1.5", "99999999999999999999"]:
        check_error(get(server, "heap", params={"seconds": bad}), 400, msg)
    check_error(get(server, "heap", params={"seconds": "1", "debug": "1"}), 400,
                "seconds and debug params are incompatible")


def test_goroutine_lists_every_thread(server, gohome, tmp_path):
    text = get(server, "goroutine", params={"debug": "2"}).text
    heads = re.findall(r"^goroutine (\d+) \[([^,\]]+), ([^\]]+)\]:$", text, re.M)
    names = [n for _, n, _ in heads]
    for i in range(WORKERS):
        assert "worker-%d" % i in names, text
    assert "main" in names
    states = dict((n, s) for _, n, s in heads)
    assert states["main"] == "signal wait"  # sigwait() for SIGTERM
    assert "worker_main()" in text and re.search(r"\tserver/server\.c:\d+ \+0x[0-9a-f]+$|server\.c:\d+ \+0x", text)

    text = get(server, "goroutine", params={"debug": "1"}).text
    m = re.match(r"goroutine profile: total (\d+)\n", text)
    assert m and int(m.group(1)) == len(heads), text
    assert re.search(r"^\d+ @( 0x[0-9a-f]+)+$", text, re.M)
    assert re.search(r"^#\t0x[0-9a-f]+\tworker_main\+0x[0-9a-f]+\t\S+server\.c:\d+$", text, re.M), text

    path = save(tmp_path, "g.pb.gz", get(server, "goroutine").content)
    tags = pprof(gohome, ["-tags"], path)
    for i in range(WORKERS):
        assert "worker-%d" % i in tags


def test_threadcreate_text(server):
    r = get(server, "threadcreate", params={"debug": "1"})
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    m = re.match(r"threadcreate profile: total (\d+)\n", r.text)
    assert m and int(m.group(1)) >= WORKERS, r.text
    assert "zn_server_run+" in r.text


def test_heap_text(server):
    r = get(server, "heap", params={"debug": "1", "gc": "1"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert re.match(r"heap profile: \d+: \d+ \[\d+: \d+\] @ heap/1048576\n", r.text), r.text[:200]
    assert "# mallinfo2" in r.text and "# SampleRate = 524288" in r.text
