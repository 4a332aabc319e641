"""Spec clauses an external conformance run or a real client relies on that the replayed Go
suite (test_conformance.py) does not pin down itself: the distribution-spec v1.1 text
(spec.md: "Pushing a blob in chunks", "Mounting a blob", "Pushing Manifests", "Listing
Tags", "Listing Referrers", "Content Management", the endpoint table) and the manifest
shapes that newer revisions of conformance/setup.go push (empty JSON config, custom and
non-gzip layer media types, a subject plus annotations, a 4 MiB layer). Each test names the
clause it checks; each runs on its own fresh zinc.
"""
import hashlib

import pytest

import conformance_util as cu
from conformance_util import digest, relative_location
from conftest import STORAGE_S3

R = "conf/spec"
OCTET = {"Content-Type": "application/octet-stream"}
# Tries at a race whose window is a few microseconds, and rounds of read-after-write. On S3
# every request costs several times more (RGW does the work), and the races are in the API
# layer both backends share, so the S3 pass makes fewer tries.
N_RACE = 1000 if STORAGE_S3 else 3000
N_RAW = 50 if STORAGE_S3 else 150


@pytest.fixture
def c(zinc):
    return cu.Client(zinc.url, R)


def push(c, content, name=None):
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=name, params={"digest": digest(content)}, headers=OCTET,
             body=content)
    assert r.status_code == 201, r.text
    return digest(content)


def put_manifest(c, ref, body, media_type=cu.OCI_MANIFEST, name=None):
    return c.do("PUT", "/v2/<name>/manifests/" + ref, name=name, headers={"Content-Type": media_type}, body=body)


def image(c, config=None, layers=(b"layer",), name=None, **kw):
    """Pushes config and layers; returns the manifest bytes (not pushed)."""
    config = config if config is not None else b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}'
    push(c, config, name)
    descs = []
    for layer in layers:
        push(c, layer, name)
        descs.append(cu.descriptor(cu.OCI_LAYER, layer))
    return cu.manifest(cu.descriptor(cu.OCI_CONFIG, config), descs, **kw)


def codes(r):
    return cu.error_codes(r)


# ---------------------------------- base ----------------------------------

def test_base_route(c):
    """Determining Support (end-1): GET /v2/ is 200; every answer, errors included, says
    Docker-Distribution-API-Version: registry/2.0, which Docker-style clients look for."""
    r = c.do("GET", "/v2/")
    assert r.status_code == 200 and r.headers.get("Docker-Distribution-API-Version") == "registry/2.0"
    for method, path in (("GET", "/v2/<name>/blobs/" + digest(b"none")), ("GET", "/v2/<name>/tags/list"),
                         ("GET", "/v2/<name>/manifests/none"), ("POST", "/v2/<name>/blobs/uploads/")):
        r = c.do(method, path)
        assert r.headers.get("Docker-Distribution-API-Version") == "registry/2.0", (method, path, r.headers)


# ---------------------------------- blobs ----------------------------------

def test_chunk_416_carries_range_and_location(c):
    """Chunked upload: an out-of-order chunk is 416, and the session stays usable; GET tells
    where to resume (Location + Range: 0-<end>)."""
    r = c.do("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"})
    loc = relative_location(r)
    r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "0-4"}), body=b"01234")
    assert r.status_code == 202 and r.headers["Range"] == "0-4"
    r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "7-9"}), body=b"789")
    assert r.status_code == 416
    r = c.do("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-4" and r.headers.get("Location"), (r.status_code, r.text)
    r = c.do("PATCH", relative_location(r), headers=dict(OCTET, **{"Content-Range": "5-9"}), body=b"56789")
    assert r.status_code == 202 and r.headers["Range"] == "0-9"
    r = c.do("PUT", relative_location(r), params={"digest": digest(b"0123456789")})
    assert r.status_code == 201
    assert c.do("GET", "/v2/<name>/blobs/" + digest(b"0123456789")).content == b"0123456789"


@pytest.mark.parametrize("bad", ["0-", "-4", "a-b", "4-0", "0-9", "1-5"])
def test_chunk_bad_content_range_rejected(c, bad):
    """Content-Range MUST match ^[0-9]+-[0-9]+$, start at the current size and describe the
    chunk; anything else is refused (416 in the v1.0 text, 400 BLOB_UPLOAD_INVALID also
    seen) and nothing is kept. (zinc also takes the RFC 7233 "bytes=a-b" / "bytes a-b/*"
    spellings some clients send; that leniency is deliberate and not tested against.)"""
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": bad}), body=b"01234")
    assert r.status_code in (400, 416), (bad, r.status_code, r.text)
    r = c.do("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-0", (r.status_code, r.text)


def test_final_chunk_in_put(c):
    """Completed upload: the last chunk MAY come in the closing PUT with its Content-Range."""
    data = b"first-part|second-part"
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"}))
    r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "0-10"}), body=data[:11])
    assert r.status_code == 202
    r = c.do("PUT", relative_location(r), params={"digest": digest(data)},
             headers=dict(OCTET, **{"Content-Range": "11-%d" % (len(data) - 1)}), body=data[11:])
    assert r.status_code == 201, r.text
    assert relative_location(r) == "/v2/%s/blobs/%s" % (R, digest(data))
    assert r.headers.get("Docker-Content-Digest") == digest(data)
    assert c.do("GET", relative_location(r)).content == data


def test_put_without_digest_is_refused(c):
    """The closing PUT MUST include the digest; without it the upload is not complete."""
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    r = c.do("PUT", loc, headers=OCTET, body=b"data")
    assert r.status_code == 400 and codes(r)[:1] in (["DIGEST_INVALID"], ["BLOB_UPLOAD_INVALID"]), r.text
    assert c.do("HEAD", "/v2/<name>/blobs/" + digest(b"data")).status_code == 404


def test_finished_and_cancelled_sessions_are_gone(c):
    """end-13/end-14: a closed or cancelled session answers 404 BLOB_UPLOAD_UNKNOWN."""
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    assert c.do("PUT", loc, params={"digest": digest(b"x")}, headers=OCTET, body=b"x").status_code == 201
    for method in ("GET", "PATCH"):
        r = c.do(method, loc, headers=OCTET, body=b"y" if method == "PATCH" else None)
        assert r.status_code == 404 and codes(r)[:1] == ["BLOB_UPLOAD_UNKNOWN"], (method, r.text)
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    assert c.do("DELETE", loc).status_code == 204
    r = c.do("GET", loc)
    assert r.status_code == 404 and codes(r)[:1] == ["BLOB_UPLOAD_UNKNOWN"]


def test_blob_range_and_errors(c):
    """Pulling blobs: Range SHOULD be supported; unknown digests are 404 BLOB_UNKNOWN."""
    data = bytes(range(256)) * 4
    d = push(c, data)
    r = c.do("GET", "/v2/<name>/blobs/" + d, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/%d" % len(data)
    assert c.do("GET", "/v2/<name>/blobs/" + d, headers={"Range": "bytes=5000-6000"}).status_code == 416
    r = c.do("GET", "/v2/<name>/blobs/" + digest(b"nope"))
    assert r.status_code == 404 and codes(r)[:1] == ["BLOB_UNKNOWN"]
    assert r.json()["errors"][0].get("message")


# ---------------------------------- mount ----------------------------------

def test_mount_201_headers(c):
    """Mounting a blob: 201, Location is the pullable blob URL, Docker-Content-Digest."""
    d = push(c, b"shared layer", name="conf/src")
    r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"mount": d, "from": "conf/src"})
    assert r.status_code == 201, r.text
    assert relative_location(r) == "/v2/%s/blobs/%s" % (R, d)
    assert r.headers.get("Docker-Content-Digest") == d
    assert c.do("GET", relative_location(r)).content == b"shared layer"


@pytest.mark.parametrize("case", ["blob-not-in-from", "from-unknown", "from-invalid", "mount-invalid"])
def test_mount_fallback_is_a_session(c, case):
    """A mount that cannot be done falls back to an upload session (202 + Location); the
    v1.0 text says so explicitly for "invalid repository or digest arguments", v1.1 says
    SHOULD 202, and the session must then work."""
    d = push(c, b"only here", name="conf/src")
    mount, frm = {"blob-not-in-from": (digest(b"elsewhere"), "conf/src"), "from-unknown": (d, "conf/nosuch"),
                  "from-invalid": (d, "../Bad"), "mount-invalid": ("sha256:xyz", "conf/src")}[case]
    r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"mount": mount, "from": frm})
    assert r.status_code == 202, (case, r.status_code, r.text)
    loc = relative_location(r)
    assert loc.startswith("/v2/%s/blobs/uploads/" % R)
    assert c.do("PUT", loc, params={"digest": digest(b"z")}, headers=OCTET, body=b"z").status_code == 201


@pytest.mark.parametrize("automatic", [True, False])
def test_mount_without_from(zinc_factory, automatic):
    """02_push_test.go with OCI_AUTOMATIC_CROSSMOUNT=1 (201) and =0 (202): zinc's
    storage.mountWithoutFrom switch."""
    srv = zinc_factory({"storage": {"mountWithoutFrom": automatic}})
    c = cu.Client(srv.url, R)
    d = push(c, b"findable", name="conf/src")
    r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"mount": d})
    assert r.status_code == (201 if automatic else 202), r.text
    if automatic:
        assert relative_location(r) == "/v2/%s/blobs/%s" % (R, d)
    r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"mount": digest(b"hello world")})
    assert r.status_code == 202 and r.headers.get("Location")


# -------------------------------- manifests --------------------------------

def test_manifest_put_get_headers(c):
    """Pushing Manifests: 201 + Location (+ Docker-Content-Digest equal to the digest);
    pulling: Content-Type is the manifest's type, exact bytes, Content-Length, digest."""
    body = image(c)
    r = put_manifest(c, "v1", body)
    assert r.status_code == 201 and r.headers.get("Location")
    assert r.headers.get("Docker-Content-Digest") == digest(body)
    for method in ("GET", "HEAD"):
        for ref in ("v1", digest(body)):
            g = c.do(method, "/v2/<name>/manifests/" + ref, headers={"Accept": cu.OCI_MANIFEST})
            assert g.status_code == 200
            assert g.headers["Content-Type"] == cu.OCI_MANIFEST
            assert g.headers["Docker-Content-Digest"] == digest(body)
            assert g.headers["Content-Length"] == str(len(body))
            assert g.content == (body if method == "GET" else b"")


def test_manifest_shapes_of_newer_suites(c):
    """setup.go (later revisions): empty JSON config, custom config and layer types, every
    OCI layer media type, subject + annotations, a 4 MiB layer: all are valid manifests."""
    push(c, b"{}")
    empty = cu.descriptor(cu.EMPTY_JSON_TYPE, b"{}")
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    base = image(c, config=cfg)
    assert put_manifest(c, "base", base).status_code == 201
    layer = cu.descriptor(cu.OCI_LAYER, b"layer")
    big = cu.random_blob(4 << 20, 9)
    push(c, big)
    push(c, b"NHL Peanut Butter on my NHL bagel")
    bodies = [
        cu.manifest(empty, [layer]),
        cu.manifest(cu.descriptor("application/vnd.nhl.peanut.butter.bagel", b"NHL Peanut Butter on my NHL bagel"),
                    [layer]),
        cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg), [cu.descriptor(cu.ARTIFACT_TYPE_A,
                                                                      b"NHL Peanut Butter on my NHL bagel")]),
        cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg), [layer], subject=cu.descriptor(cu.OCI_MANIFEST, base)),
        cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg), [layer], annotations={cu.ANNOTATION_KEY: "test annotation"}),
        cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg, inline=True), [cu.descriptor(cu.OCI_LAYER, big)]),
        # testManifestArtifactType: an artifactType and a config typed as a manifest
        cu.manifest(cu.descriptor(cu.OCI_MANIFEST, b"NHL Peanut Butter on my NHL bagel"), [layer],
                    artifact_type=cu.ARTIFACT_TYPE_A),
        # the newest emptyLayerManifest: the empty JSON blob as its only layer
        cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg, inline=True), [empty]),
    ]
    for t in ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.nondistributable.v1.tar",
              "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
              "application/vnd.oci.image.layer.v1.tar+zstd"):
        bodies.append(cu.manifest(cu.descriptor(cu.OCI_CONFIG, cfg, inline=True), [cu.descriptor(t, b"layer")]))
    for body in bodies:
        r = put_manifest(c, digest(body), body)
        assert r.status_code == 201, (body[:300], r.text)
        assert c.do("GET", "/v2/<name>/manifests/" + digest(body)).content == body


def test_manifest_of_almost_4mib(c):
    """Clients and registries SHOULD expect to support manifest pushes of at least 4 MB."""
    body = image(c, annotations={"pad": "x" * (4000 * 1000)})
    r = put_manifest(c, "big", body)
    assert r.status_code == 201, r.text[:300]
    assert c.do("GET", "/v2/<name>/manifests/big").content == body


def test_manifest_errors(c):
    """PUT errors carry the spec's codes: MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN (or the
    older BLOB_UNKNOWN), DIGEST_INVALID for a digest reference that is not the body's."""
    body = image(c)
    r = put_manifest(c, "bad", b"blablabla")
    assert r.status_code == 400 and codes(r)[:1] == ["MANIFEST_INVALID"], r.text
    missing = cu.manifest(cu.descriptor(cu.OCI_CONFIG, b"{}missing"), [])
    r = put_manifest(c, "missing", missing)
    assert r.status_code in (400, 404) and codes(r)[:1] in (["MANIFEST_BLOB_UNKNOWN"], ["BLOB_UNKNOWN"]), r.text
    r = put_manifest(c, digest(b"other"), body)
    assert r.status_code == 400 and codes(r)[:1] in (["DIGEST_INVALID"], ["MANIFEST_INVALID"]), r.text
    for ref in ("bad", "missing", digest(b"other")):  # nothing was stored
        assert c.do("GET", "/v2/<name>/manifests/" + ref).status_code == 404, ref


# ---------------------------------- tags ----------------------------------

def test_tags_link_pagination_walk(c):
    """Listing Tags: n limits, a Link with rel="next" leads on (RFC 5988, URL in <>), no Link
    on the last page; following every Link yields each tag once, in order."""
    body = image(c)
    tags = ["v%d" % i for i in range(7)] + ["Latest", "alpha"]
    for t in tags:
        assert put_manifest(c, t, body).status_code == 201
    url, seen = "/v2/<name>/tags/list?n=3", []
    for _ in range(10):
        r = c.s.get(url) if "://" in url else c.do("GET", url)
        assert r.status_code == 200 and r.json()["name"] == R
        page = r.json()["tags"]
        assert len(page) == 3 or "Link" not in r.headers
        seen += page
        link = r.headers.get("Link")
        if not link:
            break
        assert link.startswith("<") and link.endswith('>; rel="next"'), link
        url = link[1:link.index(">")]
        assert url.startswith("/v2/%s/tags/list?" % R) or "://" in url, link
    assert seen == sorted(tags) or seen == sorted(tags, key=str.lower), seen


def test_tags_n_zero_and_last_only(c):
    """When n is zero: an empty list and no Link; `last` without n lists everything after."""
    body = image(c)
    for t in ("a", "b", "c"):
        put_manifest(c, t, body)
    r = c.do("GET", "/v2/<name>/tags/list", params={"n": 0})
    assert r.status_code == 200 and (r.json().get("tags") or []) == [] and "Link" not in r.headers
    r = c.do("GET", "/v2/<name>/tags/list", params={"last": "a"})
    assert r.json()["tags"] == ["b", "c"]
    r = c.do("GET", "/v2/<name>/tags/list", params={"n": 10})
    assert r.json()["tags"] == ["a", "b", "c"] and "Link" not in r.headers


def test_tags_list_of_a_repo_without_tags(c):
    """"Assuming a repository is found, this request MUST return 200; the list MAY be empty":
    a repository whose last tag was deleted still lists (04_management expects 200)."""
    body = image(c)
    put_manifest(c, "only", body)
    assert c.do("DELETE", "/v2/<name>/manifests/only").status_code == 202
    r = c.do("GET", "/v2/<name>/tags/list")
    assert r.status_code == 200, r.text
    assert (r.json().get("tags") or []) == []
    r = c.do("GET", "/v2/<name>/tags/list", name="conf/nosuch")
    assert r.status_code == 404 and codes(r)[:1] == ["NAME_UNKNOWN"]


# -------------------------------- referrers --------------------------------

def referrers(c, d, name=None, **params):
    r = c.do("GET", "/v2/<name>/referrers/" + d, name=name, params=params or None)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == cu.OCI_INDEX
    body = r.json()
    assert body["schemaVersion"] == 2 and body.get("mediaType", cu.OCI_INDEX) == cu.OCI_INDEX
    return r, {m["digest"]: m for m in body.get("manifests") or []}


def test_referrers_descriptors(c):
    """Listing Referrers: each descriptor has mediaType, digest, size, artifactType (the
    manifest's, else its config mediaType; omitted for an index without one) and the
    referrer's annotations."""
    base = image(c)
    put_manifest(c, "base", base)
    subj = cu.descriptor(cu.OCI_MANIFEST, base)
    push(c, b"{}")
    push(c, b"sig")
    empty = cu.descriptor(cu.EMPTY_JSON_TYPE, b"{}")
    by_type = cu.manifest(empty, [cu.descriptor("application/x.sig", b"sig")], artifact_type="application/x.sig",
                          subject=subj, annotations={"k": "1"})
    by_config = cu.manifest(cu.descriptor("application/x.sbom", b"sig"), [empty], subject=subj)
    idx = cu.index([cu.descriptor(cu.OCI_MANIFEST, by_type)], subject=subj, annotations={"k": "idx"})
    for body, mt in ((by_type, cu.OCI_MANIFEST), (by_config, cu.OCI_MANIFEST), (idx, cu.OCI_INDEX)):
        r = put_manifest(c, digest(body), body, mt)
        assert r.status_code == 201 and r.headers.get("OCI-Subject") == digest(base), r.text
    _, got = referrers(c, digest(base))
    assert got[digest(by_type)] == {"mediaType": cu.OCI_MANIFEST, "digest": digest(by_type), "size": len(by_type),
                                    "artifactType": "application/x.sig", "annotations": {"k": "1"}}
    assert got[digest(by_config)]["artifactType"] == "application/x.sbom"
    assert not got[digest(by_config)].get("annotations")
    assert got[digest(idx)]["mediaType"] == cu.OCI_INDEX and got[digest(idx)]["annotations"] == {"k": "idx"}
    assert "artifactType" not in got[digest(idx)], got[digest(idx)]
    assert len(got) == 3


def test_referrers_filter_and_scope(c):
    """artifactType filter: OCI-Filters-Applied: artifactType and only matches (an empty list
    when none match); referrers are per repository; bad digest syntax is 400."""
    base = image(c)
    put_manifest(c, "base", base)
    push(c, b"{}")
    art = cu.manifest(cu.descriptor(cu.EMPTY_JSON_TYPE, b"{}"), [], artifact_type="application/x.a",
                      subject=cu.descriptor(cu.OCI_MANIFEST, base))
    assert put_manifest(c, digest(art), art).status_code == 201
    push(c, b"{}", name="conf/other")
    assert put_manifest(c, digest(art), art, name="conf/other").status_code == 201
    r, got = referrers(c, digest(base), artifactType="application/x.a")
    assert r.headers.get("OCI-Filters-Applied") == "artifactType" and list(got) == [digest(art)]
    r, got = referrers(c, digest(base), artifactType="application/x.none")
    assert r.headers.get("OCI-Filters-Applied") == "artifactType" and got == {}
    assert c.do("DELETE", "/v2/<name>/manifests/" + digest(art), name="conf/other").status_code == 202
    assert list(referrers(c, digest(base))[1]) == [digest(art)]
    r = c.do("GET", "/v2/<name>/referrers/sha256:totallywrong")
    assert r.status_code == 400, r.text


# -------------------------------- deletes --------------------------------

def test_delete_manifest_removes_tags(c):
    """Deleting Manifests: 202; afterwards the digest and every tag pointing to it are 404;
    a second delete is 404."""
    body = image(c)
    for t in ("one", "two"):
        put_manifest(c, t, body)
    assert c.do("DELETE", "/v2/<name>/manifests/" + digest(body)).status_code == 202
    for ref in ("one", "two", digest(body)):
        r = c.do("GET", "/v2/<name>/manifests/" + ref)
        assert r.status_code == 404 and codes(r)[:1] == ["MANIFEST_UNKNOWN"], ref
    assert c.do("DELETE", "/v2/<name>/manifests/" + digest(body)).status_code == 404
    r = c.do("DELETE", "/v2/<name>/manifests/" + digest(body), name="conf/nosuch")
    assert r.status_code == 404


def test_delete_blob(c):
    """Deleting Blobs: 202, then 404 on HEAD/GET; a missing blob is 404 BLOB_UNKNOWN."""
    d = push(c, b"to delete")
    assert c.do("DELETE", "/v2/<name>/blobs/" + d).status_code == 202
    assert c.do("HEAD", "/v2/<name>/blobs/" + d).status_code == 404
    r = c.do("DELETE", "/v2/<name>/blobs/" + d)
    assert r.status_code == 404 and codes(r)[:1] == ["BLOB_UNKNOWN"], r.text


def test_streamed_patch_with_chunked_transfer_encoding(c):
    """Streamed upload as Docker/containerd send it: PATCH bodies of unknown length
    (Transfer-Encoding: chunked, no Content-Range), then a PUT with the digest."""
    parts = [b"a" * 70000, b"b" * 5, b"c" * 130000]
    data = b"".join(parts)
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    r = c.do("PATCH", loc, headers=OCTET, body=iter(parts[:2]))
    assert r.status_code == 202 and r.headers["Range"] == "0-%d" % (len(parts[0]) + len(parts[1]) - 1), r.text
    r = c.do("PATCH", relative_location(r), headers=OCTET, body=iter(parts[2:]))
    assert r.status_code == 202 and r.headers["Range"] == "0-%d" % (len(data) - 1), r.text
    r = c.do("PUT", relative_location(r), params={"digest": digest(data)}, body=iter([b""]))
    assert r.status_code == 201, r.text
    assert c.do("GET", "/v2/<name>/blobs/" + digest(data)).content == data


def test_manifest_content_type_parameters_ignored(c):
    """Pushing Manifests: "The registry SHOULD ignore parameters on the Content-Type header"."""
    body = image(c)
    r = put_manifest(c, "withparam", body, media_type=cu.OCI_MANIFEST + "; charset=utf-8")
    assert r.status_code == 201, r.text
    g = c.do("GET", "/v2/<name>/manifests/withparam")
    assert g.status_code == 200 and g.headers["Content-Type"] == cu.OCI_MANIFEST and g.content == body


@pytest.mark.parametrize("how", ["post", "post-put", "chunked"])
def test_sha512_blobs(c, how):
    """Digests: sha512 is a registered algorithm (image-spec descriptor.md); a registry
    taking it must verify and serve it under that digest."""
    data = b"sha512 content " * 100
    d = "sha512:" + hashlib.sha512(data).hexdigest()
    if how == "post":
        r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"digest": d}, headers=OCTET, body=data)
    else:
        loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
        if how == "chunked":
            r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "0-%d" % (len(data) - 1)}), body=data)
            assert r.status_code == 202
            loc, data_put = relative_location(r), None
        else:
            data_put = data
        r = c.do("PUT", loc, params={"digest": d}, headers=OCTET, body=data_put)
    assert r.status_code == 201, r.text
    assert relative_location(r) == "/v2/%s/blobs/%s" % (R, d)
    g = c.do("GET", "/v2/<name>/blobs/" + d)
    assert g.status_code == 200 and g.content == data and g.headers.get("Docker-Content-Digest") == d
    bad = "sha512:" + hashlib.sha512(b"other").hexdigest()
    r = c.do("POST", "/v2/<name>/blobs/uploads/", params={"digest": bad}, headers=OCTET, body=data)
    assert r.status_code == 400 and codes(r)[:1] == ["DIGEST_INVALID"], r.text


def test_status_right_after_416_is_204(c):
    """"To get the current status after a 416 error, issue a GET request to <location>; the
    response to an active upload MUST be 204": a client that asks at once, on a new
    connection, must not find the session still held by the refused PATCH. Repeated, as
    the window is small."""
    loc = relative_location(c.do("POST", "/v2/<name>/blobs/uploads/"))
    r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "0-2"}), body=b"abc")
    assert r.status_code == 202
    bad = []
    for i in range(N_RACE):
        r = c.do("PATCH", loc, headers=dict(OCTET, **{"Content-Range": "10-12"}), body=b"xyz")
        assert r.status_code == 416
        g = c.do("GET", loc)
        if g.status_code != 204:
            bad.append((i, g.status_code, g.text))
    assert not bad, "%d of %d status queries right after a 416 failed, first: %r" % (len(bad), N_RACE, bad[0])


def test_read_after_write_is_immediate(c):
    """setup.go deleteManifest GETs right after the DELETE and wants 404; pushes are pulled
    right after their 201. Every answer must already be true when it is sent, on any
    connection."""
    base = image(c)
    bad = []
    for i in range(N_RAW):
        body = base.replace(b'"schemaVersion": 2', b'"schemaVersion": 2, "n": %d' % i, 1)
        if put_manifest(c, "t%d" % i, body).status_code != 201:
            bad.append(("put", i))
        if c.do("GET", "/v2/<name>/manifests/t%d" % i).status_code != 200:
            bad.append(("get after put", i))
        if c.do("DELETE", "/v2/<name>/manifests/t%d" % i).status_code != 202:
            bad.append(("delete tag", i))
        if c.do("GET", "/v2/<name>/manifests/t%d" % i).status_code != 404:
            bad.append(("get after tag delete", i))
        if c.do("DELETE", "/v2/<name>/manifests/" + digest(body)).status_code != 202:
            bad.append(("delete digest", i))
        if c.do("GET", "/v2/<name>/manifests/" + digest(body)).status_code != 404:
            bad.append(("get after digest delete", i))
        d = push(c, b"blob %d" % i)
        if c.do("HEAD", "/v2/<name>/blobs/" + d).status_code != 200:
            bad.append(("head after push", i))
        if c.do("DELETE", "/v2/<name>/blobs/" + d).status_code != 202:
            bad.append(("delete blob", i))
        if c.do("HEAD", "/v2/<name>/blobs/" + d).status_code != 404:
            bad.append(("head after blob delete", i))
    assert not bad, bad[:10]
