"""Disk full: on a 16 MiB tmpfs holding the whole store (h2o's request-body temp files
live in <root>/.zinc/tmp, on the same filesystem; streamed upload bodies go straight to the
session file), pushes that run out of space get a clean 5xx OCI error and leave no partial blob or manifest, reads keep working, and pushes succeed
again once space is freed."""
import json
import os
import subprocess
import tempfile

import pytest
import requests

from conftest import ZINC_BIN
from oci_util import Registry, canon, digest, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER


@pytest.fixture
def small_fs():
    d = tempfile.mkdtemp(prefix="zinc-full-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", d], capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): " + p.stderr.strip())
    yield d
    subprocess.run(["umount", "-l", d], check=False)
    os.rmdir(d)


def fill(path, leave):
    """Writes a filler file until at most `leave` bytes remain free."""
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    with open(path, "wb") as f:
        n = max(0, free - leave)
        chunk = b"\0" * (1 << 20)
        while n > 0:
            try:
                f.write(chunk[:min(n, len(chunk))])
                f.flush()
            except OSError:
                break
            n -= min(n, len(chunk))


def files_under(root, sub):
    out = []
    for dp, _, fns in os.walk(root):
        if sub in dp.split(os.sep):
            out += [os.path.join(dp, f) for f in fns]
    return out


def assert_no_partial_blob(root):
    """Every file under a blobs/ directory hashes to its own name."""
    for p in files_under(root, "blobs"):
        with open(p, "rb") as f:
            assert digest(f.read()) == "sha256:" + os.path.basename(p), p


def oci_5xx(r):
    assert 500 <= r.status_code < 600, (r.status_code, r.text)
    assert r.json()["errors"][0]["code"], r.text


def test_disk_full_push_fails_cleanly_and_recovers(zinc_factory, small_fs):
    root = os.path.join(small_fs, "root")
    s = zinc_factory({"storage": {"rootDirectory": root}})
    reg = Registry(s.url)
    keep = os.urandom(1 << 20)
    _, kept_md = reg.push_image("r", "kept", [keep])
    kd = digest(keep)

    filler = os.path.join(small_fs, "filler")
    fill(filler, 256 << 10)

    # bodies far over what is free, streamed to the session as they arrive (HTTP/1 fast
    # path): the write fails mid-body, the rest of the body is read and dropped, and the
    # client gets a clean 5xx OCI error instead of a connection reset; nothing is left
    big = os.urandom(6 << 20)
    oci_5xx(requests.post("%s/v2/r/blobs/uploads/?digest=%s" % (s.url, digest(big)), data=big,
                          headers={"Content-Type": "application/octet-stream"}))
    assert os.listdir(os.path.join(root, "r", ".uploads")) == []  # the monolithic session is gone
    loc = reg.start_upload("r")
    oci_5xx(reg.s.put(loc + "?digest=" + digest(big), data=big, headers={"Content-Type": "application/octet-stream"}))
    loc = reg.start_upload("r")
    gen = (big[i:i + (256 << 10)] for i in range(0, len(big), 256 << 10))  # requests sends it chunked
    oci_5xx(reg.s.patch(loc, data=gen, headers={"Content-Type": "application/octet-stream"}))
    assert os.listdir(os.path.join(root, ".zinc", "tmp")) == []
    # an in-memory body, monolithic then as a chunked PATCH, too big for what remains
    mid = os.urandom(1 << 20)  # stays in memory (h2o mmaps from a 4 MiB buffer capacity on)
    oci_5xx(reg.s.post("%s/v2/r/blobs/uploads/?digest=%s" % (s.url, digest(mid)), data=mid,
                       headers={"Content-Type": "application/octet-stream"}))
    loc = reg.start_upload("r")
    r = reg.s.patch(loc, data=mid, headers={"Content-Type": "application/octet-stream",
                                            "Content-Range": "0-%d" % (len(mid) - 1)})
    oci_5xx(r)

    # a manifest when not even its bytes fit
    fill(filler + "2", 0)
    cfg = canon({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    m = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": kd, "size": len(keep)},
               "layers": [{"mediaType": OCI_LAYER, "digest": kd, "size": len(keep),
                           "annotations": {"pad": "x" * 100000}}]})
    r = reg.put_manifest("r", "full", m)
    oci_5xx(r)

    # reads keep working
    g = requests.get("%s/v2/r/blobs/%s" % (s.url, kd))
    assert g.status_code == 200 and g.content == keep
    assert requests.get("%s/v2/r/manifests/kept" % s.url, headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert requests.get("%s/v2/r/manifests/full" % s.url, headers={"Accept": OCI_MANIFEST}).status_code == 404
    assert_no_partial_blob(root)
    for b in (big, mid):
        assert requests.head("%s/v2/r/blobs/%s" % (s.url, digest(b))).status_code == 404

    # space returns: the same pushes succeed
    os.unlink(filler)
    os.unlink(filler + "2")
    assert reg.push_blob("r", big) == digest(big)
    loc = reg.start_upload("r")
    gen = (big[i:i + (256 << 10)] for i in range(0, len(big), 256 << 10))
    r = reg.s.patch(loc, data=gen, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    r = reg.s.put(reg.abs(r.headers["Location"]) + "?digest=" + digest(big))
    assert r.status_code == 201, r.text
    assert reg.push_blob_chunked("r", mid, chunk=1 << 20) == digest(mid)
    assert reg.put_manifest("r", "full", m).status_code == 201
    assert requests.get("%s/v2/r/blobs/%s" % (s.url, digest(big))).content == big
    assert_no_partial_blob(root)
    p = subprocess.run([ZINC_BIN, "scrub", s.config_path], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
