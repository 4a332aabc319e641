"""Test data and a small client modelled on the opencontainers/distribution-spec conformance
suite (conformance/setup.go, image.go; the Go client is bloodorangeio/reggie), so that
test_conformance*.py send the same bytes and requests the external suite sends.

What is reproduced from setup.go:
- one config blob per workflow (pull, push, discovery, management, + one spare), each made
  unique by a random `author`, marshalled by Go's json.MarshalIndent(.., "", "\t");
- one image manifest per config, sharing one gzip'd tar layer; every descriptor carries
  `newUnspecifiedField` (null, or base64 bytes) and the config descriptor carries `data`
  (the config bytes, base64), which a registry must keep byte for byte;
- testBlobA / testBlobB: 42 seeded random bytes; B is pushed in two chunks (22 + 20 bytes);
- the referrers set: artifacts A/B whose artifact type is either config.mediaType or
  `artifactType` (with the empty JSON config), all with subject manifests[4] and one
  annotation each; C with the never-pushed subject manifests[3]; an index with
  artifactType and subject manifests[4].
The Go structs' field order and omitempty rules are kept, so the JSON has the same shape.
Below the data: a reggie-like client (<name> paths, relative Locations, a 401 retried with
Basic credentials) and setup.go's push/delete helpers with the statuses they accept.
"""
import base64
import hashlib
import json
import random
import string
import urllib.parse
import uuid

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_JSON_TYPE = "application/vnd.oci.empty.v1+json"

# setup.go: the error codes the suite accepts in a 4xx body
ERROR_CODES = ["BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
               "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_UNVERIFIED",
               "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "TAG_INVALID", "UNAUTHORIZED", "DENIED",
               "UNSUPPORTED"]

# setup.go layerBase64String: a tar.gz holding one text file
LAYER_B64 = ("H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
             "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
             "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA")

TEST_TAG = "tagtest0"
EMPTY_LAYER_TAG = "emptylayer"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
INVALID_MANIFEST = b"blablabla"
ANNOTATION_KEY = "org.opencontainers.conformance.test"
ARTIFACT_TYPE_A = "application/vnd.nhl.peanut.butter.bagel"
ARTIFACT_TYPE_B = "application/vnd.nba.strawberry.jam.croissant"
ARTIFACT_TYPE_INDEX = "application/vnd.food.stand"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_json(obj):
    """json.MarshalIndent(obj, "", "\\t") for the plain types used here."""
    return json.dumps(obj, indent="\t", ensure_ascii=False).encode()


def descriptor(media_type, data, annotations=None, inline=False, unspecified=None):
    """image.go `descriptor`: mediaType, digest, size, [annotations], [data], newUnspecifiedField."""
    d = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    if inline:
        d["data"] = base64.b64encode(data).decode()
    d["newUnspecifiedField"] = base64.b64encode(unspecified).decode() if unspecified is not None else None
    return d


def manifest(config, layers, media_type=OCI_MANIFEST, artifact_type=None, subject=None, annotations=None):
    m = {"schemaVersion": 2}
    if media_type:
        m["mediaType"] = media_type
    if artifact_type:
        m["artifactType"] = artifact_type
    m["config"] = config
    m["layers"] = layers
    if subject is not None:
        m["subject"] = subject
    if annotations:
        m["annotations"] = annotations
    return go_json(m)


def index(manifests, artifact_type=None, subject=None, annotations=None):
    m = {"schemaVersion": 2, "mediaType": OCI_INDEX}
    if artifact_type:
        m["artifactType"] = artifact_type
    m["manifests"] = manifests
    if subject is not None:
        m["subject"] = subject
    if annotations:
        m["annotations"] = annotations
    return go_json(m)


def random_blob(size, seed):
    return random.Random(seed).randbytes(size)


class Data:
    """All of setup.go's init() values, fresh per instance (new random authors and seed)."""

    def __init__(self, seed=None):
        seed = seed if seed is not None else random.randrange(1 << 30)
        letters = string.digits + string.ascii_letters + "-"
        self.configs = []
        for _ in range(5):
            author = "".join(random.choice(letters) for _ in range(16))
            self.configs.append(go_json({"author": author, "architecture": "amd64", "os": "linux",
                                         "rootfs": {"type": "layers", "diff_ids": []}}))
        self.layer = base64.b64decode(LAYER_B64)
        layer_desc = descriptor(OCI_LAYER, self.layer)
        self.manifests = [manifest(self.config_desc(i), [layer_desc]) for i in range(5)]
        # push test: a manifest with no layers (and no mediaType field)
        self.empty_layer_manifest = manifest(self.config_desc(1), [], media_type=None)
        self.blob_a = random_blob(42, seed + 1)
        self.set_chunked_blob(42, seed + 2)
        self.empty_json = b"{}"
        self.ref_blob_a = b"NHL Peanut Butter on my NHL bagel"
        self.ref_blob_b = b"NBA Strawberry Jam on my NBA croissant"
        self._make_referrers()

    def config_desc(self, i):
        return descriptor(OCI_CONFIG, self.configs[i], inline=True, unspecified=b"hello world")

    def set_chunked_blob(self, size, seed):
        self.blob_b = random_blob(size, seed)
        half = size // 2 + 1
        self.chunk1, self.chunk2 = self.blob_b[:half], self.blob_b[half:]
        self.chunk1_range = "0-%d" % (len(self.chunk1) - 1)
        self.chunk2_range = "%d-%d" % (len(self.chunk1), len(self.blob_b) - 1)

    def _make_referrers(self):
        empty = descriptor(EMPTY_JSON_TYPE, self.empty_json)
        subj4 = descriptor(OCI_MANIFEST, self.manifests[4])
        subj3 = descriptor(OCI_MANIFEST, self.manifests[3])
        self.annotations = {}

        def art(key, note, **kw):
            body = manifest(annotations={ANNOTATION_KEY: note} if note else None, **kw)
            self.annotations[digest(body)] = note
            setattr(self, key, body)

        art("ref_a_config", "test config a", config=descriptor(ARTIFACT_TYPE_A, self.ref_blob_a),
            layers=[empty], subject=subj4)
        art("ref_b_config", "test config b", config=descriptor(ARTIFACT_TYPE_B, self.ref_blob_b),
            layers=[empty], subject=subj4)
        art("ref_a_layer", "test layer a", artifact_type=ARTIFACT_TYPE_A, config=empty,
            layers=[descriptor(ARTIFACT_TYPE_A, self.ref_blob_a)], subject=subj4)
        art("ref_b_layer", "test layer b", artifact_type=ARTIFACT_TYPE_B, config=empty,
            layers=[descriptor(ARTIFACT_TYPE_B, self.ref_blob_b)], subject=subj4)
        # C: like B but about a subject that is never pushed, and without annotations
        art("ref_c_layer", None, artifact_type=ARTIFACT_TYPE_B, config=empty,
            layers=[descriptor(ARTIFACT_TYPE_B, self.ref_blob_b)], subject=subj3)
        self.ref_index = index([descriptor(OCI_MANIFEST, self.ref_a_config), descriptor(OCI_MANIFEST, self.ref_a_layer)],
                               artifact_type=ARTIFACT_TYPE_INDEX, subject=subj4,
                               annotations={ANNOTATION_KEY: "test index"})
        self.annotations[digest(self.ref_index)] = "test index"
        # push test's "custom config/mediaType" and "custom artifactType" artifacts (no subject)
        self.config_type_manifest = manifest(config=descriptor(ARTIFACT_TYPE_A, self.ref_blob_a), layers=[empty])
        self.artifact_type_manifest = manifest(artifact_type=ARTIFACT_TYPE_A, config=empty,
                                               layers=[descriptor(ARTIFACT_TYPE_A, self.ref_blob_a)])


class Client:
    """The reggie calls the suite makes: paths with <name>, query params, relative Locations."""

    def __init__(self, base_url, name, auth=None):
        self.base = base_url
        self.name = name
        self.auth = auth  # (user, password): answered 401s are retried with it, as reggie does
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "distribution-spec-conformance-tests"
        # no idle keep-alive connections left behind: they hold up zinc's graceful stop
        self.s.headers["Connection"] = "close"

    def do(self, method, path, name=None, params=None, headers=None, body=None):
        path = path.replace("<name>", name or self.name)
        url = self.base + path
        if params:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        r = self.s.request(method, url, headers=headers or {}, data=body, allow_redirects=False)
        if r.status_code == 401 and self.auth and r.headers.get("WWW-Authenticate", "").startswith("Basic"):
            r = self.s.request(method, url, headers=headers or {}, data=body, allow_redirects=False, auth=self.auth)
        return r


def relative_location(resp):
    """reggie's GetRelativeLocation: path and query of the Location header."""
    u = urllib.parse.urlsplit(resp.headers.get("Location", ""))
    return u.path + ("?" + u.query if u.query else "")


def error_codes(resp):
    """The `code` of every error in an OCI error body; [] when the body is not one."""
    try:
        return [e["code"] for e in resp.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


def is_2xx(resp):
    return 200 <= resp.status_code < 300


def crossmount_namespace():
    return "conformance-%s" % uuid.uuid4()


# ---- setup.go helpers: pushBlob, pushManifest, deleteManifest, deleteBlob; `s` carries
# the client (`c`) and the refs lists the suite tears down in reverse ----

OCTET_TYPE = {"Content-Type": "application/octet-stream"}


def post_put_blob(c, dig, content, name=None):
    """POST then PUT <location>?digest= with the whole body: the suite's usual blob push."""
    r = c.do("POST", "/v2/<name>/blobs/uploads/", name=name)
    return c.do("PUT", relative_location(r), params={"digest": dig},
                headers=dict(OCTET_TYPE, **{"Content-Length": str(len(content))}), body=content)


def push_blob(s, content):
    r = s.c.do("POST", "/v2/<name>/blobs/uploads/")
    assert r.status_code in (201, 202), r.text
    r = s.c.do("PUT", relative_location(r), params={"digest": digest(content)}, headers=OCTET_TYPE, body=content)
    assert r.status_code == 201, r.text
    s.blob_refs.append(digest(content))


def push_manifest(s, content, tag=None, subject=None, media_type=OCI_MANIFEST):
    ref = tag or digest(content)
    r = s.c.do("PUT", "/v2/<name>/manifests/" + ref, headers={"Content-Type": media_type}, body=content)
    assert r.status_code == 201, r.text
    assert r.headers.get("Location"), "201 without Location"
    # The Go suite also accepts an empty OCI-Subject (registry without the referrers API);
    # zinc has that API, and then the spec says it MUST answer with the subject's digest.
    assert r.headers.get("OCI-Subject", "") == (subject or ""), r.headers
    s.manifest_refs.append(ref)
    if tag:
        s.manifest_refs.append(digest(content))


def delete_manifest(s, ref):
    r = s.c.do("GET", "/v2/<name>/manifests/" + ref)
    if r.status_code != 200:
        return
    r = s.c.do("DELETE", "/v2/<name>/manifests/" + ref)
    assert r.status_code in (202, 405, 404), (ref, r.status_code, r.text)
    r = s.c.do("GET", "/v2/<name>/manifests/" + ref)
    assert r.status_code == 404, (ref, r.status_code)


def delete_blob(s, ref):
    name, _, dig = ref.rpartition("/")
    r = s.c.do("DELETE", "/v2/<name>/blobs/" + dig, name=name or None)
    assert r.status_code in (202, 404, 400, 405), (ref, r.status_code, r.text)


def ok_or_405(r):
    return is_2xx(r) or r.status_code == 405


def ok_404_or_405(r):
    return is_2xx(r) or r.status_code in (404, 405)
