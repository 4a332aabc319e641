"""Small OCI distribution client for the e2e tests: blobs (monolithic, streamed, chunked),
manifests and whole images pushed with plain HTTP requests, so tests control every header."""
import hashlib
import http.client
import json
import threading
import urllib.parse

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canon(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def error_code(resp):
    return resp.json()["errors"][0]["code"]


def raw_request(hostport, method, path, body=None, headers=None):
    """A request whose path is sent byte for byte (requests/curl would resolve `..`)."""
    conn = http.client.HTTPConnection(hostport, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body or b"")))
    conn.endheaders(body or b"")
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


class Registry:
    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        # no idle keep-alive connections left behind: they hold up zinc's graceful stop
        self.s.headers["Connection"] = "close"

    def abs(self, location):
        return urllib.parse.urljoin(self.url + "/", location)

    def start_upload(self, repo):
        r = self.s.post("%s/v2/%s/blobs/uploads/" % (self.url, repo))
        assert r.status_code == 202, r.text
        return self.abs(r.headers["Location"])

    def push_blob(self, repo, data):
        d = digest(data)
        r = self.s.post("%s/v2/%s/blobs/uploads/?digest=%s" % (self.url, repo, d), data=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return d

    def push_blob_chunked(self, repo, data, chunk=1 << 16):
        loc = self.start_upload(repo)
        for off in range(0, len(data), chunk):
            part = data[off:off + chunk]
            r = self.s.patch(loc, data=part, headers={"Content-Range": "%d-%d" % (off, off + len(part) - 1),
                                                      "Content-Type": "application/octet-stream"})
            assert r.status_code == 202, r.text
            loc = self.abs(r.headers["Location"])
        d = digest(data)
        r = self.s.put(loc + ("&" if "?" in loc else "?") + "digest=" + d)
        assert r.status_code == 201, r.text
        return d

    def put_manifest(self, repo, ref, body, media_type=OCI_MANIFEST):
        headers = {"Content-Type": media_type} if media_type else {}
        return self.s.put("%s/v2/%s/manifests/%s" % (self.url, repo, ref), data=body, headers=headers)

    def get(self, path, **kw):
        return self.s.get(self.url + path, **kw)

    def push_image(self, repo, tag, layers, config=None, docker=False, extra=None):
        """Pushes config + layers + manifest; returns (manifest bytes, manifest digest)."""
        config = config if config is not None else canon({"architecture": "amd64", "os": "linux",
                                                         "rootfs": {"type": "layers", "diff_ids": []}})
        cd = self.push_blob(repo, config)
        descs = []
        for layer in layers:
            descs.append({"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": self.push_blob(repo, layer),
                          "size": len(layer)})
        mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
        m = {"schemaVersion": 2, "mediaType": mt,
             "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": cd, "size": len(config)},
             "layers": descs}
        m.update(extra or {})
        body = canon(m)
        r = self.put_manifest(repo, tag, body, mt)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest(body)
        return body, digest(body)


def in_thread(fn):
    """Runs fn in a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box
