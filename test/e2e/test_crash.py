"""Crash safety: kill -9 of zinc in the middle of 64 concurrent pushes (monolithic blobs,
chunked blobs, whole images with manifests), then a restart on the same store. Every push
that got its 201 must be there and verify by digest, no temp file may sit among the blobs,
an interrupted chunked session resumes where it stopped, and `zinc scrub` finds the store
clean."""
import hashlib
import os
import random
import signal
import subprocess
import threading
import time

import requests

from conftest import ZINC_BIN, SLOW
from oci_util import Registry, canon, digest, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER

CLIENTS = 64


def pusher(url, n, stop, done, lock):
    """Pushes until stop is set or the server goes away; appends what got its 201 to done."""
    reg = Registry(url)
    rnd = random.Random(n)
    repo = "crash/c%d" % (n % 8)
    i = 0
    try:
        while not stop.is_set():
            i += 1
            data = rnd.randbytes(rnd.randint(1, 400) << 10)
            kind = (n + i) % 3
            if kind == 0:
                d = reg.push_blob(repo, data)
                rec = ("blob", repo, d)
            elif kind == 1:
                d = reg.push_blob_chunked(repo, data, chunk=96 << 10)
                rec = ("blob", repo, d)
            else:
                tag = "t%d-%d" % (n, i)
                cfg = canon({"architecture": "amd64", "os": "linux", "n": n, "i": i})
                cd = reg.push_blob(repo, cfg)
                ld = reg.push_blob(repo, data)
                m = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(cfg)},
                           "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": len(data)}]})
                r = reg.put_manifest(repo, tag, m)
                assert r.status_code == 201, r.text
                rec = ("manifest", repo, tag, digest(m))
            with lock:
                done.append(rec)
    except (requests.RequestException, AssertionError, OSError):
        pass  # the server died under us: whatever did not get its 201 may be lost


def test_kill9_during_concurrent_pushes(zinc_factory):
    s = zinc_factory({"storage": {"gc": False}})
    reg = Registry(s.url)

    # an upload session interrupted by the crash: one chunk in, never finished
    part1, part2 = os.urandom(300 << 10), os.urandom(200 << 10)
    loc = reg.start_upload("crash/resume")
    r = reg.s.patch(loc, data=part1, headers={"Content-Type": "application/octet-stream",
                                              "Content-Range": "0-%d" % (len(part1) - 1)})
    assert r.status_code == 202
    loc = reg.abs(r.headers["Location"])

    stop, lock, done = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=pusher, args=(s.url, n, stop, done, lock), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.time() + 120 * SLOW
    while time.time() < deadline:  # enough pushes completed, with all 64 clients still going
        with lock:
            if len(done) >= 2 * CLIENTS:
                break
        time.sleep(0.02)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    stop.set()
    for t in threads:
        t.join(60)
    s.stop()
    with lock:
        got = list(done)
    assert len(got) >= 2 * CLIENTS, "too few pushes completed before the deadline"
    assert any(g[0] == "manifest" for g in got) and any(g[0] == "blob" for g in got)

    # offline scrub of the crashed store
    p = subprocess.run([ZINC_BIN, "scrub", s.config_path], capture_output=True, text=True, timeout=300 * SLOW)
    assert p.returncode == 0, (p.stdout, p.stderr)
    for dp, _, fns in os.walk(s.root):
        if os.path.basename(os.path.dirname(dp)) == "blobs":
            for f in fns:
                assert len(f) == 64 and all(c in "0123456789abcdef" for c in f), os.path.join(dp, f)

    s.start()
    for g in got:
        if g[0] == "blob":
            r = requests.get("%s/v2/%s/blobs/%s" % (s.url, g[1], g[2]))
            assert r.status_code == 200 and digest(r.content) == g[2], g
        else:
            r = requests.get("%s/v2/%s/manifests/%s" % (s.url, g[1], g[2]), headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 200 and digest(r.content) == g[3], g
            for desc in [r.json()["config"]] + r.json()["layers"]:
                b = requests.get("%s/v2/%s/blobs/%s" % (s.url, g[1], desc["digest"]))
                assert b.status_code == 200 and digest(b.content) == desc["digest"], (g, desc)

    # the interrupted session resumes
    st = reg.s.get(loc)
    assert st.status_code == 204 and st.headers["Range"] == "0-%d" % (len(part1) - 1), st.text
    r = reg.s.patch(reg.abs(st.headers["Location"]), data=part2,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": "%d-%d" % (len(part1), len(part1) + len(part2) - 1)})
    assert r.status_code == 202, r.text
    whole = part1 + part2
    loc = reg.abs(r.headers["Location"])
    r = reg.s.put(loc + ("&" if "?" in loc else "?") + "digest=" + digest(whole))
    assert r.status_code == 201, r.text
    assert requests.get("%s/v2/crash/resume/blobs/%s" % (s.url, digest(whole))).content == whole
