"""Several zinc processes on one store (issue 14 point 3), here one filesystem root shared
by three replicas, as behind a load balancer with no stickiness: 64 concurrent pushes of
blobs and distinctly tagged manifests to one repository spread over them lose nothing
(index.json is updated by compare-and-swap), every replica lists every tag, and a deleted
or moved tag is never served by any replica afterwards: index.json's version is checked on
every request, so the bound for tags and manifests is zero (no waiting in these checks). A
repository another process removed is seen gone within ST_REPO_RECHECK_NS (1 s) and a push
through a replica that still had it cached recreates it.

The checks are functions of a list of replica URLs so that test_s3_replicas.py runs the same
ones on one S3 bucket."""
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from oci_util import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Registry, canon, digest, error_code

PUSHES = 64
REPO = "team/app"


def manifest(config_digest, config_len, layer_digest, layer_len, note):
    return canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_len},
                  "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_len}],
                  "annotations": {"note": note}})


def tags_of(reg, repo):
    tags, url = [], "/v2/%s/tags/list?n=20" % repo
    while url:  # paginated, so the Link chain is exercised on every replica too
        r = reg.get(url)
        assert r.status_code == 200, r.text
        tags += r.json().get("tags") or []
        link = r.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    return tags


def check_concurrent_pushes(urls, repo=REPO):
    """64 pushes (own layer blob through one replica, manifest through the next) at once."""
    regs = [Registry(u) for u in urls]
    config = canon({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    cd = regs[0].push_blob(repo, config)
    local = threading.local()

    def reg_for(i):
        # one session per thread and replica: requests.Session is not thread-safe
        if not hasattr(local, "regs"):
            local.regs = [Registry(u) for u in urls]
        return local.regs[i % len(urls)]

    def push(i):
        layer = b"layer %d " % i + os.urandom(2048)
        ld = reg_for(i).push_blob_chunked(repo, layer, chunk=1024) if i % 4 == 0 else reg_for(i).push_blob(repo, layer)
        body = manifest(cd, len(config), ld, len(layer), "push %d" % i)
        r = reg_for(i + 1).put_manifest(repo, "t%02d" % i, body)
        assert r.status_code == 201, (i, r.status_code, r.text)
        return "t%02d" % i, digest(body)

    with ThreadPoolExecutor(max_workers=PUSHES) as pool:
        pushed = dict(pool.map(push, range(PUSHES)))

    want = sorted(pushed)
    for reg in regs:
        assert sorted(tags_of(reg, repo)) == want, reg.url
        for tag, d in pushed.items():
            r = reg.get("/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 200, (reg.url, tag, r.text)
            assert r.headers["Docker-Content-Digest"] == d
            assert digest(r.content) == d
            layer = r.json()["layers"][0]
            b = reg.get("/v2/%s/blobs/%s" % (repo, layer["digest"]))
            assert b.status_code == 200 and digest(b.content) == layer["digest"], (reg.url, tag)
    return pushed


def check_delete_and_move_seen_by_all(urls, repo="team/moves"):
    regs = [Registry(u) for u in urls]
    m1, d1 = regs[0].push_image(repo, "moving", [b"first " + os.urandom(64)])
    m2, d2 = regs[1].push_image(repo, "other", [b"second " + os.urandom(64)])
    regs[0].put_manifest(repo, "doomed", m1)

    def get(reg, ref):
        return reg.get("/v2/%s/manifests/%s" % (repo, ref), headers={"Accept": OCI_MANIFEST})

    for reg in regs:  # every replica has read (and cached) the index and both manifests
        assert get(reg, "moving").headers["Docker-Content-Digest"] == d1
        assert get(reg, "doomed").status_code == 200

    # move: re-tag through one replica, every other one serves the new target at once
    assert regs[-1].put_manifest(repo, "moving", m2).status_code == 201
    for reg in regs:
        r = get(reg, "moving")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d2, reg.url
        assert r.content == m2

    # delete a tag through one replica: gone on all, at once
    assert regs[0].s.delete("%s/v2/%s/manifests/doomed" % (regs[0].url, repo)).status_code == 202
    for reg in regs:
        r = get(reg, "doomed")
        assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN", (reg.url, r.text)
        assert "doomed" not in tags_of(reg, repo)
        assert r.headers.get("Docker-Content-Digest") is None

    # delete a manifest by digest through another: no replica serves it by digest or tag
    assert regs[1].s.delete("%s/v2/%s/manifests/%s" % (regs[1].url, repo, d2)).status_code == 202
    for reg in regs:
        assert get(reg, d2).status_code == 404, reg.url
        assert get(reg, "moving").status_code == 404, reg.url
        assert get(reg, "other").status_code == 404, reg.url
        assert get(reg, d1).status_code == 200, reg.url  # untagged now, still there


def check_upload_across_replicas(urls, size, repo="team/moving-upload"):
    """One chunked upload whose requests each go to another replica (no stickiness): the
    session lives in the store, and a replica that did not see the previous chunk rebuilds
    the session's hash from the stored bytes."""
    regs = [Registry(u) for u in urls]
    data = os.urandom(size)
    loc = regs[0].start_upload(repo)
    path = loc[loc.index("/v2/"):]
    chunk = (size + 3) // 4
    for n, off in enumerate(range(0, size, chunk)):
        part = data[off:off + chunk]
        reg = regs[(n + 1) % len(regs)]
        r = reg.s.patch(reg.url + path, data=part, headers={"Content-Range": "%d-%d" % (off, off + len(part) - 1),
                                                            "Content-Type": "application/octet-stream"})
        assert r.status_code == 202, (reg.url, r.text)
        assert r.headers["Range"] == "0-%d" % (off + len(part) - 1)
        loc = r.headers["Location"]
        path = loc[loc.index("/v2/"):]
    d = digest(data)
    r = regs[-1].s.put(regs[-1].url + path + ("&" if "?" in path else "?") + "digest=" + d)
    assert r.status_code == 201, r.text
    for reg in regs:
        b = reg.get("/v2/%s/blobs/%s" % (repo, d))
        assert b.status_code == 200 and b.content == data, reg.url


@pytest.fixture
def fs_replicas(zinc_factory):
    shared = tempfile.mkdtemp(prefix="zinc-replicas-")
    # storageDriver None: on the filesystem even when ZINC_STORAGE=s3 puts fixtures on S3
    servers = [zinc_factory({"storage": {"rootDirectory": shared, "storageDriver": None}}) for _ in range(3)]
    yield shared, servers
    shutil.rmtree(shared, ignore_errors=True)


def test_concurrent_pushes_over_replicas(fs_replicas):
    shared, servers = fs_replicas
    check_concurrent_pushes([s.url for s in servers])


def test_delete_and_move_seen_by_all_replicas(fs_replicas):
    shared, servers = fs_replicas
    check_delete_and_move_seen_by_all([s.url for s in servers])


def test_upload_moves_between_replicas(fs_replicas):
    shared, servers = fs_replicas
    check_upload_across_replicas([s.url for s in servers], 3 << 20)


def test_repository_removed_by_another_process(fs_replicas):
    """One replica has a repository in its table; another process (an operator, a replica's
    GC of an empty repository) removes it; pushing through the first one recreates it
    instead of writing into a repository that is not there."""
    shared, servers = fs_replicas
    a, b = Registry(servers[0].url), Registry(servers[1].url)
    body, d = a.push_image("gone/soon", "v1", [b"will vanish"])
    assert b.get("/v2/gone/soon/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert "v1" in tags_of(b, "gone/soon")

    shutil.rmtree(os.path.join(shared, "gone"))
    # tags and manifests: gone at once (index.json is looked at on every request)
    r = b.get("/v2/gone/soon/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 404, r.text
    # a push through the replica that still has the repository in its table
    body2, d2 = b.push_image("gone/soon", "v2", [b"back again"])
    for reg in (a, b):
        assert tags_of(reg, "gone/soon") == ["v2"], reg.url
        r = reg.get("/v2/gone/soon/manifests/v2", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == body2
    assert os.path.isfile(os.path.join(shared, "gone", "soon", "oci-layout"))
