"""`zinc scrub` and the verified blob GET: a clean store scrubs clean (exit 0); a corrupt
blob, a missing layer, a stray file in blobs/ and a broken index.json are each reported
with repository and digest (exit 1); a corrupt blob is quarantined and never served whole."""
import json
import os
import socket
import subprocess
import time

import requests

from conftest import SLOW, ZINC_BIN
from oci_util import Registry, canon, digest


def scrub(server):
    p = subprocess.run([ZINC_BIN, "scrub", server.config_path], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def blob_file(server, repo, d):
    algo, hexd = d.split(":")
    return os.path.join(server.root, repo, "blobs", algo, hexd)


def push(server, repo, tag, layer):
    reg = Registry(server.url)
    body, md = reg.push_image(repo, tag, [layer])
    return reg, json.loads(body), md


def test_scrub_clean_store_exits_zero(zinc):
    push(zinc, "a/b", "v1", os.urandom(300000))
    push(zinc, "c", "v1", b"layer")
    rc, out, err = scrub(zinc)
    assert rc == 0, (out, err)
    assert out == ""
    assert "2 repositories" in err and "0 problems" in err


def test_scrub_reports_each_problem_with_repo_and_digest(zinc):
    _, m1, _ = push(zinc, "bad/blob", "v1", os.urandom(100000))
    _, m2, _ = push(zinc, "missing", "v1", b"a layer that goes away")
    push(zinc, "badindex", "v1", b"x")
    push(zinc, "stray", "v1", b"y")
    corrupt = m1["layers"][0]["digest"]
    with open(blob_file(zinc, "bad/blob", corrupt), "r+b") as f:
        f.seek(500)
        f.write(b"\0rot\0")
    gone = m2["layers"][0]["digest"]
    os.unlink(blob_file(zinc, "missing", gone))
    with open(os.path.join(zinc.root, "badindex", "index.json"), "w") as f:
        f.write('{"schemaVersion": 2, "manifests": [')
    open(os.path.join(zinc.root, "stray", "blobs", "sha256", "tmp-0123"), "w").close()

    rc, out, err = scrub(zinc)
    assert rc == 1, (out, err)
    lines = out.splitlines()
    assert any(l.startswith("bad/blob %s: corrupt blob" % corrupt) for l in lines), out
    assert any(l.startswith("missing %s: missing layer blob" % gone) for l in lines), out
    assert any(l.startswith("badindex index.json:") for l in lines), out
    assert any(l.startswith("stray tmp-0123: stray file") for l in lines), out
    assert len(lines) == 4, out

    # the corrupt blob was quarantined: a clean OCI error now, and the bytes kept aside
    r = requests.get(zinc.url + "/v2/bad/blob/blobs/" + corrupt)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    q = os.listdir(os.path.join(zinc.root, ".zinc", "quarantine"))
    assert len(q) == 1 and q[0].startswith("sha256-" + corrupt.split(":")[1])


def read_raw_get(hostport, path):
    """GET over a raw socket: (status, content-length, body bytes received before EOF)."""
    host, port = hostport.split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, hostport)).encode())
    data = b""
    while True:
        try:
            b = s.recv(1 << 16)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = dict(l.lower().split(": ", 1) for l in lines[1:])
    return status, int(hdrs.get("content-length", -1)), body


def test_get_of_corrupt_blob_never_hands_out_the_whole_body(zinc):
    layer = os.urandom(3 << 20)  # several read chunks: most of it is streamed before the check
    _, m, _ = push(zinc, "rot", "v1", layer)
    d = m["layers"][0]["digest"]
    status, length, body = read_raw_get(zinc.hostport, "/v2/rot/blobs/" + d)
    assert status == 200 and length == len(layer) and body == layer  # intact: served in full

    with open(blob_file(zinc, "rot", d), "r+b") as f:
        f.seek(1 << 20)
        f.write(b"\xff" * 16)
    status, length, body = read_raw_get(zinc.hostport, "/v2/rot/blobs/" + d)
    assert status == 200 and length == len(layer)
    assert len(body) < length  # truncated: the client knows the transfer failed
    # ...and quarantined on the spot: the next GET is a clean OCI error
    r = requests.get(zinc.url + "/v2/rot/blobs/" + d)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert any(l.get("message") == "blob does not match its digest, response aborted" for l in zinc.log_lines())


def test_get_of_corrupt_manifest_fails_cleanly(zinc):
    _, m, md = push(zinc, "mrot", "v1", b"layer")
    path = blob_file(zinc, "mrot", md)
    with open(path, "rb") as f:
        body = f.read()
    with open(path, "wb") as f:
        f.write(body.replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    r = requests.get(zinc.url + "/v2/mrot/manifests/" + md,
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code >= 400 and r.content != body
    assert r.json()["errors"]


def wait_for_log(server, pred, timeout, skip=0):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        lines = [l for l in server.log_lines()[skip:] if pred(l)]
        if lines:
            return lines
        time.sleep(0.05)
    raise AssertionError("no such log line:\n" + server.log()[-5000:])


def test_periodic_scrub_finds_and_quarantines(zinc_factory):
    s = zinc_factory({"extensions": {"scrub": {"interval": "1h"}}})
    assert any(l.get("message") == "scrub scheduled" and l.get("interval_ms") == 2 * 3600 * 1000
               for l in s.log_lines()), s.log()  # under 2h becomes 2h, as in zot
    p = subprocess.run([ZINC_BIN, "verify", s.config_path], capture_output=True, text=True)
    assert p.returncode == 0 and "less than 2h" in p.stderr
    _, m, _ = push(s, "periodic", "v1", os.urandom(200000))
    d = m["layers"][0]["digest"]
    s.stop()
    with open(blob_file(s, "periodic", d), "r+b") as f:
        f.write(b"\0\0\0\0")
    before = len(s.log_lines())  # the first run's own startup pass is not looked at
    s.start()  # the scrub thread makes its first pass at startup, then every interval
    done = wait_for_log(s, lambda l: l.get("message") == "scrub done", 30, skip=before)
    assert done[0]["repos"] == 1 and done[0]["problems"] == 1 and done[0]["level"] == "error"
    found = [l for l in s.log_lines()[before:] if l.get("message") == "scrub: problem found"]
    assert len(found) == 1 and found[0]["repo"] == "periodic" and found[0]["object"] == d
    r = requests.get(s.url + "/v2/periodic/blobs/" + d)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_verify_blob_reads_can_be_turned_off(zinc_factory):
    s = zinc_factory({"zinc": {"verifyBlobReads": False}})
    layer = os.urandom(1 << 20)
    _, m, _ = push(s, "fast", "v1", layer)
    d = m["layers"][0]["digest"]
    with open(blob_file(s, "fast", d), "r+b") as f:
        f.write(b"\xff" * 16)
    status, length, body = read_raw_get(s.hostport, "/v2/fast/blobs/" + d)
    assert status == 200 and len(body) == length == len(layer) and body != layer  # unchecked, as configured
    rc, out, _ = scrub(s)  # ...and the scrub still catches it
    assert rc == 1 and ("fast %s: corrupt blob" % d) in out
