"""The workloads, each run the same way against every registry.

Workloads.prepare() makes the data once per run (random blobs, an OCI layout for skopeo,
the small-push digests for wrk); each method then measures one metric for one server and
returns a number. Before a rate is measured the answer is checked once (right manifest
bytes, all tags, all repositories), so a fast wrong answer cannot pass as a result.
"""
import base64
import concurrent.futures
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

import requests

from . import measure, oci

MIB = 1 << 20


@dataclass
class Sizes:
    big: int = 256 * MIB          # monolithic push, chunked push, single-stream GET
    par: int = 64 * MIB           # parallel GET blob
    streams: int = 16
    chunk: int = 8 * MIB
    layers: int = 8               # skopeo image
    layer: int = 32 * MIB
    tags: int = 1000
    repos: int = 200
    clients: int = 16             # small pushes
    images_per_client: int = 4000
    seconds: int = 4              # wrk / hload duration
    rate_rounds: int = 2          # rounds of each wrk/hload metric (best kept)
    get_rounds: int = 3           # rounds of each blob GET
    push_rounds: int = 2          # rounds of each blob push (a new repository each)
    pull_rounds: int = 2          # skopeo pull rounds (push is once: blobs exist after it)
    sha_seconds: int = 2


TINY = Sizes(big=MIB, par=64 << 10, chunk=256 << 10, layers=2, layer=64 << 10, tags=20, repos=10,
             images_per_client=300, seconds=1, rate_rounds=1, get_rounds=1, push_rounds=1, pull_rounds=1,
             sha_seconds=1)

MANIFEST_REPO = "bench/manifest"
TAGS_REPO = "bench/tags"


def _layer_bytes(run_id, client, n):
    s = f"zinc-bench {run_id} client {client} image {n}\n"
    return (s + "." * (1024 - len(s))).encode()


def _config_bytes(layer_digest):
    return ('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}'
            % layer_digest).encode()


class Workloads:
    def __init__(self, sizes, tmp, hload, run_id):
        self.sz, self.tmp, self.hload, self.run_id = sizes, tmp, hload, run_id
        self.data = os.path.join(tmp, "data")
        self.manifest = {}

    def prepare(self):
        """Writes the run's data under tmp/data; returns {name: (path, digest)} of the blobs."""
        os.makedirs(self.data, exist_ok=True)
        self.files = {}
        for name, size in (("big", self.sz.big), ("big2", self.sz.big), ("par", self.sz.par)):
            path = os.path.join(self.data, name)
            oci.write_random(path, size)
            self.files[name] = (path, oci.sha256_file(path))
        self.layout = oci.build_oci_layout(os.path.join(self.data, "layout"), self.sz.layers, self.sz.layer)
        self.pushdir = os.path.join(self.data, "smallpush")
        os.makedirs(self.pushdir, exist_ok=True)
        for c in range(self.sz.clients):
            with open(os.path.join(self.pushdir, f"c{c}.txt"), "w") as f:
                for n in range(self.sz.images_per_client):
                    ld = oci.sha256_digest(_layer_bytes(self.run_id, c, n))
                    f.write(f"{ld} {oci.sha256_digest(_config_bytes(ld))}\n")
        return self.files

    # --- seeding (not timed) ---------------------------------------------------------

    def seed_manifest(self, srv):
        c = oci.Client(srv.url)
        try:
            self.manifest[srv.name] = oci.push_small_image(c, MANIFEST_REPO, ["latest"], f"{self.run_id} manifest")
        finally:
            c.close()

    def _parallel(self, srv, jobs, fn, workers=4):
        """Runs fn(client, job) for every job on `workers` connections to srv."""
        chunks = [jobs[i::workers] for i in range(workers)]

        def run(part):
            c = oci.Client(srv.url)
            try:
                for job in part:
                    fn(c, job)
            finally:
                c.close()

        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            for f in [ex.submit(run, p) for p in chunks]:
                f.result()

    def seed_catalog(self, srv):
        """Pushes an image to repos-1 more repositories (the manifest repo is the other one)."""
        self._parallel(srv, list(range(self.sz.repos - 1)),
                       lambda c, i: oci.push_small_image(c, f"cat/r{i:04d}", ["v1"], f"{self.run_id} cat {i}"))

    def seed_tags(self, srv):
        c = oci.Client(srv.url)
        try:
            manifest = oci.push_small_image(c, TAGS_REPO, [], f"{self.run_id} tags")
        finally:
            c.close()
        self._parallel(srv, list(range(self.sz.tags)), lambda c, i: c.put_manifest(TAGS_REPO, f"t{i:04d}", manifest))

    # --- checks before timing ----------------------------------------------------------

    @staticmethod
    def _check(ok, what):
        if not ok:
            raise measure.MeasureError(f"wrong answer: {what}")

    def _get_json(self, url, headers=None):
        r = requests.get(url, headers=headers, timeout=30)
        self._check(r.status_code == 200, f"GET {url.split('/v2')[-1]}: HTTP {r.status_code}")
        return r

    # --- metrics -------------------------------------------------------------------------

    def _manifest_url(self, srv):
        if srv.name not in self.manifest:
            raise measure.MeasureError("no manifest was pushed (see manifest GET)")
        return f"{srv.url}/v2/{MANIFEST_REPO}/manifests/latest"

    def manifest_get(self, srv, auth=None):
        hdrs = ["Accept: " + oci.ACCEPT_MANIFEST] + ([f"Authorization: {auth}"] if auth else [])
        r = self._get_json(self._manifest_url(srv), dict(h.split(": ", 1) for h in hdrs))
        self._check(r.content == self.manifest[srv.name], "manifest bytes differ from the pushed ones")
        return measure.wrk_rate(self._manifest_url(srv), self.sz.seconds, hdrs)

    def manifest_head(self, srv):
        hdrs = ["Accept: " + oci.ACCEPT_MANIFEST]
        r = requests.head(self._manifest_url(srv), headers=dict(h.split(": ", 1) for h in hdrs), timeout=30)
        want = "sha256:" + hashlib.sha256(self.manifest[srv.name]).hexdigest()
        self._check(r.status_code == 200 and r.headers.get("Docker-Content-Digest") == want,
                    f"HEAD manifest: HTTP {r.status_code}, digest {r.headers.get('Docker-Content-Digest')}")
        return measure.hload_rate(self.hload, self._manifest_url(srv), self.sz.seconds, "HEAD", hdrs)

    def catalog(self, srv):
        url = f"{srv.url}/v2/_catalog?n=1000"
        repos = self._get_json(url).json().get("repositories") or []
        self._check(len(repos) == self.sz.repos, f"catalog lists {len(repos)} repositories, expected {self.sz.repos}")
        return measure.wrk_rate(url, self.sz.seconds)

    def tags_list(self, srv):
        url = f"{srv.url}/v2/{TAGS_REPO}/tags/list"
        tags = self._get_json(url).json().get("tags") or []
        self._check(len(tags) == self.sz.tags, f"tags list has {len(tags)} tags, expected {self.sz.tags}")
        return measure.wrk_rate(url, self.sz.seconds)

    def _push_mbps(self, srv, name, chunked, rnd):
        path, digest = self.files[name]
        kind = "chunked" if chunked else "mono"
        c = oci.Client(srv.url)
        try:
            if chunked:
                secs = c.push_file_chunked(f"bench/{kind}{rnd}", path, digest, self.sz.chunk)
            else:
                secs = c.push_file(f"bench/{kind}{rnd}", path, digest)
        except oci.RegistryError as e:
            raise measure.MeasureError(str(e)) from e
        finally:
            c.close()
        return os.path.getsize(path) / secs / 1e6

    def push_mono(self, srv, rnd=0):
        """MB/s of one monolithic push into bench/mono<rnd>; blob_get reads bench/mono0."""
        return self._push_mbps(srv, "big", False, rnd)

    def push_chunked(self, srv, rnd=0):
        return self._push_mbps(srv, "big2", True, rnd)

    def blob_get(self, srv):
        """One stream of the monolithically pushed blob (push_mono runs first)."""
        _, digest = self.files["big"]
        return measure.curl_get_mbps([f"{srv.url}/v2/bench/mono0/blobs/{digest}"], self.sz.big)

    def seed_par(self, srv):
        path, digest = self.files["par"]
        c = oci.Client(srv.url)
        try:
            c.push_file("bench/par", path, digest)
        finally:
            c.close()

    def blob_get_parallel(self, srv):
        _, digest = self.files["par"]
        urls = [f"{srv.url}/v2/bench/par/blobs/{digest}"] * self.sz.streams
        return measure.curl_get_mbps(urls, self.sz.par)

    def _docker_ref(self, srv):
        return f"docker://127.0.0.1:{srv.port}/skopeo/img:bench"

    def skopeo_push(self, srv):
        return measure.skopeo_seconds(self.layout, self._docker_ref(srv))

    def skopeo_pull(self, srv, src=None):
        dest = tempfile.mkdtemp(prefix="pull-", dir=self.tmp)
        try:
            return measure.skopeo_seconds(src or self._docker_ref(srv), f"dir:{dest}")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def skopeo_local(self):
        """skopeo's own floor: the same image copied from the OCI layout to dir:, no registry."""
        return self.skopeo_pull(None, self.layout)

    def small_push(self, srv):
        return measure.wrk_smallpush(srv.url, self.sz.seconds, self.pushdir, self.run_id, self.sz.clients)

    # --- ceilings ------------------------------------------------------------------------

    def nginx_docroot(self):
        """Hard-links the blobs into a docroot nginx's unprivileged workers can read."""
        root = os.path.join(self.tmp, "docroot")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "1k"), "wb") as f:
            f.write(os.urandom(1024))
        for name in ("big", "par"):
            os.link(self.files[name][0], os.path.join(root, name))
        for dirpath, dirs, files in os.walk(self.tmp):
            os.chmod(dirpath, 0o755)
            for fn in files:
                os.chmod(os.path.join(dirpath, fn), 0o644)
        return root

    def nginx_ceilings_one(self, ngx, which):
        """One nginx ceiling: small_get/small_head (1 KiB file, req/s), big_get/par_get (MB/s)."""
        s = self.sz
        if which == "small_get":
            return measure.wrk_rate(f"{ngx.url}/1k", s.seconds)
        if which == "small_head":
            return measure.hload_rate(self.hload, f"{ngx.url}/1k", s.seconds, "HEAD")
        if which == "big_get":
            return measure.curl_get_mbps([f"{ngx.url}/big"], s.big)
        return measure.curl_get_mbps([f"{ngx.url}/par"] * s.streams, s.par)

def basic_auth(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_htpasswd(path, user, password):
    """A bcrypt htpasswd line at cost 5, what `htpasswd -B` writes by default."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
    except (ImportError, AttributeError, TypeError):
        h = None
    if not h or not h.startswith("$2"):
        import subprocess
        out = subprocess.run(["htpasswd", "-nbB", user, password], capture_output=True, text=True, check=True)
        h = out.stdout.strip().split(":", 1)[1]
    with open(path, "w") as f:
        f.write(f"{user}:{h}\n")
