"""extensions.sync pollInterval: periodic sync of selected repositories and tags.

Upstreams: zinc itself (referrers API, a multi-platform index, more tags than one page),
Debian's docker-registry (CNCF Distribution) with htpasswd and no referrers API (the
referrers tag schema), and a front that answers 503 to the first request of every path.
Everything is checked through the mirror's own API, with a deadline for each expected state.
"""
import hashlib
import http.server
import json
import threading
import time

import requests

from oci_util import OCI_INDEX, OCI_MANIFEST, Registry, canon, digest
from test_sync import (DEADLINE, Distribution, Relay, TokenFront, blob_files, creds_file, metric,  # noqa: F401
                       upload_files, wait_for)

ACCEPT = {"Accept": ", ".join([OCI_INDEX, OCI_MANIFEST])}
EMPTY = b"{}"


def poll_config(urls, content=None, **reg):
    r = {"urls": urls, "pollInterval": "1s"}
    if content is not None:
        r["content"] = content
    r.update(reg)
    return {"extensions": {"sync": {"enable": True, "registries": [r]}, "metrics": {"enable": True}}}


def rounds(mirror):
    """Poll rounds the mirror has finished (listed and copied everything)."""
    for line in requests.get(mirror.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("zinc_sync_poll_rounds_total "):
            return float(line.split()[1])
    return 0.0


def tags_of(reg, repo):
    r = reg.get("/v2/%s/tags/list?n=1000" % repo)
    return sorted(r.json()["tags"] or []) if r.status_code == 200 else None


def catalog(reg):
    return sorted(reg.get("/v2/_catalog?n=1000").json()["repositories"])


def manifest(reg, repo, ref):
    return reg.get("/v2/%s/manifests/%s" % (repo, ref), headers=ACCEPT)


def check_image(reg, repo, ref, want_body=None):
    """The manifest and every blob it references are served and match their digests."""
    r = manifest(reg, repo, ref)
    assert r.status_code == 200, (repo, ref, r.text)
    if want_body is not None:
        assert r.content == want_body
    assert r.headers["Docker-Content-Digest"] == digest(r.content)
    m = json.loads(r.content)
    for child in m.get("manifests", []):
        check_image(reg, repo, child["digest"])
    for desc in ([m["config"]] if "config" in m else []) + m.get("layers", []):
        b = reg.get("/v2/%s/blobs/%s" % (repo, desc["digest"]))
        assert b.status_code == 200 and digest(b.content) == desc["digest"] and len(b.content) == desc["size"]
    return r


def push_index(reg, repo, tag):
    """A two-platform index: each child an image with its own layer."""
    children = []
    for arch in ("amd64", "arm64"):
        cfg = canon({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
        body, d = reg.push_image(repo, d_tag(arch), [("layer for " + arch).encode()], config=cfg)
        children.append({"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
                         "platform": {"architecture": arch, "os": "linux"}})
    idx = canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    r = reg.put_manifest(repo, tag, idx, OCI_INDEX)
    assert r.status_code == 201, r.text
    # the children were pushed under scratch tags; drop those so only the index is tagged
    for arch in ("amd64", "arm64"):
        assert reg.s.delete(reg.url + "/v2/%s/manifests/%s" % (repo, d_tag(arch))).status_code == 202
    return idx, [c["digest"] for c in children]


def d_tag(arch):
    return "scratch-" + arch


def push_referrer(reg, repo, subject_body, artifact_type="application/vnd.example.sbom"):
    """An artifact manifest (empty config, one blob) whose subject is subject_body."""
    reg.push_blob(repo, EMPTY)
    data = b"sbom of " + digest(subject_body).encode()
    reg.push_blob(repo, data)
    m = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(EMPTY), "size": 2},
               "layers": [{"mediaType": "text/plain", "digest": digest(data), "size": len(data)}],
               "subject": {"mediaType": OCI_MANIFEST, "digest": digest(subject_body), "size": len(subject_body)}})
    r = reg.put_manifest(repo, digest(m), m, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    return m


# ---- zinc as the upstream -------------------------------------------------------------------------


def test_poll_zinc_upstream(zinc_factory):
    up = zinc_factory()
    u = Registry(up.url)
    app1, _ = u.push_image("lib/app", "1.0.0", [b"app layer 1"])
    # more tags than one page of the upstream's tags list (the mirror asks n=100 and follows Link)
    app2, _ = u.push_image("lib/app", "1.1.0", [b"app layer 2", b"app layer 2b"])
    for i in range(105):
        assert u.put_manifest("lib/app", "1.2.%d" % i, app2).status_code == 201
    u.push_image("lib/app", "latest", [b"not semver"])
    u.push_image("lib/app", "dev-x", [b"not semver either"])
    idx, children = push_index(u, "lib/multi", "2.0.0")
    sbom = push_referrer(u, "lib/app", app1)
    u.push_image("skip/me", "1.0.0", [b"no prefix matches"])
    keep, _ = u.push_image("other/tool", "keep-1", [b"kept"])
    u.push_image("other/tool", "drop-1", [b"dropped"])

    mirror = zinc_factory(poll_config([up.url], content=[
        {"prefix": "lib/**", "tags": {"semver": True}},
        {"prefix": "other/**", "destination": "/mirrored", "stripPrefix": True, "tags": {"regex": "^keep"}}]))
    m = Registry(mirror.url)
    wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 3, what="a whole poll round")

    assert catalog(m) == ["lib/app", "lib/multi", "mirrored/tool"]
    want = sorted(["1.0.0", "1.1.0"] + ["1.2.%d" % i for i in range(105)])
    assert tags_of(m, "lib/app") == want
    assert tags_of(m, "lib/multi") == ["2.0.0"]
    assert tags_of(m, "mirrored/tool") == ["keep-1"]
    check_image(m, "lib/app", "1.0.0", app1)
    check_image(m, "lib/app", "1.2.77", app2)
    check_image(m, "mirrored/tool", "keep-1", keep)
    r = check_image(m, "lib/multi", "2.0.0", idx)
    assert [c["digest"] for c in json.loads(r.content)["manifests"]] == children
    # the referrer, through the mirror's referrers API, and its content
    ref = m.get("/v2/lib/app/referrers/" + digest(app1)).json()
    assert [d["digest"] for d in ref["manifests"]] == [digest(sbom)]
    assert ref["manifests"][0]["artifactType"] == "application/vnd.example.sbom"
    check_image(m, "lib/app", digest(sbom), sbom)
    assert metric(mirror, "zinc_sync_poll_images_total", {"result": "copied"}) >= 3
    assert metric(mirror, "zinc_sync_poll_images_total", {"result": "failed"}) == 0

    # a tag moved upstream is updated at the next poll; a new matching tag appears
    moved, moved_d = u.push_image("lib/app", "1.0.0", [b"app layer 1, rebuilt"])
    u.push_image("lib/app", "1.3.0", [b"a new release"])
    wait_for(lambda: manifest(m, "lib/app", "1.0.0").headers.get("Docker-Content-Digest") == moved_d,
             timeout=DEADLINE * 2, what="the moved tag")
    check_image(m, "lib/app", "1.0.0", moved)
    wait_for(lambda: "1.3.0" in (tags_of(m, "lib/app") or []), timeout=DEADLINE * 2, what="the new tag")
    check_image(m, "lib/app", "1.3.0")
    assert "latest" not in tags_of(m, "lib/app")


def test_poll_stops_promptly(zinc_factory):
    """A shutdown waits neither for the next poll (1 h away) nor for a stuck transfer."""
    up = zinc_factory()
    u = Registry(up.url)
    u.push_image("a/b", "1", [b"x"])
    mirror = zinc_factory(poll_config([up.url], pollInterval="1h"))
    wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 2, what="the first round")
    assert Registry(mirror.url).get("/v2/a/b/tags/list").json()["tags"] == ["1"]
    # exits on its own (0), long before the next poll; the fixture's SIGKILL after 60 s would
    # give -9
    assert mirror.stop(timeout=60) == 0

    # a blob transfer held mid-way by the relay (the HTTP client's idle timeout is 60 s)
    big = b"".join(i.to_bytes(8, "big") + bytes(1 << 16) for i in range(64))  # ~4 MiB
    u.push_image("a/big", "1", [big])
    relay = Relay(int(up.url.rsplit(":", 1)[1]), hold_after=1 << 20)
    try:
        held = zinc_factory(poll_config([relay.url], pollInterval="1h", content=[{"prefix": "a/big"}]))
        wait_for(lambda: relay.holding >= 1, what="the blob transfer to be held")
        # on its own (0, not the fixture's SIGKILL) and before the client's 60 s idle timeout
        # could have ended the held transfer: the shutdown cut it
        t0 = time.monotonic()
        assert held.stop(timeout=55) == 0
        assert time.monotonic() - t0 < 55
        # the cut transfer left neither the blob nor its upload session behind
        assert digest(big).split(":")[1] not in blob_files(held.root, "a/big")
        assert upload_files(held.root, "a/big") == []
    finally:
        relay.cut()


def test_poll_mounts_blobs_the_store_has(zinc_factory):
    """A layer another local repository already holds is mounted, not fetched again."""
    up = zinc_factory()
    u = Registry(up.url)
    shared, own = b"a layer both repositories use", b"a layer only the new image has"
    mirror = zinc_factory(poll_config([up.url], content=[{"prefix": "new/**"}]))
    m = Registry(mirror.url)
    m.push_blob("local/other", shared)  # pushed to the mirror itself, before upstream has the image
    body, _ = u.push_image("new/app", "v1", [shared, own])
    wait_for(lambda: tags_of(m, "new/app") == ["v1"], timeout=DEADLINE * 2, what="the image")
    check_image(m, "new/app", "v1", body)
    gets = [l.get("path") for l in up.log_lines() if l.get("method") == "GET" and "/blobs/" in (l.get("path") or "")]
    assert "/v2/new/app/blobs/" + digest(own) in gets  # fetched
    assert "/v2/new/app/blobs/" + digest(shared) not in gets  # mounted from local/other


# ---- Distribution (htpasswd, no referrers API) ----------------------------------------------------


def test_poll_distribution_upstream(zinc_factory, tmp_path):
    dist = Distribution()
    try:
        d = dist.registry()
        b1, _ = d.push_image("team/a", "v1", [b"dist layer one"])
        b2, _ = d.push_image("team/a", "v2", [b"dist layer two"])
        d.push_image("team/b", "v1", [b"other repo"])
        # a signature in the referrers tag schema (sha256-<hex>), the way cosign stores one
        sig = push_referrer(d, "team/a", b1, "application/vnd.dev.cosign.artifact.sig.v1+json")
        tag = "sha256-" + digest(b1).split(":")[1]
        sidx = canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest(sig), "size": len(sig),
             "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}]})
        assert d.put_manifest("team/a", tag, sidx, OCI_INDEX).status_code == 201
        cfg = poll_config([dist.url], content=[{"prefix": "team/a"}])
        cfg["extensions"]["sync"]["credentialsFile"] = creds_file(str(tmp_path), dist.url)
        mirror = zinc_factory(cfg)
        m = Registry(mirror.url)
        wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 3, what="a whole poll round")
        assert catalog(m) == ["team/a"]
        assert tags_of(m, "team/a") == sorted(["v1", "v2", tag])
        check_image(m, "team/a", "v1", b1)
        check_image(m, "team/a", "v2", b2)
        check_image(m, "team/a", tag, sidx)
        check_image(m, "team/a", digest(sig), sig)
        assert metric(mirror, "zinc_sync_poll_images_total", {"result": "failed"}) == 0
    finally:
        dist.close()


def test_poll_bearer_token_flow(zinc_factory, tmp_path):
    """Docker Hub's way: Bearer challenges, tokens from a realm that wants the credentialsFile's
    Basic credentials, scope registry:catalog:* for the catalog and repository:<name>:pull."""
    dist = Distribution()
    front = TokenFront(dist)
    try:
        body, _ = dist.registry().push_image("org/tool", "v2", [b"token layer"])
        cfg = poll_config([front.url])
        cfg["extensions"]["sync"]["credentialsFile"] = creds_file(str(tmp_path), front.url)
        mirror = zinc_factory(cfg)
        m = Registry(mirror.url)
        wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 3, what="a whole poll round")
        check_image(m, "org/tool", "v2", body)
        scopes = {q["scope"][0] for q, _ in front.token_requests}
        assert scopes == {"registry:catalog:*", "repository:org/tool:pull"}
        assert all(a is not None and a.startswith("Basic ") for _, a in front.token_requests)
    finally:
        front.close()
        dist.close()


# ---- an upstream that fails requests --------------------------------------------------------------


class FlakyFront:
    """HTTP front for an upstream: the first request for each path (and query) gets a 503,
    the next ones are passed on. Records every request line."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.seen = {}
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                front.handle(self)

            def do_HEAD(self):
                front.handle(self)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def handle(self, h):
        with self.lock:
            n = self.seen.get(h.path, 0)
            self.seen[h.path] = n + 1
        if n == 0:
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        fwd = {k: v for k, v in h.headers.items() if k.lower() in ("accept", "authorization")}
        r = requests.request(h.command, self.upstream + h.path, headers=fwd, allow_redirects=False, timeout=30)
        h.send_response(r.status_code)
        for k, v in r.headers.items():
            if k.lower() in ("content-type", "docker-content-digest", "link", "www-authenticate"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(r.content)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(r.content)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_poll_retries_failed_requests(zinc_factory):
    up = zinc_factory()
    u = Registry(up.url)
    body, _ = u.push_image("flaky/app", "v1", [b"flaky layer", b"second flaky layer"])
    front = FlakyFront(up.url)
    try:
        mirror = zinc_factory(poll_config([front.url], maxRetries=3, retryDelay="50ms"))
        m = Registry(mirror.url)
        wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 3, what="a whole poll round")
        check_image(m, "flaky/app", "v1", body)
        assert metric(mirror, "zinc_sync_poll_images_total", {"result": "copied"}) == 1
        assert metric(mirror, "zinc_sync_poll_images_total", {"result": "failed"}) == 0
        with front.lock:
            seen = dict(front.seen)
        # every path the copy needed failed once and was asked again
        for p in ["/v2/_catalog?n=100", "/v2/flaky/app/tags/list?n=100", "/v2/flaky/app/manifests/v1"] + \
                 ["/v2/flaky/app/blobs/" + digest(x) for x in (b"flaky layer", b"second flaky layer")]:
            assert seen.get(p, 0) >= 2, (p, seen)
        assert any(l.get("message") == "sync poll: request failed, retrying" for l in mirror.log_lines())
    finally:
        front.close()


def test_poll_without_retries_counts_failures(zinc_factory):
    """maxRetries unset: a 503 is not retried; the image counts as failed, nothing half-stored."""
    up = zinc_factory()
    Registry(up.url).push_image("once/app", "v1", [b"layer"])
    front = FlakyFront(up.url)
    try:
        # the catalog and tags lists also fail once: the first round lists nothing; the second
        # round lists the image but its manifest GET fails once, so it is copied at the third
        mirror = zinc_factory(poll_config([front.url]))
        m = Registry(mirror.url)
        wait_for(lambda: metric(mirror, "zinc_sync_poll_images_total", {"result": "copied"}) >= 1,
                 timeout=DEADLINE * 3, what="the copy on a later round")
        assert metric(mirror, "zinc_sync_poll_images_total", {"result": "failed"}) >= 1
        check_image(m, "once/app", "v1")
    finally:
        front.close()


def test_poll_copies_at_most_three_images_at_once(zinc_factory):
    """Bounded concurrency: five images, every layer transfer held by the relay; the copiers
    (three) each hold one, and the other images wait for a copier, not for a connection."""
    up = zinc_factory()
    u = Registry(up.url)
    layers = {}
    for i in range(5):
        layer = b"".join(j.to_bytes(8, "big") + bytes([i]) * (1 << 16) for j in range(32))  # ~2 MiB
        u.push_image("many/app%d" % i, "v1", [layer])
        layers[i] = digest(layer)
    relay = Relay(up.port, hold_after=1 << 20)
    try:
        mirror = zinc_factory(poll_config([relay.url], pollInterval="1h"))

        def seen(path_part, method="GET "):
            with relay.lock:
                return [r for r in relay.requests if r.startswith(method) and path_part in r]

        # every image is listed (queued) and three layer transfers are held
        wait_for(lambda: all(seen("/v2/many/app%d/tags/list" % i) for i in range(5)), what="all images listed")
        wait_for(lambda: relay.holding >= 3, what="three transfers held")
        layer_gets = lambda: sum(1 for i in range(5) if seen("/blobs/" + layers[i]))
        assert layer_gets() == 3 and relay.holding == 3, relay.requests
        relay.open()
        m = Registry(mirror.url)
        wait_for(lambda: rounds(mirror) >= 1, timeout=DEADLINE * 3, what="the round")
        for i in range(5):
            check_image(m, "many/app%d" % i, "v1")
        assert layer_gets() == 5
        assert metric(mirror, "zinc_sync_poll_images_total", {"result": "copied"}) == 5
    finally:
        relay.cut()
