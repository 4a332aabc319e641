#!/usr/bin/env python3
"""bench/push_concurrent.py - target 3 of issue 13: no event-loop thread blocks while many
big pushes run. Not part of `make test` (it moves PC_CLIENTS x PC_MIB of data).

One zinc (ZINC_BIN, default build/server/zinc) on its own store. PC_CLIENTS (8) clients
each push a PC_MIB (1024) MiB blob monolithically at the same time while one more client
GETs a manifest in a loop on a keep-alive connection; zinc's own execution trace
(/v2/_zot/pprof/trace) is recorded over the pushes. Reported: push throughput, the
manifest GET latencies (p50, p99, max; target p99 < 20 ms), and from the trace, for the
worker (event-loop) threads - the goroutines whose stacks run through worker_main - the
longest request region (zinc emits one per request handler call, named by route, see
pprof/trace.c) and the longest stretch a worker ran without going back to epoll_wait
(target < 10 ms). The trace is parsed from `go tool trace -d=1` (Go >= 1.22; Debian's
1.19 prints another format) with GO=/path/to/go or /usr/lib/go-1.23/bin/go.
Loopback only; the store and the data are removed at the end.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import oci, servers  # noqa: E402

MIB = 1 << 20
CLIENTS = int(os.environ.get("PC_CLIENTS", "8"))
SIZE = int(os.environ.get("PC_MIB", "1024")) * MIB
GO = os.environ.get("GO") or ("/usr/lib/go-1.23/bin/go" if os.path.exists("/usr/lib/go-1.23/bin/go") else "go")


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)


def random_file(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 8 * MIB))
            h.update(b)
            f.write(b)
            left -= len(b)
    return "sha256:" + h.hexdigest()


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


EV = re.compile(r"^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$")


def parse_trace(text):
    """(longest worker region (ns, route), longest worker running stretch (ns), worker Gs).

    Reads the event dump of `go tool trace -d=1`: RegionBegin/RegionEnd of a G, and the
    G's StateTransitions with their stacks (a worker is a G with worker_main on a stack;
    a stretch is from leaving Waiting, i.e. epoll_wait or a lock, to the next ->Waiting:
    one loop turn with its syscalls)."""
    workers = set()
    open_regions = {}
    regions = []
    running_since = {}
    stretches = []
    cur = None  # (G of the last transition, whether it left Running) while its stacks follow
    for line in text.splitlines():
        m = EV.match(line)
        if m is None:
            if cur is not None and "worker_main" in line:
                workers.add(cur)
            continue
        g, kind, t, rest = int(m.group(3)), m.group(4), int(m.group(5)), m.group(6)
        cur = None
        if kind == "RegionBegin":
            name = re.search(r'Type="([^"]*)"', rest)
            open_regions.setdefault(g, []).append((t, name.group(1) if name else "?"))
        elif kind == "RegionEnd":
            if open_regions.get(g):
                t0, name = open_regions[g].pop()
                regions.append((t - t0, name, g))
        elif kind == "StateTransition":
            gm = re.search(r"Resource=Goroutine\((\d+)\)", rest)
            tr = re.search(r"(\w+)->(\w+)\s*$", rest)
            if gm is None or tr is None:
                continue
            gid = int(gm.group(1))
            cur = gid
            if tr.group(1) == "Waiting":
                running_since[gid] = t
            elif tr.group(2) == "Waiting" and gid in running_since:
                stretches.append((t - running_since.pop(gid), gid))
    wr = [r for r in regions if r[2] in workers]
    ws = [s for s in stretches if s[1] in workers]
    longest_region = max(wr) if wr else (0, "-", -1)
    longest_stretch = max(ws) if ws else (0, -1)
    return longest_region, longest_stretch, workers, len(wr)


def worker_schedstat(pid):
    """{tid: (run ns, run-queue wait ns)} of the server's worker-<i> threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("worker-"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run, wait, _ = f.read().split()
            out[tid] = (int(run), int(wait))
        except OSError:
            pass
    return out


class WaitSampler:
    """Samples the workers' run-queue wait (schedstat) every 50 ms: the total over the pushes,
    and the most one worker waited within one interval. A region of the trace that holds no
    syscall or lock event but is long is a thread that was runnable and not running."""

    def __init__(self, pid):
        self.pid, self.max_ms, self.stop_ev = pid, 0.0, threading.Event()
        self.first = self.last = worker_schedstat(pid)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.wait(0.05):
            cur = worker_schedstat(self.pid)
            for tid, (_, wait) in cur.items():
                if tid in self.last:
                    self.max_ms = max(self.max_ms, (wait - self.last[tid][1]) / 1e6)
            self.last = cur

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        run = sum(v[0] - self.first.get(t, (0, 0))[0] for t, v in self.last.items())
        wait = sum(v[1] - self.first.get(t, (0, 0))[1] for t, v in self.last.items())
        return run / 1e9, wait / 1e9, self.max_ms


def main():
    binary = os.path.realpath(os.environ.get("ZINC_BIN", "build/server/zinc"))
    tmp = tempfile.mkdtemp(prefix="zinc-pushconc-", dir=os.environ.get("PC_TMP"))
    load0 = os.getloadavg()
    try:
        log(f"data: {SIZE // MIB} MiB")
        data = os.path.join(tmp, "blob")
        digest = random_file(data, SIZE)
        srv = servers.Zinc(os.path.join(tmp, "run"), binary, os.path.join(tmp, "root")).start()
        try:
            c = oci.Client(srv.url)
            cfg = b'{"architecture":"amd64","os":"linux"}'
            layer = os.urandom(4096)
            c.push_blob("bench/gets", cfg)
            ld = c.push_blob("bench/gets", layer)
            c.put_manifest("bench/gets", "v1", oci.image_manifest(cfg, [(ld, len(layer))]))
            c.close()

            est = max(10, int(CLIENTS * SIZE / 150e6))  # seconds, at a pessimistic 150 MB/s
            trace = {}

            def take_trace():
                r = requests.get(f"{srv.url}/v2/_zot/pprof/trace?seconds={est}", timeout=est + 120)
                trace["status"], trace["body"] = r.status_code, r.content

            tt = threading.Thread(target=take_trace)
            tt.start()
            time.sleep(0.5)  # the session is on before the pushes start

            done = threading.Event()
            lat = []

            def getter():
                g = oci.Client(srv.url)
                while not done.is_set():
                    t0 = time.monotonic()
                    g.request("GET", "/v2/bench/gets/manifests/v1", headers={"Accept": oci.ACCEPT_MANIFEST})
                    lat.append((time.monotonic() - t0) * 1e3)
                    time.sleep(0.005)
                g.close()

            secs = [None] * CLIENTS
            errors = []

            def pusher(i):
                p = oci.Client(srv.url)
                try:
                    secs[i] = p.push_file(f"bench/big{i}", data, digest)
                except Exception as e:  # reported below
                    errors.append(f"client {i}: {e}")
                finally:
                    p.close()

            gt = threading.Thread(target=getter)
            gt.start()
            ws = WaitSampler(srv.proc.pid)
            t0 = time.monotonic()
            ps = [threading.Thread(target=pusher, args=(i,)) for i in range(CLIENTS)]
            for p in ps:
                p.start()
            for p in ps:
                p.join()
            wall = time.monotonic() - t0
            w_run, w_wait, w_max = ws.stop()
            done.set()
            gt.join()
            log(f"pushes done in {wall:.1f} s; waiting for the trace ({est} s session)")
            tt.join()
        finally:
            hwm, _ = srv.stop()
        if errors:
            raise RuntimeError("; ".join(errors))

        tpath = os.path.join(tmp, "push.trace")
        with open(tpath, "wb") as f:
            f.write(trace.get("body", b""))
        keep = os.environ.get("PC_KEEP_TRACE")
        if keep:
            shutil.copy(tpath, keep)
        region = stretch = None
        nreg = 0
        if trace.get("status") == 200:
            r = subprocess.run([GO, "tool", "trace", "-d=1", tpath], capture_output=True, text=True, timeout=600)
            if r.returncode == 0:
                region, stretch, workers, nreg = parse_trace(r.stdout)
            else:
                log("go tool trace: " + r.stderr[:300])
        else:
            log(f"trace: HTTP {trace.get('status')}")

        print(f"| metric | value | target |")
        print("|---|--:|---|")
        print(f"| {CLIENTS} x {SIZE // MIB} MiB monolithic pushes, aggregate MB/s | {CLIENTS * SIZE / wall / 1e6:.0f} | |")
        print(f"| slowest push, s | {max(secs):.1f} | |")
        print(f"| manifest GETs during the pushes | {len(lat)} | |")
        print(f"| manifest GET p50 / p99 / max, ms | {percentile(lat, 50):.2f} / {percentile(lat, 99):.2f} / "
              f"{max(lat) if lat else float('nan'):.2f} | p99 < 20 ms: {'met' if percentile(lat, 99) < 20 else 'NOT met'} |")
        if region is not None:
            print(f"| longest request region on a worker thread, ms ({nreg} regions) | {region[0] / 1e6:.2f} ({region[1]}) | "
                  f"< 10 ms: {'met' if region[0] < 10e6 else 'NOT met'} |")
            print(f"| longest worker run without returning to epoll_wait, ms | {stretch[0] / 1e6:.2f} | "
                  f"< 10 ms: {'met' if stretch[0] < 10e6 else 'NOT met'} |")
        else:
            print("| trace | not parsed | |")
        print(f"| worker threads during the pushes: running / waiting for a CPU (run queue), s | {w_run:.1f} / {w_wait:.1f} | |")
        print(f"| most one worker waited for a CPU within one 50 ms sample, ms | {w_max:.1f} | |")
        print(f"| VmHWM, MiB | {(hwm or 0) / 1024:.0f} | |")
        load1 = os.getloadavg()
        print(f"\nload average (1 min) {load0[0]:.1f} at start, {load1[0]:.1f} at end; trace {len(trace.get('body', b''))} bytes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
