"""End-to-end tests of OCI manifests, tags, catalog, referrers and deletes: every media
type, validation failures that must store nothing, pagination, names and traversal."""
import json
import os

import pytest

from oci_util import (DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Registry, canon,
                      digest, error_code, raw_request)


@pytest.fixture
def reg(zinc):
    return Registry(zinc.url)


def index_json(zinc, repo):
    with open(os.path.join(zinc.root, repo, "index.json"), "rb") as f:
        return f.read()


def snapshot(zinc):
    """Every file under the root except zinc's own dot-directory, with its content."""
    out = {}
    for dirpath, dirs, files in os.walk(zinc.root):
        dirs[:] = [d for d in dirs if d != ".zinc"]
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, f), zinc.root)] = fh.read()
    return out


def test_oci_manifest_roundtrip(reg, zinc):
    body, d = reg.push_image("lib/app", "v1", [b"layer-one", b"layer-two"])
    r = reg.get("/v2/lib/app/manifests/v1")
    assert r.status_code == 200 and r.content == body
    assert r.headers["Content-Type"] == OCI_MANIFEST
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Content-Length"] == str(len(body))
    h = reg.s.head(zinc.url + "/v2/lib/app/manifests/v1")
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Content-Length"] == str(len(body)) and h.headers["Docker-Content-Digest"] == d
    assert reg.get("/v2/lib/app/manifests/" + d).content == body
    idx = json.loads(index_json(zinc, "lib/app"))
    assert idx["schemaVersion"] == 2
    assert idx["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
                                 "annotations": {"org.opencontainers.image.ref.name": "v1"}}]
    with open(os.path.join(zinc.root, "lib/app/blobs/sha256", d[7:]), "rb") as f:
        assert f.read() == body


def test_put_response_headers_and_exact_bytes(reg, zinc):
    cfg = reg.push_blob("r", b"{}")
    # unusual formatting and unknown fields must be kept byte for byte
    body = ('{ "schemaVersion" : 2,\n "mediaType": "%s", "config": {"mediaType": "%s", "digest": "%s", "size": 2},'
            ' "layers": [], "x-extra": {"z": [1, 2.5, null]} }\n' % (OCI_MANIFEST, OCI_CONFIG, cfg)).encode()
    r = reg.put_manifest("r", "fmt", body)
    assert r.status_code == 201
    assert r.headers["Location"] == "/v2/r/manifests/" + digest(body)
    assert r.headers["Docker-Content-Digest"] == digest(body)
    assert "OCI-Subject" not in r.headers
    assert reg.get("/v2/r/manifests/fmt").content == body


def test_put_by_digest(reg, zinc):
    cfg = reg.push_blob("r", b"{}")
    body = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": OCI_CONFIG, "digest": cfg, "size": 2}, "layers": []})
    r = reg.put_manifest("r", digest(body), body)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest(body)
    assert reg.get("/v2/r/manifests/" + digest(body)).content == body
    before = index_json(zinc, "r")
    r = reg.put_manifest("r", digest(b"other"), body)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert index_json(zinc, "r") == before
    r = reg.put_manifest("r", "sha256:short", body)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    tags = reg.get("/v2/r/tags/list").json()
    assert tags == {"name": "r", "tags": []}


def test_docker_schema2_and_lists(reg, zinc):
    body, d = reg.push_image("d", "s2", [b"docker-layer"], docker=True)
    r = reg.get("/v2/d/manifests/s2", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Content-Type"] == DOCKER_MANIFEST and r.content == body
    oci_body, oci_d = reg.push_image("d", "oci", [b"oci-layer"])
    for mt, name in ((DOCKER_LIST, "list"), (OCI_INDEX, "index")):
        lst = canon({"schemaVersion": 2, "mediaType": mt, "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": d, "size": len(body),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": oci_d, "size": len(oci_body),
             "platform": {"architecture": "arm64", "os": "linux"}}]})
        r = reg.put_manifest("d", name, lst, mt)
        assert r.status_code == 201, r.text
        g = reg.get("/v2/d/manifests/" + name)
        assert g.headers["Content-Type"] == mt and g.content == lst
    # Content-Type absent: the body's mediaType decides
    r = reg.put_manifest("d", "noct", lst, None)
    assert r.status_code == 201
    assert reg.get("/v2/d/manifests/noct").headers["Content-Type"] == OCI_INDEX


def test_invalid_manifests_store_nothing(reg, zinc):
    cfg = reg.push_blob("r", b"{}")
    reg.push_image("r", "keep", [b"l"])
    missing = digest(b"missing")

    def m(**kw):
        base = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": cfg, "size": 2}, "layers": []}
        base.update(kw)
        return canon(base)

    cases = [
        (b"not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[1,2]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(schemaVersion=1), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(schemaVersion="2"), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(mediaType=DOCKER_MANIFEST), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(mediaType="text/plain"), "text/plain", "MANIFEST_INVALID"),
        (m(config={"mediaType": OCI_CONFIG, "digest": "sha256:nothex", "size": 2}), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(config={"mediaType": OCI_CONFIG, "digest": cfg, "size": -1}), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(layers="nope"), OCI_MANIFEST, "MANIFEST_INVALID"),
        (m(layers=[{"mediaType": OCI_LAYER, "digest": missing, "size": 7}]), OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN"),
        (m(config={"mediaType": OCI_CONFIG, "digest": missing, "size": 2}), OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN"),
        (canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": missing, "size": 7}]}), OCI_INDEX, "MANIFEST_BLOB_UNKNOWN"),
        (canon({"schemaVersion": 2, "mediaType": OCI_INDEX}), OCI_INDEX, "MANIFEST_INVALID"),
    ]
    before = snapshot(zinc)
    for body, ct, code in cases:
        r = reg.put_manifest("r", "bad", body, ct)
        assert r.status_code == 400, (body, r.text)
        assert error_code(r) == code, (body, r.text)
        r = reg.put_manifest("newrepo", "bad", body, ct)
        assert r.status_code == 400
    assert snapshot(zinc) == before
    assert reg.get("/v2/r/manifests/bad").status_code == 404
    assert reg.get("/v2/newrepo/tags/list").status_code == 404


def test_oversized_manifest(reg, zinc):
    before = snapshot(zinc)
    big = b'{"schemaVersion":2,"pad":"' + b"x" * (4 << 20) + b'"}'
    r = reg.put_manifest("r", "big", big)
    assert r.status_code == 413 and error_code(r) == "SIZE_INVALID"
    assert snapshot(zinc) == before


def test_tag_syntax(reg, zinc):
    body, d = reg.push_image("r", "ok", [b"l"])
    for bad in (".x", "-x", "a" * 129, "a%20b"):
        r = reg.put_manifest("r", bad, body)
        assert r.status_code == 400 and error_code(r) == "TAG_INVALID", bad
        assert reg.get("/v2/r/manifests/" + bad).status_code == 404, bad
    assert reg.put_manifest("r", "A_b.c-1" + "x" * 121, body).status_code == 201


def test_subject_header(reg, zinc):
    body, d = reg.push_image("r", "base", [b"l"])
    cfg = reg.push_blob("r", b"{}")
    for subject in (d, digest(b"not pushed yet")):
        art = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example",
                     "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
                     "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 10}})
        r = reg.put_manifest("r", digest(art), art)
        assert r.status_code == 201 and r.headers["OCI-Subject"] == subject


def test_referrers(reg, zinc):
    body, d = reg.push_image("r", "base", [b"l"])
    cfg = reg.push_blob("r", b"{}")
    pushed = {}
    for at in ("application/vnd.example.sig", "application/vnd.example.sbom"):
        art = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
                     "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
                     "layers": [], "annotations": {"kind": at},
                     "subject": {"mediaType": OCI_MANIFEST, "digest": d, "size": len(body)}})
        assert reg.put_manifest("r", digest(art), art).status_code == 201
        pushed[at] = art
    # an artifact whose type comes from its config
    art2 = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": "application/vnd.example.cfg", "digest": cfg, "size": 2}, "layers": [],
                  "subject": {"mediaType": OCI_MANIFEST, "digest": d, "size": len(body)}})
    assert reg.put_manifest("r", "tagged-referrer", art2).status_code == 201
    r = reg.get("/v2/r/referrers/" + d)
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    idx = r.json()
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == OCI_INDEX
    got = {m["digest"]: m for m in idx["manifests"]}
    assert set(got) == {digest(a) for a in pushed.values()} | {digest(art2)}
    sig = got[digest(pushed["application/vnd.example.sig"])]
    assert sig == {"mediaType": OCI_MANIFEST, "digest": digest(pushed["application/vnd.example.sig"]),
                   "size": len(pushed["application/vnd.example.sig"]), "artifactType": "application/vnd.example.sig",
                   "annotations": {"kind": "application/vnd.example.sig"}}
    assert got[digest(art2)]["artifactType"] == "application/vnd.example.cfg"
    assert "OCI-Filters-Applied" not in r.headers
    f = reg.get("/v2/r/referrers/" + d + "?artifactType=application%2Fvnd.example.sbom")
    assert f.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in f.json()["manifests"]] == [digest(pushed["application/vnd.example.sbom"])]
    for path in ("/v2/r/referrers/" + digest(b"unknown"), "/v2/nosuch/referrers/" + d):
        e = reg.get(path)
        assert e.status_code == 200 and e.json()["manifests"] == []
    assert reg.get("/v2/r/referrers/sha256:bad").status_code == 400
    # a deleted referrer disappears
    assert reg.s.delete(zinc.url + "/v2/r/manifests/" + digest(art2)).status_code == 202
    assert digest(art2) not in [m["digest"] for m in reg.get("/v2/r/referrers/" + d).json()["manifests"]]


def test_tags_list_pagination(reg, zinc):
    body, _ = reg.push_image("r", "first", [b"l"])
    names = ["b", "a", "Z", "a1", "c", "_u", "first"]
    for t in names:
        assert reg.put_manifest("r", t, body).status_code == 201
    want = sorted(names)
    r = reg.get("/v2/r/tags/list")
    assert r.json() == {"name": "r", "tags": want} and "Link" not in r.headers
    r = reg.get("/v2/r/tags/list?n=3")
    assert r.json()["tags"] == want[:3]
    assert r.headers["Link"] == '</v2/r/tags/list?n=3&last=%s>; rel="next"' % want[2]
    r = reg.get("/v2/r/tags/list?n=3&last=" + want[2])
    assert r.json()["tags"] == want[3:6]
    r = reg.get("/v2/r/tags/list?n=3&last=" + want[5])
    assert r.json()["tags"] == want[6:] and "Link" not in r.headers
    assert reg.get("/v2/r/tags/list?last=b").json()["tags"] == [t for t in want if t > "b"]
    assert reg.get("/v2/r/tags/list?n=0").json()["tags"] == []
    assert reg.get("/v2/r/tags/list?n=-1").status_code == 400
    r = reg.get("/v2/nosuch/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_catalog(reg, zinc):
    repos = ["zz", "a/b/c", "a", "m-n", "a/b"]
    for name in repos:
        reg.push_blob(name, b"x")
    want = sorted(repos)
    r = reg.get("/v2/_catalog")
    assert r.status_code == 200 and r.json() == {"repositories": want}
    r = reg.get("/v2/_catalog?n=2")
    assert r.json()["repositories"] == want[:2]
    assert r.headers["Link"] == '</v2/_catalog?n=2&last=%s>; rel="next"' % want[1]
    r = reg.get("/v2/_catalog?n=2&last=" + want[1])
    assert r.json()["repositories"] == want[2:4]
    assert reg.get("/v2/_catalog?n=10&last=zz").json()["repositories"] == []


def test_deletes(reg, zinc):
    body, d = reg.push_image("r", "v1", [b"del-layer"])
    assert reg.put_manifest("r", "v2", body).status_code == 201
    # deleting a tag keeps the manifest and the other tag
    assert reg.s.delete(zinc.url + "/v2/r/manifests/v1").status_code == 202
    assert reg.get("/v2/r/manifests/v1").status_code == 404
    assert reg.get("/v2/r/manifests/v2").status_code == 200
    assert reg.get("/v2/r/tags/list").json()["tags"] == ["v2"]
    # deleting the last tag leaves it pullable by digest, untagged
    assert reg.s.delete(zinc.url + "/v2/r/manifests/v2").status_code == 202
    assert reg.get("/v2/r/manifests/" + d).status_code == 200
    layer = digest(b"del-layer")
    assert reg.put_manifest("r", "v3", body).status_code == 201
    # deleting by digest removes every tag and the blob
    assert reg.s.delete(zinc.url + "/v2/r/manifests/" + d).status_code == 202
    r = reg.get("/v2/r/manifests/" + d)
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert reg.get("/v2/r/manifests/v3").status_code == 404
    assert json.loads(index_json(zinc, "r"))["manifests"] == []
    assert not os.path.exists(os.path.join(zinc.root, "r/blobs/sha256", d[7:]))
    assert reg.s.delete(zinc.url + "/v2/r/manifests/" + d).status_code == 404
    assert reg.s.delete(zinc.url + "/v2/r/blobs/" + layer).status_code == 202
    r = reg.s.delete(zinc.url + "/v2/nosuch/manifests/" + d)
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_delete_blob_before_its_manifest(reg, zinc):
    # the conformance suite's push teardown deletes the config blob while its manifest exists
    body, d = reg.push_image("r", "v1", [b"some-layer"])
    config = json.loads(body)["config"]["digest"]
    assert reg.s.delete(zinc.url + "/v2/r/blobs/" + config).status_code == 202
    assert reg.get("/v2/r/blobs/" + config).status_code == 404
    assert reg.s.delete(zinc.url + "/v2/r/manifests/" + d).status_code == 202


def test_unknown_manifest(reg, zinc):
    reg.push_image("r", "v1", [b"l"])
    r = reg.get("/v2/r/manifests/nope")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert reg.s.head(zinc.url + "/v2/r/manifests/nope").status_code == 404
    r = reg.get("/v2/nosuch/manifests/v1")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


BAD_NAMES = ["..", "a/..", "../a", "a/../b", "%2e%2e", "a/%2e%2e/b", "%2E%2E/x", "Upper", "a//b", "a/.", ".hidden",
             "a_-b", "a" * 256, "a%2fb", "a/b/"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names(zinc, name):
    d = digest(b"x")
    before = sorted(os.listdir(zinc.root))
    for method, suffix in (("GET", "/blobs/" + d), ("HEAD", "/blobs/" + d), ("POST", "/blobs/uploads/"),
                           ("GET", "/manifests/latest"), ("PUT", "/manifests/latest"), ("GET", "/tags/list"),
                           ("DELETE", "/manifests/" + d), ("GET", "/referrers/" + d)):
        status, headers, body = raw_request(zinc.hostport, method, "/v2/" + name + suffix, b"{}")
        assert status in (400, 404), (method, name, suffix, status)
        if method != "HEAD" and status == 400:
            assert json.loads(body)["errors"][0]["code"] == "NAME_INVALID", (method, name, suffix)
    assert sorted(os.listdir(zinc.root)) == before


def test_traversal_names_are_name_invalid(zinc):
    for name in ("..", "%2e%2e", "a/../../etc", "a/%2e%2e/%2e%2e/etc"):
        status, _, body = raw_request(zinc.hostport, "POST", "/v2/%s/blobs/uploads/" % name)
        assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID", name
    assert not os.path.exists(os.path.join(os.path.dirname(zinc.root), "blobs"))
