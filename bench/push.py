#!/usr/bin/env python3
"""bench/push.py - the push side of issue 13, side by side in one run: zinc (ZINC_BIN),
optionally an older zinc (ZINC_OLD, for before/after) and Distribution (docker-registry).

Measures, per server: monolithic and chunked (8 MiB PATCHes) push of a 256 MiB blob
(MB/s, best of PUSH_ROUNDS), skopeo push of 8 x 32 MiB layers (s), the time from the last
body byte sent to the 201 of a 1 GiB monolithic PUT (ms), a 4 GiB monolithic push with the
extra disk used during it sampled (statvfs of the store, minus the 4 GiB itself), and
VmHWM after all of that, and the server's own CPU time (user + system of all its threads,
from /proc/PID/stat) per GiB of the 256 MiB pushes: unlike MB/s that does not depend on
what else the machine runs. Ceilings: `openssl speed -evp sha256` on one core, and the
store's filesystem taking 1 MiB pwrites of a fresh file (page cache, no fsync: what any
registry pays for the bytes it keeps; on this VM it is often below SHA-256). zinc's CPU
profile of a monolithic push (its own /v2/_zot/pprof/profile) is saved under
BENCH_PROFILE=DIR when set. Prints one markdown table. Loopback only.
"""
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import measure, oci, profile, servers, workloads  # noqa: E402

MIB = 1 << 20
BIG = int(os.environ.get("PUSH_BIG_MIB", "256")) * MIB
HUGE = int(os.environ.get("PUSH_HUGE_MIB", "4096")) * MIB
LAST = int(os.environ.get("PUSH_LAST_MIB", "1024")) * MIB
ROUNDS = int(os.environ.get("PUSH_ROUNDS", "2"))


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


def server_cpu(pid):
    """CPU seconds (user + system, all threads) the process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_mbps(directory, size, rounds=3):
    """Best MB/s of writing a fresh file of size bytes in 1 MiB pwrites (no fsync)."""
    best = 0.0
    buf = os.urandom(MIB)
    for i in range(rounds):
        path = os.path.join(directory, "write-ceiling")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        t0 = time.monotonic()
        for off in range(0, size, MIB):
            os.pwrite(fd, buf, off)
        secs = time.monotonic() - t0
        os.close(fd)
        os.unlink(path)
        best = max(best, size / secs / 1e6)
    return best


def used_bytes(root, pid):
    """Bytes allocated under root plus unlinked files the server holds open (h2o's body
    temp files): what the push costs on disk, whatever else shares the filesystem."""
    total = 0
    for dp, _, fns in os.walk(root):
        for fn in fns:
            try:
                total += os.lstat(os.path.join(dp, fn)).st_blocks * 512
            except OSError:
                pass
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)).endswith(" (deleted)"):
                    total += os.stat(os.path.join(fd_dir, fd)).st_blocks * 512
            except OSError:
                pass
    except OSError:
        pass
    return total


def last_byte_ms(srv, path, digest, repo):
    """Monolithic PUT over a raw socket: ms from the last body byte sent to the response."""
    c = oci.Client(srv.url)
    loc = c.start_upload(repo)
    c.close()
    size = os.path.getsize(path)
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall((f"PUT {loc}{'&' if '?' in loc else '?'}digest={digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n").encode())
    with open(path, "rb") as f:
        while True:
            b = f.read(MIB)
            if not b:
                break
            s.sendall(b)
    t0 = time.monotonic()
    resp = s.recv(4096)
    ms = (time.monotonic() - t0) * 1e3
    s.close()
    if b" 201 " not in resp.split(b"\r\n", 1)[0]:
        raise RuntimeError("PUT answered " + resp[:200].decode(errors="replace"))
    return ms


def huge_push(srv, path, digest, root):
    """(MB/s, extra MiB on disk beyond the blob itself at the peak) of one big push."""
    pid = srv.proc.pid
    before = used_bytes(root, pid)
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], used_bytes(root, pid))
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    c = oci.Client(srv.url)
    try:
        secs = c.push_file("bench/huge", path, digest)
    finally:
        c.close()
        stop.set()
        t.join()
    extra = (peak[0] - before - os.path.getsize(path)) / MIB
    return os.path.getsize(path) / secs / 1e6, extra


def main():
    tmp = tempfile.mkdtemp(prefix="zinc-pushbench-")
    prof_dir = os.environ.get("BENCH_PROFILE")
    kinds = [("zinc", os.path.realpath(os.environ.get("ZINC_BIN", "build/server/zinc")))]
    if os.environ.get("ZINC_OLD"):
        kinds.append(("zinc-before", os.environ["ZINC_OLD"]))
    if os.environ.get("PUSH_NO_DIST") != "1":
        kinds.append(("distribution", None))
    res = {}
    try:
        log("data")
        big = os.path.join(tmp, "big")
        dbig = random_file(big, BIG)
        last = os.path.join(tmp, "last")
        dlast = random_file(last, LAST)
        huge = os.path.join(tmp, "huge")
        dhuge = random_file(huge, HUGE) if HUGE else None
        sizes = workloads.Sizes()
        w = workloads.Workloads(sizes, tmp, None, "push")
        w.layout = oci.build_oci_layout(os.path.join(tmp, "layout"), sizes.layers, sizes.layer)
        res["sha256"] = measure.sha256_mbps(3)
        log(f"sha256 one core {res['sha256']:.0f} MB/s")
        res["write"] = write_mbps(tmp, BIG)
        log(f"store filesystem write {res['write']:.0f} MB/s")
        for name, binary in kinds:
            root = os.path.join(tmp, name + "-root")
            wd = os.path.join(tmp, name + "-run")
            srv = (servers.Zinc(wd, binary, root) if binary else servers.Distribution(wd, root)).start()
            r = res[name] = {}
            try:
                c = oci.Client(srv.url)
                mono, chunked, mono_cpu, chunked_cpu = [], [], [], []
                pid = srv.proc.pid
                for rnd in range(ROUNDS):
                    prof = None
                    if prof_dir and binary and rnd == 0:
                        prof = profile.CpuProfile(srv, os.path.join(prof_dir, f"{name}-push_mono.pb.gz"), 3)
                    cpu0 = server_cpu(pid)
                    mono.append(BIG / c.push_file(f"bench/mono{rnd}", big, dbig) / 1e6)
                    cpu1 = server_cpu(pid)
                    if prof:
                        prof.finish()
                    else:
                        mono_cpu.append((cpu1 - cpu0) * (1 << 30) / BIG)
                    cpu0 = server_cpu(pid)
                    chunked.append(BIG / c.push_file_chunked(f"bench/chunked{rnd}", big, dbig, 8 * MIB) / 1e6)
                    chunked_cpu.append((server_cpu(pid) - cpu0) * (1 << 30) / BIG)
                c.close()
                r["mono"], r["chunked"] = max(mono), max(chunked)
                r["mono_cpu"] = min(mono_cpu) if mono_cpu else None
                r["chunked_cpu"] = min(chunked_cpu)
                log(f"{name}: mono {r['mono']:.0f} MB/s, chunked {r['chunked']:.0f} MB/s")
                r["skopeo"] = w.skopeo_push(srv)
                log(f"{name}: skopeo push {r['skopeo']:.2f} s")
                r["last_ms"] = last_byte_ms(srv, last, dlast, "bench/last")
                log(f"{name}: last byte -> 201 {r['last_ms']:.1f} ms")
                if dhuge:
                    r["huge"], r["huge_extra"] = huge_push(srv, huge, dhuge, root)
                    log(f"{name}: {HUGE // MIB} MiB push {r['huge']:.0f} MB/s, extra disk {r['huge_extra']:.0f} MiB")
            finally:
                hwm, _ = srv.stop()
                r["hwm"] = (hwm or 0) / 1024
                log(f"{name}: VmHWM {r['hwm']:.0f} MiB")
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    d = res["distribution"]
    cols = [k for k, _ in kinds]
    print("| metric | " + " | ".join(cols) + " | zinc / Distribution |")
    print("|---" * (len(cols) + 2) + "|")
    rows = [("mono", "monolithic push %d MiB, MB/s" % (BIG // MIB)), ("chunked", "chunked push, 8 MiB PATCHes, MB/s"),
            ("mono_cpu", "server CPU per GiB, monolithic (best round), s"),
            ("chunked_cpu", "server CPU per GiB, chunked (best round), s"),
            ("skopeo", "skopeo push 8x32 MiB, s"), ("last_ms", "last byte -> 201, %d MiB PUT, ms" % (LAST // MIB)),
            ("huge", "monolithic push %d MiB, MB/s" % (HUGE // MIB)), ("huge_extra", "extra disk during it (store + unlinked temp files), MiB"),
            ("hwm", "VmHWM after all, MiB")]
    for key, label in rows:
        vals = [res[c].get(key) for c in cols]
        ratio = ""
        if res["zinc"].get(key) is not None and d.get(key):
            ratio = "%.2fx" % (res["zinc"][key] / d[key])
        fmt = ".2f" if key.endswith("_cpu") else ".1f"
        print(f"| {label} | " + " | ".join("-" if v is None else format(v, fmt) for v in vals) + f" | {ratio} |")
    print(f"\nSHA-256 one core (openssl speed): {res['sha256']:.0f} MB/s; zinc monolithic = "
          f"{res['zinc']['mono'] / res['sha256']:.2f}, chunked = {res['zinc']['chunked'] / res['sha256']:.2f} of it. "
          f"Store filesystem write (1 MiB pwrites, page cache): {res['write']:.0f} MB/s; zinc monolithic = "
          f"{res['zinc']['mono'] / res['write']:.2f}, chunked = {res['zinc']['chunked'] / res['write']:.2f} of it. "
          f"Load average after: {' '.join('%.2f' % x for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
