"""skopeo against zinc: round trips of a multi-layer OCI image and of a Docker schema2
image (push, inspect, list-tags, pull back with identical digests, delete), and the
storage root read directly as an OCI layout by `skopeo copy oci:<root>/<repo>:<tag>`."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import STORAGE_S3
from images_build import build_docker_dir, build_oci_layout
from oci_util import DOCKER_MANIFEST, OCI_MANIFEST, Registry, digest

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")

LAYERS = [{"etc/a.txt": b"alpha\n" * 1000, "etc/b.txt": b"beta\n"},
          {"usr/bin/tool": os.urandom(300000)},
          {"var/data.bin": os.urandom(5 << 20)}]


def skopeo(*args):
    cmd = ["skopeo", "--insecure-policy"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, "%s\n%s\n%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p.stdout


def docker_ref(zinc, repo):
    return "docker://%s/%s" % (zinc.hostport, repo)


def manifest_digest_of_dir(path):
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        return digest(f.read())


@pytest.mark.parametrize("repo", ["lib/oci-app", "team/manifests/blobs/uploads/app"])
def test_oci_image_round_trip(zinc, tmp_path, repo):
    """Also on a name made of the API's path words (routing reads paths from the right)."""
    src = str(tmp_path / "layout")
    want = build_oci_layout(src, "v1", LAYERS)
    skopeo("copy", "--dest-tls-verify=false", "oci:%s:v1" % src, docker_ref(zinc, repo + ":v1"))
    info = json.loads(skopeo("inspect", "--tls-verify=false", docker_ref(zinc, repo + ":v1")))
    assert info["Digest"] == want
    assert len(info["Layers"]) == 3
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", docker_ref(zinc, repo + ":v1")))
    assert raw["mediaType"] == OCI_MANIFEST
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", docker_ref(zinc, repo + ":v1"),
           docker_ref(zinc, repo + ":v2"))
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", docker_ref(zinc, repo)))
    assert sorted(tags["Tags"]) == ["v1", "v2"]
    back = str(tmp_path / "back")
    skopeo("copy", "--src-tls-verify=false", docker_ref(zinc, repo + ":v1"), "oci:%s:v1" % back)
    with open(os.path.join(back, "index.json")) as f:
        assert json.load(f)["manifests"][0]["digest"] == want
    for name in os.listdir(os.path.join(src, "blobs/sha256")):
        with open(os.path.join(src, "blobs/sha256", name), "rb") as a, \
                open(os.path.join(back, "blobs/sha256", name), "rb") as b:
            assert a.read() == b.read()
    skopeo("delete", "--tls-verify=false", docker_ref(zinc, repo + "@" + want))
    reg = Registry(zinc.url)
    assert reg.get("/v2/%s/manifests/v1" % repo).status_code == 404
    assert reg.get("/v2/%s/tags/list" % repo).json()["tags"] == []


def test_docker_schema2_round_trip(zinc, tmp_path):
    src = str(tmp_path / "dockerdir")
    want = build_docker_dir(src, LAYERS[:2])
    skopeo("copy", "--dest-tls-verify=false", "dir:" + src, docker_ref(zinc, "dock/app:s2"))
    info = json.loads(skopeo("inspect", "--tls-verify=false", docker_ref(zinc, "dock/app:s2")))
    assert info["Digest"] == want
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", docker_ref(zinc, "dock/app:s2")))
    assert raw["mediaType"] == DOCKER_MANIFEST
    assert json.loads(skopeo("list-tags", "--tls-verify=false", docker_ref(zinc, "dock/app")))["Tags"] == ["s2"]
    back = str(tmp_path / "back")
    skopeo("copy", "--src-tls-verify=false", docker_ref(zinc, "dock/app:s2"), "dir:" + back)
    assert manifest_digest_of_dir(back) == want
    for name in os.listdir(src):
        if name not in ("version",):
            with open(os.path.join(src, name), "rb") as a, open(os.path.join(back, name), "rb") as b:
                assert a.read() == b.read(), name
    skopeo("delete", "--tls-verify=false", docker_ref(zinc, "dock/app:s2"))
    assert Registry(zinc.url).get("/v2/dock/app/manifests/" + want).status_code == 404


@pytest.mark.skipif(STORAGE_S3, reason="the store is a bucket, not a local OCI layout")
def test_storage_root_is_an_oci_layout(zinc, tmp_path):
    src = str(tmp_path / "layout")
    want = build_oci_layout(src, "v1", LAYERS[:2])
    skopeo("copy", "--dest-tls-verify=false", "oci:%s:v1" % src, docker_ref(zinc, "direct/read:v1"))
    out = str(tmp_path / "out")
    skopeo("copy", "oci:%s:v1" % os.path.join(zinc.root, "direct/read"), "dir:" + out)
    assert manifest_digest_of_dir(out) == want
