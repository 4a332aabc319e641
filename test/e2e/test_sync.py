"""extensions.sync onDemand: zinc as a pull-through mirror of another registry.

Upstreams: zinc itself, and Debian's docker-registry (CNCF Distribution) with htpasswd and
its token-less Basic auth, plus Distribution behind a relay the test controls byte by byte
(streaming, cuts, counting upstream requests). Clients: requests, skopeo, docker.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import free_port
from oci_util import OCI_MANIFEST, Registry, digest

DEADLINE = 60


def wait_for(cond, timeout=DEADLINE, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def mirror_config(urls, **reg):
    r = {"urls": urls, "onDemand": True}
    r.update(reg)
    return {"extensions": {"sync": {"enable": True, "registries": [r]}, "metrics": {"enable": True}}}


def blob_files(root, repo):
    d = os.path.join(root, repo, "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def upload_files(root, repo):
    d = os.path.join(root, repo, ".uploads")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def metric(server, name, labels):
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---- zinc as the upstream ------------------------------------------------------------------------


def test_pull_through_zinc(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    layers = [os.urandom(3 << 20), b"small layer"]
    body, mdig = ureg.push_image("lib/app", "v1", layers)
    mirror = zinc_factory(mirror_config([up.url]))
    m = Registry(mirror.url)

    r = m.get("/v2/lib/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    assert r.content == body and r.headers["Docker-Content-Digest"] == mdig
    for layer in layers:
        r = m.get("/v2/lib/app/blobs/" + digest(layer))
        assert r.status_code == 200 and r.content == layer
    cfg = json.loads(body)["config"]["digest"]
    assert m.get("/v2/lib/app/blobs/" + cfg).status_code == 200
    # everything landed in the mirror's store: the manifest once its blobs were there
    wait_for(lambda: m.get("/v2/lib/app/tags/list").status_code == 200, what="tag stored")
    assert m.get("/v2/lib/app/tags/list").json()["tags"] == ["v1"]
    assert digest(layers[0]).split(":")[1] in blob_files(mirror.root, "lib/app")
    up.stop()
    # upstream gone: the cached image is still served
    assert m.get("/v2/lib/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body
    assert m.get("/v2/lib/app/blobs/" + digest(layers[0])).content == layers[0]
    # unknown things: a clean OCI error, nothing stored
    r = m.get("/v2/lib/app/blobs/sha256:" + "0" * 64)
    assert r.status_code in (404, 502) and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert metric(mirror, "zinc_sync_requests_total", {"kind": "blob", "result": "hit"}) >= 1
    assert metric(mirror, "zinc_sync_requests_total", {"kind": "blob", "result": "miss"}) >= 3
    assert metric(mirror, "zinc_sync_fetches_total", {"kind": "blob", "result": "ok"}) >= 3
    assert upload_files(mirror.root, "lib/app") == []


def test_content_mapping_and_tag_filter(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    body, _ = ureg.push_image("upstream/team/app", "1.2.3", [b"a"])
    ureg.push_image("upstream/team/app", "latest", [b"b"])
    mirror = zinc_factory(mirror_config([up.url], content=[
        {"prefix": "/upstream/team/**", "destination": "/local", "stripPrefix": True, "tags": {"semver": True}}]))
    m = Registry(mirror.url)
    r = m.get("/v2/local/app/manifests/1.2.3", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    # filtered out by tags.semver: not fetched
    assert m.get("/v2/local/app/manifests/latest").status_code == 404
    # not covered by any content rule: no upstream at all
    r = m.get("/v2/upstream/team/app/manifests/1.2.3")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_revalidate_moved_tag(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    b1, d1 = ureg.push_image("r", "t", [b"one"])
    mirror = zinc_factory(mirror_config([up.url], manifestCheckInterval="1ns"))
    m = Registry(mirror.url)
    assert m.get("/v2/r/manifests/t").content == b1
    assert m.get("/v2/r/blobs/" + digest(b"one")).status_code == 200
    cfg = json.loads(b1)["config"]["digest"]
    assert m.get("/v2/r/blobs/" + cfg).status_code == 200
    wait_for(lambda: m.get("/v2/r/tags/list").status_code == 200, what="tag stored")
    b2, d2 = ureg.push_image("r", "t", [b"two"])
    r = m.get("/v2/r/manifests/t")
    assert r.content == b2 and r.headers["Docker-Content-Digest"] == d2
    up.stop()
    r = m.get("/v2/r/manifests/t")  # upstream down: what is cached (b1 stays stored until b2's blobs come)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] in (d1, d2)
