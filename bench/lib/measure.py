"""Load generators and timers: wrk and hload for request rates, curl for blob downloads,
openssl speed for the SHA-256 ceiling, skopeo for whole-image copies.

Every runner returns a number or raises MeasureError with the reason, so that one failing
metric marks its cell and the run goes on. A rate counts only successful responses: any
error or status >= 400 during a run fails the measurement instead of inflating it.
"""
import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT_LUA = os.path.join(HERE, "wrk", "report.lua")
SMALLPUSH_LUA = os.path.join(HERE, "wrk", "smallpush.lua")


class MeasureError(Exception):
    pass


def _last_json(out, what):
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise MeasureError(f"{what}: no result line in output: {out[-300:]!r}")


def _run(cmd, timeout, what):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise MeasureError(f"{what}: timed out after {timeout}s") from e
    if p.returncode != 0:
        raise MeasureError(f"{what}: exit {p.returncode}: {(p.stderr or p.stdout)[-300:]}")
    return p.stdout


def _rate(res, what, allow_non2xx=False):
    if res["errors"] or (res["non2xx"] and not allow_non2xx):
        raise MeasureError(f"{what}: {res['errors']} socket errors, {res['non2xx']} HTTP errors "
                           f"in {res['requests']} responses")
    if res["requests"] == 0:
        raise MeasureError(f"{what}: no response completed")
    return res["rps"]


def wrk_rate(url, seconds, headers=(), conns=64, threads=2):
    """Requests/s of GET url by wrk (threads, conns, seconds) with extra 'Name: value' headers."""
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s", REPORT_LUA]
    for h in headers:
        cmd += ["-H", h]
    out = _run(cmd + [url], seconds + 30, "wrk")
    return _rate(_last_json(out, "wrk"), "wrk")


def hload_rate(hload, url, seconds, method="HEAD", headers=(), conns=64, threads=2):
    """Requests/s by bench/hload.c; used for HEAD, which Debian's wrk 4.1 cannot parse."""
    cmd = [hload, f"-t{threads}", f"-c{conns}", f"-d{seconds}", "-m", method]
    for h in headers:
        cmd += ["-H", h]
    out = _run(cmd + [url], seconds + 30, "hload")
    return _rate(_last_json(out, "hload"), "hload")


def wrk_smallpush(url, seconds, datadir, run_id, clients=16):
    """Image pushes/s by `clients` concurrent clients (bench/wrk/smallpush.lua)."""
    cmd = ["wrk", f"-t{clients}", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s", "-s", SMALLPUSH_LUA,
           url, "--", datadir, run_id]
    res = _last_json(_run(cmd, seconds + 30, "wrk smallpush"), "wrk smallpush")
    if res["errors"]:
        raise MeasureError(f"small pushes: {res['errors']} failed steps, {res['pushes']} images pushed")
    if res["pushes"] == 0:
        raise MeasureError("small pushes: no image pushed")
    return res["rps"]


def curl_get_mbps(urls, expect_size, headers=()):
    """Downloads every url at once with one curl each; returns total MB/s (1 MB = 1e6 bytes)."""
    cmd = ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
    for h in headers:
        cmd += ["-H", h]
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd + [u], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for u in urls]
    outs = [p.communicate(timeout=300) for p in procs]
    took = time.monotonic() - t0
    for p, (out, err) in zip(procs, outs):
        fields = out.split()
        if p.returncode != 0 or len(fields) != 2 or fields[0] != "200" or int(fields[1]) != expect_size:
            raise MeasureError(f"blob GET: curl exit {p.returncode}, got {out!r} {err.strip()[:200]}")
    return len(urls) * expect_size / took / 1e6




def sha256_mbps(seconds):
    """One core's SHA-256 throughput on 1 MiB buffers in MB/s (openssl speed, EVP)."""
    out = _run(["openssl", "speed", "-mr", "-evp", "sha256", "-bytes", "1048576", "-seconds", str(seconds)],
               seconds + 30, "openssl speed")
    for line in out.splitlines():
        if line.startswith("+F:"):
            return float(line.split(":")[-1]) / 1e6
    raise MeasureError(f"openssl speed: no +F line in {out[-300:]!r}")


def skopeo_seconds(src, dst):
    """Seconds for `skopeo copy src dst` over plain HTTP."""
    cmd = ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst]
    t0 = time.monotonic()
    _run(cmd, 300, "skopeo copy")
    return time.monotonic() - t0
