"""The S3 driver under faults (issue 14 point 2), with test/s3/s3proxy.py between zinc's
storageDriver.regionendpoint and RGW:

  - S3 never blocks an event loop: with one worker, while S3 holds a blob GET and a manifest
    PUT, requests that need no storage are answered; released, the held ones complete.
  - throttling: fewer 503 SlowDown answers than the driver's attempts (storage/s3.h
    S3_ATTEMPTS, 4) are absorbed; more end in 503 TOOMANYREQUESTS with Retry-After after
    exactly that many attempts (one when S3's Retry-After is past the 2 s the driver waits),
    and nothing is half-stored.
  - a client gone mid-GET of a blob streamed from S3 leaves no descriptor behind.
  - SIGTERM while a request is stalled at S3: zinc exits 0, waiting for S3 at most until
    the grace period ends (requests still held then are aborted).

Skipped unless run under test/s3/rgw.py (ctest's e2e_s3_test_s3_faults entry does)."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import REPO, S3_ENV, SLOW
from oci_util import OCI_MANIFEST, Registry, canon, digest, error_code, in_thread

sys.path.insert(0, os.path.join(REPO, "test", "s3"))
from s3proxy import S3Proxy  # noqa: E402

S3_ATTEMPTS = 4  # storage/s3.h: one try and three retries
DEADLINE = 60 * SLOW  # guards against hangs only; every wait ends on an event


@pytest.fixture
def proxy():
    if S3_ENV is None:
        pytest.skip("no S3 engine: run under test/s3/rgw.py run --")
    p = S3Proxy(S3_ENV["S3_ENDPOINT"])
    yield p
    p.stop()


@pytest.fixture
def zp(s3_zinc_factory, proxy):
    """zinc with one worker, storing on S3 (a new bucket) through the proxy; returned once
    its start-up S3 traffic (the dedupe index rebuild) is over, so that every S3 request
    the proxy sees afterwards is a test's."""
    z = s3_zinc_factory(endpoint=proxy.url, config_overrides={
        "http": {"workers": 1}, "extensions": {"metrics": {"enable": True}}})
    wait_for("the dedupe index rebuild", log_has(z, "dedupe index rebuilt"))
    return z


def manifest_for(config_d, config_len, layers):
    return canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d,
                             "size": config_len},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n}
                             for d, n in layers]})


def test_loop_not_blocked_by_stalled_s3(zp, proxy):
    reg = Registry(zp.url)
    layer = os.urandom(300 << 10)
    config = canon({"architecture": "amd64", "os": "linux"})
    ld, cd = reg.push_blob("lib/stall", layer), reg.push_blob("lib/stall", config)
    body = manifest_for(cd, len(config), [(ld, len(layer))])

    proxy.hold()
    get_t, get_box = in_thread(lambda: requests.get("%s/v2/lib/stall/blobs/%s" % (zp.url, ld), timeout=DEADLINE))
    proxy.wait_held(1)
    put_t, put_box = in_thread(lambda: requests.put("%s/v2/lib/stall/manifests/v1" % zp.url, data=body,
                                                    headers={"Content-Type": OCI_MANIFEST}, timeout=DEADLINE))
    held = proxy.wait_held(2)
    # the blob read, and the manifest PUT's first S3 request (index.json)
    assert held[0].method == "GET" and held[0].path.endswith(ld.split(":")[1]), held
    assert "/lib/stall/" in held[1].path, held
    # the loop (one worker) answers what needs no storage while both wait on S3
    assert requests.get(zp.url + "/v2/", timeout=DEADLINE).status_code == 200
    assert requests.get(zp.url + "/livez", timeout=DEADLINE).text == "ok"
    m = requests.get(zp.url + "/metrics", timeout=DEADLINE)
    assert m.status_code == 200 and "zot_info" in m.text
    # ... and they were still waiting when those answers came
    assert proxy.held_now() == held and get_t.is_alive() and put_t.is_alive()
    proxy.release()
    get_t.join(DEADLINE)
    put_t.join(DEADLINE)
    assert not get_t.is_alive() and not put_t.is_alive()
    g, p = get_box.get("result"), put_box.get("result")
    assert g is not None and p is not None, (get_box, put_box)
    assert g.status_code == 200 and g.content == layer
    assert p.status_code == 201, p.text
    assert reg.get("/v2/lib/stall/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body


def push_one(reg, repo, size=300 << 10):
    layer = os.urandom(size)
    config = canon({"architecture": "amd64", "os": "linux"})
    ld, cd = reg.push_blob(repo, layer), reg.push_blob(repo, config)
    return layer, ld, manifest_for(cd, len(config), [(ld, len(layer))])


def attempt_runs(seen):
    """Lengths of the runs of the same S3 request in a row (one per driver call)."""
    runs = []
    for i, q in enumerate(seen):
        if i > 0 and (q.method, q.path) == (seen[i - 1].method, seen[i - 1].path):
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


def check_busy(r):
    assert r.status_code == 503, (r.status_code, r.text)
    assert error_code(r) == "TOOMANYREQUESTS", r.text
    assert int(r.headers["Retry-After"]) >= 1


def test_throttling_within_retries_is_absorbed(zp, proxy):
    reg = Registry(zp.url)
    layer, ld, body = push_one(reg, "lib/thr")

    mark = proxy.mark()
    proxy.throttle(S3_ATTEMPTS - 1)
    r = reg.get("/v2/lib/thr/blobs/" + ld)
    assert r.status_code == 200 and r.content == layer
    seen = proxy.since(mark)
    assert [q.action for q in seen[:S3_ATTEMPTS]] == ["throttled"] * (S3_ATTEMPTS - 1) + ["forwarded"], seen
    assert len({(q.method, q.path) for q in seen[:S3_ATTEMPTS]}) == 1, seen  # the same request, retried

    mark = proxy.mark()
    proxy.throttle(S3_ATTEMPTS - 1)
    r = reg.put_manifest("lib/thr", "v1", body)
    assert r.status_code == 201, r.text
    assert [q.action for q in proxy.since(mark)].count("throttled") == S3_ATTEMPTS - 1
    assert reg.get("/v2/lib/thr/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body

    # S3's Retry-After within what the driver waits (2 s) is honoured, then retried
    mark = proxy.mark()
    proxy.throttle(1, retry_after=1)
    r = reg.get("/v2/lib/thr/blobs/" + ld)
    assert r.status_code == 200 and r.content == layer
    assert [q.action for q in proxy.since(mark)][:2] == ["throttled", "forwarded"]


def test_throttling_past_retries_is_503_and_bounded(zp, proxy):
    reg = Registry(zp.url)
    layer, ld, body = push_one(reg, "lib/busy")

    # a blob GET: exactly S3_ATTEMPTS tries of its first S3 request, then 503 with Retry-After
    mark = proxy.mark()
    proxy.throttle(1000)
    check_busy(reg.get("/v2/lib/busy/blobs/" + ld))
    seen = proxy.since(mark)
    assert len(seen) == S3_ATTEMPTS and all(q.action == "throttled" for q in seen), seen
    assert len({(q.method, q.path) for q in seen}) == 1, seen

    # the same for a manifest PUT, and nothing of it was stored. S3's Retry-After past the
    # 2 s the driver waits ends each call's retries at once (which keeps this test short)
    mark = proxy.mark()
    proxy.throttle(1000, retry_after=30)
    check_busy(reg.put_manifest("lib/busy", "v1", body))
    seen = proxy.since(mark)
    assert all(q.action == "throttled" for q in seen), seen
    # a few lookups of which some take an error for "look again later", each tried once;
    # the check of the referenced blob ends it
    assert set(attempt_runs(seen)) == {1} and len(seen) <= 4, seen
    assert "/blobs/" in seen[-1].path, seen

    # (and for a blob GET: one attempt)
    mark = proxy.mark()
    check_busy(reg.get("/v2/lib/busy/blobs/" + ld))
    seen = proxy.since(mark)
    assert len(seen) == 1 and seen[0].action == "throttled", seen

    proxy.throttle(0)
    assert reg.get("/v2/lib/busy/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 404
    r = reg.put_manifest("lib/busy", "v1", body)
    assert r.status_code == 201, r.text
    assert reg.get("/v2/lib/busy/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body
    r = reg.get("/v2/lib/busy/blobs/" + ld)
    assert r.status_code == 200 and r.content == layer


def test_throttled_at_each_step_of_a_manifest_put(zp, proxy):
    """S3 throttles from the k-th S3 request of a manifest PUT on, for k = 0, 1, ... until the
    PUT gets through: each refused PUT is a 503 after a bounded number of S3 requests and
    leaves the manifest either wholly stored or absent (by tag and by digest), and the same
    PUT works once S3 is back."""
    reg = Registry(zp.url)
    _, ld, _ = push_one(reg, "lib/steps")
    config = canon({"architecture": "amd64", "os": "linux"})
    cd = digest(config)
    mark = proxy.mark()
    body0 = manifest_for(cd, len(config), [(ld, 300 << 10)])
    assert reg.put_manifest("lib/steps", "base", body0).status_code == 201
    clean = len(proxy.since(mark))  # S3 requests of one PUT that goes through
    k = 0
    while True:
        tag = "t%d" % k
        m = json.loads(manifest_for(cd, len(config), [(ld, 300 << 10)]))
        m["annotations"] = {"step": tag}
        body = canon(m)
        mark = proxy.mark()
        proxy.throttle(1000, retry_after=30, after=k)  # one attempt per call: see above
        r = reg.put_manifest("lib/steps", tag, body)
        proxy.throttle(0)
        seen = proxy.since(mark)
        if r.status_code == 201:
            assert k >= 1
            break
        check_busy(r)
        throttled = [q for q in seen if q.action == "throttled"]
        assert seen[:k] == [q for q in seen if q.action == "forwarded"], seen
        # bounded: a throttled call is not retried past S3's Retry-After, and only a few
        # are made before the PUT gives up
        assert set(attempt_runs(throttled)) == {1} and len(throttled) <= 4, seen
        for ref in (tag, digest(body)):
            g = reg.get("/v2/lib/steps/manifests/" + ref, headers={"Accept": OCI_MANIFEST})
            assert g.status_code in (200, 404), (k, ref, g.status_code, g.text)
            if g.status_code == 200:
                assert g.content == body
        r = reg.put_manifest("lib/steps", tag, body)
        assert r.status_code == 201, (k, r.text)
        assert reg.get("/v2/lib/steps/manifests/" + tag, headers={"Accept": OCI_MANIFEST}).content == body
        k += 1
        assert k <= clean, "a PUT of %d S3 requests still refused after throttling from the %d-th" % (clean, k)
    tags = reg.get("/v2/lib/steps/tags/list").json()["tags"]
    assert sorted(tags) == sorted(["base"] + ["t%d" % i for i in range(k + 1)])


def wait_for(what, fn, timeout=DEADLINE):
    """Polls fn until it returns a true value (the event); the deadline only bounds a hang."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def client_sockets(port):
    """zinc's sockets of client connections (local port `port`) still open: ESTABLISHED or
    CLOSE_WAIT (a socket in those states has a descriptor)."""
    return sum(1 for local, _, st in tcp_rows().values() if local == port and st in ("01", "08"))


def tcp_rows():
    """socket:[inode] -> (local port, remote port, state) of every TCP socket listed."""
    rows = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            rows["socket:[%s]" % cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16),
                                             cols[3])
    return rows


def unnamed_unix_sockets():
    """socket:[inode] of every connected AF_UNIX socket with no path: zinc makes none itself,
    but libcurl gives each easy handle of the S3 client's pool a wakeup socketpair (the
    multi handle curl_easy_perform keeps inside it)."""
    out = set()
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if len(cols) == 7 and cols[5] == "03":  # no path, SS_CONNECTED
                out.add("socket:[%s]" % cols[6])
    return out


def own_fd_table(pid, s3_port):
    """zinc's descriptors (fd -> what it points at) but those of the S3 client's pooled
    handles: each keeps an idle keep-alive connection to S3 (the proxy's port) and libcurl's
    wakeup socketpair, and how many handles there are depends on how many S3 requests once
    overlapped (one more when a read of the last GET was still in flight as the next
    began), which is no leak. A client connection, blob handle or file is never one of those."""
    rows = tcp_rows()
    curl_pairs = unnamed_unix_sockets()
    table = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        row = rows.get(target)
        if (row is not None and row[1] == s3_port) or target in curl_pairs:
            continue
        table[int(fd)] = target if row is None else "%s local %d remote %d state %s" % ((target,) + row)
    return table


def back_to(pid, port, s3_port, base):
    """No client socket left and no more of zinc's own descriptors than in base (a table
    of own_fd_table): a leaked client socket (CLOSE_WAIT), blob handle or file only ever
    adds. Waited for with wait_fds, which names the extra descriptors if they stay."""
    return lambda: client_sockets(port) == 0 and len(own_fd_table(pid, s3_port)) <= len(base)


def wait_fds(pid, port, s3_port, base):
    try:
        wait_for("descriptors back to %d" % len(base), back_to(pid, port, s3_port, base))
    except AssertionError as e:
        now = own_fd_table(pid, s3_port)
        extra = {fd: t for fd, t in now.items() if base.get(fd) != t}
        try:  # every socket of zinc's, with its kind and state (ss names unix sockets too)
            ss = subprocess.run(["ss", "-a", "-e", "-p"], capture_output=True, text=True, timeout=30).stdout
            ss = "\n".join(l for l in ss.splitlines() if "pid=%d," % pid in l)
        except (OSError, subprocess.SubprocessError) as se:
            ss = "(ss: %s)" % se
        raise AssertionError("%s: %d client sockets; new or changed descriptors %r; base %r; zinc's sockets:\n%s" %
                             (e, client_sockets(port), extra, base, ss)) from None


def get_request(z, path):
    s = socket.create_connection(("127.0.0.1", z.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, z.hostport)).encode())
    return s


def test_client_gone_mid_get_leaves_no_descriptor(zp, proxy):
    reg = Registry(zp.url)
    data = os.urandom(6 << 20)
    d = reg.push_blob("lib/gone", data)
    path = "/v2/lib/gone/blobs/" + d
    hexd = d.split(":")[1]
    assert reg.get(path).content == data  # warm: the S3 connections it needs are open
    wait_for("zinc to close the client sockets", lambda: client_sockets(zp.port) == 0)
    pid = zp.proc.pid
    base = own_fd_table(pid, proxy.port)

    # 1. S3 holds a read past the first MiB; the client, having read what came before, goes
    proxy.hold(lambda q: q.method == "GET" and q.path.endswith(hexd) and (q.range_start or 0) >= 1 << 20)
    s = get_request(zp, path)
    got = 0
    # zinc may ask S3 for the next range before the bytes of the first have reached this
    # socket (a loaded machine), so wait for both: the hold, and bytes from before it
    deadline = time.monotonic() + DEADLINE
    while not (proxy.held_now() and got > 0):
        assert time.monotonic() < deadline, "held %s, %d bytes received" % (proxy.held_now(), got)
        r, _, _ = select.select([s], [], [], 0.05)
        if r:
            chunk = s.recv(1 << 16)
            assert chunk, "zinc ended the response early"
            got += len(chunk)
    s.close()
    assert requests.get(zp.url + "/v2/", timeout=DEADLINE).status_code == 200  # still serving meanwhile
    proxy.release()
    wait_fds(pid, zp.port, proxy.port, base)

    # 2. the client stops reading after 512 KiB and resets the connection
    s = get_request(zp, path)
    got = 0
    while got < 512 << 10:
        chunk = s.recv(1 << 16)
        assert chunk
        got += len(chunk)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    s.close()
    wait_fds(pid, zp.port, proxy.port, base)

    r = reg.get(path)
    assert r.status_code == 200 and r.content == data
    assert zp.proc.poll() is None


def log_has(z, message):
    return lambda: any(l.get("message") == message for l in z.log_lines())


def test_sigterm_while_s3_stalled_drains(zp, proxy):
    """A request held at S3 when SIGTERM comes is answered within the grace period once S3
    answers; zinc then exits 0."""
    reg = Registry(zp.url)
    layer, ld, _ = push_one(reg, "lib/term")
    proxy.hold()
    t, box = in_thread(lambda: requests.get("%s/v2/lib/term/blobs/%s" % (zp.url, ld), timeout=DEADLINE))
    proxy.wait_held(1)
    zp.proc.send_signal(signal.SIGTERM)
    wait_for("shutting down", log_has(zp, "shutting down"))
    proxy.release()
    t.join(DEADLINE)
    r = box.get("result")
    assert r is not None and r.status_code == 200 and r.content == layer, box
    assert zp.proc.wait(DEADLINE) == 0
    assert zp.sanitizer_errors() == []


def test_sigterm_with_s3_stalled_forever(zp, proxy):
    """S3 never answers: the blob GET and the manifest PUT held there give up when the
    grace period ends ("s3 request aborted"), so zinc exits 0 on its own, long before
    libcurl's 60 s stall limit would have ended even one attempt, with no sanitizer report.
    Restarted, the store is intact: the blob pushed before is whole and the manifest is
    either absent or exactly what was sent, never half-stored."""
    reg = Registry(zp.url)
    layer, ld, body = push_one(reg, "lib/late")
    proxy.hold()
    get_t, get_box = in_thread(lambda: requests.get("%s/v2/lib/late/blobs/%s" % (zp.url, ld), timeout=DEADLINE))
    put_t, put_box = in_thread(lambda: requests.put("%s/v2/lib/late/manifests/v1" % zp.url, data=body,
                                                    headers={"Content-Type": OCI_MANIFEST}, timeout=DEADLINE))
    proxy.wait_held(2)
    t0 = time.monotonic()
    zp.proc.send_signal(signal.SIGTERM)
    # the bound is libcurl's stall limit (60 s): without the abort, zinc would still be waiting
    assert zp.proc.wait(55) == 0
    elapsed = time.monotonic() - t0
    assert elapsed < 55, elapsed
    assert log_has(zp, "s3 request aborted: shutting down and the grace period is over")()
    assert zp.sanitizer_errors() == []
    zp.stop()
    get_t.join(DEADLINE)
    put_t.join(DEADLINE)
    proxy.release()

    zp.start()
    got = requests.get("%s/v2/lib/late/blobs/%s" % (zp.url, ld))
    assert got.status_code == 200 and got.content == layer
    m = requests.get("%s/v2/lib/late/manifests/v1" % zp.url, headers={"Accept": OCI_MANIFEST})
    assert m.status_code == 404 or (m.status_code == 200 and m.content == body), (m.status_code, m.content[:200])
    r = reg.put_manifest("lib/late", "v1", body)
    assert r.status_code == 201, r.text
