"""
test/s3/s3proxy.py - a loopback HTTP/1.1 proxy between zinc's S3 driver
(storageDriver.regionendpoint) and the RGW fixture, for fault tests (test/e2e/test_s3_faults.py).

Each connection zinc opens gets its own connection to RGW. Requests (headers and body) are
read whole and then, in order:
  - answered by the proxy with "503 SlowDown" S3 XML while throttle(n) has answers left
    (with a Retry-After header when asked);
  - held while hold() is on and the request matches its filter, until release();
  - forwarded to RGW unchanged (the Host header, which the signature covers, is zinc's own,
    and RGW checks the signature against the Host it receives).
Responses from RGW are relayed byte for byte. The S3 client sends one request at a time per
connection (no pipelining), so a 503 written by the proxy can never interleave with a
relayed answer.

Everything is observable: `seen` lists every request as a Req (method, path, range header,
what was done), and wait_held(n) blocks (bounded by a generous deadline) until n requests
are held. stop() closes the listener and every socket and joins every thread.
"""
import re
import select
import socket
import threading
import time
import urllib.parse

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                 b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                 b"<RequestId>s3proxy</RequestId></Error>")


class Req:
    def __init__(self, method, path, headers):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case name -> value
        self.action = None  # "throttled" | "forwarded" | "dropped"
        self.held = False

    @property
    def range_start(self):
        m = re.match(r"bytes=(\d+)-", self.headers.get("range", ""))
        return int(m.group(1)) if m else None

    def __repr__(self):
        return "%s %s %s%s" % (self.method, self.path, self.action, " (was held)" if self.held else "")


class S3Proxy:
    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port or 80)
        self.lock = threading.Condition()
        self.seen = []
        self.holding = None  # a filter (Req -> bool) while hold() is on
        self.held = []  # requests waiting at the proxy now
        self.throttle_left = 0
        self.throttle_after = 0
        self.retry_after = None
        self.stopping = False
        self.threads = []
        self.socks = set()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.wake_r, self.wake_w = socket.socketpair()
        self._spawn(self._accept_loop)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- commands -------------------------------------------------------------------------

    def hold(self, match=None):
        """Holds every later request (or those `match` accepts) until release()."""
        with self.lock:
            self.holding = match or (lambda r: True)

    def release(self):
        """Lets the held requests (and later ones) through."""
        with self.lock:
            self.holding = None
            self.lock.notify_all()

    def throttle(self, n, retry_after=None, after=0):
        """Lets `after` requests through, then answers the next n with 503 SlowDown
        (Retry-After: retry_after if given). throttle(0) ends it."""
        with self.lock:
            self.throttle_after = after
            self.throttle_left = n
            self.retry_after = retry_after

    def wait_held(self, n, timeout=60):
        """Blocks until at least n requests are held; returns them. The deadline only
        guards against a hang: the event ends the wait."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.held) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("only %d of %d requests held: %r" % (len(self.held), n, self.seen[-20:]))
                self.lock.wait(left)
            return list(self.held)

    def held_now(self):
        with self.lock:
            return list(self.held)

    def mark(self):
        """Position in `seen`, for since()."""
        with self.lock:
            return len(self.seen)

    def since(self, mark):
        with self.lock:
            return list(self.seen[mark:])

    def stop(self):
        with self.lock:
            self.stopping = True
            self.holding = None
            self.lock.notify_all()
            socks = list(self.socks)
        self.wake_w.send(b"x")
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recv on it
            except OSError:
                pass
        for t in self.threads:
            t.join()
        for s in socks:
            s.close()
        self.listener.close()
        self.wake_r.close()
        self.wake_w.close()

    # ---- plumbing -------------------------------------------------------------------------

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self.lock:
            self.threads.append(t)
        t.start()

    def _track(self, s):
        with self.lock:
            if self.stopping:
                s.close()
                return False
            self.socks.add(s)
            return True

    def _accept_loop(self):
        while True:
            r, _, _ = select.select([self.listener, self.wake_r], [], [])
            if self.wake_r in r:
                return
            try:
                c, _ = self.listener.accept()
            except OSError:
                continue
            if self._track(c):
                self._spawn(self._serve, c)

    @staticmethod
    def _read_request(c, buf):
        """One request from c: (head bytes, body bytes, rest of buf) or None at EOF."""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        head += b"\r\n\r\n"
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:  # chunk-size line, data, CRLF ... 0, trailers, CRLF
                while b"\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return None
                    buf += d
                line, rest = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    d = c.recv(65536)
                    if not d:
                        return None
                    rest += d
                body += line + b"\r\n" + rest[:size + 2]
                buf = rest[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            while len(buf) < n:
                d = c.recv(65536)
                if not d:
                    return None
                buf += d
            body, buf = buf[:n], buf[n:]
        method, path = lines[0].split(" ")[:2]
        return Req(method, path, headers), head + body, buf

    def _serve(self, c):
        up = None
        buf = b""
        try:
            while True:
                got = self._read_request(c, buf)
                if got is None:
                    return
                req, raw, buf = got
                with self.lock:
                    if self.stopping:
                        return
                    self.seen.append(req)
                    throttled = False
                    if self.throttle_left > 0:
                        if self.throttle_after > 0:
                            self.throttle_after -= 1
                        else:
                            throttled = True
                    if throttled:
                        self.throttle_left -= 1
                        req.action = "throttled"
                        retry_after = self.retry_after
                    else:
                        while self.holding is not None and self.holding(req) and not self.stopping:
                            if not req.held:
                                req.held = True
                                self.held.append(req)
                                self.lock.notify_all()
                            self.lock.wait()
                        if req.held:
                            self.held.remove(req)
                        if self.stopping:
                            req.action = "dropped"
                            return
                        req.action = "forwarded"
                if req.action == "throttled":
                    extra = "Retry-After: %d\r\n" % retry_after if retry_after is not None else ""
                    body = b"" if req.method == "HEAD" else SLOWDOWN_BODY
                    c.sendall(("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n%s"
                               "x-amz-request-id: s3proxy\r\n\r\n" % (len(SLOWDOWN_BODY), extra)).encode() + body)
                    continue
                if up is None:
                    up = socket.create_connection(self.upstream)
                    if not self._track(up):
                        return
                    self._spawn(self._relay, up, c)
                up.sendall(raw)
        except OSError:
            return
        finally:
            for s in (c, up):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def _relay(self, up, c):
        """RGW's answers back to zinc, byte for byte; either side closing ends both."""
        try:
            while True:
                d = up.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        for s in (c, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
