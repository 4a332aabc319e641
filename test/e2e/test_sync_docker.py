"""docker pull through zinc's pull-through mirror (extensions.sync onDemand): Docker pushes an
image to an upstream zinc, then pulls it by tag and by digest from a second zinc that mirrors
the first and has nothing stored (a private dockerd, see docker_fixture.py)."""
import os

import pytest
import requests

from docker_fixture import Dockerd, load_test_image, remove_stale_daemon_dirs
from test_sync import mirror_config, wait_for


@pytest.fixture(scope="module")
def dockerd():
    """A private daemon as docker_fixture's, without the imported base image: the test image
    is made of its own layers alone, and making the base needs Debian's archive."""
    remove_stale_daemon_dirs()
    d = Dockerd()
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_CONFIG")}
    try:
        d.start()
        os.environ.update({k: d.env[k] for k in saved})
        yield d
    finally:
        d.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

LAYERS = [{"etc/zinc-sync/a.txt": b"mirror\n" * 3000}, {"usr/share/zinc-sync/b.bin": os.urandom(400000)}]


def test_docker_pull_through_mirror(dockerd, zinc_factory, tmp_path):
    up = zinc_factory()
    mirror = zinc_factory(mirror_config([up.url]))
    ref = "%s/e2e/mirrored:v1" % up.hostport
    image_id = load_test_image(dockerd, str(tmp_path), ref, LAYERS, "mirrored")
    dockerd.docker("push", ref)
    dockerd.docker("rmi", ref)
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
