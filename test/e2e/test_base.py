"""End-to-end tests of the server foundation: base route, health routes, unknown routes,
the access log, graceful shutdown and the CLI."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import time

import requests

from conftest import ZINC_BIN, REPO, SLOW, free_port

API_VERSION = "registry/2.0"


def wait_lines(read, pred, timeout=10):
    """The lines read() returns that pred accepts, once there is one. The access log is
    written when h2o disposes of the request, after the client already has its answer."""
    deadline = time.time() + timeout * SLOW
    while True:
        lines = [l for l in read() if pred(l)]
        if lines:
            return lines
        assert time.time() < deadline, "no such log line"
        time.sleep(0.05)


def file_lines(path):
    def read():
        out = []
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out
    return read


def wait_server_read(port, sock, timeout=10):
    """Waits until the server side of sock's connection has read everything sent on it (its
    receive queue in /proc/net/tcp is empty): the server has seen those bytes."""
    mine = sock.getsockname()[1]
    deadline = time.time() + timeout * SLOW
    while True:
        with open("/proc/net/tcp") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                local, remote, queues = fields[1], fields[2], fields[4]
                if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == mine:
                    if int(queues.split(":")[1], 16) == 0:
                        return
        assert time.time() < deadline, "zinc did not read the request"
        time.sleep(0.02)


def test_base_route(zinc):
    r = requests.get(zinc.url + "/v2/")
    assert r.status_code == 200
    assert r.json() == {}
    assert r.headers["Docker-Distribution-API-Version"] == API_VERSION
    assert r.headers["Content-Type"] == "application/json"
    h = requests.head(zinc.url + "/v2/")
    assert h.status_code == 200 and h.content == b""


def test_health_routes_any_method(zinc):
    for path in ("/livez", "/readyz", "/startupz"):
        for method in ("GET", "HEAD", "POST"):
            r = requests.request(method, zinc.url + path)
            assert r.status_code == 200, (path, method)
            if method != "HEAD":
                assert r.text == "ok"


def test_unknown_route_is_oci_404(zinc):
    for path in ("/nope", "/v2/_nothing_here", "/v3/", "/"):
        r = requests.get(zinc.url + path)
        assert r.status_code == 404, path
        body = r.json()
        assert body["errors"][0]["code"] and body["errors"][0]["message"]
        assert r.headers["Docker-Distribution-API-Version"] == API_VERSION


def test_wrong_method_is_405(zinc):
    r = requests.delete(zinc.url + "/v2/")
    assert r.status_code == 405
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_access_log_line(zinc):
    requests.get(zinc.url + "/v2/?x=1", headers={"Authorization": "Basic c2VjcmV0OnBhc3N3b3Jk"})
    lines = wait_lines(zinc.log_lines, lambda l: l.get("message") == "request" and l.get("path") == "/v2/")
    l = lines[-1]
    assert l["level"] == "info" and l["method"] == "GET" and l["status"] == 200
    assert l["bytes"] == 2 and l["remote"] == "127.0.0.1"
    assert isinstance(l["duration_ms"], (int, float)) and "time" in l
    assert "c2VjcmV0OnBhc3N3b3Jk" not in zinc.log() and "password" not in zinc.log()


def test_log_level_respected(zinc_factory):
    s = zinc_factory({"log": {"level": "error"}})
    requests.get(s.url + "/v2/")
    assert s.stop() == 0  # every request is logged (or not) by the time zinc has exited
    assert not [l for l in s.log_lines() if l.get("message") == "request"]


def test_log_output_file(zinc_factory, tmp_path):
    out = tmp_path / "zinc.json.log"
    s = zinc_factory({"log": {"level": "info", "output": str(out)}})
    requests.get(s.url + "/v2/")
    wait_lines(file_lines(out), lambda l: l.get("message") == "request")


def test_graceful_shutdown_finishes_in_flight_request(zinc):
    # Send the headers and half a body of a request, signal, then finish it: the request
    # must be answered and the process must exit 0.
    sock = socket.create_connection(("127.0.0.1", zinc.port))
    sock.sendall(b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    wait_server_read(zinc.port, sock)  # the request is in flight, not only queued at the kernel
    zinc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert zinc.proc.poll() is None, "exited with a request in flight"
    sock.sendall(b"67890")
    sock.settimeout(5 * SLOW)
    data = b""
    while b"\r\n\r\nok" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    sock.close()
    assert zinc.proc.wait(timeout=10 * SLOW) == 0
    # no longer accepting
    try:
        socket.create_connection(("127.0.0.1", zinc.port), timeout=1).close()
        accepted = True
    except OSError:
        accepted = False
    assert not accepted


def test_sigint_exits_zero_when_idle(zinc):
    requests.get(zinc.url + "/v2/")  # leaves an idle keep-alive connection in requests' pool
    assert zinc.stop(signal.SIGINT) == 0
    # an idle connection held the stop if the grace period (10 s) had to end it
    assert "shutdown grace period over" not in zinc.log()


def test_busy_port_fails_at_start(zinc_factory):
    # another process listening without SO_REUSEPORT makes bind fail
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    s = zinc_factory({"http": {"port": str(blocker.getsockname()[1])}}, start=False)
    p = subprocess.run([ZINC_BIN, "serve", s.config_path], capture_output=True, text=True, timeout=10 * SLOW)
    blocker.close()
    assert p.returncode == 1
    assert "cannot listen" in p.stderr


def test_cli_version_and_help():
    v = subprocess.run([ZINC_BIN, "version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("zinc ")
    h = subprocess.run([ZINC_BIN, "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "serve" in h.stdout and "verify" in h.stdout
    u = subprocess.run([ZINC_BIN, "frobnicate"], capture_output=True, text=True)
    assert u.returncode == 2 and "unknown command" in u.stderr


def test_verify_good_files(tmp_path):
    for name in sorted(os.listdir(os.path.join(REPO, "examples"))):
        if name.endswith(".json"):
            p = subprocess.run([ZINC_BIN, "verify", os.path.join(REPO, "examples", name)], capture_output=True, text=True)
            assert p.returncode == 0, (name, p.stderr)


def test_verify_bad_files(tmp_path):
    cases = {
        '{"storage":{"rootDirectory":"/tmp/x"},"http":{"port":"99999"}}': "http.port",
        '{"storage":{"rootDirectory":"/tmp/x"},"http":{"port":"8080","bogus":1}}': "http.bogus",
        '{"storage":{"rootDirectory":"/tmp/x","gc":"maybe"}}': "storage.gc",
        '{"storage":{"rootDirectory":"/tmp/x","gcDelay":"5x"}}': "storage.gcDelay",
        '{"storage":{"rootDirectory":"/tmp/x"},"log":{"level":"loud"}}': "log.level",
        '{"storage":': "config.json",
        "": "config.json",
    }
    for text, key in cases.items():
        f = tmp_path / "config.json"
        f.write_text(text)
        p = subprocess.run([ZINC_BIN, "verify", str(f)], capture_output=True, text=True)
        assert p.returncode == 1, text
        assert "config.json" in p.stderr and key in p.stderr, (text, p.stderr)
        # the server refuses to start on the same file
        s = subprocess.run([ZINC_BIN, "serve", str(f)], capture_output=True, text=True, timeout=10 * SLOW)
        assert s.returncode == 1, text


def test_verify_warns_on_zot_keys_not_implemented(tmp_path):
    f = tmp_path / "config.json"
    f.write_text('{"storage":{"rootDirectory":"/tmp/x"},"extensions":{"search":{"enable":true}}}')
    p = subprocess.run([ZINC_BIN, "verify", str(f)], capture_output=True, text=True)
    assert p.returncode == 0
    assert "extensions.search" in p.stderr


def test_probe_command(zinc):
    ok = subprocess.run([ZINC_BIN, "probe", zinc.url + "/livez"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([ZINC_BIN, "probe", zinc.url + "/nope"], capture_output=True, text=True)
    assert bad.returncode == 1
    port = free_port()  # nothing listens there
    down = subprocess.run([ZINC_BIN, "probe", "http://127.0.0.1:%d/livez" % port], capture_output=True, text=True)
    assert down.returncode == 1
    junk = subprocess.run([ZINC_BIN, "probe", "ftp://x"], capture_output=True, text=True)
    assert junk.returncode == 2


def _read_response(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_idle_keepalive_does_not_hold_shutdown(zinc):
    sock = socket.create_connection(("127.0.0.1", zinc.port))
    sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _read_response(sock, 5 * SLOW).startswith(b"HTTP/1.1 200")
    # the connection stays open and idle (keep-alive) while the server stops
    assert zinc.stop(signal.SIGTERM) == 0
    assert "shutdown grace period over" not in zinc.log(), "an idle keep-alive connection held the shutdown"
    sock.close()


def test_slow_body_is_not_cut_after_ten_seconds(zinc):
    # h2o's default HTTP/1 request timer (10 s, whole body) would reset this push
    body = os.urandom(64 * 1024)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    sock = socket.create_connection(("127.0.0.1", zinc.port))
    sock.sendall(("POST /v2/slow/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                  % (digest, len(body))).encode())
    pieces = 12
    step = len(body) // pieces
    for i in range(pieces):
        sock.sendall(body[i * step:(i + 1) * step if i < pieces - 1 else len(body)])
        time.sleep(1)
    assert _read_response(sock, 10 * SLOW).startswith(b"HTTP/1.1 201"), "slow push was cut"
    sock.close()
    r = requests.get(zinc.url + "/v2/slow/blobs/" + digest)
    assert r.status_code == 200 and r.content == body
    # the access log's duration counts the body's arrival, not only the handler
    post = wait_lines(zinc.log_lines, lambda l: l.get("method") == "POST" and l.get("path") == "/v2/slow/blobs/uploads/")
    assert post[-1]["duration_ms"] >= 10000, post


def test_audit_log_records_changes_only(zinc_factory, tmp_path):
    audit = tmp_path / "audit.log"
    s = zinc_factory({"log": {"level": "error", "audit": str(audit)}})
    body = b"audited blob"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    r = requests.post(s.url + "/v2/aud/blobs/uploads/?digest=" + digest, data=body,
                      headers={"Authorization": "Basic c2VjcmV0OnBhc3N3b3Jk"})
    assert r.status_code == 201
    requests.get(s.url + "/v2/aud/blobs/" + digest)
    requests.delete(s.url + "/v2/aud/blobs/sha256:" + "0" * 64)  # 404: not a change
    assert s.stop() == 0  # every request is audited (or not) by the time zinc has exited
    lines = file_lines(audit)()
    assert len(lines) == 1, lines
    a = lines[0]
    assert a["message"] == "audit" and a["action"] == "POST" and a["status"] == 201
    assert a["object"] == "/v2/aud/blobs/uploads/" and a["clientIP"] == "127.0.0.1"
    assert "c2VjcmV0OnBhc3N3b3Jk" not in audit.read_text()


def test_unwritable_audit_log_fails_start(zinc_factory, tmp_path):
    s = zinc_factory({"log": {"audit": str(tmp_path / "missing-dir" / "a.log")}}, start=False)
    p = subprocess.run([ZINC_BIN, "serve", s.config_path], capture_output=True, text=True, timeout=10 * SLOW)
    assert p.returncode == 1 and "log.audit" in p.stderr


def test_verify_accepts_write_timeout_silently(tmp_path):
    f = tmp_path / "config.json"
    f.write_text('{"storage":{"rootDirectory":"/tmp/x"},"http":{"writeTimeout":"30s"}}')
    p = subprocess.run([ZINC_BIN, "verify", str(f)], capture_output=True, text=True)
    assert p.returncode == 0 and "http.writeTimeout" not in p.stderr
