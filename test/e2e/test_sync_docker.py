"""docker pull through zinc's pull-through mirror (extensions.sync onDemand): Docker pushes an
image to an upstream zinc, then pulls it by tag and by digest from a second zinc that mirrors
the first and has nothing stored (a private dockerd, see docker_fixture.py); and a daemon set
up as README's Docker Hub mirror how-to says (daemon.json registry-mirrors) pulling a
docker.io name through zinc."""
import json
import os
import subprocess

import requests

from docker_fixture import bare_dockerd, load_test_image, private_dockerd  # noqa: F401 (a fixture)
from images_build import build_oci_layout
from oci_util import DOCKER_LIST, DOCKER_MANIFEST, OCI_MANIFEST, Registry, canon, digest
from test_sync import blob_files, mirror_config, wait_for

LAYERS = [{"etc/zinc-sync/a.txt": b"mirror\n" * 3000}, {"usr/share/zinc-sync/b.bin": os.urandom(400000)}]


def test_docker_pull_through_mirror(bare_dockerd, zinc_factory, tmp_path):
    dockerd = bare_dockerd
    up = zinc_factory()
    mirror = zinc_factory(mirror_config([up.url]))
    ref = "%s/e2e/mirrored:v1" % up.hostport
    image_id = load_test_image(dockerd, str(tmp_path), ref, LAYERS, "mirrored")
    arch = dockerd.inspect(image_id)["Architecture"]
    dockerd.docker("push", ref)
    dockerd.docker("rmi", ref)
    # a manifest list under :multi: the pushed image for this host's platform, and another
    # platform's image that nobody here pulls
    ureg = Registry(up.url)
    own = ureg.get("/v2/e2e/mirrored/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert own.status_code == 200, own.text
    other_arch = "arm64" if arch != "arm64" else "amd64"
    ocfg = canon({"architecture": other_arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    obody, odig = ureg.push_image("e2e/mirrored", "scratch", [b"never fetched"], config=ocfg, docker=True)
    lst = canon({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest(own.content), "size": len(own.content),
         "platform": {"architecture": arch, "os": "linux"}},
        {"mediaType": DOCKER_MANIFEST, "digest": odig, "size": len(obody),
         "platform": {"architecture": other_arch, "os": "linux"}}]})
    assert ureg.put_manifest("e2e/mirrored", "multi", lst, DOCKER_LIST).status_code == 201
    assert dockerd.docker("image", "inspect", image_id, check=False).returncode != 0

    mref = "%s/e2e/mirrored:v1" % mirror.hostport
    dockerd.docker("pull", mref)
    assert dockerd.inspect(mref)["Id"] == image_id
    # the image is now in the mirror's own store: pulled again with the upstream gone
    wait_for(lambda: requests.get(mirror.url + "/v2/e2e/mirrored/tags/list", timeout=10).status_code == 200,
             what="the mirror to store the tag")
    up.stop()
    dockerd.docker("rmi", mref)
    dockerd.docker("pull", mref)
    assert dockerd.inspect(mref)["Id"] == image_id
    dockerd.docker("rmi", mref)
    # the manifest list: one platform pulled through the mirror (the upstream back on its
    # store and port), then again with the upstream gone
    up.start()
    lref = "%s/e2e/mirrored:multi" % mirror.hostport
    dockerd.docker("pull", lref)
    assert dockerd.inspect(lref)["Id"] == image_id
    assert odig.split(":")[1] not in blob_files(mirror.root, "e2e/mirrored")  # the other platform: never fetched
    up.stop()
    dockerd.docker("rmi", lref)
    dockerd.docker("pull", lref)  # index and this platform from the cache alone
    assert dockerd.inspect(lref)["Id"] == image_id
    dockerd.docker("rmi", lref)
    p = dockerd.docker("pull", "--platform", "linux/" + other_arch, lref, check=False)
    assert p.returncode != 0  # never fetched, upstream gone: a clean failure
    r = requests.get(mirror.url + "/v2/e2e/mirrored/manifests/" + odig, timeout=30)
    assert r.status_code == 502 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_daemon_registry_mirrors_config(zinc_factory, tmp_path):
    """README's how-to, verbatim but for the address: daemon.json with registry-mirrors and
    insecure-registries. The daemon has no way to Docker Hub, so the pull of a docker.io name
    can only succeed through zinc, which asks its upstream (standing in for Docker Hub) for
    the same name."""
    up = zinc_factory()
    layout = str(tmp_path / "layout")
    build_oci_layout(layout, "v1", LAYERS, label="hub")
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:%s:v1" % layout,
                    "docker://%s/zinc-e2e/hub-app:v1" % up.hostport], check=True, capture_output=True, timeout=120)
    manifest = requests.get(up.url + "/v2/zinc-e2e/hub-app/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=30).json()
    mirror = zinc_factory(mirror_config([up.url]))
    port = mirror.port
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:%d" % port],
                                "insecure-registries": ["127.0.0.1:%d" % port]}))
    with private_dockerd(base_image=False, extra_args=["--config-file", str(conf)]) as d:
        d.docker("pull", "zinc-e2e/hub-app:v1")
        assert d.inspect("zinc-e2e/hub-app:v1")["Id"] == manifest["config"]["digest"]
        # the daemon resolved the tag at zinc (HEAD or GET; the access log may trail the answer)
        wait_for(lambda: "/v2/zinc-e2e/hub-app/manifests/v1" in [l.get("path") for l in mirror.log_lines()],
                 what="the tag request in the mirror's log")
