"""Garbage collection end to end: zinc with gcDelay 3s and gcInterval 1s removes orphan
blobs, stale uploads, the blobs of deleted manifests and empty repositories, keeps what a
manifest references, and stops promptly when shut down in the middle of a pass."""
import hashlib
import json
import os
import signal
import time

import pytest

from conftest import SLOW
from oci_util import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Registry, canon, digest

# gcDelay is the grace a client has between pushing blobs (or untagged children) and the
# manifest that references them: 3 s keeps a loaded CI machine from losing that race.
GC = {"storage": {"gc": True, "gcDelay": "3s", "gcInterval": "1s"}}


def wait_for(cond, timeout=10, step=0.1):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


@pytest.fixture
def gczinc(zinc_factory):
    return zinc_factory(GC)


def blob_status(reg, repo, d):
    return reg.s.head("%s/v2/%s/blobs/%s" % (reg.url, repo, d)).status_code


def test_orphan_collected_image_kept(gczinc):
    reg = Registry(gczinc.url)
    orphan = reg.push_blob("app", b"nobody references me")
    body, md = reg.push_image("app", "v1", [b"layer one", b"layer two"])
    m = json.loads(body)
    assert wait_for(lambda: blob_status(reg, "app", orphan) == 404)
    r = reg.get("/v2/app/manifests/v1", headers={"Accept": m["mediaType"]})
    assert r.status_code == 200 and r.content == body
    for desc in [m["config"]] + m["layers"]:
        r = reg.get("/v2/app/blobs/" + desc["digest"])
        assert r.status_code == 200 and len(r.content) == desc["size"]
    lines = [l for l in gczinc.log_lines() if l.get("message") == "gc: repository collected"]
    assert any(l["repo"] == "app" and l["blobs"] >= 1 for l in lines), gczinc.log()


def gc_passes(z):
    return sum(1 for l in z.log_lines() if l.get("message") == "gc: pass done")


def test_deleted_manifest_layers_collected(zinc_factory):
    gczinc = zinc_factory(dict(GC, log={"level": "debug"}))
    reg = Registry(gczinc.url)
    keep_body, keep_md = reg.push_image("keep", "v1", [b"kept layer"])
    body, md = reg.push_image("gone", "v1", [b"doomed layer"])
    layer = json.loads(body)["layers"][0]["digest"]
    # Once gcDelay has run out for the pushed blobs, let two whole passes go by (the second
    # one surely started after it): a referenced layer must survive them.
    time.sleep(3.2)  # gcDelay itself: the blobs' age is what GC reads, no event to wait on
    seen = gc_passes(gczinc)
    assert wait_for(lambda: gc_passes(gczinc) >= seen + 2, timeout=30), gczinc.log()
    assert blob_status(reg, "gone", layer) == 200
    r = reg.s.delete("%s/v2/gone/manifests/%s" % (reg.url, md))
    assert r.status_code == 202, r.text
    assert wait_for(lambda: blob_status(reg, "gone", layer) == 404)
    # then the empty repository itself goes: its index.json first (the catalog drops it), its
    # directory a moment later in the same GC step (which a loaded machine can stretch)
    gone_dir = os.path.join(gczinc.root, "gone")
    assert wait_for(lambda: "gone" not in reg.get("/v2/_catalog").json()["repositories"]
                    and not os.path.exists(gone_dir)), gczinc.log()
    assert reg.get("/v2/keep/manifests/v1").status_code == 200
    # and a push to the same name works again
    reg.push_image("gone", "v2", [b"new layer"])
    assert reg.get("/v2/gone/manifests/v2").status_code == 200


def push_by_digest(reg, repo, layer, extra=None):
    """An image whose manifest is pushed by digest (untagged); returns (body, digest)."""
    config = canon({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": reg.push_blob(repo, config), "size": len(config)},
         "layers": [{"mediaType": OCI_LAYER, "digest": reg.push_blob(repo, layer), "size": len(layer)}]}
    m.update(extra or {})
    body = canon(m)
    r = reg.put_manifest(repo, digest(body), body)
    assert r.status_code == 201, r.text
    return body, digest(body)


def test_index_children_and_referrers_kept(gczinc):
    """Untagged children of a tagged index and an untagged referrer outlive gcDelay."""
    reg = Registry(gczinc.url)
    children = []
    for arch in ("amd64", "arm64"):
        body, md = push_by_digest(reg, "multi", arch.encode() * 100)
        children.append({"mediaType": OCI_MANIFEST, "digest": md, "size": len(body),
                         "platform": {"architecture": arch, "os": "linux"}})
    index = canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    r = reg.put_manifest("multi", "latest", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    _, sig = push_by_digest(reg, "multi", b"signature", {
        "artifactType": "application/x-sig",
        "subject": {"mediaType": OCI_MANIFEST, "digest": children[0]["digest"], "size": children[0]["size"]}})
    _, lone = push_by_digest(reg, "multi", b"nobody's child")
    assert wait_for(lambda: reg.get("/v2/multi/manifests/" + lone).status_code == 404)
    for d in [c["digest"] for c in children] + [sig]:
        r = reg.get("/v2/multi/manifests/" + d, headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200, (d, gczinc.log())
        for layer in json.loads(r.content)["layers"]:
            assert blob_status(reg, "multi", layer["digest"]) == 200
    refs = reg.get("/v2/multi/referrers/" + children[0]["digest"]).json()["manifests"]
    assert [m["digest"] for m in refs] == [sig]


def test_stale_upload_removed(gczinc):
    reg = Registry(gczinc.url)
    loc = reg.start_upload("up")
    r = reg.s.patch(loc, data=b"partial", headers={"Content-Range": "0-6", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    loc = reg.abs(r.headers["Location"])
    assert reg.s.get(loc).status_code == 204
    assert wait_for(lambda: reg.s.get(loc).status_code == 404)


def test_shutdown_during_pass(zinc_factory):
    s = zinc_factory(GC, start=False)
    repo = os.path.join(s.root, "big")
    blobs = os.path.join(repo, "blobs", "sha256")
    os.makedirs(blobs)
    os.makedirs(os.path.join(repo, ".uploads"))
    with open(os.path.join(repo, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(repo, "index.json"), "w") as f:
        f.write('{"schemaVersion":2,"manifests":[]}')
    old = time.time() - 3600
    n = 40000
    for i in range(n):
        p = os.path.join(blobs, hashlib.sha256(b"%d" % i).hexdigest())
        with open(p, "wb"):
            pass
        os.utime(p, (old, old))
    s.start()
    assert wait_for(lambda: len(os.listdir(blobs)) < n, timeout=15, step=0.01)  # the pass has begun
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=10 * SLOW)
    took = time.time() - t0
    print("stopped %.2f s after SIGTERM" % took)
    left = len(os.listdir(blobs))
    print("files left after the stop: %d of %d" % (left, n))
    assert left > 0  # stopped in the middle of the pass
    assert any(l.get("message") == "stopped" for l in s.log_lines())
