#!/usr/bin/python3
"""`make soak`: a bounded soak of zinc (issue 15 point 8), not part of `make test`.

For SOAK_SECONDS (default 1200) a few client threads push images (monolithic and chunked
blobs, shared layers across repositories), pull them back by tag and digest checking every
byte, delete manifests, push orphan blobs for GC to find, and fetch pprof profiles; zinc's
own GC runs all along (short gcDelay/gcInterval). Every SOAK_SAMPLE seconds the script
records zinc's open fds, threads and anonymous RSS. After the run:
  - no growth after warm-up (the first SOAK_WARMUP_FRACTION of the run): fds and threads
    at the end, once the load has stopped, are at most what they were at the end of
    warm-up; the RssAnon peak of the second half after warm-up is within 10 % + 16 MiB of
    the peak of the first half (allocator noise, not a trend);
  - every object pushed and not deleted (each manifest, its config and layers) is pulled
    by digest and checked; deleted manifests answer 404;
  - no request failed unexpectedly during the load.
Also reported: how many old orphan blobs GC removed (a check would depend on pass timing).
Prints a JSON report on stdout; exit 1 if any check fails. Environment: ZINC_BIN,
SOAK_SECONDS, SOAK_SAMPLE (5), SOAK_WARMUP_FRACTION (0.25), SOAK_KEEP_TMP=1.
"""
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import servers  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOS = ["soak/app%d" % i for i in range(6)] + ["soak/deep/nested/repo"]
# Live images are kept near this many (older ones deleted), so that after warm-up zinc's
# data, and with it its caches, stop growing: what still grows then is a leak.
LIVE_MAX = 300
STARTED = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", file=sys.stderr, flush=True)


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canon(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class SoakZinc(servers.Zinc):
    def command(self):
        cfg = {
            "distSpecVersion": "1.1.1",
            # gcDelay is well above the time from a blob's push to its manifest's, so GC
            # only takes what the load meant to leave behind
            "storage": {"rootDirectory": self.root, "dedupe": True, "gc": True, "commit": False,
                        "gcDelay": "20s", "gcInterval": "5s"},
            "http": {"address": "127.0.0.1", "port": str(self.port), "workers": 2,
                     "readTimeout": "10s", "writeTimeout": "10s"},
            "log": {"level": "warn"},
        }
        path = os.path.join(self.workdir, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return [self.binary, "serve", path]


class State:
    """What the load pushed. lock guards all of it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.images = []    # (repo, tag, manifest digest, manifest bytes, [blob digests])
        self.deleted = set()  # (repo, manifest digest)
        self.blobs = {}     # digest -> bytes, for checking pulls
        self.shared = []    # layer bytes reused across images and repos (dedupe)
        self.orphans = []   # (repo, digest, monotonic time pushed)
        self.counts = {"push": 0, "pull": 0, "delete": 0, "orphan": 0, "profile": 0, "errors": 0}
        self.errors = []

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def fail(self, what):
        with self.lock:
            self.counts["errors"] += 1
            if len(self.errors) < 20:
                self.errors.append(what)


class Load:
    def __init__(self, url, state, stop, seed):
        self.url, self.st, self.stop, self.rnd = url, state, stop, random.Random(seed)
        self.s = requests.Session()

    def expect(self, r, codes, what):
        if r.status_code not in codes:
            raise AssertionError("%s: HTTP %d %s" % (what, r.status_code, r.text[:200]))
        return r

    def push_blob(self, repo, data):
        d = digest(data)
        if self.rnd.random() < 0.5:
            self.expect(self.s.post("%s/v2/%s/blobs/uploads/?digest=%s" % (self.url, repo, d), data=data,
                                    headers={"Content-Type": "application/octet-stream"}), (201,), "blob push")
            return d
        r = self.expect(self.s.post("%s/v2/%s/blobs/uploads/" % (self.url, repo)), (202,), "upload start")
        loc = requests.compat.urljoin(self.url + "/", r.headers["Location"])
        step = max(1, len(data) // 3)
        for off in range(0, len(data), step):
            part = data[off:off + step]
            r = self.expect(self.s.patch(loc, data=part, headers={"Content-Range": "%d-%d" % (off, off + len(part) - 1),
                                                                  "Content-Type": "application/octet-stream"}),
                            (202,), "upload chunk")
            loc = requests.compat.urljoin(self.url + "/", r.headers["Location"])
        self.expect(self.s.put(loc + ("&" if "?" in loc else "?") + "digest=" + d), (201,), "upload finish")
        return d

    def layer(self):
        with self.st.lock:
            if self.st.shared and self.rnd.random() < 0.3:
                return self.rnd.choice(self.st.shared)
        data = os.urandom(self.rnd.choice((512, 4096, 65536, 300 * 1024, 1 << 20)))
        if self.rnd.random() < 0.1:
            with self.st.lock:
                if len(self.st.shared) < 50:
                    self.st.shared.append(data)
        return data

    def push_image(self):
        repo = self.rnd.choice(REPOS)
        cfg = canon({"architecture": "amd64", "os": "linux", "soak": self.rnd.getrandbits(64)})
        layers = [self.layer() for _ in range(self.rnd.randint(1, 3))]
        cd = self.push_blob(repo, cfg)
        descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": self.push_blob(repo, l),
                  "size": len(l)} for l in layers]
        m = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                   "layers": descs})
        tag = "t%x" % self.rnd.getrandbits(40)
        r = self.expect(self.s.put("%s/v2/%s/manifests/%s" % (self.url, repo, tag), data=m,
                                   headers={"Content-Type": OCI_MANIFEST}), (201,), "manifest push")
        assert r.headers["Docker-Content-Digest"] == digest(m)
        with self.st.lock:
            self.st.images.append((repo, tag, digest(m), m, [cd] + [x["digest"] for x in descs]))
            self.st.blobs[cd] = cfg
            for l in layers:
                self.st.blobs[digest(l)] = l
        self.st.count("push")

    def pull_image(self):
        with self.st.lock:
            if not self.st.images:
                return
            repo, tag, md, m, blobs = self.rnd.choice(self.st.images)
        ref = tag if self.rnd.random() < 0.5 else md
        r = self.s.get("%s/v2/%s/manifests/%s" % (self.url, repo, ref), headers={"Accept": OCI_MANIFEST})
        if r.status_code == 404:
            with self.st.lock:  # deleted by another thread meanwhile: fine
                if (repo, md) in self.st.deleted:
                    return
        self.expect(r, (200,), "manifest pull")
        assert r.content == m, "manifest bytes differ"
        for d in blobs:
            r = self.expect(self.s.get("%s/v2/%s/blobs/%s" % (self.url, repo, d)), (200, 404), "blob pull")
            if r.status_code == 404:
                with self.st.lock:
                    if (repo, md) in self.st.deleted:
                        return
                raise AssertionError("blob %s of a live manifest is gone" % d)
            assert digest(r.content) == d, "blob bytes differ"
        self.st.count("pull")

    def delete_image(self):
        with self.st.lock:
            if len(self.st.images) < LIVE_MAX // 2:
                return
            img = self.st.images.pop(self.rnd.randrange(len(self.st.images)))
            self.st.deleted.add((img[0], img[2]))
        self.expect(self.s.delete("%s/v2/%s/manifests/%s" % (self.url, img[0], img[2])), (202,), "manifest delete")
        self.st.count("delete")

    def orphan(self):
        repo = self.rnd.choice(REPOS)
        d = self.push_blob(repo, os.urandom(self.rnd.choice((1024, 65536))))
        with self.st.lock:
            self.st.orphans.append((repo, d, time.monotonic()))
        self.st.count("orphan")

    def profile(self):
        which = self.rnd.choice(("profile?seconds=1", "heap", "goroutine", "allocs", "mutex"))
        r = self.expect(self.s.get("%s/v2/_zot/pprof/%s" % (self.url, which), timeout=60), (200,), "pprof " + which)
        assert r.content[:2] == b"\x1f\x8b", "pprof %s is not gzip" % which
        self.st.count("profile")

    def run(self, mix):
        while not self.stop.is_set():
            op = self.rnd.choices([m[0] for m in mix], [m[1] for m in mix])[0]
            with self.st.lock:
                if op.__name__ == "push_image" and len(self.st.images) >= LIVE_MAX:
                    op = self.delete_image
            try:
                op()
            except Exception as e:  # counted and reported; the soak goes on
                self.st.fail("%s: %r" % (op.__name__, e))
        self.s.close()  # the client goes away with its keep-alive connection


def sample(pid):
    return {"t": round(time.monotonic() - STARTED, 1), "fds": len(os.listdir("/proc/%d/fd" % pid)),
            "threads": servers.proc_status_kib(pid, "Threads"), "anon_kib": servers.proc_status_kib(pid, "RssAnon")}


def final_check(url, st):
    s = requests.Session()
    bad = []
    checked_blobs = set()
    for repo, _tag, md, m, blobs in st.images:
        r = s.get("%s/v2/%s/manifests/%s" % (url, repo, md), headers={"Accept": OCI_MANIFEST})
        if r.status_code != 200 or r.content != m:
            bad.append("manifest %s/%s: %d" % (repo, md, r.status_code))
        for d in blobs:
            if (repo, d) in checked_blobs:
                continue
            checked_blobs.add((repo, d))
            r = s.get("%s/v2/%s/blobs/%s" % (url, repo, d))
            if r.status_code != 200 or digest(r.content) != d:
                bad.append("blob %s/%s: %d" % (repo, d, r.status_code))
    for repo, md in st.deleted:
        r = s.head("%s/v2/%s/manifests/%s" % (url, repo, md))
        if r.status_code != 404:
            bad.append("deleted manifest %s/%s: %d" % (repo, md, r.status_code))
    return bad, len(checked_blobs)


def orphans_collected(url, st, older_than):
    """GC's work, reported (not checked: how soon a pass runs depends on the machine):
    orphan blobs pushed more than older_than seconds ago, and how many of those are gone."""
    s = requests.Session()
    now = time.monotonic()
    old = [(r, d) for r, d, t in st.orphans if now - t > older_than]
    gone = sum(1 for r, d in old if s.head("%s/v2/%s/blobs/%s" % (url, r, d)).status_code == 404)
    return {"old_orphans": len(old), "collected": gone}


def main():
    seconds = float(os.environ.get("SOAK_SECONDS", "1200"))
    period = float(os.environ.get("SOAK_SAMPLE", "5"))
    warm_frac = float(os.environ.get("SOAK_WARMUP_FRACTION", "0.25"))
    binary = os.environ.get("ZINC_BIN") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        "build", "server", "zinc")
    tmp = tempfile.mkdtemp(prefix="zinc-soak-")
    z = SoakZinc(os.path.join(tmp, "zinc"), binary, os.path.join(tmp, "root")).start()
    st, stop = State(), threading.Event()
    pid = z.proc.pid
    samples = [sample(pid)]
    log(f"zinc pid {pid} on {z.url}, soaking {seconds:.0f} s")
    loads = []
    for i in range(4):
        ld = Load(z.url, st, stop, i)
        mix_rw = [(ld.push_image, 4), (ld.pull_image, 8), (ld.delete_image, 1), (ld.orphan, 1)]
        loads.append(threading.Thread(target=ld.run, args=(mix_rw,), daemon=True))
    prof = Load(z.url, st, stop, 99)
    loads.append(threading.Thread(target=prof.run, args=([(prof.profile, 1)],), daemon=True))
    for t in loads:
        t.start()
    end = time.monotonic() + seconds
    warm_end = time.monotonic() + seconds * warm_frac
    warm = None
    while time.monotonic() < end:
        time.sleep(min(period, max(0.0, end - time.monotonic())))  # the sampling period
        samples.append(sample(pid))
        if warm is None and time.monotonic() >= warm_end:
            warm = samples[-1]
            log(f"warm-up over: {warm}")
        if len(samples) % 12 == 0:
            log(f"{samples[-1]} {st.counts}")
    stop.set()
    for t in loads:
        t.join(120)
    # the load is over: wait (bounded) for zinc to close the clients' keep-alives
    quiet_deadline = time.monotonic() + 30
    while time.monotonic() < quiet_deadline and sample(pid)["fds"] > (warm or samples[0])["fds"]:
        time.sleep(0.2)
    after = sample(pid)
    bad, nblobs = final_check(z.url, st)
    gc = orphans_collected(z.url, st, 20 + 2 * 5 + 10)  # gcDelay + two intervals + slack
    hwm, anon_peak = z.stop()

    post = [s for s in samples if warm is not None and s["t"] >= warm["t"]]
    half = max(1, len(post) // 2)
    mid_peak = max((s["anon_kib"] for s in post[:half]), default=0)
    last_peak = max((s["anon_kib"] for s in post[half:]), default=0)
    checks = {
        "fds_no_growth": warm is not None and after["fds"] <= warm["fds"],
        "threads_no_growth": warm is not None and after["threads"] <= warm["threads"],
        "anon_rss_no_growth": last_peak <= mid_peak * 1.10 + 16 * 1024,
        "all_pullable": not bad,
        "no_request_errors": st.counts["errors"] == 0,
    }
    report = {"seconds": seconds, "counts": st.counts, "images_live": len(st.images), "images_deleted": len(st.deleted),
              "blobs_checked": nblobs, "gc": gc, "start": samples[0], "warm": warm, "after_load": after,
              "anon_peak_kib": {"warm_to_mid": mid_peak, "mid_to_end": last_peak, "whole_run": anon_peak},
              "vmhwm_kib": hwm, "checks": checks, "unpullable": bad[:20], "errors": st.errors}
    print(json.dumps(report, indent=2))
    if os.environ.get("SOAK_KEEP_TMP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        log(f"kept {tmp}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
