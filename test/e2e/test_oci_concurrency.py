"""16 concurrent pushes of images that share layers (same repository and across
repositories, monolithic and chunked), then every image checked intact: manifests, tags,
blob contents against their digests, index.json parseable, no upload left behind."""
import json
import os
import threading

from oci_util import OCI_MANIFEST, Registry, canon, digest

SHARED = [os.urandom(200000), os.urandom(50000)]


def push_one(url, i, results, errors):
    try:
        reg = Registry(url)
        repo = "shared" if i % 2 == 0 else "team%d/app" % (i % 4)
        own = ("image %d " % i).encode() * 5000
        layers = SHARED + [own]
        config = canon({"architecture": "amd64", "os": "linux", "n": i})
        cd = reg.push_blob(repo, config)
        descs = []
        for j, layer in enumerate(layers):
            d = reg.push_blob_chunked(repo, layer, chunk=32768) if (i + j) % 2 else reg.push_blob(repo, layer)
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(layer)})
        body = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                                 "size": len(config)}, "layers": descs})
        r = reg.put_manifest(repo, "t%d" % i, body)
        assert r.status_code == 201, r.text
        results[i] = (repo, "t%d" % i, body, layers, config)
    except Exception as e:  # reported by the main thread
        errors.append((i, repr(e)))


def test_concurrent_pushes_sharing_layers(zinc):
    results, errors = {}, []
    threads = [threading.Thread(target=push_one, args=(zinc.url, i, results, errors)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 16
    reg = Registry(zinc.url)
    for i, (repo, tag, body, layers, config) in results.items():
        r = reg.get("/v2/%s/manifests/%s" % (repo, tag))
        assert r.status_code == 200 and r.content == body, (repo, tag)
        for blob in layers + [config]:
            g = reg.get("/v2/%s/blobs/%s" % (repo, digest(blob)))
            assert g.status_code == 200 and digest(g.content) == digest(blob)
    for repo in {r[0] for r in results.values()}:
        tags = reg.get("/v2/%s/tags/list" % repo).json()["tags"]
        assert sorted(tags) == sorted(t for rp, t, *_ in results.values() if rp == repo)
        with open(os.path.join(zinc.root, repo, "index.json")) as f:
            idx = json.load(f)
        assert len(idx["manifests"]) == len(tags)
        assert os.listdir(os.path.join(zinc.root, repo, ".uploads")) == []
        # every file in blobs/ is what its name says
        bdir = os.path.join(zinc.root, repo, "blobs", "sha256")
        for name in os.listdir(bdir):
            with open(os.path.join(bdir, name), "rb") as f:
                assert digest(f.read()) == "sha256:" + name
    # shared layers are stored once across repositories (hard links)
    inodes = {os.stat(os.path.join(zinc.root, r, "blobs/sha256", digest(SHARED[0])[7:])).st_ino
              for r in {r[0] for r in results.values()}}
    assert len(inodes) == 1
