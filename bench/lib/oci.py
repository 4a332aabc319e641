"""A small OCI distribution client for the benchmark: blob uploads (monolithic and
chunked), manifest PUTs, and an OCI image layout builder for skopeo.

Uploads go through http.client with a 1 MiB send block and an explicit Content-Length so
that a 256 MiB body streams from the page cache without chunked encoding and without
Python copying it into memory whole. Upload Locations are followed as the server gives
them (Distribution's carry a _state token that changes after every PATCH).
"""
import gzip
import hashlib
import http.client
import json
import os
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT_MANIFEST = OCI_MANIFEST + ", application/vnd.docker.distribution.manifest.v2+json"
SEND_BLOCK = 1 << 20


class RegistryError(Exception):
    pass


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(SEND_BLOCK * 4):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class Client:
    """One keep-alive connection to a registry at base_url (http://127.0.0.1:PORT)."""

    def __init__(self, base_url, authorization=None):
        u = urllib.parse.urlsplit(base_url)
        self.base = base_url
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120, blocksize=SEND_BLOCK)
        self.auth = authorization

    def close(self):
        self.conn.close()

    def request(self, method, path, body=None, headers=None, length=None, expect=(200,)):
        """Sends one request; returns (status, headers, body bytes) or raises RegistryError."""
        hdrs = dict(headers or {})
        if self.auth:
            hdrs["Authorization"] = self.auth
        if body is not None or method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = str(length if length is not None else len(body or b""))
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise RegistryError(f"{method} {path}: {e}") from e
        if r.status not in expect:
            raise RegistryError(f"{method} {path.split('?')[0]}: HTTP {r.status} {data[:200]!r}")
        return r.status, r.headers, data

    def _location(self, headers):
        loc = headers.get("Location")
        if not loc:
            raise RegistryError("upload response without Location")
        u = urllib.parse.urlsplit(urllib.parse.urljoin(self.base + "/", loc))
        return u.path + ("?" + u.query if u.query else "")

    def start_upload(self, repo):
        _, h, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
        return self._location(h)

    @staticmethod
    def _with_digest(loc, digest):
        return loc + ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest, safe=":")

    def push_blob(self, repo, data, digest=None):
        """Monolithic push (POST then PUT with the body) of in-memory bytes; returns the digest."""
        digest = digest or sha256_digest(data)
        loc = self.start_upload(repo)
        self.request("PUT", self._with_digest(loc, digest), body=data,
                     headers={"Content-Type": "application/octet-stream"}, expect=(201,))
        return digest

    def push_file(self, repo, path, digest):
        """Monolithic push of a file, streamed; returns the seconds from POST to the 201."""
        size = os.path.getsize(path)
        t0 = time.monotonic()
        loc = self.start_upload(repo)
        with open(path, "rb") as f:
            self.request("PUT", self._with_digest(loc, digest), body=f, length=size,
                         headers={"Content-Type": "application/octet-stream"}, expect=(201,))
        return time.monotonic() - t0

    def push_file_chunked(self, repo, path, digest, chunk):
        """Chunked push: PATCH chunk bytes at a time, then PUT ?digest=; returns seconds."""
        size = os.path.getsize(path)
        t0 = time.monotonic()
        loc = self.start_upload(repo)
        with open(path, "rb") as f:
            off = 0
            while off < size:
                data = f.read(chunk)
                hdrs = {"Content-Type": "application/octet-stream",
                        "Content-Range": f"{off}-{off + len(data) - 1}"}
                _, h, _ = self.request("PATCH", loc, body=data, headers=hdrs, expect=(202,))
                loc = self._location(h)
                off += len(data)
        self.request("PUT", self._with_digest(loc, digest), length=0, expect=(201,))
        return time.monotonic() - t0

    def put_manifest(self, repo, ref, manifest_bytes, media_type=OCI_MANIFEST):
        self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=manifest_bytes,
                     headers={"Content-Type": media_type}, expect=(201,))


def image_manifest(config_bytes, layers, layer_type=OCI_LAYER):
    """OCI image manifest bytes for a config and [(digest, size)] layers."""
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": layer_type, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(m, separators=(",", ":")).encode()


def push_small_image(client, repo, tags, salt):
    """Pushes a two-blob image (1 KiB layer made from salt) under each tag in tags."""
    layer = (f"zinc-bench seed {salt}\n".encode()).ljust(1024, b".")
    ld = client.push_blob(repo, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
    client.push_blob(repo, config)
    manifest = image_manifest(config, [(ld, len(layer))])
    for tag in tags:
        client.put_manifest(repo, tag, manifest)
    return manifest


def write_random(path, size):
    with open("/dev/urandom", "rb") as src, open(path, "wb") as dst:
        left = size
        while left:
            n = min(left, 8 << 20)
            dst.write(src.read(n))
            left -= n


def build_oci_layout(path, nlayers, layer_size, tag="bench"):
    """An OCI image layout at path with nlayers random layers of layer_size bytes each.

    Layers are gzip streams at level 0 (stored blocks) of random bytes: skopeo sees
    compressed layers and copies them as they are instead of compressing them on push,
    so the measurement is the registry's, not gzip's.
    """
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        d = sha256_digest(data)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(data)
        return d

    layers = []
    for _ in range(nlayers):
        data = gzip.compress(os.urandom(layer_size), compresslevel=0, mtime=0)
        layers.append((put(data), len(data)))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]}}).encode()
    put(config)
    manifest = image_manifest(config, layers, OCI_LAYER_GZIP)
    md = put(manifest)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return f"oci:{path}:{tag}"
