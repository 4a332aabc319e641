"""Replicas on one S3 bucket (issue 14 point 3): three zinc processes with the same
storage.storageDriver (bucket and rootdirectory), each with its own local rootDirectory,
run the checks of test_replicas.py: 64 concurrent pushes spread over them, every tag and
manifest listed and served by each, a moved or deleted tag never served by any replica
afterwards (index.json's ETag is checked on every request). Plus redirectBlobURL end to
end: a blob GET answers 307 to a presigned RGW URL whose bytes are the blob.

Skipped unless run under test/s3/rgw.py (ctest's e2e_s3_test_s3_replicas entry does)."""
import os

import pytest
import requests

from conftest import new_bucket
from oci_util import OCI_MANIFEST, Registry, digest
from test_replicas import check_concurrent_pushes, check_delete_and_move_seen_by_all, check_upload_across_replicas


@pytest.fixture
def s3_replicas(s3_zinc_factory):
    bucket = new_bucket()
    return [s3_zinc_factory(bucket=bucket) for _ in range(3)]


def test_concurrent_pushes_over_s3_replicas(s3_replicas):
    pushed = check_concurrent_pushes([s.url for s in s3_replicas])
    assert len(pushed) == 64


def test_delete_and_move_seen_by_all_s3_replicas(s3_replicas):
    check_delete_and_move_seen_by_all([s.url for s in s3_replicas])


def test_small_upload_moves_between_s3_replicas(s3_replicas):
    """Below one part (the fixture's chunksize, 5 MiB) a session is the tail object in the
    bucket, so any replica continues it. Past a part it must stay on one replica (README):
    an unfinished multipart upload's parts cannot be read back to rebuild the hash."""
    check_upload_across_replicas([s.url for s in s3_replicas], 1 << 20)


def test_redirect_blob_url(s3_zinc_factory):
    z = s3_zinc_factory(config_overrides={"storage": {"redirectBlobURL": True}})
    reg = Registry(z.url)
    data = os.urandom((1 << 20) + 5)
    body, md = reg.push_image("lib/redir", "v1", [data])
    d = digest(data)
    url = "%s/v2/lib/redir/blobs/%s" % (z.url, d)

    r = requests.get(url, allow_redirects=False)
    assert r.status_code == 307, r.text
    loc = r.headers["Location"]
    assert loc.startswith(os.environ["S3_ENDPOINT"]) and "X-Amz-Signature=" in loc, loc
    assert r.headers["Docker-Content-Digest"] == d
    got = requests.get(loc)  # no credentials: the URL is the authorisation
    assert got.status_code == 200 and digest(got.content) == d

    followed = requests.get(url)  # what a client does
    assert [h.status_code for h in followed.history] == [307]
    assert followed.status_code == 200 and followed.content == data

    # HEAD and Range are answered by zinc itself, as zot does
    h = requests.head(url, allow_redirects=False)
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(data)
    part = requests.get(url, headers={"Range": "bytes=10-19"}, allow_redirects=False)
    assert part.status_code == 206 and part.content == data[10:20]
    # manifests are never redirected
    m = requests.get("%s/v2/lib/redir/manifests/v1" % z.url, headers={"Accept": OCI_MANIFEST}, allow_redirects=False)
    assert m.status_code == 200 and m.content == body
