"""docker push and pull with zinc on the S3 driver (issue 14 point 5): a private Docker
Engine (docker_fixture.py) pushes a multi-layer image to zinc whose storage is a bucket on
the RGW fixture, removes it locally, and pulls it back by tag and by digest; the image ID
(the config's digest) and every layer are the same. A second zinc process on the same
bucket (a replica) serves the pull too, and a re-push is all "Layer already exists".

Skipped unless run under test/s3/rgw.py (ctest's e2e_s3_test_s3_docker entry does)."""
import os

from docker_fixture import bare_dockerd, load_test_image  # noqa: F401 (a fixture)
from oci_util import DOCKER_MANIFEST, Registry, digest

LAYERS = [{"etc/zinc-s3/a.txt": b"on s3\n" * 5000}, {"usr/share/zinc-s3/b.bin": os.urandom(6 << 20)}]


def test_docker_push_pull_on_s3(s3_zinc_factory, bare_dockerd, tmp_path):  # skips before starting dockerd
    dockerd = bare_dockerd
    z = s3_zinc_factory()
    bucket = z.config["storage"]["storageDriver"]["bucket"]
    ref = "%s/e2e/s3docker:v1" % z.hostport
    image_id = load_test_image(dockerd, str(tmp_path), ref, LAYERS, "s3docker")
    dockerd.docker("push", ref)

    r = Registry(z.url).get("/v2/e2e/s3docker/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200, r.text
    mdig = digest(r.content)
    layers = r.json()["layers"]
    assert len(layers) == 2 and max(l["size"] for l in layers) > 5 << 20  # the big one spans S3 parts

    dockerd.docker("rmi", ref)
    dockerd.docker("pull", ref)
    assert dockerd.inspect(ref)["Id"] == image_id
    dockerd.docker("rmi", ref)

    # another replica on the same bucket, pulled by digest
    z2 = s3_zinc_factory(bucket=bucket)
    dref = "%s/e2e/s3docker@%s" % (z2.hostport, mdig)
    dockerd.docker("pull", dref)
    assert dockerd.inspect(dref)["Id"] == image_id

    # pushing again finds every layer there
    dockerd.docker("tag", image_id, ref)
    out = dockerd.docker("push", ref).stdout
    assert out.count("Layer already exists") == 2, out
