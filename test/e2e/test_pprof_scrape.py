"""Continuous profilers scraping zinc's debug listener, as their documented configs do.

Debian 12 packages no Pyroscope, Grafana Alloy or Parca (apt-cache search finds none), so the
scrapes are made here exactly as those scrapers make them: Alloy's `pyroscope.scrape` default
`profiling_config` (process_cpu = /debug/pprof/profile?seconds=<scrape_interval - 1>, memory =
/debug/pprof/allocs, block, mutex, goroutine, godeltaprof_memory = /debug/pprof/delta_heap,
godeltaprof_mutex, godeltaprof_block) and Parca's default `pprof_config` (allocs, block,
goroutine, mutex, profile?seconds=N), plain GETs on the listener. Every answer goes through
`go tool pprof -raw`, which must accept it, and the samples' labels are checked: `thread`
everywhere, `route` where the sample was taken inside a request.

delta_heap: counters are cumulative and per-block estimates only grow, so for
allocs(A) <= delta#1 (= cumulative, first scrape) and delta#1 + delta#2 (= cumulative at the
second scrape) <= allocs(B) taken afterwards, and the other prefix's first delta is again
cumulative. Exact deltas of a known workload are checked in test/unit/pprof/test_heap_accuracy.c.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import SANITIZE, SLOW, free_port
from oci_util import Registry
from test_auth import bcrypt_line, write_htpasswd

GO = shutil.which("go") or "/usr/bin/go"
SCRAPE_INTERVAL = 3  # seconds; Alloy asks for interval - 1 of CPU

HEAP_TYPES = ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"]
LOCK_TYPES = ["contentions/count", "delay/nanoseconds"]
PYROSCOPE = [
    ("profile", {"seconds": str(SCRAPE_INTERVAL - 1)}, ["samples/count", "cpu/nanoseconds"]),
    ("allocs", {}, HEAP_TYPES),
    ("block", {}, LOCK_TYPES),
    ("mutex", {}, LOCK_TYPES),
    ("goroutine", {}, ["goroutine/count"]),
    ("delta_heap", {}, HEAP_TYPES),
    ("delta_mutex", {}, LOCK_TYPES),
    ("delta_block", {}, LOCK_TYPES),
]
PARCA = [
    ("allocs", {}, HEAP_TYPES),
    ("block", {}, LOCK_TYPES),
    ("goroutine", {}, ["goroutine/count"]),
    ("mutex", {}, LOCK_TYPES),
    ("profile", {"seconds": str(SCRAPE_INTERVAL - 1)}, ["samples/count", "cpu/nanoseconds"]),
]


@pytest.fixture(scope="module")
def gohome():
    d = tempfile.mkdtemp(prefix="zinc-gohome-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(zinc_factory):
    s = zinc_factory({"http": {"workers": 2}, "zinc": {"profiling": {"debugAddress": ":%d" % free_port()}}}, start=False)
    s.debug_url = "http://127.0.0.1:%d" % int(s.config["zinc"]["profiling"]["debugAddress"][1:])
    return s.start()


def raw(gohome, body):
    """`go tool pprof -raw` of body: (sample types, [(values, {label: value})])."""
    fd, path = tempfile.mkstemp(dir=gohome, suffix=".pb.gz")
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    env = dict(os.environ, HOME=gohome, PPROF_TMPDIR=gohome, GOCACHE=os.path.join(gohome, "cache"), GOFLAGS="")
    p = subprocess.run([GO, "tool", "pprof", "-raw", path], capture_output=True, text=True, env=env, timeout=120)
    os.unlink(path)
    assert p.returncode == 0, p.stderr
    assert not p.stderr.strip(), p.stderr
    lines = p.stdout.splitlines()
    i = lines.index("Samples:") + 1
    types = [t.replace("[dflt]", "") for t in lines[i].split()]
    samples = []
    for line in lines[i + 1:]:
        if not line.startswith(" "):
            break
        if ":[" in line:  # the labels of the previous sample: "key:[value] key:[value]"
            for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                samples[-1][1][k] = v
        else:
            samples.append(([int(v) for v in line.split(":")[0].split()], {}))
    return types, samples


def scrape(url, name, params, user_agent):
    r = requests.get(url + "/debug/pprof/" + name, params=params, headers={"User-Agent": user_agent},
                     timeout=60 * SLOW)
    assert r.status_code == 200, (name, r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.content[:2] == b"\x1f\x8b"
    return r.content


@pytest.mark.parametrize("scraper,jobs", [("Alloy/v1.5.0", PYROSCOPE), ("Parca/v0.22.0", PARCA)])
def test_scrapes_as_configured(server, gohome, scraper, jobs):
    for name, params, want_types in jobs:
        types, samples = raw(gohome, scrape(server.debug_url, name, params, scraper))
        assert types == want_types, name
        for values, labels in samples:
            assert "thread" in labels, (name, labels)
        if name == "goroutine":
            # the worker answering was inside the request when it took its own stack
            assert any(l.get("route") == "pprof" for _, l in samples), samples


def total(samples, k):
    return sum(v[k] for v, _ in samples)


@pytest.mark.skipif(SANITIZE, reason="heap sampling is compiled out of sanitizer builds (no samples to compare)")
def test_delta_heap_between_scrapes(server, gohome):
    reg = Registry(server.url)
    for _ in range(4):  # 3 MiB bodies buffered in memory: sampled with probability 1 - exp(-6) each
        reg.push_blob("library/app", os.urandom(3 << 20))
    base = server.debug_url
    _, a = raw(gohome, scrape(base, "allocs", {}, "Alloy"))
    _, d1 = raw(gohome, scrape(base, "delta_heap", {}, "Alloy"))
    _, d2 = raw(gohome, scrape(base, "delta_heap", {}, "Alloy"))
    _, b = raw(gohome, scrape(base, "allocs", {}, "Alloy"))
    r = requests.get(server.url + "/v2/_zot/pprof/delta_heap", timeout=60 * SLOW)
    assert r.status_code == 200
    _, z1 = raw(gohome, r.content)
    assert total(a, 1) > 0
    assert total(d1, 1) >= total(a, 1)  # the first scrape is cumulative
    assert total(d1, 1) + total(d2, 1) <= total(b, 1)  # the second one only what came after it
    assert total(z1, 1) >= total(d1, 1) + total(d2, 1)  # the other prefix keeps its own previous scrape
    for _, labels in d2:
        assert "bytes" not in labels  # numeric labels dropped so samples match their previous selves


def test_heap_gc_param(server, gohome):
    for url in (server.debug_url + "/debug/pprof/", server.url + "/v2/_zot/pprof/"):
        for name, gc in [("heap", "1"), ("heap", "0"), ("heap", "x"), ("allocs", "1"), ("delta_heap", "1")]:
            r = requests.get(url + name, params={"gc": gc}, timeout=60 * SLOW)
            assert r.status_code == 200, (url, name, gc, r.text)
            types, _ = raw(gohome, r.content)
            assert types == HEAP_TYPES


def test_debug_listener_isolated(zinc_factory, tmp_path):
    """Only /debug/pprof/ on the debug port, which never asks for credentials; the main port
    neither serves /debug/pprof/ nor lets anonymous clients at /v2/_zot/pprof/ under auth."""
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line("admin", "pw")])
    port = free_port()
    s = zinc_factory({"http": {"auth": {"htpasswd": {"path": path}}},
                      "zinc": {"profiling": {"debugAddress": "127.0.0.1:%d" % port}}})
    debug = "http://127.0.0.1:%d" % port
    assert requests.get(debug + "/debug/pprof/heap", timeout=30 * SLOW).status_code == 200
    r = requests.get(debug + "/debug/pprof", allow_redirects=False, timeout=30 * SLOW)
    assert r.status_code == 301 and r.headers["Location"] == "/debug/pprof/"
    index = requests.get(debug + "/debug/pprof/", timeout=30 * SLOW).text
    assert "<title>/debug/pprof/</title>" in index and "href='heap?debug=1'" in index
    assert requests.get(debug + "/v2/", timeout=30 * SLOW).status_code == 404
    assert requests.get(debug + "/v2/_zot/pprof/heap", timeout=30 * SLOW).status_code == 404
    assert requests.get(s.url + "/debug/pprof/heap", auth=("admin", "pw"), timeout=30 * SLOW).status_code == 404
    assert requests.get(s.url + "/v2/_zot/pprof/heap", timeout=30 * SLOW).status_code == 401
    assert requests.get(s.url + "/v2/_zot/pprof/delta_heap", auth=("admin", "pw"), timeout=30 * SLOW).status_code == 200
