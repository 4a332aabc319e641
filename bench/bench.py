#!/usr/bin/python3
"""zinc's benchmark: zinc and CNCF Distribution side by side on loopback, plus this
machine's ceilings (one core's SHA-256, nginx on the same files), in one run.

Called by bench/run.sh (see there for the environment). Each metric runs against both
registries in alternating rounds (best round kept), while both
servers stay up; then both restart with bcrypt htpasswd auth for the auth row. Prints
one markdown table and, unless told not to, inserts it into bench/RESULTS.md.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import measure, profile, report, servers, workloads  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
STARTED = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Run:
    def __init__(self, env):
        self.tiny = env.get("BENCH_TINY") == "1"
        self.skip = set(filter(None, env.get("BENCH_SKIP", "").split(",")))
        self.sz = workloads.TINY if self.tiny else workloads.Sizes()
        self.zinc_bin = env["ZINC_BIN"]
        self.tmp = tempfile.mkdtemp(prefix="zinc-bench-")
        self.run_id = f"{os.getpid()}-{int(time.time())}"
        self.w = workloads.Workloads(self.sz, self.tmp, env["BENCH_HLOAD"], self.run_id)
        self.results = {}
        self.flip = False
        self.profile_dir = env.get("BENCH_PROFILE") or None
        if self.profile_dir:
            os.makedirs(self.profile_dir, exist_ok=True)

    def put(self, key, who, fn, rounds=1, higher=True):
        """Stores the best of `rounds` calls of fn() (any failure makes the cell an Err)."""
        try:
            vals = [fn() for _ in range(rounds)]
            v = max(vals) if higher else min(vals)
        except Exception as e:  # one broken cell must not end the run; the reason is footnoted
            v = report.Err(f"{who} {key}: {type(e).__name__}: {e}")
        self.results.setdefault(key, {})[who] = v
        log(f"{key:18} {who:13} {report.fmt(v) if report.num(v) else v.reason}")

    def both(self, key, fn, srvs, rounds=1, higher=True, seed=None):
        """Measures key on every server: seed(srv) once, then `rounds` rounds of fn(srv, rnd),
        the servers alternating within a round and the first one changing every round, so
        that a busy neighbour hurts both alike; the best round of each is kept."""
        vals, order = {}, list(srvs.items())
        for who, srv in order:
            if isinstance(srv, report.Err):
                vals[who] = srv
            elif seed:
                try:
                    seed(srv)
                except Exception as e:
                    vals[who] = report.Err(f"{who} {key}: seeding: {type(e).__name__}: {e}")
        for rnd in range(rounds):
            if self.flip:
                order.reverse()
            self.flip = not self.flip
            for who, srv in order:
                if isinstance(vals.get(who), report.Err):
                    continue
                prof = None
                if self.profile_dir and who == "zinc" and rnd == 0:
                    prof = profile.CpuProfile(srv, os.path.join(self.profile_dir, f"{key}.pb.gz"), self.sz.seconds)
                try:
                    vals.setdefault(who, []).append(fn(srv, rnd))
                except Exception as e:  # one broken cell must not end the run; the reason is footnoted
                    vals[who] = report.Err(f"{who} {key}: {type(e).__name__}: {e}")
                if prof and (why := prof.finish()):
                    log(f"{key}: no CPU profile: {why}")
        for who, v in vals.items():
            if not isinstance(v, report.Err):
                v = max(v) if higher else min(v)
            self.results.setdefault(key, {})[who] = v
            log(f"{key:18} {who:13} {report.fmt(v) if report.num(v) else v.reason}")

    def start(self, kind, htpasswd=None):
        root = os.path.join(self.tmp, f"{kind}-root")
        wd = os.path.join(self.tmp, f"{kind}-{'auth' if htpasswd else 'run'}")
        try:
            if kind == "zinc":
                srv = servers.Zinc(wd, self.zinc_bin, root, htpasswd)
            else:
                srv = servers.Distribution(wd, root, htpasswd)
            return srv.start()
        except Exception as e:
            log(f"{kind}: cannot start: {e}")
            return report.Err(f"{kind} did not start: {e}")

    def ceilings(self):
        sz = self.sz
        self.put("push_mono", "ceiling", lambda: measure.sha256_mbps(sz.sha_seconds))
        self.results["push_chunked"] = dict(self.results["push_mono"])
        if "skopeo" not in self.skip:
            self.put("skopeo_push", "ceiling", self.w.skopeo_local, sz.pull_rounds, higher=False)
            self.results["skopeo_pull"] = dict(self.results["skopeo_push"])
        if "nginx" in self.skip:
            return
        try:
            ngx = servers.Nginx(os.path.join(self.tmp, "nginx"), self.w.nginx_docroot()).start()
        except Exception as e:
            for key in ("manifest_get", "manifest_head", "blob_get", "blob_get_par"):
                self.results.setdefault(key, {})["ceiling"] = report.Err(f"nginx: {e}")
            return
        try:
            for key, which, rounds in (("manifest_get", "small_get", sz.rate_rounds),
                                       ("manifest_head", "small_head", sz.rate_rounds),
                                       ("blob_get", "big_get", sz.get_rounds), ("blob_get_par", "par_get", sz.get_rounds)):
                self.put(key, "ceiling", lambda: self.w.nginx_ceilings_one(ngx, which), rounds)
        finally:
            ngx.stop()

    def registries(self):
        kinds = ["zinc"] + ([] if "dist" in self.skip else ["distribution"])
        srvs = {k: self.start(k) for k in kinds}
        w, sz = self.w, self.sz
        once = lambda fn: (lambda s, rnd: fn(s))  # noqa: E731
        steps = [  # key, fn(srv, round), rounds, higher is better, seed(srv)
            ("manifest_get", once(w.manifest_get), sz.rate_rounds, True, w.seed_manifest),
            ("manifest_head", once(w.manifest_head), sz.rate_rounds, True, None),
            ("catalog", once(w.catalog), sz.rate_rounds, True, w.seed_catalog),
            ("tags_list", once(w.tags_list), sz.rate_rounds, True, w.seed_tags),
            ("push_mono", w.push_mono, sz.push_rounds, True, None),
            ("push_chunked", w.push_chunked, sz.push_rounds, True, None),
            ("blob_get", once(w.blob_get), sz.get_rounds, True, None),
            ("blob_get_par", once(w.blob_get_parallel), sz.get_rounds, True, w.seed_par),
        ]
        if "skopeo" not in self.skip:
            steps += [("skopeo_push", once(w.skopeo_push), 1, False, None),
                      ("skopeo_pull", once(w.skopeo_pull), sz.pull_rounds, False, None)]
        steps.append(("small_push", once(w.small_push), 1, True, None))
        for key, fn, rounds, higher, seed in steps:
            self.both(key, fn, srvs, rounds, higher, seed)
        for who, srv in srvs.items():
            hwm, anon = (srv, srv) if isinstance(srv, report.Err) else srv.stop()
            for key, v in (("peak_rss", hwm), ("peak_anon", anon)):
                if not isinstance(v, report.Err):
                    v = v / 1024 if v else report.Err(f"{who}: no {key}")
                self.results.setdefault(key, {})[who] = v
        self.auth(kinds)

    def auth(self, kinds):
        htpasswd = os.path.join(self.tmp, "htpasswd")
        workloads.write_htpasswd(htpasswd, USER, PASSWORD)
        srvs = {k: self.start(k, htpasswd) for k in kinds}
        cred = workloads.basic_auth(USER, PASSWORD)
        for srv in srvs.values():
            if not isinstance(srv, report.Err):
                srv.authorization = cred
        try:
            self.both("manifest_get_auth", lambda s, rnd: self.w.manifest_get(s, cred), srvs, self.sz.rate_rounds)
        finally:
            for srv in srvs.values():
                if not isinstance(srv, report.Err):
                    srv.stop()

    def cleanup(self):
        if os.environ.get("BENCH_KEEP_TMP") == "1":
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def commit_id(repo):
    def git(*args):
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True).stdout.strip()
    c = git("rev-parse", "--short", "HEAD") or "unknown"
    return c + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def report_run(run, repo, load_start):
    """Prints the table and records it (before the temp dir goes: removing GBs can take long)."""
    env = os.environ
    header = f"## {report.now_utc()} · commit {commit_id(repo)} · {report.machine()}"
    body = report.table(run.results, run.sz)
    notes = ["", f"{report.summary(run.results)}; {time.monotonic() - STARTED:.0f} s; load average (1 min) "
             f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
             "MB/s = 10^6 bytes/s; best of alternating rounds; wrk/hload 64 connections, 2 threads, "
             f"{run.sz.seconds} s; bcrypt cost 5; skipped: {', '.join(sorted(run.skip)) or 'none'}"]
    print("\n".join([header, ""] + body + notes), flush=True)
    if env.get("BENCH_JSON"):
        with open(env["BENCH_JSON"], "w") as f:
            json.dump({k: {w: (v if report.num(v) else {"error": v.reason}) for w, v in c.items()}
                       for k, c in run.results.items()}, f, indent=1)
    default = "" if run.tiny or run.profile_dir else os.path.join(repo, "bench", "RESULTS.md")
    dest = env.get("BENCH_RESULTS", default)
    if dest:
        report.record(dest, header, body + notes)
        log(f"recorded in {dest}")


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = Run(os.environ)
    load_start = os.getloadavg()[0]
    try:
        log(f"data in {run.tmp} ({'tiny' if run.tiny else 'full'} sizes)")
        run.w.prepare()
        log("data ready")
        run.ceilings()
        run.registries()
        log("servers stopped")
        report_run(run, repo, load_start)
    finally:
        run.cleanup()
        log("temp dir removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
