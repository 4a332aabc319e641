"""podman (vfs storage, as root, no containers run) pushing to and pulling from zinc: the
image pulled back has the same config (image ID) and the digest zinc serves."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from images_build import build_oci_layout
from oci_util import Registry

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")


@pytest.fixture
def podman(tmp_path):
    runroot = tempfile.mkdtemp(prefix="znpod-")  # podman wants a runroot under 50 characters
    base = ["podman", "--root", str(tmp_path / "root"), "--runroot", runroot, "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs", "--events-backend=none"]

    def run(*args):
        p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, "podman %s\n%s\n%s" % (" ".join(args), p.stdout, p.stderr)
        return p.stdout

    yield run
    subprocess.run(base + ["system", "reset", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_push_pull(zinc, podman, tmp_path):
    layout = str(tmp_path / "layout")
    build_oci_layout(layout, "v1", [{"hello.txt": b"hello from zinc\n"}, {"data.bin": os.urandom(200000)}])
    image_id = podman("pull", "-q", "oci:%s:v1" % layout).strip()
    ref = "%s/podman/app:v1" % zinc.hostport
    podman("push", "--tls-verify=false", image_id, ref)
    tags = Registry(zinc.url).get("/v2/podman/app/tags/list").json()["tags"]
    assert tags == ["v1"]
    served = Registry(zinc.url).s.head(zinc.url + "/v2/podman/app/manifests/v1").headers["Docker-Content-Digest"]
    podman("rmi", "-f", image_id)
    pulled = podman("pull", "-q", "--tls-verify=false", ref).strip()
    assert pulled == image_id
    info = json.loads(podman("image", "inspect", ref))[0]
    assert served in info["RepoDigests"][0]
