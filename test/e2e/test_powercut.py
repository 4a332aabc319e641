"""Power cut with storage.commit: true, checked with an LD_PRELOAD shim instead of a real
one (test/shim/fsync_log.c; the choice is explained in the README, "Crash safety").

The shim logs, with CLOCK_MONOTONIC times, every write, fsync, rename, link and mkdir zinc
does under the store while concurrent clients push monolithic blobs, chunked blobs and
manifests. A power cut keeps exactly what was fsynced: file data fsynced after its last
write, and directory entries (rename, link, mkdir) whose directory was fsynced afterwards.
Replaying the log, every object whose 201 the client had received (time taken after the
response, same clock) must have been durable before that 201: the blob or manifest file,
the chain of directories leading to it, and for a manifest the index.json naming it."""
import os
import random
import signal
import threading
import time

import pytest
import requests

from conftest import ZINC_BIN, SANITIZE, SLOW
from oci_util import Registry, canon, digest, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER

SHIM = os.environ.get("ZINC_FSYNC_SHIM") or os.path.join(os.path.dirname(os.path.dirname(ZINC_BIN)), "test",
                                                          "libzn_fsync_log.so")
CLIENTS, PUSHES = 16, 6


def replay(log_path):
    """Returns durable_at(path): the monotonic ns at which path's current entry and content
    became durable, or None if it never did."""
    last_write, last_sync = {}, {}
    dir_syncs = {}
    entries = {}  # path -> list of (t, content_durable)
    events = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            events.append((parts[0], int(parts[1]), parts[2:]))
    events.sort(key=lambda e: e[1])
    for kind, t, args in events:
        if kind == "W":
            last_write[args[0]] = t
        elif kind == "S":
            last_sync[args[0]] = t
            dir_syncs.setdefault(args[0], []).append(t)
        elif kind in ("R", "L"):
            src, dst = args
            ok = last_write.get(src, -1) < last_sync.get(src, 0) or src not in last_write
            if src in last_write:
                last_write[dst] = last_write[src]
            if src in last_sync:
                last_sync[dst] = last_sync[src]
            entries.setdefault(dst, []).append((t, ok))
        elif kind == "M":
            entries.setdefault(args[0], []).append((t, True))

    def durable_at(path, before):
        """When an entry of path created before `before` became durable (or None). A later
        entry that replaced it (another PUT rewriting index.json with this tag still in it)
        does not undo that, as long as every such later entry's content was synced before its
        rename: a cut then leaves either version, both whole. An unsynced one could leave
        garbage, so it makes the answer None."""
        cands = sorted(e for e in entries.get(path, []) if e[0] <= before)
        best = None
        for t, ok in reversed(cands):
            if not ok:
                break
            syncs = [s for s in dir_syncs.get(os.path.dirname(path), []) if s >= t]
            if syncs and (best is None or min(syncs) < best):
                best = min(syncs)
        return best if cands and cands[-1][1] else None

    return durable_at


def pusher(url, n, done, lock, errors):
    reg = Registry(url)
    rnd = random.Random(n)
    repo = "pc/r%d" % (n % 4)
    try:
        for i in range(PUSHES):
            data = rnd.randbytes(rnd.randint(1, 200) << 10)
            kind = (n + i) % 3
            if kind == 0:
                d = reg.push_blob(repo, data)
                rec = [("blob", repo, d)]
            elif kind == 1:
                d = reg.push_blob_chunked(repo, data, chunk=64 << 10)
                rec = [("blob", repo, d)]
            else:
                cfg = canon({"architecture": "amd64", "os": "linux", "n": n, "i": i})
                cd, ld = reg.push_blob(repo, cfg), reg.push_blob(repo, data)
                m = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(cfg)},
                           "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": len(data)}]})
                r = reg.put_manifest(repo, "t%d-%d" % (n, i), m)
                assert r.status_code == 201, r.text
                rec = [("manifest", repo, digest(m))]
            t = time.monotonic_ns()  # after the 201 arrived
            with lock:
                done += [x + (t,) for x in rec]
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(repr(e))


def blob_path(root, repo, d):
    return os.path.join(root, repo, "blobs", "sha256", d.split(":")[1])


def check_chain(durable_at, root, path, t):
    """path and every directory between root and it were durable by t."""
    problems = []
    p = path
    while p != root and len(p) > len(root):
        da = durable_at(p, t)
        if da is None or da > t:
            problems.append((p, da, t))
        p = os.path.dirname(p)
    return problems


@pytest.mark.skipif(not os.path.exists(SHIM), reason="shim not built: " + SHIM)
def test_every_201_was_durable_before_it_was_sent(zinc_factory, tmp_path):
    s = zinc_factory({"storage": {"commit": True, "gc": False}}, start=False)
    log = str(tmp_path / "fsync.log")
    os.environ["LD_PRELOAD"], os.environ["ZN_SHIM_LOG"], os.environ["ZN_SHIM_ROOT"] = SHIM, log, s.root
    saved_asan = os.environ.get("ASAN_OPTIONS")
    if SANITIZE:
        os.environ["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0"
    try:
        s.start()
    finally:
        for k in ("LD_PRELOAD", "ZN_SHIM_LOG", "ZN_SHIM_ROOT"):
            del os.environ[k]
        if SANITIZE:
            if saved_asan is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved_asan

    done, lock, errors = [], threading.Lock(), []
    threads = [threading.Thread(target=pusher, args=(s.url, n, done, lock, errors)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300 * SLOW)
    assert not errors, errors
    s.proc.send_signal(signal.SIGKILL)  # the cut: nothing zinc does afterwards counts
    s.proc.wait()
    s.stop()
    assert len(done) == CLIENTS * PUSHES

    durable_at = replay(log)
    problems = []
    for kind, repo, d, t in done:
        problems += check_chain(durable_at, s.root, blob_path(s.root, repo, d), t)
        if kind == "manifest":
            problems += check_chain(durable_at, s.root, os.path.join(s.root, repo, "index.json"), t)
    assert not problems, "not durable before the 201 (path, durable at, 201 at): %r" % problems[:20]


def test_the_check_can_fail(tmp_path):
    """The replay rejects a rename of unsynced data and a rename without a directory fsync."""
    log = tmp_path / "fsync.log"
    log.write_text("W 1 /r/a/.uploads/tmp\nR 2 /r/a/.uploads/tmp /r/a/blobs/x\nS 3 /r/a/blobs\n"
                   "W 4 /r/b/.uploads/tmp\nS 5 /r/b/.uploads/tmp\nR 6 /r/b/.uploads/tmp /r/b/blobs/y\n"
                   "W 7 /r/c/.uploads/tmp\nS 8 /r/c/.uploads/tmp\nR 9 /r/c/.uploads/tmp /r/c/blobs/z\nS 10 /r/c/blobs\n")
    durable_at = replay(str(log))
    assert durable_at("/r/a/blobs/x", 100) is None  # data never fsynced
    assert durable_at("/r/b/blobs/y", 100) is None  # directory never fsynced
    assert durable_at("/r/c/blobs/z", 100) == 10
    assert durable_at("/r/c/blobs/z", 8) is None  # not yet published at 8
    # a durable index.json replaced by a synced newer one (made durable later) still counts
    # from its own directory fsync; an unsynced replacement does not
    log.write_text("W 1 /r/d/.uploads/t1\nS 2 /r/d/.uploads/t1\nR 3 /r/d/.uploads/t1 /r/d/index.json\n"
                   "S 4 /r/d\nW 5 /r/d/.uploads/t2\nS 6 /r/d/.uploads/t2\n"
                   "R 7 /r/d/.uploads/t2 /r/d/index.json\nS 30 /r/d\n"
                   "W 40 /r/d/.uploads/t3\nR 41 /r/d/.uploads/t3 /r/d/index.json\n")
    durable_at = replay(str(log))
    assert durable_at("/r/d/index.json", 20) == 4
    assert durable_at("/r/d/index.json", 2) is None
    assert durable_at("/r/d/index.json", 50) is None
