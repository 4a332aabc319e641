"""End-to-end tests of the OCI blob API: pull with Range, monolithic/streamed/chunked
pushes, upload status and cancel, digest checks, cross-repository mounts, deletes, and a
restart in the middle of a chunked upload."""
import http.client
import os
import urllib.parse

import pytest

from oci_util import Registry, digest, error_code

DATA = os.urandom(300000)


@pytest.fixture
def reg(zinc):
    return Registry(zinc.url)


def test_monolithic_post_and_pull(reg, zinc):
    d = digest(DATA)
    r = reg.s.post("%s/v2/a/b/blobs/uploads/?digest=%s" % (zinc.url, d), data=DATA)
    assert r.status_code == 201
    assert r.headers["Location"] == "/v2/a/b/blobs/" + d
    assert r.headers["Docker-Content-Digest"] == d
    h = reg.s.head(zinc.url + "/v2/a/b/blobs/" + d)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Content-Length"] == str(len(DATA))
    assert h.headers["Docker-Content-Digest"] == d
    assert h.headers["Content-Type"] == "application/octet-stream"
    assert h.headers["Accept-Ranges"] == "bytes"
    g = reg.get("/v2/a/b/blobs/" + d)
    assert g.status_code == 200 and g.content == DATA
    # on disk: zot's layout
    with open(os.path.join(zinc.root, "a/b/blobs/sha256", d[7:]), "rb") as f:
        assert f.read() == DATA
    assert os.path.exists(os.path.join(zinc.root, "a/b/oci-layout"))


def test_post_then_put(reg, zinc):
    loc = reg.start_upload("r")
    d = digest(b"one shot")
    r = reg.s.put(loc + "?digest=" + d, data=b"one shot")
    assert r.status_code == 201 and r.headers["Location"] == "/v2/r/blobs/" + d
    assert reg.get("/v2/r/blobs/" + d).content == b"one shot"


def test_post_session_headers(reg, zinc):
    r = reg.s.post(zinc.url + "/v2/r/blobs/uploads/")
    assert r.status_code == 202
    uuid = r.headers["Docker-Upload-UUID"]
    assert r.headers["Location"] == "/v2/r/blobs/uploads/" + uuid
    assert r.headers["Range"] == "0-0"
    assert os.path.exists(os.path.join(zinc.root, "r/.uploads", uuid))


def test_streamed_patch(reg, zinc):
    loc = reg.start_upload("r")
    for i, part in enumerate((DATA[:1000], DATA[1000:])):
        r = reg.s.patch(loc, data=part)
        assert r.status_code == 202
        assert r.headers["Range"] == "0-%d" % ((1000 if i == 0 else len(DATA)) - 1)
        loc = reg.abs(r.headers["Location"])
    r = reg.s.put(loc + "?digest=" + digest(DATA))
    assert r.status_code == 201
    assert reg.get("/v2/r/blobs/" + digest(DATA)).content == DATA


def test_chunked_out_of_order_and_status(reg, zinc):
    loc = reg.start_upload("r")
    r = reg.s.patch(loc, data=DATA[:100], headers={"Content-Range": "0-99"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99"
    session = reg.abs(r.headers["Location"])
    assert session == loc  # the same URL stays valid after every chunk
    # a chunk that does not start at the current size
    bad = reg.s.patch(loc, data=DATA[150:200], headers={"Content-Range": "150-199"})
    assert bad.status_code == 416
    assert bad.headers["Range"] == "0-99" and reg.abs(bad.headers["Location"]) == loc
    # a retried (already written) chunk
    again = reg.s.patch(loc, data=DATA[:100], headers={"Content-Range": "0-99"})
    assert again.status_code == 416
    # length that disagrees with Content-Range
    assert reg.s.patch(loc, data=DATA[100:150], headers={"Content-Range": "100-199"}).status_code == 416
    # malformed Content-Range
    for cr in ("junk", "100-", "200-100", "bytes=x-y"):
        assert reg.s.patch(loc, data=DATA[100:200], headers={"Content-Range": cr}).status_code == 416, cr
    st = reg.s.get(loc)
    assert st.status_code == 204 and st.headers["Range"] == "0-99"
    assert reg.abs(st.headers["Location"]) == loc
    r = reg.s.patch(loc, data=DATA[100:], headers={"Content-Range": "100-%d" % (len(DATA) - 1)})
    assert r.status_code == 202 and r.headers["Range"] == "0-%d" % (len(DATA) - 1)
    r = reg.s.put(loc + "?digest=" + digest(DATA))
    assert r.status_code == 201
    assert reg.get("/v2/r/blobs/" + digest(DATA)).content == DATA


def test_put_with_final_chunk(reg, zinc):
    loc = reg.start_upload("r")
    reg.s.patch(loc, data=b"abc")
    r = reg.s.put(loc + "?digest=" + digest(b"abcdef"), data=b"def")
    assert r.status_code == 201
    assert reg.get("/v2/r/blobs/" + digest(b"abcdef")).content == b"abcdef"


def test_wrong_digest_stores_nothing(reg, zinc):
    loc = reg.start_upload("r")
    reg.s.patch(loc, data=b"content")
    wrong = digest(b"something else")
    r = reg.s.put(loc + "?digest=" + wrong)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    for d in (wrong, digest(b"content")):
        assert reg.s.head(zinc.url + "/v2/r/blobs/" + d).status_code == 404
    assert reg.s.get(loc).status_code == 404
    assert os.listdir(os.path.join(zinc.root, "r/blobs/sha256")) == []
    # monolithic with a wrong digest
    r = reg.s.post("%s/v2/r/blobs/uploads/?digest=%s" % (zinc.url, wrong), data=b"content")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert os.listdir(os.path.join(zinc.root, "r/blobs/sha256")) == []
    assert os.listdir(os.path.join(zinc.root, "r/.uploads")) == []


def test_bad_digests(reg, zinc):
    for bad in ("sha256:abc", "sha256:" + "A" * 64, "nothex", "sha256:" + "a" * 65, "md5:d41d8cd98f00b204e9800998ecf8427e"):
        r = reg.get("/v2/r/blobs/" + bad)
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", bad
        r = reg.s.post("%s/v2/r/blobs/uploads/?digest=%s" % (zinc.url, bad), data=b"x")
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", bad
    loc = reg.start_upload("r")
    assert error_code(reg.s.put(loc)) == "DIGEST_INVALID"  # no digest at all
    assert reg.s.put(loc + "?digest=sha256:zz").status_code == 400


def test_cancel_and_unknown_sessions(reg, zinc):
    loc = reg.start_upload("r")
    reg.s.patch(loc, data=b"abc")
    assert reg.s.delete(loc).status_code == 204
    r = reg.s.get(loc)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    assert reg.s.patch(loc, data=b"x").status_code == 404
    for uuid in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "..%2f..%2fetc"):
        r = reg.get("/v2/r/blobs/uploads/" + uuid)
        assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN", uuid
    # a session of one repository is unknown in another
    loc = reg.start_upload("r")
    assert reg.s.get(loc.replace("/v2/r/", "/v2/other/")).status_code == 404


def test_range_requests(reg, zinc):
    d = reg.push_blob("r", DATA)
    url = zinc.url + "/v2/r/blobs/" + d
    r = reg.s.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == DATA[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/%d" % len(DATA)
    assert r.headers["Content-Length"] == "10"
    r = reg.s.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == DATA[-5:]
    r = reg.s.get(url, headers={"Range": "bytes=299990-"})
    assert r.status_code == 206 and r.content == DATA[299990:]
    for bad in ("bytes=%d-" % len(DATA), "bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=x-"):
        r = reg.s.get(url, headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["Content-Range"] == "bytes */%d" % len(DATA)


def test_large_blob_streams(reg, zinc):
    big = os.urandom(24 << 20)  # above h2o's file-backed body threshold and many read chunks
    d = reg.push_blob("big", big)
    r = reg.get("/v2/big/blobs/" + d, stream=True)
    got = b"".join(r.iter_content(1 << 20))
    assert digest(got) == d


def test_mount(reg, zinc):
    d = reg.push_blob("src", b"mounted")
    r = reg.s.post("%s/v2/dst/blobs/uploads/?mount=%s&from=src" % (zinc.url, d))
    assert r.status_code == 201 and r.headers["Location"] == "/v2/dst/blobs/" + d
    assert reg.get("/v2/dst/blobs/" + d).content == b"mounted"
    a = os.stat(os.path.join(zinc.root, "src/blobs/sha256", d[7:]))
    b = os.stat(os.path.join(zinc.root, "dst/blobs/sha256", d[7:]))
    assert a.st_ino == b.st_ino  # dedupe: a hard link, not a copy
    # unknown blob or source: a session instead
    r = reg.s.post("%s/v2/dst2/blobs/uploads/?mount=%s&from=src" % (zinc.url, digest(b"nope")))
    assert r.status_code == 202 and "Docker-Upload-UUID" in r.headers
    r = reg.s.post("%s/v2/dst2/blobs/uploads/?mount=%s&from=nosuch" % (zinc.url, d))
    assert r.status_code == 202
    # without from: found through the dedupe index (storage.mountWithoutFrom defaults to true)
    r = reg.s.post("%s/v2/dst3/blobs/uploads/?mount=%s" % (zinc.url, d))
    assert r.status_code == 201
    # bad mount arguments: a session too (the spec's fallback)
    r = reg.s.post("%s/v2/dst4/blobs/uploads/?mount=sha256:bad&from=src" % zinc.url)
    assert r.status_code == 202 and "Docker-Upload-UUID" in r.headers


def test_mount_without_from_disabled(zinc_factory):
    z = zinc_factory({"storage": {"mountWithoutFrom": False}})
    reg = Registry(z.url)
    d = reg.push_blob("src", b"mounted")
    r = reg.s.post("%s/v2/dst/blobs/uploads/?mount=%s" % (z.url, d))
    assert r.status_code == 202
    r = reg.s.post("%s/v2/dst/blobs/uploads/?mount=%s&from=src" % (z.url, d))
    assert r.status_code == 201


def test_blob_delete(reg, zinc):
    d = reg.push_blob("r", b"to delete")
    assert reg.s.delete(zinc.url + "/v2/r/blobs/" + d).status_code == 202
    r = reg.get("/v2/r/blobs/" + d)
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"
    assert reg.s.delete(zinc.url + "/v2/r/blobs/" + d).status_code == 404
    r = reg.get("/v2/nosuchrepo/blobs/" + d)
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_empty_blob(reg, zinc):
    d = reg.push_blob("r", b"")
    r = reg.get("/v2/r/blobs/" + d)
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "0"


def test_restart_mid_chunked_upload(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("r/restart")
    r = reg.s.patch(loc, data=DATA[:120000], headers={"Content-Range": "0-119999"})
    assert r.status_code == 202
    zinc.restart()
    reg = Registry(zinc.url)
    st = reg.s.get(loc)
    assert st.status_code == 204 and st.headers["Range"] == "0-119999"
    r = reg.s.patch(loc, data=DATA[120000:], headers={"Content-Range": "120000-%d" % (len(DATA) - 1)})
    assert r.status_code == 202
    r = reg.s.put(loc + "?digest=" + digest(DATA))
    assert r.status_code == 201
    assert reg.get("/v2/r/restart/blobs/" + digest(DATA)).content == DATA


def test_status_right_after_a_refused_chunk(zinc):
    # the session is released before the 416 goes out: a status query on another kept-alive
    # connection (maybe served by another worker) right after must not find it busy
    reg = Registry(zinc.url)
    conns = [http.client.HTTPConnection(zinc.hostport, timeout=30) for _ in range(4)]
    try:
        for i in range(300):
            loc = urllib.parse.urlsplit(reg.start_upload("race")).path
            a, b = conns[i % 2], conns[2 + i % 2]
            a.request("PATCH", loc, body=b"abc", headers={"Content-Range": "5-7"})
            r = a.getresponse()
            r.read()
            assert r.status == 416
            b.request("GET", loc)
            st = b.getresponse()
            body = st.read()
            assert st.status == 204 and st.getheader("Range") == "0-0", body
    finally:
        for c in conns:
            c.close()
