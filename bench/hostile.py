#!/usr/bin/python3
"""bench/hostile.py: manifest GET latency while zinc is under attack (issue 15 point 7).

Starts the release zinc (ZINC_BIN) with readTimeout/writeTimeout HOSTILE_TIMEOUT (10s),
pushes one image, then for each attack measures a well-behaved client pulling the
manifest over one keep-alive connection, one request after another, for HOSTILE_SECONDS
(20) per phase. Attackers run in their own processes (no shared GIL with the measuring
client) and keep their numbers up as zinc closes them, as real attackers would:
  baseline      no attack
  slowloris     1,000 connections each sending one header byte per second
  idle10k       10,000 connections that connect and send nothing (as many as
                RLIMIT_NOFILE allows; the table says how many)
  bigheaders    4 loops sending 1 MiB header blocks (zinc answers 400)
  flood         4 loops pipelining 50 requests per connection, never pausing
  stalled       20 clients requesting a 32 MiB blob and never reading
Per phase: p50 / p99 / max latency, requests served, zinc's peak fds and RssAnon, and
the seconds until fds return to the baseline after the attackers stop. The target is
p99 < 50 ms. Prints a markdown table (and JSON with HOSTILE_JSON=path).
"""
import hashlib
import http.client
import json
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import shutil
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import servers  # noqa: E402

TIMEOUT = os.environ.get("HOSTILE_TIMEOUT", "10s")
SECONDS = float(os.environ.get("HOSTILE_SECONDS", "20"))


class HostileZinc(servers.Zinc):
    def command(self):
        cfg = {"distSpecVersion": "1.1.1",
               "storage": {"rootDirectory": self.root, "gc": False},
               "http": {"address": "127.0.0.1", "port": str(self.port), "workers": 2,
                        "readTimeout": TIMEOUT, "writeTimeout": TIMEOUT},
               "log": {"level": "warn"}}
        path = os.path.join(self.workdir, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return [self.binary, "serve", path]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def keep_open(port, n, payload, stop, pace):
    """Holds n connections; every `pace` s sends `payload` on each, reconnecting those
    zinc closed (the attacker keeps its numbers up)."""
    socks = []
    while not stop.is_set():
        alive = []
        for s in socks:
            try:
                if payload:
                    s.send(payload)
                elif s.recv(1, socket.MSG_DONTWAIT) == b"":
                    s.close()
                    continue
                alive.append(s)
            except BlockingIOError:
                alive.append(s)
            except OSError:
                s.close()
        while len(alive) < n and not stop.is_set():
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            if payload:
                try:
                    s.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                except OSError:
                    pass
            alive.append(s)
        socks = alive
        stop.wait(pace)
    for s in socks:
        s.close()


def big_headers(port, stop):
    req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(req)
                while s.recv(65536):
                    pass
        except OSError:
            pass


def flood(port, stop):
    burst = b"GET /v2/bench/tags/list HTTP/1.1\r\nHost: x\r\n\r\n" * 50 + b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(burst)
                while s.recv(1 << 16):
                    pass
        except OSError:
            pass


def stalled(port, path, stop):
    socks = []
    while not stop.is_set():
        socks = [s for s in socks if s.fileno() != -1]
        while len(socks) < 20:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
            except OSError:
                s.close()
                continue
            socks.append(s)
        for s in socks:
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    s.close()
            except BlockingIOError:
                pass
            except OSError:
                s.close()
        stop.wait(1)
    for s in socks:
        s.close()


def measure(port, path, seconds, pid, peak):
    lat = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.monotonic() + seconds
    errors = 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append((time.perf_counter() - t0) * 1e3)
        errors += not ok
        if len(lat) % 50 == 0:
            peak["fds"] = max(peak["fds"], fds(pid))
            peak["anon"] = max(peak["anon"], servers.proc_status_kib(pid, "RssAnon"))
    conn.close()
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {"requests": len(lat), "errors": errors, "p50_ms": round(pick(0.5), 2), "p99_ms": round(pick(0.99), 2),
            "max_ms": round(lat[-1], 2)}


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    hard = raise_nofile()
    idle_n = min(10000, hard - 1000)
    tmp = tempfile.mkdtemp(prefix="zinc-hostile-")
    binary = os.environ.get("ZINC_BIN") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        "build", "server", "zinc")
    z = HostileZinc(os.path.join(tmp, "zinc"), binary, os.path.join(tmp, "root")).start()
    pid = z.proc.pid
    url = z.url
    cfg = b'{"architecture":"amd64","os":"linux"}'
    big = os.urandom(32 << 20)
    digests = []
    for data in (cfg, big):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        assert requests.post("%s/v2/bench/blobs/uploads/?digest=%s" % (url, d), data=data).status_code == 201
        digests.append(d)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0],
                               "size": len(cfg)},
                    "layers": []}).encode()
    assert requests.put(url + "/v2/bench/manifests/latest", data=m,
                        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201
    mpath, bpath = "/v2/bench/manifests/latest", "/v2/bench/blobs/" + digests[1]
    base_fds = fds(pid)
    phases = [
        ("baseline", []),
        ("slowloris", [(keep_open, (z.port, 1000, b"a", None, 1.0))]),
        ("idle%d" % idle_n, [(keep_open, (z.port, idle_n, b"", None, 1.0))]),
        ("bigheaders", [(big_headers, (z.port, None))] * 4),
        ("flood", [(flood, (z.port, None))] * 4),
        ("stalled", [(stalled, (z.port, bpath, None))]),
    ]
    rows = []
    for name, attackers in phases:
        stop = multiprocessing.Event()
        procs = []
        for fn, args in attackers:
            args = tuple(stop if a is None else a for a in args)
            p = multiprocessing.Process(target=fn, args=args, daemon=True)
            p.start()
            procs.append(p)
        time.sleep(2 if attackers else 0)  # let the attack build up before measuring
        peak = {"fds": 0, "anon": 0}
        res = measure(z.port, mpath, SECONDS, pid, peak)
        stop.set()
        for p in procs:
            p.join(30)
        t0 = time.monotonic()
        while fds(pid) > base_fds and time.monotonic() - t0 < 120:
            time.sleep(0.1)
        res.update(phase=name, peak_fds=peak["fds"], anon_mib=round(peak["anon"] / 1024, 1),
                   fds_back_s=round(time.monotonic() - t0, 1) if fds(pid) <= base_fds else None)
        rows.append(res)
        print("%-12s %s" % (name, res), file=sys.stderr, flush=True)
    z.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    print("| attack | requests | errors | p50 ms | p99 ms | max ms | zinc fds (peak) | RssAnon MiB | fds back to %d after |"
          % base_fds)
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %d | %.2f | %.2f | %.2f | %d | %.1f | %s |" % (
            r["phase"], r["requests"], r["errors"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["peak_fds"], r["anon_mib"],
            "%.1f s" % r["fds_back_s"] if r["fds_back_s"] is not None else "no"))
    if os.environ.get("HOSTILE_JSON"):
        with open(os.environ["HOSTILE_JSON"], "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r["p99_ms"] < 50 and r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
