"""Streamed uploads (issue 13, docs/design-uploads.md): an HTTP/1 upload body is hashed and
written while it arrives, not after h2o has buffered all of it. Each test drives a raw
socket so it controls when the rest of the body is sent: the session file under .uploads
must grow while the client still holds bytes back, and every check of the buffered path
(auth, digest, Content-Range, size limit) still holds before anything is stored."""
import hashlib
import os
import socket
import ssl
import subprocess
import time

import requests

from conftest import SLOW
from oci_util import Registry, digest
from test_auth import PASSWORDS, auth_config, basic, bcrypt_line, write_htpasswd
from test_tls import pki, start as start_tls, tls_config  # noqa: F401 (pki is a fixture)

MiB = 1 << 20


def connect(z):
    c = socket.create_connection(("127.0.0.1", z.port), timeout=60 * SLOW)
    if z.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = ctx.wrap_socket(c)
    return c


def send_head(c, method, path, headers):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"] + ["%s: %s" % kv for kv in headers.items()]
    c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


class Reader:
    """Reads HTTP/1.1 responses (Content-Length framed) off one connection, in order."""

    def __init__(self, c):
        self.c, self.buf = c, b""

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            x = self.c.recv(65536)
            if not x:
                raise EOFError("connection closed before a response")
            self.buf += x
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = dict((k.lower(), v.strip()) for k, v in (l.split(":", 1) for l in lines[1:]))
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            x = self.c.recv(65536)
            if not x:
                raise EOFError("connection closed inside a response body")
            self.buf += x
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def closed(self):
        """True once the server closed the connection (nothing more to read)."""
        try:
            return self.c.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def session_file(z, repo, loc):
    return os.path.join(z.root, repo, ".uploads", loc.rsplit("/", 1)[1])


def upload_files(z, repo):
    d = os.path.join(z.root, repo, ".uploads")
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def wait_for(cond, what, timeout=60):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def size_of(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def chunk(part):
    return b"%x\r\n" % len(part) + part + b"\r\n"


def test_patch_is_written_while_the_body_arrives(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/cl")
    path = loc[len(zinc.url):]
    data = os.urandom(24 * MiB)
    c = connect(zinc)
    send_head(c, "PATCH", path, {"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"})
    c.sendall(data[:12 * MiB])
    # the buffered path wrote nothing before the last byte; the stream has hashed and
    # written part of the body while the client holds the rest back
    f = session_file(zinc, "s/cl", loc)
    wait_for(lambda: size_of(f) >= 4 * MiB, "the session file to grow mid-body")
    assert size_of(f) <= 12 * MiB
    c.sendall(data[12 * MiB:])
    status, hdrs, _ = Reader(c).response()
    assert status == 202 and hdrs["range"] == "0-%d" % (len(data) - 1)
    c.close()
    r = reg.s.put(loc + "?digest=" + digest(data))
    assert r.status_code == 201, r.text
    assert reg.s.get("%s/v2/s/cl/blobs/%s" % (zinc.url, digest(data))).content == data


def test_chunked_patch_is_streamed_and_keeps_the_connection(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/chunked")
    path = loc[len(zinc.url):]
    data = os.urandom(10 * MiB + 12345)
    c = connect(zinc)
    rd = Reader(c)
    send_head(c, "PATCH", path, {"Transfer-Encoding": "chunked"})
    half = 6 * MiB
    for off in range(0, half, 700001):
        c.sendall(chunk(data[off:min(off + 700001, half)]))
    f = session_file(zinc, "s/chunked", loc)
    wait_for(lambda: size_of(f) >= 2 * MiB, "the session file to grow mid-body (chunked)")
    c.sendall(chunk(data[half:]) + b"0\r\n\r\n")
    # pipelined behind the body: h2o parses it once the upload is answered
    send_head(c, "GET", path, {})
    status, hdrs, _ = rd.response()
    assert status == 202 and hdrs["range"] == "0-%d" % (len(data) - 1)
    assert hdrs["connection"] == "keep-alive"
    status, hdrs, _ = rd.response()
    assert status == 204 and hdrs["range"] == "0-%d" % (len(data) - 1)
    # and a final PUT on the same connection
    send_head(c, "PUT", path + "?digest=" + digest(data), {"Content-Length": "0"})
    status, hdrs, _ = rd.response()
    assert status == 201 and hdrs["docker-content-digest"] == digest(data)
    c.close()


def test_monolithic_post_is_streamed_and_wrong_digest_stores_nothing(zinc):
    reg = Registry(zinc.url)
    data = os.urandom(16 * MiB)
    good = digest(data)
    bad = "sha256:" + hashlib.sha256(b"not it").hexdigest()
    for d, want in ((bad, 400), (good, 201)):
        c = connect(zinc)
        send_head(c, "POST", "/v2/s/mono/blobs/uploads/?digest=" + d, {"Content-Length": str(len(data))})
        c.sendall(data[:8 * MiB])
        wait_for(lambda: any(size_of(p) >= 2 * MiB for p in upload_files(zinc, "s/mono")),
                 "the monolithic session to grow mid-body")
        c.sendall(data[8 * MiB:])
        status, hdrs, body = Reader(c).response()
        c.close()
        assert status == want, body
        if want == 400:
            assert b"DIGEST_INVALID" in body
            assert reg.s.head("%s/v2/s/mono/blobs/%s" % (zinc.url, bad)).status_code == 404
            assert reg.s.head("%s/v2/s/mono/blobs/%s" % (zinc.url, good)).status_code == 404
            wait_for(lambda: upload_files(zinc, "s/mono") == [], "the failed session to be removed")
    assert reg.s.get("%s/v2/s/mono/blobs/%s" % (zinc.url, good)).content == data


def test_disconnect_mid_body_then_resume_at_the_reported_range(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/resume")
    path = loc[len(zinc.url):]
    data = os.urandom(20 * MiB)
    c = connect(zinc)
    send_head(c, "PATCH", path, {"Content-Length": str(len(data))})
    c.sendall(data[:9 * MiB])
    f = session_file(zinc, "s/resume", loc)
    wait_for(lambda: size_of(f) >= 3 * MiB, "part of the body to be written")
    c.close()

    def status_ok():
        r = reg.s.get(loc)
        return r.status_code == 204
    wait_for(status_ok, "the session to be released after the disconnect")
    r = reg.s.get(loc)
    have = int(r.headers["Range"].split("-")[1]) + 1
    assert 3 * MiB <= have <= 9 * MiB and have == size_of(f)
    r = reg.s.patch(loc, data=data[have:], headers={"Content-Range": "%d-%d" % (have, len(data) - 1)})
    assert r.status_code == 202, r.text
    r = reg.s.put(loc + "?digest=" + digest(data))
    assert r.status_code == 201, r.text
    assert reg.s.get("%s/v2/s/resume/blobs/%s" % (zinc.url, digest(data))).content == data


def test_restart_mid_upload_resumes(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/restart")
    part1, part2 = os.urandom(9 * MiB), os.urandom(3 * MiB)
    r = reg.s.patch(loc, data=part1)
    assert r.status_code == 202
    zinc.restart()
    r = reg.s.patch(loc, data=part2, headers={"Content-Range": "%d-%d" % (len(part1), len(part1) + len(part2) - 1)})
    assert r.status_code == 202, r.text
    r = reg.s.put(loc + "?digest=" + digest(part1 + part2))
    assert r.status_code == 201, r.text


def test_content_range_mismatch_is_refused_before_storing(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/range")
    path = loc[len(zinc.url):]
    data = os.urandom(8 * MiB)
    c = connect(zinc)
    send_head(c, "PATCH", path, {"Content-Length": str(len(data)), "Content-Range": "5-%d" % (len(data) + 4)})
    c.sendall(data)
    status, _, _ = Reader(c).response()
    c.close()
    assert status == 416
    assert size_of(session_file(zinc, "s/range", loc)) == 0


def test_broken_chunked_encoding_is_a_400_and_closes(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/badchunk")
    path = loc[len(zinc.url):]
    c = connect(zinc)
    rd = Reader(c)
    send_head(c, "PATCH", path, {"Transfer-Encoding": "chunked"})
    c.sendall(chunk(os.urandom(3 * MiB)))
    f = session_file(zinc, "s/badchunk", loc)
    wait_for(lambda: size_of(f) >= 1 * MiB, "the first chunk to be written")
    c.sendall(b"zz-not-hex\r\n")
    status, _, body = rd.response()
    assert status == 400 and b"BLOB_UPLOAD_INVALID" in body
    assert rd.closed()
    c.close()


def test_expect_100_continue(zinc):
    reg = Registry(zinc.url)
    loc = reg.start_upload("s/continue")
    path = loc[len(zinc.url):]
    data = os.urandom(6 * MiB)
    c = connect(zinc)
    rd = Reader(c)
    send_head(c, "PATCH", path, {"Content-Length": str(len(data)), "Expect": "100-continue"})
    status, _, _ = rd.response()
    assert status == 100
    c.sendall(data)
    status, hdrs, _ = rd.response()
    assert status == 202 and hdrs["range"] == "0-%d" % (len(data) - 1)
    c.close()


def test_anonymous_streamed_patch_is_refused_and_stores_nothing(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in PASSWORDS.items()])
    z = zinc_factory(auth_config(path))
    reg = Registry(z.url)
    reg.s.headers["Authorization"] = basic("alice", PASSWORDS["alice"])
    loc = reg.start_upload("s/auth")
    upath = loc[len(z.url):]
    data = os.urandom(8 * MiB)
    for hdrs in ({}, {"Authorization": basic("alice", "wrong")}):
        c = connect(z)
        send_head(c, "PATCH", upath, dict(hdrs, **{"Content-Length": str(len(data))}))
        try:
            c.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = Reader(c).response()
        c.close()
        assert status == 401, body
    assert size_of(session_file(z, "s/auth", loc)) == 0
    # the owner streams to it fine
    r = reg.s.patch(loc, data=data)
    assert r.status_code == 202 and size_of(session_file(z, "s/auth", loc)) == len(data)


def test_size_limit_is_checked_before_storing(zinc_factory):
    z = zinc_factory({"storage": {"maxBlobSize": 6 * MiB}})
    reg = Registry(z.url)
    loc = reg.start_upload("s/limit")
    r = reg.s.patch(loc, data=os.urandom(4 * MiB))
    assert r.status_code == 202
    c = connect(z)
    send_head(c, "PATCH", loc[len(z.url):], {"Content-Length": str(4 * MiB)})
    try:
        c.sendall(os.urandom(4 * MiB))
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _, body = Reader(c).response()
    c.close()
    assert status == 413, body
    assert size_of(session_file(z, "s/limit", loc)) == 4 * MiB


def test_stalled_streamed_body_is_cut_after_read_timeout(zinc_factory):
    z = zinc_factory({"http": {"readTimeout": "2s"}})
    reg = Registry(z.url)
    loc = reg.start_upload("s/stall")
    c = connect(z)
    send_head(c, "PATCH", loc[len(z.url):], {"Content-Length": str(8 * MiB)})
    c.sendall(os.urandom(3 * MiB))
    f = session_file(z, "s/stall", loc)
    wait_for(lambda: size_of(f) >= 1 * MiB, "part of the body to be written")
    c.settimeout(60 * SLOW)
    t0 = time.time()
    assert Reader(c).closed()  # zinc gives up on the silent client
    assert time.time() - t0 >= 1
    c.close()
    wait_for(lambda: reg.s.get(loc).status_code == 204, "the session to be released")
    assert int(reg.s.get(loc).headers["Range"].split("-")[1]) + 1 == size_of(f)


def test_tls_http1_upload_is_streamed_and_http2_upload_still_works(zinc_factory, pki, tmp_path):
    z = start_tls(zinc_factory, tls_config(pki), pki)
    ca = pki["ca"][0]
    loc = z.url + requests.post(z.url + "/v2/s/tls/blobs/uploads/", verify=ca).headers["Location"]
    data = os.urandom(16 * MiB)
    c = connect(z)  # TLS without ALPN: HTTP/1.1
    send_head(c, "PATCH", loc[len(z.url):], {"Content-Length": str(len(data))})
    c.sendall(data[:8 * MiB])
    f = session_file(z, "s/tls", loc)
    wait_for(lambda: size_of(f) >= 2 * MiB, "the session file to grow mid-body over TLS")
    c.sendall(data[8 * MiB:])
    status, hdrs, _ = Reader(c).response()
    c.close()
    assert status == 202 and hdrs["range"] == "0-%d" % (len(data) - 1)
    # HTTP/2 bodies take the buffered path (docs/design-uploads.md) and must still land whole
    more = os.urandom(6 * MiB)
    body = tmp_path / "more"
    body.write_bytes(more)
    p = subprocess.run(["curl", "-s", "--http2", "--cacert", pki["ca"][0], "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                        "-X", "PATCH", "--data-binary", "@" + str(body), "-H", "Content-Type: application/octet-stream",
                        "--max-time", str(60 * SLOW), loc], capture_output=True, text=True)
    assert p.stdout.split() == ["2", "202"], (p.stdout, p.stderr)
    r = requests.put(loc + "?digest=" + digest(data + more), verify=ca)
    assert r.status_code == 201, r.text
    assert requests.get(z.url + "/v2/s/tls/blobs/" + digest(data + more), verify=ca).content == data + more
