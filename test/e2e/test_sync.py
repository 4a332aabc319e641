"""extensions.sync onDemand: zinc as a pull-through mirror of another registry.

Upstreams: zinc itself, and Debian's docker-registry (CNCF Distribution) with htpasswd and
its token-less Basic auth, plus Distribution behind a relay the test controls byte by byte
(streaming, cuts, counting upstream requests). Clients: requests, skopeo, docker.
"""
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import free_port
from oci_util import OCI_INDEX, OCI_MANIFEST, Registry, canon, digest

DEADLINE = 60


def wait_for(cond, timeout=DEADLINE, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def mirror_config(urls, **reg):
    r = {"urls": urls, "onDemand": True}
    r.update(reg)
    return {"extensions": {"sync": {"enable": True, "registries": [r]}, "metrics": {"enable": True}}}


def blob_files(root, repo):
    d = os.path.join(root, repo, "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def upload_files(root, repo):
    d = os.path.join(root, repo, ".uploads")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def metric(server, name, labels):
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---- zinc as the upstream ------------------------------------------------------------------------


def test_pull_through_zinc(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    layers = [os.urandom(3 << 20), b"small layer"]
    body, mdig = ureg.push_image("lib/app", "v1", layers)
    mirror = zinc_factory(mirror_config([up.url]))
    m = Registry(mirror.url)

    r = m.get("/v2/lib/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    assert r.content == body and r.headers["Docker-Content-Digest"] == mdig
    for layer in layers:
        r = m.get("/v2/lib/app/blobs/" + digest(layer))
        assert r.status_code == 200 and r.content == layer
    cfg = json.loads(body)["config"]["digest"]
    assert m.get("/v2/lib/app/blobs/" + cfg).status_code == 200
    # everything landed in the mirror's store: the manifest once its blobs were there
    # (the repository can exist, with no tag yet, before the pending manifest is stored)
    wait_for(lambda: (lambda r: r.status_code == 200 and r.json().get("tags") == ["v1"])(m.get("/v2/lib/app/tags/list")),
             what="tag stored")
    assert digest(layers[0]).split(":")[1] in blob_files(mirror.root, "lib/app")
    up.stop()
    # upstream gone: the cached image is still served
    assert m.get("/v2/lib/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body
    assert m.get("/v2/lib/app/blobs/" + digest(layers[0])).content == layers[0]
    # unknown things: a clean OCI error, nothing stored
    r = m.get("/v2/lib/app/blobs/sha256:" + "0" * 64)
    assert r.status_code in (404, 502) and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    # every request in the mirrored repository counted once: three blobs and the manifest
    # fetched, then served from the store; the unknown blob a miss whose fetch failed
    counts = {(k, res): metric(mirror, "zinc_sync_requests_total", {"kind": k, "result": res})
              for k in ("blob", "manifest") for res in ("hit", "miss")}
    assert counts == {("blob", "hit"): 1, ("blob", "miss"): 4, ("manifest", "hit"): 1, ("manifest", "miss"): 1}, counts
    assert metric(mirror, "zinc_sync_fetches_total", {"kind": "blob", "result": "ok"}) == 3
    assert metric(mirror, "zinc_sync_fetches_total", {"kind": "blob", "result": "failed"}) == 1
    assert metric(mirror, "zinc_sync_fetches_total", {"kind": "manifest", "result": "ok"}) == 1
    assert upload_files(mirror.root, "lib/app") == []


def test_first_upstream_that_has_it(zinc_factory):
    """urls are tried in order: a refused port, then an upstream without the image (404),
    then one with it; a second registry entry after the first."""
    empty, full, other = zinc_factory(), zinc_factory(), zinc_factory()
    body, _ = Registry(full.url).push_image("lib/app", "v1", [b"only in the third url"])
    obody, _ = Registry(other.url).push_image("lib/other", "v1", [b"only in the second registry"])
    refused = "http://127.0.0.1:%d" % free_port()
    cfg = mirror_config([refused, empty.url, full.url])
    cfg["extensions"]["sync"]["registries"].append({"urls": [other.url], "onDemand": True})
    m = Registry(zinc_factory(cfg).url)
    r = m.get("/v2/lib/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    assert m.get("/v2/lib/app/blobs/" + digest(b"only in the third url")).content == b"only in the third url"
    assert m.get("/v2/lib/other/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == obody
    r = m.get("/v2/lib/none/manifests/v1")
    assert r.status_code in (404, 502) and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_content_mapping_and_tag_filter(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    body, _ = ureg.push_image("upstream/team/app", "1.2.3", [b"a"])
    ureg.push_image("upstream/team/app", "latest", [b"b"])
    mirror = zinc_factory(mirror_config([up.url], content=[
        {"prefix": "/upstream/team/**", "destination": "/local", "stripPrefix": True, "tags": {"semver": True}}]))
    m = Registry(mirror.url)
    r = m.get("/v2/local/app/manifests/1.2.3", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    # filtered out by tags.semver: not fetched
    assert m.get("/v2/local/app/manifests/latest").status_code == 404
    # not covered by any content rule: no upstream at all
    r = m.get("/v2/upstream/team/app/manifests/1.2.3")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def push_multiarch(reg, repo, tag):
    """An index of two platforms (gzip layers, so clients take them as such); the children are
    pushed under scratch tags, then untagged. Returns (index bytes, {arch: child digest})."""
    children, digests = [], {}
    for arch in ("amd64", "arm64"):
        cfg = canon({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
        body, d = reg.push_image(repo, "scratch-" + arch, [gzip.compress(("layer for " + arch).encode() * 100)], config=cfg)
        children.append({"mediaType": OCI_MANIFEST, "digest": d, "size": len(body), "platform": {"architecture": arch, "os": "linux"}})
        digests[arch] = d
    idx = canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    assert reg.put_manifest(repo, tag, idx, OCI_INDEX).status_code == 201
    for arch in digests:
        assert reg.s.delete(reg.url + "/v2/%s/manifests/scratch-%s" % (repo, arch)).status_code == 202
    return idx, digests


def test_multiarch_one_platform_served_from_cache(zinc_factory, tmp_path):
    up = zinc_factory()
    idx, kids = push_multiarch(Registry(up.url), "multi/app", "v1")
    mirror = zinc_factory(mirror_config([up.url]))
    m = Registry(mirror.url)

    def pull(arch, dest):
        return subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--override-os", "linux", "--override-arch", arch,
                               "docker://%s/multi/app:v1" % mirror.hostport, "dir:%s" % dest], capture_output=True, timeout=120)

    r = pull("arm64", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    arm = json.loads((tmp_path / "a" / "manifest.json").read_bytes())
    assert digest((tmp_path / "a" / "manifest.json").read_bytes()) == kids["arm64"]
    # the index is stored at once, the pulled platform once its blobs are in: both by hash
    hexes = lambda: blob_files(mirror.root, "multi/app")
    wait_for(lambda: kids["arm64"].split(":")[1] in hexes(), what="the pulled platform's manifest stored")
    assert digest(idx).split(":")[1] in hexes()
    assert m.get("/v2/multi/app/tags/list").json()["tags"] == ["v1"]
    # the other platform was never fetched (lazy children, as a pull-through cache)
    assert kids["amd64"].split(":")[1] not in hexes()

    up.stop()  # by its PID: the upstream is gone
    r = pull("arm64", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b" / "manifest.json").read_bytes() == (tmp_path / "a" / "manifest.json").read_bytes()
    for layer in arm["layers"]:
        assert digest((tmp_path / "b" / layer["digest"].split(":")[1]).read_bytes()) == layer["digest"]
    assert m.get("/v2/multi/app/manifests/v1", headers={"Accept": OCI_INDEX}).content == idx
    # a platform nobody pulled: a clean OCI error, the client fails
    r = m.get("/v2/multi/app/manifests/" + kids["amd64"])
    assert r.status_code == 502 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert pull("amd64", tmp_path / "c").returncode != 0
    assert upload_files(mirror.root, "multi/app") == []


def test_range_get_of_missing_blob(zinc_factory, dist):
    data, dig = big_blob(16)
    dist.registry().push_blob("ranged/layer", data)
    relay = Relay(dist.port, hold_after=4 << 20)
    mirror = mirror_of(zinc_factory, relay.url)
    url = mirror.url + "/v2/ranged/layer/blobs/" + dig
    first, last = (1 << 20) + 5, (2 << 20) + 17

    r = requests.get(url, headers={"Range": "bytes=%d-%d" % (first, last)}, stream=True, timeout=DEADLINE)
    assert r.status_code == 206, r.text
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (first, last, len(data))
    assert int(r.headers["Content-Length"]) == last - first + 1
    # the range streams from the fetch while the upstream's bytes are held past 4 MiB; only
    # its last byte waits for the whole blob to be verified
    got = r.raw.read(last - first)
    assert got == data[first:last]
    # the bytes the mirror got so far may still be on their way through the relay to its
    # 4 MiB hold (a loaded machine): the hold is an event to wait for, and nothing passes it
    wait_for(lambda: relay.holding >= 1, what="the relay to hold the upstream's bytes at 4 MiB")
    with relay.lock:
        assert relay.passed <= (4 << 20)
    relay.open()
    got += r.raw.read()
    r.close()
    assert got == data[first:last + 1]
    wait_for(lambda: dig.split(":")[1] in blob_files(mirror.root, "ranged/layer"), what="the whole blob stored")
    # a suffix range of another missing blob, and one past the end: 206 / 416 with bytes */size
    other = os.urandom(300000)
    d2 = dist.registry().push_blob("ranged/layer", other)
    r = requests.get(mirror.url + "/v2/ranged/layer/blobs/" + d2, headers={"Range": "bytes=-1000"}, timeout=DEADLINE)
    assert r.status_code == 206 and r.content == other[-1000:]
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (len(other) - 1000, len(other) - 1, len(other))
    third = os.urandom(1000)
    d3 = dist.registry().push_blob("ranged/layer", third)
    r = requests.get(mirror.url + "/v2/ranged/layer/blobs/" + d3, headers={"Range": "bytes=5000-"}, timeout=DEADLINE)
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */1000"
    assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    # the fetch still went on: the blob is cached whole and served whole
    wait_for(lambda: d3.split(":")[1] in blob_files(mirror.root, "ranged/layer"), what="the third blob stored")
    assert requests.get(mirror.url + "/v2/ranged/layer/blobs/" + d3, timeout=DEADLINE).content == third


def test_revalidate_moved_tag(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    b1, d1 = ureg.push_image("r", "t", [b"one"])
    mirror = zinc_factory(mirror_config([up.url], manifestCheckInterval="1ns"))
    m = Registry(mirror.url)
    assert m.get("/v2/r/manifests/t").content == b1
    assert m.get("/v2/r/blobs/" + digest(b"one")).status_code == 200
    cfg = json.loads(b1)["config"]["digest"]
    assert m.get("/v2/r/blobs/" + cfg).status_code == 200
    wait_for(lambda: m.get("/v2/r/tags/list").status_code == 200, what="tag stored")
    b2, d2 = ureg.push_image("r", "t", [b"two"])
    r = m.get("/v2/r/manifests/t")
    assert r.content == b2 and r.headers["Docker-Content-Digest"] == d2
    up.stop()
    r = m.get("/v2/r/manifests/t")  # upstream down: what is cached (b1 stays stored until b2's blobs come)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] in (d1, d2)


def test_revalidation_waits_for_its_interval(zinc_factory):
    up = zinc_factory()
    ureg = Registry(up.url)
    b1, d1 = ureg.push_image("r", "t", [b"one"])
    relay = Relay(up.port)
    mirror = zinc_factory(mirror_config([relay.url], manifestCheckInterval="1h"))
    m = Registry(mirror.url)
    assert m.get("/v2/r/manifests/t").content == b1
    for d in (digest(b"one"), json.loads(b1)["config"]["digest"]):
        assert m.get("/v2/r/blobs/" + d).status_code == 200
    wait_for(lambda: m.get("/v2/r/tags/list").status_code == 200, what="tag stored")
    b2, d2 = ureg.push_image("r", "t", [b"two"])

    def tag_requests():
        with relay.lock:
            return sum(1 for line in relay.requests if "/manifests/t " in line)

    before = tag_requests()
    assert before == 1
    # within the interval (it started with the fetch): the cached tag, no upstream request
    for _ in range(3):
        r = m.get("/v2/r/manifests/t")
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d1
    assert tag_requests() == before
    assert metric(mirror, "zinc_sync_requests_total", {"kind": "manifest", "result": "hit"}) == 3


def test_tls_verified_by_default(zinc_factory, tmp_path):
    from test_tls import make_cert, start as tls_start
    d = str(tmp_path)
    ca = make_cert(d, "ca")
    server = make_cert(d, "server", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth", subj="/CN=127.0.0.1")
    up = tls_start(zinc_factory, {"http": {"tls": {"cert": server[0], "key": server[1]}}}, {"ca": ca})
    ureg = Registry(up.url)
    ureg.s.verify = ca[0]
    ureg.s.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
    body, _ = ureg.push_image("sec/app", "v1", [b"over tls"])
    # default tlsVerify: the system CAs, which do not know this one: refused, a clean error
    strict = zinc_factory(mirror_config([up.url]))
    r = Registry(strict.url).get("/v2/sec/app/manifests/v1")
    assert r.status_code == 502 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert any("certificate" in json.dumps(line).lower() for line in strict.log_lines()), strict.log()
    # certDir holding the CA (*.crt, as zot and docker's certs.d): verified, served
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca[0], certs / "ca.crt")
    trusted = zinc_factory(mirror_config([up.url], certDir=str(certs)))
    r = Registry(trusted.url).get("/v2/sec/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == body
    # a certDir CA that did not sign the server's certificate: refused again
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(make_cert(d, "other-ca")[0], other / "ca.crt")
    wrong = zinc_factory(mirror_config([up.url], certDir=str(other)))
    assert Registry(wrong.url).get("/v2/sec/app/manifests/v1").status_code == 502
    # tlsVerify false: served without checking
    lax = zinc_factory(mirror_config([up.url], tlsVerify=False))
    assert Registry(lax.url).get("/v2/sec/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body


# ---- CNCF Distribution as the upstream (htpasswd), through a relay the test controls --------------


USER, PASSWORD = "mirror", "s3cret-pass"


class DistRegistry(Registry):
    """Distribution has no single-POST upload: POST, then PUT the bytes with ?digest=."""

    def push_blob(self, repo, data):
        d = digest(data)
        loc = self.start_upload(repo)
        sep = "&" if "?" in loc else "?"
        r = self.s.put(loc + sep + "digest=" + d, data=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return d


class Distribution:
    """Debian's docker-registry on a loopback port, htpasswd (bcrypt) auth, its own temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="zinc-dist-")
        self.port = free_port()
        htpasswd = os.path.join(self.dir, "htpasswd")
        out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True).stdout
        with open(htpasswd, "wb") as f:
            f.write(out)
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                    "http:\n  addr: 127.0.0.1:%d\nauth:\n  htpasswd:\n    realm: dist\n    path: %s\n"
                    % (os.path.join(self.dir, "data"), self.port, htpasswd))
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", cfg], stdout=self.log, stderr=self.log)
        self.url = "http://127.0.0.1:%d" % self.port
        wait_for(lambda: self._up(), what="docker-registry to listen")

    def _up(self):
        try:
            return requests.get(self.url + "/v2/", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False

    def registry(self):
        r = DistRegistry(self.url)
        r.s.auth = (USER, PASSWORD)
        return r

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Relay:
    """A loopback TCP relay between the mirror and an upstream. Counts the blob GETs it sees
    and, while `hold` is set, stops passing the upstream's bytes on once a connection has
    passed `hold_after` of them; cut() closes every connection."""

    def __init__(self, upstream_port, hold_after=None):
        self.upstream_port = upstream_port
        self.hold_after = hold_after
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.requests = []  # request lines seen
        self.passed = 0     # upstream bytes passed on, all connections
        self.holding = 0    # connections currently held
        self.socks = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.closed:
                c.close()
                return
            u = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.socks += [c, u]
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c, u):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                buf = (buf + d)[-8192:]
                authed = b"\r\nauthorization:" in d.lower()
                for line in d.split(b"\r\n"):
                    if line.startswith((b"GET ", b"HEAD ")):
                        with self.lock:
                            self.requests.append(line.decode() + (" [auth]" if authed else ""))
                u.sendall(d)
        except OSError:
            pass
        finally:
            for s in (u,):
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _down(self, u, c):
        sent = 0
        try:
            while True:
                d = u.recv(65536)
                if not d:
                    break
                if self.hold_after is not None and not self.release.is_set() and sent + len(d) > self.hold_after:
                    keep = max(0, self.hold_after - sent)
                    c.sendall(d[:keep])
                    with self.lock:
                        self.passed += keep
                        self.holding += 1
                    self.release.wait()
                    with self.lock:
                        self.holding -= 1
                    if self.closed:
                        return
                    d = d[keep:]
                    sent += keep
                c.sendall(d)
                sent += len(d)
                with self.lock:
                    self.passed += len(d)
        except OSError:
            pass
        finally:
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def blob_gets(self, dig):
        """GETs of the blob that carried credentials (the first, bare one only gets the 401)."""
        with self.lock:
            return sum(1 for r in self.requests if r.startswith("GET ") and ("/blobs/" + dig) in r and "[auth]" in r)

    def cut(self):
        self.closed = True
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a bare close would not)
        except OSError:
            pass
        self.srv.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.release.set()

    def open(self):
        self.release.set()


@pytest.fixture
def dist():
    d = Distribution()
    yield d
    d.close()


def creds_file(workdir, relay_or_url):
    host = relay_or_url.split("://", 1)[1]
    p = os.path.join(workdir, "creds.json")
    with open(p, "w") as f:
        json.dump({host: {"username": USER, "password": PASSWORD}}, f)
    return p


def mirror_of(zinc_factory, url):
    d = tempfile.mkdtemp(prefix="zinc-creds-")
    cfg = mirror_config([url])
    cfg["extensions"]["sync"]["credentialsFile"] = creds_file(d, url)
    return zinc_factory(cfg)


def big_blob(mib):
    """mib MiB of incompressible bytes, as one bytes object, with its digest."""
    block = os.urandom(1 << 20)
    data = b"".join(i.to_bytes(8, "big") + block[8:] for i in range(mib))
    return data, digest(data)


def test_distribution_upstream_skopeo(zinc_factory, dist, tmp_path):
    ureg = dist.registry()
    body, mdig = ureg.push_image("team/app", "1.0", [gzip.compress(os.urandom(1 << 20)), gzip.compress(b"x" * 1000)])
    assert Registry(dist.url).get("/v2/team/app/manifests/1.0").status_code == 401  # credentials needed
    mirror = mirror_of(zinc_factory, dist.url)
    out = tmp_path / "oci"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "docker://%s/team/app:1.0" % mirror.hostport,
                    "dir:%s" % out], check=True, capture_output=True, timeout=120)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/team/app:1.0" % mirror.hostport],
                         check=True, capture_output=True, timeout=120).stdout
    assert raw == body  # the upstream's exact bytes (skopeo rewrites the manifest it writes into oci:)
    for layer in json.loads(body)["layers"]:
        p = out / layer["digest"].split(":")[1]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == layer["digest"].split(":")[1]
    wait_for(lambda: Registry(mirror.url).get("/v2/team/app/tags/list").status_code == 200, what="tag stored")
    # the second pull comes from the store alone
    dist.proc.terminate()
    dist.proc.wait(timeout=20)
    out2 = tmp_path / "oci2"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "docker://%s/team/app:1.0" % mirror.hostport,
                    "dir:%s" % out2], check=True, capture_output=True, timeout=120)


def test_stream_cut_and_retry(zinc_factory, dist):
    size_mib = 64  # well past the 8 MiB the relay lets through before it holds
    data, dig = big_blob(size_mib)
    ureg = dist.registry()
    ureg.push_blob("big/layer", data)
    relay = Relay(dist.port, hold_after=8 << 20)
    mirror = mirror_of(zinc_factory, relay.url)
    hexd = dig.split(":")[1]

    r = requests.get(mirror.url + "/v2/big/layer/blobs/" + dig, stream=True, timeout=DEADLINE)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
    first = r.raw.read(1 << 20)
    assert first == data[:1 << 20]
    # the relay stops after 8 MiB of the upstream's bytes; while it holds the rest, the
    # client still gets what came before
    wait_for(lambda: relay.holding >= 1, what="the relay to hold")
    more = r.raw.read(4 << 20)
    assert more == data[1 << 20:5 << 20]
    with relay.lock:
        assert relay.holding >= 1 and relay.passed <= (8 << 20)
    first += more
    relay.cut()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                        Exception)):
        got = len(first)
        while True:
            chunk = r.raw.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        assert got == len(data), "short body"  # a short read raises here
    r.close()
    # nothing half-visible: no blob, and the session file is gone
    assert hexd not in blob_files(mirror.root, "big/layer")
    wait_for(lambda: upload_files(mirror.root, "big/layer") == [], what="session removed")
    assert requests.head(mirror.url + "/v2/big/layer/blobs/" + dig, timeout=DEADLINE).status_code in (404, 502)

    relay2 = Relay(dist.port)
    mirror.stop()
    mirror.config["extensions"]["sync"]["registries"][0]["urls"] = [relay2.url]
    mirror.config["extensions"]["sync"]["credentialsFile"] = creds_file(mirror.workdir, relay2.url)
    mirror.write_config()
    mirror.start()
    r = requests.get(mirror.url + "/v2/big/layer/blobs/" + dig, timeout=DEADLINE * 4)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == hexd
    wait_for(lambda: hexd in blob_files(mirror.root, "big/layer"), what="blob stored")
    with open(os.path.join(mirror.root, "big/layer/blobs/sha256", hexd), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hexd


def test_upstream_killed_mid_pull(zinc_factory, dist):
    data, dig = big_blob(64)
    dist.registry().push_blob("killed/layer", data)
    relay = Relay(dist.port, hold_after=4 << 20)
    mirror = mirror_of(zinc_factory, relay.url)
    hexd = dig.split(":")[1]
    r = requests.get(mirror.url + "/v2/killed/layer/blobs/" + dig, stream=True, timeout=DEADLINE)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
    got = len(r.raw.read(1 << 20))
    wait_for(lambda: relay.holding >= 1, what="the relay to hold")
    os.kill(dist.proc.pid, signal.SIGKILL)  # the upstream process dies mid-transfer
    dist.proc.wait(timeout=20)
    relay.open()  # what it held goes on, then the dead upstream's end of the connection
    with pytest.raises(Exception):
        while True:
            chunk = r.raw.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        assert got == len(data), "short body"  # urllib3 may end a short body quietly
    assert got < len(data)
    r.close()
    relay.cut()
    assert hexd not in blob_files(mirror.root, "killed/layer")
    wait_for(lambda: upload_files(mirror.root, "killed/layer") == [], what="session removed")
    r = requests.get(mirror.url + "/v2/killed/layer/blobs/" + dig, timeout=DEADLINE)
    assert r.status_code == 502 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert hexd not in blob_files(mirror.root, "killed/layer")
    assert metric(mirror, "zinc_sync_fetches_total", {"kind": "blob", "result": "failed"}) == 2


def test_concurrent_pulls_share_one_fetch(zinc_factory, dist):
    data, dig = big_blob(32)
    dist.registry().push_blob("shared/layer", data)
    relay = Relay(dist.port, hold_after=4 << 20)
    mirror = mirror_of(zinc_factory, relay.url)
    results = {}

    def pull(i):
        with requests.get(mirror.url + "/v2/shared/layer/blobs/" + dig, stream=True, timeout=DEADLINE * 4) as r:
            results[i] = (r.status_code, hashlib.sha256(r.raw.read()).hexdigest())

    first = requests.get(mirror.url + "/v2/shared/layer/blobs/" + dig, stream=True, timeout=DEADLINE)
    assert first.raw.read(1 << 20) == data[:1 << 20]  # the fetch runs and is held by the relay
    threads = [threading.Thread(target=pull, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: metric(mirror, "zinc_sync_requests_total", {"kind": "blob", "result": "miss"}) >= 1,
             what="miss counted")
    relay.open()
    rest = first.raw.read()
    assert hashlib.sha256(data[:1 << 20] + rest).hexdigest() == dig.split(":")[1]
    for t in threads:
        t.join(DEADLINE * 4)
    assert all(v == (200, dig.split(":")[1]) for v in results.values()) and len(results) == 3
    # late joiners either shared the running fetch or read the stored blob: one upstream GET
    assert relay.blob_gets(dig) == 1, relay.requests


class TokenFront:
    """A Bearer-token front for Distribution, the way Docker Hub answers: 401 with
    `WWW-Authenticate: Bearer realm=<token URL>,service=,scope=` until a request carries the
    token its realm issued for that repository; the realm wants Basic credentials. Behind it
    the real Distribution serves the content (with its own htpasswd credentials)."""

    def __init__(self, dist, anonymous=False):
        import http.server

        front = self
        self.anonymous = anonymous  # the realm issues tokens without credentials (Docker Hub's public images)
        self.token_requests = []
        self.dist = dist

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                import base64
                import urllib.parse
                u = urllib.parse.urlparse(self.path)
                if u.path == "/token":
                    q = urllib.parse.parse_qs(u.query)
                    front.token_requests.append((q, self.headers.get("Authorization")))
                    want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                    if self.headers.get("Authorization") != (None if front.anonymous else want):
                        return self._send(401)
                    scope = q.get("scope", [""])[0]
                    return self._send(200, json.dumps({"token": "tok:" + scope, "expires_in": 300}).encode(),
                                      [("Content-Type", "application/json")])
                repo = u.path[len("/v2/"):].rsplit("/", 2)[0]
                scope = "registry:catalog:*" if u.path == "/v2/_catalog" else "repository:%s:pull" % repo
                if self.headers.get("Authorization") != "Bearer tok:" + scope:
                    chal = 'Bearer realm="http://127.0.0.1:%d/token",service="front",scope="%s"' % (front.port, scope)
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", chal)])
                hdrs = {k: v for k, v in self.headers.items() if k.lower() == "accept"}
                r = requests.request(self.command, dist.url + self.path, headers=hdrs, auth=(USER, PASSWORD), timeout=60)
                keep = [(k, v) for k, v in r.headers.items() if k.lower() in ("content-type", "docker-content-digest", "link")]
                self._send(r.status_code, r.content, keep)

            do_HEAD = do_GET

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_bearer_token_flow(zinc_factory, dist):
    body, _ = dist.registry().push_image("org/tool", "v2", [b"layer-one", b"layer-two"])
    front = TokenFront(dist)
    try:
        mirror = mirror_of(zinc_factory, front.url)
        m = Registry(mirror.url)
        assert m.get("/v2/org/tool/manifests/v2", headers={"Accept": OCI_MANIFEST}).content == body
        for layer in (b"layer-one", b"layer-two"):
            assert m.get("/v2/org/tool/blobs/" + digest(layer)).content == layer
        q, authz = front.token_requests[0]
        assert q["service"] == ["front"] and q["scope"] == ["repository:org/tool:pull"]
        assert authz.startswith("Basic ")
        # the token is reused for the next fetches of the repository
        assert len(front.token_requests) == 1
    finally:
        front.close()


def test_anonymous_bearer_token_flow(zinc_factory, dist):
    """No credentialsFile: the token is asked for anonymously, as for Docker Hub's public images."""
    body, _ = dist.registry().push_image("public/tool", "v1", [b"public layer"])
    front = TokenFront(dist, anonymous=True)
    try:
        mirror = zinc_factory(mirror_config([front.url]))
        m = Registry(mirror.url)
        assert m.get("/v2/public/tool/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body
        assert m.get("/v2/public/tool/blobs/" + digest(b"public layer")).content == b"public layer"
        q, authz = front.token_requests[0]
        assert q["scope"] == ["repository:public/tool:pull"] and authz is None
        assert len(front.token_requests) == 1
    finally:
        front.close()


def test_retries_until_upstream_listens(zinc_factory):
    up = zinc_factory()
    body, _ = Registry(up.url).push_image("late/app", "v1", [b"late layer"])
    up.stop()  # its store keeps the image; its port refuses connections for now
    mirror = zinc_factory(mirror_config([up.url], maxRetries=600, retryDelay="100ms"))
    got = {}

    def pull():
        got["r"] = requests.get(mirror.url + "/v2/late/app/manifests/v1", headers={"Accept": OCI_MANIFEST},
                                timeout=DEADLINE * 2)

    t = threading.Thread(target=pull)
    t.start()
    # the mirror has met the refused port at least once and is retrying
    wait_for(lambda: any(l.get("message") == "httpc: request failed before any answer, retrying" for l in mirror.log_lines()),
             what="a retry")
    up.start()  # same port: a later retry gets through
    t.join(DEADLINE * 2)
    assert got["r"].status_code == 200 and got["r"].content == body
