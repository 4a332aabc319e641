#!/usr/bin/python3
"""bench/s3.py - `make bench-s3` (issue 14 point 6): zinc on S3 vs CNCF Distribution's s3
driver (Debian's docker-registry) on the same single-node Ceph RGW, one run.

Starts a private RGW with test/s3/rgw.py (memstore OSD: objects in RAM, so the numbers are
the registries' and RGW's CPU, not a disk), one bucket per registry, then measures on each
registry in alternating rounds (best kept), as bench.py does for the filesystem:
  push MB/s      one monolithic blob push (POST + PUT of the whole blob)
  chunked MB/s   the same size in PATCH chunks
  pull MB/s      one stream of GET blob (zinc streams it: redirectBlobURL off)
  manifest GET   req/s, wrk -t2 -c64 on a tag (the bytes checked first)
  peak RSS       VmHWM at the end of the run (and the sampled anonymous peak)
Both registries store through the same endpoint, with the same part size (zinc's
chunksize = Distribution's chunksize = 16 MiB), no GC, warnings only.

Environment: ZINC_BIN (default build/server/zinc), BENCH_TINY=1 (1 MiB blobs, 1 s load:
a harness check only, not recorded), BENCH_RESULTS (file to record into, default
bench/RESULTS.md, "" = don't), BENCH_KEEP_TMP=1. Exits 77 when Ceph or docker-registry is
missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "test", "s3"))

import rgw  # noqa: E402
from lib import measure, oci, report, servers, workloads  # noqa: E402

PART = 16 << 20
STARTED = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.1f}s] {msg}", file=sys.stderr, flush=True)


def s3_params(env, bucket):
    return {"region": env["S3_REGION"], "bucket": bucket, "regionendpoint": env["S3_ENDPOINT"],
            "accesskey": env["S3_ACCESS_KEY"], "secretkey": env["S3_SECRET_KEY"]}


class ZincS3(servers.Zinc):
    def __init__(self, workdir, binary, root, s3):
        super().__init__(workdir, binary, root)
        self.s3 = s3

    def command(self):
        cmd = super().command()
        path = cmd[-1]
        with open(path) as f:
            cfg = json.load(f)
        cfg["storage"]["storageDriver"] = dict(self.s3, name="s3", rootdirectory="zot", secure=False,
                                               forcepathstyle=True, chunksize=PART)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return cmd


class DistributionS3(servers.Distribution):
    def __init__(self, workdir, s3):
        super().__init__(workdir, root=None)
        self.s3 = s3
        # the AWS SDK loads AWS_CA_BUNDLE (set here for https clients) into a transport it
        # cannot give one to, and panics; the endpoint is plain http anyway
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}

    def command(self):
        s = self.s3
        # 2.8's s3-aws driver uses path-style requests whenever regionendpoint is set
        cfg = (f"version: 0.1\n"
               f"log:\n  level: warn\n  accesslog:\n    disabled: true\n"
               f"storage:\n  s3:\n    region: {s['region']}\n    bucket: {s['bucket']}\n"
               f"    regionendpoint: {s['regionendpoint']}\n    accesskey: {s['accesskey']}\n"
               f"    secretkey: {s['secretkey']}\n    secure: false\n    v4auth: true\n"
               f"    rootdirectory: /distribution\n    chunksize: {PART}\n"
               f"  cache:\n    blobdescriptor: inmemory\n  delete:\n    enabled: true\n"
               f"  redirect:\n    disable: true\n"
               f"  maintenance:\n    uploadpurging:\n      enabled: false\n"
               f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: zinc-bench-not-a-secret\n")
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as f:
            f.write(cfg)
        return [self.binary, "serve", path]


def main():
    env = os.environ
    tiny = env.get("BENCH_TINY") == "1"
    zinc_bin = os.path.realpath(env.get("ZINC_BIN") or os.path.join(REPO, "build", "server", "zinc"))
    missing = rgw.missing_binaries() + ([] if shutil.which("docker-registry") else ["docker-registry"])
    if missing or not os.path.exists(zinc_bin):
        print(f"bench-s3: missing {missing or [zinc_bin]}", file=sys.stderr)
        return 77
    if tiny:
        sz = workloads.Sizes(big=1 << 20, par=64 << 10, chunk=256 << 10, seconds=1, rate_rounds=1, push_rounds=1,
                             get_rounds=1)
    else:
        sz = workloads.Sizes(big=128 << 20, chunk=PART, seconds=4, rate_rounds=2, push_rounds=2, get_rounds=3)
    tmp = tempfile.mkdtemp(prefix="zinc-bench-s3-")
    run_id = f"{os.getpid()}-{int(time.time())}"
    w = workloads.Workloads(sz, tmp, None, run_id)
    cluster = rgw.Cluster(tmp)
    srvs, results, rss = {}, {}, {}
    try:
        t0 = time.monotonic()
        cluster.start()
        log(f"RGW up in {time.monotonic() - t0:.1f}s at {cluster.env['S3_ENDPOINT']}")
        os.makedirs(w.data, exist_ok=True)
        w.files = {}
        for name in ("big", "big2"):
            path = os.path.join(w.data, name)
            oci.write_random(path, sz.big)
            w.files[name] = (path, oci.sha256_file(path))
        for who, bucket in (("zinc", "bench-zinc"), ("distribution", "bench-dist")):
            rgw.make_bucket(cluster.env, bucket)
            p = s3_params(cluster.env, bucket)
            wd = os.path.join(tmp, who)
            srv = ZincS3(wd, zinc_bin, os.path.join(wd, "root"), p) if who == "zinc" else DistributionS3(wd, p)
            srvs[who] = srv.start()
            log(f"{who} up on {srv.url}")

        def best(key, fn, rounds):
            """rounds of fn(srv, rnd) on each server, alternating which goes first; the best
            value of each is kept (an error only when every round failed)."""
            order, vals = list(srvs.items()), {}
            for rnd in range(rounds):
                for who, srv in (order if rnd % 2 == 0 else order[::-1]):
                    try:
                        v = fn(srv, rnd)
                    except Exception as e:  # a broken cell is reported, the run goes on
                        v = report.Err(f"{who} {key}: {type(e).__name__}: {e}")
                    vals.setdefault(who, []).append(v)
                    log(f"{key:14} {who:13} {report.fmt(v) if report.num(v) else v.reason}")
            for who, vs in vals.items():
                good = [v for v in vs if report.num(v)]
                results.setdefault(key, {})[who] = max(good) if good else vs[-1]

        best("push MB/s", lambda s, r: w.push_mono(s, r), sz.push_rounds)
        best("chunked MB/s", lambda s, r: w.push_chunked(s, r), sz.push_rounds)
        best("pull MB/s", lambda s, r: w.blob_get(s), sz.get_rounds)
        for srv in srvs.values():
            w.seed_manifest(srv)
        best("manifest GET/s", lambda s, r: w.manifest_get(s), sz.rate_rounds)
    finally:
        for who, srv in srvs.items():
            hwm, anon = srv.stop()
            rss[who] = (hwm, anon)
        cluster.stop()
        if env.get("BENCH_KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)

    def cell(v):
        return report.fmt(v) if report.num(v) else "Err"

    rows = ["| metric | zinc (S3) | Distribution (s3-aws) | zinc / Distribution |", "|---|---|---|---|"]
    notes = []
    for key in ("push MB/s", "chunked MB/s", "pull MB/s", "manifest GET/s"):
        z, d = results.get(key, {}).get("zinc"), results.get(key, {}).get("distribution")
        ratio = f"{z / d:.2f}" if report.num(z) and report.num(d) and d else "–"
        rows.append(f"| {key} | {cell(z)} | {cell(d)} | {ratio} |")
        notes += [v.reason for v in (z, d) if isinstance(v, report.Err)]
    zh, za = rss.get("zinc", (None, None))
    dh, da = rss.get("distribution", (None, None))

    def mib(k):
        return f"{k / 1024:.0f} MiB" if k else "–"

    rows.append(f"| peak RSS (VmHWM) | {mib(zh)} | {mib(dh)} | {f'{zh / dh:.2f}' if zh and dh else '–'} |")
    rows.append(f"| peak anonymous RSS | {mib(za)} | {mib(da)} | {f'{za / da:.2f}' if za and da else '–'} |")
    body = rows + [""] + [f"- {n}" for n in notes]
    print("\n".join(body))
    dest = env.get("BENCH_RESULTS", os.path.join(HERE, "RESULTS.md"))
    if dest and not tiny:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        header = (f"## S3: zinc vs Distribution on one Ceph RGW (issue 14 point 6), {report.now_utc()} · "
                  f"commit {commit} · {report.machine()}")
        intro = [f"bench/s3.py: single-node RGW (memstore OSD), {sz.big >> 20} MiB blobs, part size "
                 f"{PART >> 20} MiB for both, wrk -t2 -c64 for {sz.seconds} s, best of the rounds; "
                 f"zinc streams blob GETs (redirectBlobURL off), Distribution's redirects off.", ""]
        report.record(dest, header, intro + body)
    return 1 if notes else 0


if __name__ == "__main__":
    sys.exit(main())
