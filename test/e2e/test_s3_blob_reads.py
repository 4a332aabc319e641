"""Blob GETs streamed from S3 (issue 14 point 2): zinc reads a blob in 2 MiB ranged GETs and
reads chunk k+1 while the client receives chunk k (api/blobs.c). These check the bytes of
every shape of that pipeline: whole blobs of one chunk, of several chunks with a short
last one, ranges that start and end inside chunks and across their boundaries, HEAD, and
a blob whose bytes in the bucket no longer match its digest (replaced behind zinc's back):
the response must be cut off, never completed with bad bytes, and the blob not served again.

Skipped unless run under test/s3/rgw.py (ctest's e2e_s3_test_s3_blob_reads entry does)."""
import hashlib
import os
import sys

import pytest
import requests

from conftest import REPO, S3_ENV
from oci_util import Registry

sys.path.insert(0, os.path.join(REPO, "test", "s3"))
import rgw  # noqa: E402

CHUNK = 2 << 20


@pytest.fixture
def s3_reg(s3_zinc_factory):
    z = s3_zinc_factory()
    return z, Registry(z.url)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345])
def test_whole_blob(s3_reg, size):
    z, reg = s3_reg
    data = os.urandom(size)
    d = reg.push_blob("reads/whole", data)
    r = requests.get("%s/v2/reads/whole/blobs/%s" % (z.url, d))
    assert r.status_code == 200 and r.headers["Content-Length"] == str(size)
    assert len(r.content) == size and sha(r.content) == d
    h = requests.head("%s/v2/reads/whole/blobs/%s" % (z.url, d))
    assert h.status_code == 200 and h.headers["Content-Length"] == str(size) and h.content == b""


def test_ranges_across_chunks(s3_reg):
    z, reg = s3_reg
    data = os.urandom(4 * CHUNK + 777)
    d = reg.push_blob("reads/ranges", data)
    n = len(data)
    for first, last in ((0, 0), (5, CHUNK - 1), (CHUNK - 3, CHUNK + 2), (1000, 3 * CHUNK + 5), (CHUNK, n - 1),
                        (n - 1, n - 1), (3, n - 1)):
        r = requests.get("%s/v2/reads/ranges/blobs/%s" % (z.url, d), headers={"Range": "bytes=%d-%d" % (first, last)})
        assert r.status_code == 206, (first, last, r.status_code)
        assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (first, last, n)
        assert r.content == data[first:last + 1], (first, last)
    r = requests.get("%s/v2/reads/ranges/blobs/%s" % (z.url, d), headers={"Range": "bytes=%d-" % (n - CHUNK - 9)})
    assert r.status_code == 206 and r.content == data[n - CHUNK - 9:]


def test_replaced_bytes_are_never_served(s3_reg):
    z, reg = s3_reg
    data = os.urandom(3 * CHUNK + 10)
    d = reg.push_blob("reads/bad", data)
    bucket = z.config["storage"]["storageDriver"]["bucket"]
    root = z.config["storage"]["storageDriver"]["rootdirectory"]
    path = "/%s/%s/reads/bad/blobs/sha256/%s" % (bucket, root, d.split(":", 1)[1])
    env = S3_ENV
    status, _ = rgw.sigv4_get(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], path)
    assert status == 200, "the blob is not at the key of zot's S3 layout: " + path
    bad = bytearray(data)
    bad[-5] ^= 0xFF  # same size, one byte changed in the last chunk
    status, _ = rgw.sigv4_request(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], "PUT", path, bytes(bad))
    assert status == 200
    got = b""
    try:  # the connection is closed early (urllib3 may or may not call that an error)
        with requests.get("%s/v2/reads/bad/blobs/%s" % (z.url, d), stream=True) as r:
            assert r.status_code == 200  # the headers went out before the last chunk was read
            assert r.headers["Content-Length"] == str(len(data))
            for piece in r.iter_content(65536):
                got += piece
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        pass
    assert len(got) < len(data)  # cut off before the end: the client never gets a whole bad blob
    assert got == bytes(bad[:len(got)])
    # quarantined: not served again
    r = requests.get("%s/v2/reads/bad/blobs/%s" % (z.url, d))
    assert r.status_code == 404, r.status_code
