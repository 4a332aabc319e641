"""Replicas on one S3 bucket (issue 14 point 3): three zinc processes with the same
storage.storageDriver (bucket and rootdirectory), each with its own local rootDirectory,
run the checks of test_replicas.py: 64 concurrent pushes spread over them, every tag and
manifest listed and served by each, a moved or deleted tag never served by any replica
afterwards (index.json's ETag is checked on every request). Plus redirectBlobURL end to
end: a blob GET answers 307 to a presigned RGW URL whose bytes are the blob.

Skipped unless run under test/s3/rgw.py (ctest's e2e_s3_test_s3_replicas entry does)."""
import os
import signal

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
    """Below one part (the fixture's chunksize, 5 MiB) a session is the tail object alone."""
    check_upload_across_replicas([s.url for s in s3_replicas], 1 << 20)


def test_upload_past_parts_moves_between_s3_replicas(s3_replicas):
    """13 MiB in four chunks, each to another replica: the chunks cross part edges, and the
    parts of an unfinished multipart upload cannot be read back, so each replica resumes the
    digest from the hash state the previous one left with the tail object."""
    check_upload_across_replicas([s.url for s in s3_replicas], (13 << 20) + 5, repo="team/moving-big")


def _patch(z, path, data, off):
    r = requests.patch(z.url + path, data=data, headers={"Content-Range": "%d-%d" % (off, off + len(data) - 1),
                                                         "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-%d" % (off + len(data) - 1)
    loc = r.headers["Location"]
    return loc[loc.index("/v2/"):]


def test_upload_resumes_past_parts_after_kill(s3_zinc_factory):
    """A chunked upload of three parts and more, with the replica killed (SIGKILL) and
    restarted between chunks: the session continues where its last 202 said, on the
    restarted process and on another replica. A wrong digest then gets 400 DIGEST_INVALID
    and no replica serves anything under either digest; the right one gets 201."""
    bucket = new_bucket()
    a, b = s3_zinc_factory(bucket=bucket), s3_zinc_factory(bucket=bucket)
    data = os.urandom((20 << 20) + 77)
    repo = "team/killed"
    r = requests.post("%s/v2/%s/blobs/uploads/" % (a.url, repo))
    assert r.status_code == 202, r.text
    path = r.headers["Location"][r.headers["Location"].index("/v2/"):]
    chunk = (6 << 20) + 1
    off = 0
    for n in range(3):
        path = _patch(a if n != 2 else b, path, data[off:off + chunk], off)
        off += chunk
        if n < 2:
            a.stop(sig=signal.SIGKILL)
            a.start()
        st = requests.get(a.url + path)
        assert st.status_code == 204 and st.headers["Range"] == "0-%d" % (off - 1), (st.status_code, st.headers)
    assert off < len(data)
    path = _patch(a, path, data[off:], off)

    sep = "&" if "?" in path else "?"
    wrong = digest(data + b"x")
    r = requests.put(a.url + path + sep + "digest=" + wrong)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID", r.text
    for z in (a, b):
        for d in (wrong, digest(data)):
            h = requests.head("%s/v2/%s/blobs/%s" % (z.url, repo, d))
            assert h.status_code == 404, (z.url, d, h.status_code)

    # the same bytes again, in one session continued on b after a kill of a: 201
    r = requests.post("%s/v2/%s/blobs/uploads/" % (a.url, repo))
    path = r.headers["Location"][r.headers["Location"].index("/v2/"):]
    path = _patch(a, path, data[:chunk], 0)
    a.stop(sig=signal.SIGKILL)
    path = _patch(b, path, data[chunk:], chunk)
    r = requests.put(b.url + path + ("&" if "?" in path else "?") + "digest=" + digest(data))
    assert r.status_code == 201, r.text
    a.start()
    for z in (a, b):
        g = requests.get("%s/v2/%s/blobs/%s" % (z.url, repo, digest(data)))
        assert g.status_code == 200 and g.content == data, z.url


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
