"""/v2/_zot/pprof/* read by the real Go tools.

Every profile is fetched from a running zinc and handed to `go tool pprof` (-top, -traces,
-png, -raw, and -http whose flame graph page is fetched); stderr must hold nothing but the
tool's own progress lines. Headers and error answers are checked against net/http/pprof's.
"""
import gzip
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import SANITIZE, SLOW, free_port

GO = shutil.which("go") or "/usr/bin/go"
# the pprof binary itself, so that -http runs as our child and is stopped by its own PID
PPROF_BIN = os.path.join(subprocess.run([GO, "env", "GOTOOLDIR"], capture_output=True, text=True).stdout.strip(),
                         "pprof")
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


class PushPull:
    """Keeps zinc busy the way a registry is: threads pushing 1 MiB blobs (POST + PUT with the
    digest) and pulling them back, until stopped."""

    def __init__(self, server, threads=2):
        self.url = server.url
        self.stop_flag = threading.Event()
        self.count = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.loop, args=(n,), daemon=True) for n in range(threads)]
        for t in self.threads:
            t.start()

    def loop(self, n):
        s = requests.Session()
        try:
            while not self.stop_flag.is_set():
                body = os.urandom(1 << 20)
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                r = s.post("%s/v2/load%d/blobs/uploads/" % (self.url, n), timeout=30)
                assert r.status_code == 202, r.text
                loc = r.headers["Location"]
                loc = (self.url + loc if loc.startswith("/") else loc) + ("&" if "?" in loc else "?")
                r = s.put(loc + "digest=" + digest, data=body, timeout=30,
                          headers={"Content-Type": "application/octet-stream"})
                assert r.status_code == 201, r.text
                r = s.get("%s/v2/load%d/blobs/%s" % (self.url, n, digest), timeout=30)
                assert r.status_code == 200 and r.content == body
                self.count += 1
        except Exception as e:  # reported by stop()
            self.errors.append(e)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not self.errors, self.errors
        assert self.count > 0


def pb_fields(buf):
    """(field number, wire type, value) of a protobuf message; value is bytes for wire type 2."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield field, wt, v


def varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def sample_totals(gz):
    """Sum of each sample type over all samples of a gzip'd profile.proto."""
    totals = None
    for field, wt, v in pb_fields(gzip.decompress(gz)):
        if field != 2:
            continue
        values = []
        for f, w, x in pb_fields(v):
            if f == 2 and w == 2:  # packed
                j = 0
                while j < len(x):
                    n, j = varint(x, j)
                    values.append(n - (1 << 64) if n >= 1 << 63 else n)
            elif f == 2:
                values.append(x - (1 << 64) if x >= 1 << 63 else x)
        totals = values if totals is None else [a + b for a, b in zip(totals, values)]
    return totals or []


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


def test_cpu_profile_under_push_pull(server, gohome, tmp_path):
    load = PushPull(server)
    try:
        r = get(server, "profile", params={"seconds": "4"})
    finally:
        load.stop()
    check_binary_headers(r, "profile")
    path = save(tmp_path, "cpu.pb.gz", r.content)
    top, raw = check_with_tools(gohome, tmp_path, path)
    assert "Type: cpu" in top
    assert re.search(r"Duration: 4(\.\d+)?s", top), top
    # what a registry does under push/pull is hashing and copying: it is on top
    flat = [l.split()[-2] if l.split()[-1] == "(inline)" else l.split()[-1]
            for l in pprof(gohome, ["-top", "-nodecount=8"], path).splitlines()[6:] if l.strip()]
    assert any(re.search(r"SHA256|sha256|libcrypto|memmove|memcpy|pwrite|pread|writev|read|sendfile", f)
               for f in flat), flat
    # zinc's own functions, with the file and line they are at
    # every node (no count or fraction cut): under ASan and load the allocator's and h2o's frames
    # alone can fill a top 60, pushing the storage write below the cut
    cum = pprof(gohome, ["-top", "-cum", "-lines", "-nodecount=100000", "-nodefraction=0"], path)
    # a batch of 128 KiB or more is written by zn_storage_upload_piece_data (its hash runs on a
    # second pool thread); a smaller one by zn_storage_upload_write: 1 MiB bodies take the first
    assert re.search(r"zn_storage_upload_(write|piece_data) \S*storage/uploads\.c:\d+", cum), cum
    # bodies are hashed and written on the upload pool (api/body.c), not on a worker
    assert re.search(r"run_(write|data) \S*api/body\.c:\d+", cum), cum
    tags = pprof(gohome, ["-tags"], path)
    assert re.search(r"worker-\d", tags), tags
    assert re.search(r"upload-\d", tags), tags
    assert "upload_put" in tags, tags  # where the time goes; cheaper routes may draw no sample
    # -tagfocus selects the requests of one route
    traces = pprof(gohome, ["-traces", "-tagfocus", "route=upload_put"], path)
    blocks = [b for b in traces.split("-----------+")[1:] if b.strip("-\n ")]  # pprof ends with a rule
    assert blocks, traces
    assert all("route:  upload_put" in b for b in blocks), traces
    assert re.search(r"zn_storage_upload_(write|piece_data)", traces), traces
    flamegraph(gohome, path)


def test_cpu_profile_one_at_a_time(server):
    # A profile is answered only at its end, so nothing tells this client when the first one
    # runs: a second request is sent until it is refused. One that reached a worker before
    # the first is itself the running profile (its 200 comes a second later) and the first,
    # if it arrived meanwhile, was the refused one: then the first is sent again.
    def start_first():
        out = {}
        t = threading.Thread(target=lambda: out.update(r=get(server, "profile", params={"seconds": "2"})))
        t.start()
        return t, out

    t, out = start_first()
    deadline = time.time() + 60 * SLOW
    while True:
        r = get(server, "profile", params={"seconds": "1"})
        if r.status_code != 200:
            break
        check_binary_headers(r, "profile")
        assert time.time() < deadline, "the two profiles never overlapped"
        if not t.is_alive():
            t, out = start_first()
    # refused while the first ran, the only other profile request there is
    check_error(r, 500, "Could not enable CPU profiling: cpu profiling already in use")
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
    # the startup "dedupe-index" thread exits on its own; until it is gone two listings may
    # differ by it (listed "dead", then not at all), so wait for that event first
    deadline = time.time() + 30 * SLOW
    while True:
        text = get(server, "goroutine", params={"debug": "2"}).text
        heads = re.findall(r"^goroutine (\d+) \[([^,\]]+), ([^\]]+)\]:$", text, re.M)
        if all(n != "dedupe-index" for _, n, _ in heads) or time.time() > deadline:
            break
        time.sleep(0.05)
    names = [n for _, n, _ in heads]
    for i in range(WORKERS):
        assert "worker-%d" % i in names, text
    assert "main" in names
    states = dict((n, s) for _, n, s in heads)
    assert states["main"] == "signal wait"  # sigwait() for SIGTERM
    # as Go lists only live goroutines: a thread that returned (dedupe-index) is gone
    assert "dead" not in states.values(), text
    assert "worker_main()" in text and re.search(r"\tserver/server\.c:\d+ \+0x[0-9a-f]+$|server\.c:\d+ \+0x", text)

    text = get(server, "goroutine", params={"debug": "1"}).text
    m = re.match(r"goroutine profile: total (\d+)\n", text)
    # the total is what this very answer lists; threads may come and go between two requests
    counts = [int(c) for c in re.findall(r"^(\d+) @(?: 0x[0-9a-f]+)+$", text, re.M)]
    assert m and int(m.group(1)) == sum(counts) and sum(counts) >= WORKERS + 1, text
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


def malloc_in_use(server):
    """Bytes glibc has handed out (mallinfo2 uordblks + hblkhd), from the heap text's trailer."""
    text = get(server, "heap", params={"debug": "1"}).text
    v = dict(re.findall(r"^# (\w+) = (\d+)$", text, re.M))
    return int(v["Uordblks"]) + int(v["Hblkhd"])


@pytest.mark.skipif(SANITIZE, reason="sanitizer builds have no heap sampling")
def test_heap_estimates_retained_request_bodies(server, gohome, tmp_path):
    """Clients that send most of a request body and stall make libh2o hold the body in memory
    (below the 4 MiB file-buffer threshold). The sampled in-use estimate of that growth must be
    within 20% of what glibc says it handed out."""
    K, SENT, LENGTH = 24, 3 << 19, 2 << 20
    get(server, "heap")  # the symbolizer loads its tables once; not part of the measurement
    m0 = malloc_in_use(server)
    # a fresh server may not have crossed a sampling point yet: no samples means 0 in use
    e0 = (sample_totals(get(server, "heap").content) or [0, 0, 0, 0])[3]
    socks = []
    try:
        for i in range(K):
            s = socket.create_connection(("127.0.0.1", server.port))
            # a manifest PUT: h2o buffers it (upload routes stream their bodies to the pool instead)
            s.sendall(b"PUT /v2/slow/manifests/t%d HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: %d\r\n\r\n" % (i, LENGTH))
            s.sendall(b"\0" * SENT)
            socks.append(s)
        # the profile must see the same heap glibc reports: under load the workers are still
        # reading the bodies for a while, so take it between two glibc readings that agree
        # (all bodies in), not at the first reading past K * SENT
        deadline = time.time() + 30 * SLOW
        while True:
            ma = malloc_in_use(server)
            r = get(server, "heap")
            m1 = malloc_in_use(server)
            if m1 - m0 >= K * SENT and abs(m1 - ma) <= 0.01 * (m1 - m0):
                break
            assert time.time() < deadline, "the bodies never settled: %d then %d over %d" % (ma - m0, m1 - m0, m0)
            time.sleep(0.1)
        e1 = (sample_totals(r.content) or [0, 0, 0, 0])[3]
        path = save(tmp_path, "heap.pb.gz", r.content)
    finally:
        for s in socks:
            s.close()
    exact, estimate = m1 - m0, e1 - e0
    print("retained: glibc %d bytes, heap profile estimate %d (m0 %d m1 %d e0 %d e1 %d)" % (exact, estimate, m0, m1, e0, e1))
    assert exact >= K * SENT, (exact, K * SENT)
    assert abs(estimate - exact) <= 0.2 * exact, "estimated %d, glibc says %d" % (estimate, exact)
    # attributed to the allocation inside libh2o that holds request bodies
    cum = pprof(gohome, ["-top", "-cum", "-sample_index=inuse_space"], path)
    assert "h2o_buffer_reserve" in cum, cum


def test_heap_without_sampling_says_why(zinc_factory, gohome, tmp_path):
    server = zinc_factory({"zinc": {"profiling": {"heap": False}}})
    text = get(server, "heap", params={"debug": "1"}).text
    why = "heap sampling is not built in" if SANITIZE else "heap sampling is off (zinc.profiling.heap = false)"
    assert why in text, text
    r = get(server, "heap")
    check_binary_headers(r, "heap")
    assert sample_totals(r.content) == []
    path = save(tmp_path, "heap.pb.gz", r.content)
    assert why in pprof(gohome, ["-comments"], path)
    pprof(gohome, ["-top"], path)
