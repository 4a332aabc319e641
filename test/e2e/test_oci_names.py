"""Repository names made of the spec's own path words (`bench/blobs`, `team/manifests/app`,
`x/blobs/uploads`, ...) on every route, names that collide with another repository's
layout (`x/blobs` next to `x`), and tagging on a PUT by digest (`?tag=a&tag=b`, OCI-Tag;
distribution-spec 1.1.1) including sha512 manifests. The routing rule is in api/api.c,
the collision rule in storage/repo.c.
"""
import hashlib
import os
import time

import pytest

import conformance_util as cu
from conformance_util import digest, relative_location
from conftest import SLOW

OCTET = {"Content-Type": "application/octet-stream"}
MAX_NAME = "/".join(["a__b--c.d", "blobs", "uploads", "manifests", "tags", "list", "referrers"] * 5)[:240]
MAX_NAME = MAX_NAME.rstrip("/").ljust(255, "z")  # 255 bytes, the last component padded

TRICKY = ["bench/blobs", "blobs", "blobs/uploads", "x/blobs/uploads", "team/manifests/app", "t/tags/list",
          "tags/list", "a/referrers", "m/manifests", "a__b/c--d.e_f", MAX_NAME]


def test_max_name_is_valid_and_long():
    assert len(MAX_NAME) == 255 and not MAX_NAME.endswith("/") and "//" not in MAX_NAME


@pytest.fixture
def c(zinc):
    return cu.Client(zinc.url, "unused")


def push(c, name, content):
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=name, params={"digest": digest(content)}, headers=OCTET,
             body=content)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v2/%s/blobs/%s" % (name, digest(content))
    return digest(content)


def image(c, name, layer=b"layer", **kw):
    config = b'{"architecture":"amd64","os":"linux"}'
    push(c, name, config)
    push(c, name, layer)
    return cu.manifest(cu.descriptor(cu.OCI_CONFIG, config), [cu.descriptor(cu.OCI_LAYER, layer)], **kw)


def put_manifest(c, name, ref, body, params=None):
    return c.do("PUT", "/v2/<name>/manifests/" + ref, name=name, params=params,
                headers={"Content-Type": cu.OCI_MANIFEST}, body=body)


def oci_tags(r):
    return r.raw.headers.getlist("OCI-Tag")


@pytest.mark.parametrize("name", TRICKY)
def test_every_route_on_a_tricky_name(c, name):
    # chunked upload: POST, PATCH, GET status, PUT, on session URLs inside the name
    chunk = b"chunked-content"
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=name)
    assert r.status_code == 202, r.text
    loc = relative_location(r)
    assert loc.startswith("/v2/%s/blobs/uploads/" % name)
    r = c.do("PATCH", loc, headers={"Content-Type": "application/octet-stream", "Content-Range": "0-%d" % (len(chunk) - 1)},
             body=chunk)
    assert r.status_code == 202, r.text
    loc = relative_location(r)
    r = c.do("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-%d" % (len(chunk) - 1)
    r = c.do("PUT", loc, params={"digest": digest(chunk)}, headers=OCTET)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v2/%s/blobs/%s" % (name, digest(chunk))
    # a cancelled session
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=name)
    loc = relative_location(r)
    assert c.do("DELETE", loc).status_code == 204
    assert c.do("GET", loc).status_code == 404
    # blobs
    r = c.do("GET", "/v2/<name>/blobs/" + digest(chunk), name=name)
    assert r.status_code == 200 and r.content == chunk
    assert c.do("HEAD", "/v2/<name>/blobs/" + digest(chunk), name=name).headers["Docker-Content-Digest"] == digest(chunk)
    # manifests, tags, referrers
    m = image(c, name)
    r = put_manifest(c, name, "v1", m)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v2/%s/manifests/%s" % (name, digest(m))
    r = c.do("GET", "/v2/<name>/manifests/v1", name=name, headers={"Accept": cu.OCI_MANIFEST})
    assert r.status_code == 200 and r.content == m
    art = cu.manifest(cu.descriptor("application/vnd.example+type", b"{}"), [], artifact_type="application/x-test",
                      subject=cu.descriptor(cu.OCI_MANIFEST, m))
    push(c, name, b"{}")
    r = put_manifest(c, name, digest(art), art)
    assert r.status_code == 201 and r.headers.get("OCI-Subject") == digest(m), r.text
    r = c.do("GET", "/v2/<name>/referrers/" + digest(m), name=name)
    assert r.status_code == 200 and [d["digest"] for d in r.json()["manifests"]] == [digest(art)]
    r = c.do("GET", "/v2/<name>/tags/list", name=name)
    assert r.status_code == 200 and r.json() == {"name": name, "tags": ["v1"]}
    # cross-repository mount into and out of the tricky name
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name="plain/copy", params={"mount": digest(chunk), "from": name})
    assert r.status_code == 201 and r.headers["Location"] == "/v2/plain/copy/blobs/" + digest(chunk)
    # catalog
    r = c.do("GET", "/v2/_catalog")
    assert r.status_code == 200 and r.json()["repositories"] == sorted([name, "plain/copy"])
    # deletes
    assert c.do("DELETE", "/v2/<name>/manifests/" + digest(art), name=name).status_code == 202
    assert c.do("DELETE", "/v2/<name>/blobs/" + digest(chunk), name=name).status_code == 202
    assert c.do("GET", "/v2/<name>/blobs/" + digest(chunk), name=name).status_code == 404
    assert c.do("GET", "/v2/<name>/manifests/v1", name=name).status_code == 200


def test_all_tricky_names_side_by_side(c, zinc):
    """The catalog walk lists each of them once and never a repository's blobs directory."""
    for name in TRICKY:
        assert put_manifest(c, name, "v1", image(c, name, layer=name.encode())).status_code == 201
    r = c.do("GET", "/v2/_catalog")
    assert r.json()["repositories"] == sorted(TRICKY)
    for name in TRICKY:
        assert os.path.isfile(os.path.join(zinc.root, name, "oci-layout"))
        r = c.do("GET", "/v2/<name>/blobs/" + digest(name.encode()), name=name)
        assert r.status_code == 200 and r.content == name.encode()


@pytest.mark.parametrize("name", ["a/blobs/", "/a", "A/blobs", "a//blobs", "a/%2e%2e/b", "a/.uploads", "a..b", "a__",
                                  "_catalog/x", MAX_NAME + "z"])
def test_invalid_names_refused(c, name):
    """(requests itself folds "a/../b" away, so dot segments go percent-encoded.)"""
    r = c.do("POST", "/v2/" + name + "/blobs/uploads/")
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert cu.error_codes(r) == ["NAME_INVALID"]


def listing(root):
    # the startup dedupe-index rebuild writes under .zinc/ on its own thread, in its own time:
    # wait for its end (the .complete mark, its last file) so that only requests change the tree
    deadline = time.time() + 30 * SLOW
    dedupe = os.path.join(root, ".zinc", "dedupe")
    while os.path.isdir(dedupe) and not os.path.exists(os.path.join(dedupe, ".complete")):
        assert time.time() < deadline, "the dedupe index rebuild never finished"
        time.sleep(0.05)
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.mark.parametrize("nested", ["x/blobs", "x/blobs/sha256", "x/blobs/sha512", "x/index.json", "x/oci-layout",
                                    "x/blobs/q"])
def test_name_inside_a_repository_layout_refused(c, zinc, nested):
    m = image(c, "x")
    assert put_manifest(c, "x", "v1", m).status_code == 201
    before = listing(os.path.join(zinc.root, "x"))
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=nested)
    assert r.status_code == 400 and cu.error_codes(r) == ["NAME_INVALID"], r.text
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=nested, params={"digest": digest(b"z")}, headers=OCTET, body=b"z")
    assert r.status_code == 400 and cu.error_codes(r) == ["NAME_INVALID"], r.text
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=nested, params={"mount": digest(b"layer"), "from": "x"})
    assert r.status_code == 400 and cu.error_codes(r) == ["NAME_INVALID"], r.text
    assert put_manifest(c, nested, "v1", m).status_code in (400, 404)
    assert c.do("GET", "/v2/<name>/tags/list", name=nested).status_code == 404
    assert listing(os.path.join(zinc.root, "x")) == before
    assert c.do("GET", "/v2/_catalog").json()["repositories"] == ["x"]
    r = c.do("GET", "/v2/x/manifests/v1", headers={"Accept": cu.OCI_MANIFEST})
    assert r.status_code == 200 and r.content == m
    assert c.do("GET", "/v2/x/blobs/" + digest(b"layer")).content == b"layer"


@pytest.mark.parametrize("nested,parent", [("y/blobs", "y"), ("y/blobs/sha256", "y"), ("y/index.json", "y"),
                                           ("y/z/blobs", None)])
def test_repository_over_a_nested_one_refused(c, zinc, nested, parent):
    m = image(c, nested)
    assert put_manifest(c, nested, "v1", m).status_code == 201
    before = listing(zinc.root)
    if parent is None:  # y/z is no repository: y is free, and neither layout touches the other
        assert put_manifest(c, "y", "v1", image(c, "y")).status_code == 201
        assert c.do("GET", "/v2/_catalog").json()["repositories"] == sorted(["y", nested])
    else:
        r = c.do("POST", "/v2/<name>/blobs/uploads/", name=parent)
        assert r.status_code == 400 and cu.error_codes(r) == ["NAME_INVALID"], r.text
        assert listing(zinc.root) == before
        assert c.do("GET", "/v2/_catalog").json()["repositories"] == [nested]
    r = c.do("GET", "/v2/<name>/manifests/v1", name=nested, headers={"Accept": cu.OCI_MANIFEST})
    assert r.status_code == 200 and r.content == m


# ------------------------------ ?tag= on PUT ------------------------------

def test_put_by_digest_with_tags(c):
    m = image(c, "team/manifests/app")
    r = put_manifest(c, "team/manifests/app", digest(m), m, params=[("tag", "a"), ("tag", "b"), ("tag", "a")])
    assert r.status_code == 201, r.text
    assert oci_tags(r) == ["a", "b"]
    assert r.headers["Docker-Content-Digest"] == digest(m)
    assert r.headers["Location"] == "/v2/team/manifests/app/manifests/" + digest(m)
    assert c.do("GET", "/v2/team/manifests/app/tags/list").json()["tags"] == ["a", "b"]
    for t in ("a", "b"):
        r = c.do("GET", "/v2/team/manifests/app/manifests/" + t, headers={"Accept": cu.OCI_MANIFEST})
        assert r.headers["Docker-Content-Digest"] == digest(m) and r.content == m


def test_put_by_tag_with_more_tags(c):
    m = image(c, "r")
    r = put_manifest(c, "r", "v1", m, params=[("tag", "v2")])
    assert r.status_code == 201 and oci_tags(r) == ["v1", "v2"]
    assert c.do("GET", "/v2/r/tags/list").json()["tags"] == ["v1", "v2"]


@pytest.mark.parametrize("bad", ["-x", ".x", "a/b", "x" * 129, "", "a%20b"])
def test_put_with_an_invalid_tag_stores_nothing(c, bad):
    m = image(c, "r")
    assert put_manifest(c, "r", "keep", m).status_code == 201
    other = image(c, "r", layer=b"other")
    url = "/v2/r/manifests/%s?tag=good&tag=%s" % (digest(other), bad)
    r = c.do("PUT", url, headers={"Content-Type": cu.OCI_MANIFEST}, body=other)
    assert r.status_code == 400 and cu.error_codes(r) == ["TAG_INVALID"], r.text
    assert not oci_tags(r)
    assert c.do("GET", "/v2/r/tags/list").json()["tags"] == ["keep"]
    assert c.do("HEAD", "/v2/r/manifests/" + digest(other)).status_code == 404


def test_sha512_manifest_by_digest_with_tags(c, zinc):
    m = image(c, "a/referrers")
    d512 = "sha512:" + hashlib.sha512(m).hexdigest()
    r = put_manifest(c, "a/referrers", d512, m, params=[("tag", "s1"), ("tag", "s2")])
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d512 and oci_tags(r) == ["s1", "s2"]
    assert r.headers["Location"] == "/v2/a/referrers/manifests/" + d512
    assert os.path.isfile(os.path.join(zinc.root, "a/referrers/blobs/sha512", d512[7:]))
    for ref in (d512, "s1", "s2"):
        r = c.do("GET", "/v2/a/referrers/manifests/" + ref, headers={"Accept": cu.OCI_MANIFEST})
        assert r.status_code == 200 and r.content == m and r.headers["Docker-Content-Digest"] == d512
    wrong = "sha512:" + hashlib.sha512(m + b" ").hexdigest()
    r = put_manifest(c, "a/referrers", wrong, m, params=[("tag", "s3")])
    assert r.status_code == 400 and cu.error_codes(r) == ["DIGEST_INVALID"]
    assert c.do("GET", "/v2/a/referrers/tags/list").json()["tags"] == ["s1", "s2"]
