"""A private Docker Engine for the container tests (see shared/docs/containers.md).

The session fixture `dockerd` starts Debian's dockerd as root in a temporary folder: vfs
storage, no iptables, no bridge, its own data root, exec root, pidfile and socket, so it
touches nothing of the host's and any number of sessions can run side by side. Containers
use the host's network (`--network host`): zinc in a container listens on the host's
loopback. DOCKER_HOST and DOCKER_CONFIG (a temporary folder, so `docker login` never writes
to the user's ~/.docker) are set for the whole session.

Nothing can be pulled from Docker Hub here, so `debian:bookworm-slim` is made from Debian's
archive with mmdebstrap (same recipe as the official slim image: minbase, merged /usr, no
docs, man pages or locales), cached as a rootfs tar under .cache/docker/ in the checkout
(git-ignored; ZINC_CACHE_DIR overrides) and `docker import`ed into every new daemon.

If dockerd cannot start (no root, no docker.io) the fixture raises: the tests fail loudly,
they never skip.
"""
import contextlib
import glob
import hashlib
import json
import os
import signal
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import REPO, deep_merge, free_port

BASE_IMAGE = "debian:bookworm-slim"
CACHE_DIR = os.path.join(os.environ.get("ZINC_CACHE_DIR") or os.path.join(REPO, ".cache"), "docker")
BASE_TAR = os.path.join(CACHE_DIR, "debian-bookworm-slim-rootfs-%s.tar")  # % a hash of the recipe
# The Docker client of the docker.io package speaks the daemon's own API version; a newer
# client elsewhere on PATH works too and is the fallback.
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
START_TIMEOUT = 60
# What Debian's official slim image leaves out (debuerreotype's slimification), and its
# apt/dpkg settings for containers: no fsync per unpacked file, no translations.
SLIM_APT_OPTS = ['Acquire::Languages "none"']
SLIM_DPKG_OPTS = [
    "force-unsafe-io",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]


class DockerError(RuntimeError):
    pass


def _die_with_parent():
    # If pytest is killed (ctest timeout), the kernel sends dockerd SIGTERM instead of
    # leaving a daemon behind; dockerd then stops its containers and containerd.
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _mounts_under(path):
    """Mount points below `path`, deepest first (from /proc/self/mountinfo)."""
    out = []
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


class Dockerd:
    """One private dockerd. Use start(), docker(...), stop()."""

    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)  # more dockerd options (e.g. --config-file)
        self.dir = tempfile.mkdtemp(prefix="zinc-dockerd-")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.pidfile = os.path.join(self.dir, "dockerd.pid")
        self.log_path = os.path.join(self.dir, "dockerd.log")
        self.config_dir = os.path.join(self.dir, "client-config")
        os.mkdir(self.config_dir, 0o700)
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock, DOCKER_CONFIG=self.config_dir)
        # the daemon's API version: no negotiation round trip, and no newer-client surprises
        self.env.pop("DOCKER_CONTEXT", None)
        self.proc = None
        self.started_in = None
        # BuildKit (built into dockerd 20.10) snapshots only what changes, runs both stages
        # at once and keeps no intermediate containers: half the legacy builder's time on
        # vfs. docker.io's client drives it directly; another client needs buildx.
        self.buildkit = DOCKER_CLI == "/usr/bin/docker" or subprocess.run(
            [DOCKER_CLI, "buildx", "version"], capture_output=True).returncode == 0

    def start(self):
        if os.geteuid() != 0:
            raise DockerError("the Docker tests need root (a private dockerd); running as uid %d" % os.geteuid())
        for tool in (DOCKERD, DOCKER_CLI):
            if not os.path.exists(tool) and shutil.which(tool) is None:
                raise DockerError("%s not found: install docker.io (.ci/deps.sh test)" % tool)
        cmd = [
            DOCKERD, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--data-root=" + os.path.join(self.dir, "data"), "--exec-root=" + os.path.join(self.dir, "exec"),
            "--pidfile=" + self.pidfile, "--host=unix://" + self.sock,
        ] + self.extra_args
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        deadline = t0 + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise DockerError("dockerd exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if os.path.exists(self.sock) and self.docker("version", check=False, timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise DockerError("dockerd did not answer within %d s:\n%s" % (START_TIMEOUT, self.log_tail()))
            time.sleep(0.2)
        self.started_in = time.monotonic() - t0
        return self

    def docker(self, *args, check=True, timeout=300, input=None, env=None):
        """Runs the Docker client against this daemon; returns the CompletedProcess (text).
        With check, a non-zero exit raises DockerError carrying the client's output."""
        cmd = [DOCKER_CLI] + [str(a) for a in args]
        p = subprocess.run(cmd, env=dict(self.env, **(env or {})), capture_output=True, text=True,
                           timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise DockerError("%s -> %d\nstdout: %s\nstderr: %s" % (" ".join(cmd), p.returncode, p.stdout[-4000:],
                                                                   p.stderr[-4000:]))
        return p

    def build(self, context, tag, timeout=900):
        """docker build --network host of context's Dockerfile; returns the build log."""
        args = ["build", "--network", "host", "-t", tag]
        if self.buildkit:
            args[1:1] = ["--progress", "plain"]
        p = self.docker(*args, context, timeout=timeout, env={"DOCKER_BUILDKIT": "1" if self.buildkit else "0"})
        return p.stdout + p.stderr

    def inspect(self, what):
        return json.loads(self.docker("inspect", what).stdout)[0]

    def log_tail(self, n=8000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        """Stops the daemon by its PID (TERM, then KILL after 30 s), unmounts what it left
        mounted (the default netns) and removes the folder."""
        t0 = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            # the process we started is dockerd itself (its pidfile says the same)
            pid = self.proc.pid
            os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        t1 = time.monotonic()
        _remove_tree(self.dir)
        print("\ndockerd stopped in %.1f s, its folder removed in %.1f s" % (t1 - t0, time.monotonic() - t1))


def _remove_tree(path):
    """Unmounts what a stopped dockerd left below path, then removes it. rm(1) is several
    times faster than shutil.rmtree on vfs copies (GBs of small files), and with
    --one-file-system it never descends into a mount that survived."""
    for mp in _mounts_under(path):
        if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True)
    p = subprocess.run(["rm", "-rf", "--one-file-system", path], capture_output=True, text=True)
    if p.returncode != 0:
        print("\ncannot remove %s: %s" % (path, p.stderr))


def remove_stale_daemon_dirs(max_age=600):
    """Removes the folders of earlier sessions that were killed (SIGKILL leaves no time to
    clean up; PR_SET_PDEATHSIG has stopped their dockerd): no live dockerd behind the
    pidfile and untouched for max_age seconds. Live sessions are left alone."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "zinc-dockerd-*")):
        try:
            if time.time() - os.stat(path).st_mtime < max_age:
                continue
            with open(os.path.join(path, "dockerd.pid")) as f:
                with open("/proc/%d/cmdline" % int(f.read().strip()), "rb") as c:
                    if path.encode() in c.read():
                        continue
        except (OSError, ValueError):
            pass
        _remove_tree(path)


def build_base_rootfs():
    """Makes the debian:bookworm-slim rootfs tar with mmdebstrap unless it is cached; the
    file name carries a hash of the recipe, so changing the recipe remakes it. Written to a
    temporary name and renamed, so an interrupted run leaves no half tar."""
    cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]
    cmd += ["--dpkgopt=" + o for o in SLIM_DPKG_OPTS] + ["--aptopt=" + o for o in SLIM_APT_OPTS] + ["bookworm"]
    path = BASE_TAR % hashlib.sha256("\0".join(cmd).encode()).hexdigest()[:12]
    if os.path.exists(path):
        return path
    if shutil.which("mmdebstrap") is None:
        raise DockerError("mmdebstrap not found: install it (.ci/deps.sh test) to make %s" % BASE_IMAGE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.part-%d" % (path, os.getpid())
    cmd.append(tmp)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise DockerError("mmdebstrap failed (%d):\n%s" % (p.returncode, (p.stdout + p.stderr)[-4000:]))
        os.rename(tmp, path)
        for stale in glob.glob(BASE_TAR % "*"):
            if stale != path:
                os.unlink(stale)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def import_base_image(d):
    """Makes BASE_IMAGE exist in daemon `d`."""
    if d.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    tar = build_base_rootfs()
    d.docker("import", "--change", 'CMD ["bash"]', tar, BASE_IMAGE, timeout=300)


@contextlib.contextmanager
def private_dockerd(base_image=True, extra_args=()):
    """A running private Docker Engine (with BASE_IMAGE imported unless base_image is false,
    extra_args added to dockerd's); DOCKER_HOST and DOCKER_CONFIG point at it meanwhile.
    Stopped by PID at the end, also on failure."""
    remove_stale_daemon_dirs()
    d = Dockerd(extra_args)
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_CONFIG")}
    try:
        d.start()
        os.environ["DOCKER_HOST"] = d.env["DOCKER_HOST"]
        os.environ["DOCKER_CONFIG"] = d.env["DOCKER_CONFIG"]
        if base_image:
            import_base_image(d)
        yield d
    except BaseException:
        print("\n===== dockerd log (%s) =====\n%s" % (d.dir, d.log_tail()))
        raise
    finally:
        d.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def dockerd():
    """A running private Docker Engine with debian:bookworm-slim imported, for the session."""
    with private_dockerd() as d:
        yield d


@pytest.fixture(scope="session")
def bare_dockerd():
    """The same daemon without the imported base image, for tests whose images are made of
    their own layers alone (making the base needs Debian's archive)."""
    with private_dockerd(base_image=False) as d:
        yield d


ZINC_UID = 10001  # the image's user zinc (Dockerfile)


class ZincContainer:
    """zinc from `image`, on the host network at a free loopback port, with its config and
    storage folder mounted from `workdir` (config.json, store/ owned by the image's user)."""

    def __init__(self, d, image, workdir, overrides=None, files=None):
        self.d, self.image, self.workdir = d, image, workdir
        self.port = free_port()
        self.name = "zinc-e2e-%d" % self.port
        self.store = os.path.join(workdir, "store")
        os.mkdir(self.store, 0o700)
        os.chown(self.store, ZINC_UID, ZINC_UID)
        self.config = deep_merge({
            "distSpecVersion": "1.1.1",
            "storage": {"rootDirectory": "/var/lib/zinc"},
            "http": {"address": "127.0.0.1", "port": str(self.port)},
            "log": {"level": "info"},
        }, overrides)
        self.mounts = {os.path.join(workdir, "config.json"): "/etc/zinc/config.json"}
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(self.config, f)
        for container_path, text in (files or {}).items():
            host = os.path.join(workdir, os.path.basename(container_path))
            with open(host, "w") as f:
                f.write(text)
            self.mounts[host] = container_path
        for host in self.mounts:
            os.chmod(host, 0o644)
        self.started = False

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.port

    def start(self, health_interval="1s"):
        """docker run -d; the image's own health check, polled every health_interval (the
        image says 10 s: too slow for a test) so that healthy comes within a second."""
        args = ["run", "-d", "--name", self.name, "--network", "host", "--health-interval", health_interval]
        for host, cpath in self.mounts.items():
            args += ["-v", "%s:%s:ro" % (host, cpath)]
        args += ["-v", "%s:/var/lib/zinc" % self.store, self.image]
        self.id = self.d.docker(*args).stdout.strip()
        self.started = True
        return self

    def state(self):
        return self.d.inspect(self.name)["State"]

    def wait_healthy(self, timeout=30):
        """Seconds until Docker reports healthy; raises with the log if it does not."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            st = self.state()
            if not st["Running"]:
                raise DockerError("container exited (%s):\n%s" % (st.get("ExitCode"), self.logs()))
            if st.get("Health", {}).get("Status") == "healthy":
                return time.monotonic() - t0
            time.sleep(0.2)
        raise DockerError("not healthy after %d s: %s\n%s" % (timeout, json.dumps(self.state().get("Health")),
                                                              self.logs()))

    def wait_serving(self, timeout=15):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise DockerError("zinc in %s does not answer:\n%s" % (self.name, self.logs()))

    def logs(self):
        p = self.d.docker("logs", self.name, check=False)
        return (p.stdout + p.stderr)[-20000:]

    def remove(self):
        if self.started:
            self.d.docker("rm", "-f", "-v", self.name, check=False)
            self.started = False


@pytest.fixture
def zinc_container(request, tmp_path):
    """zinc_container(dockerd, image, overrides=None, files=None, start=True) -> ZincContainer;
    files maps container paths to text mounted read-only. Removed at teardown; the
    container's log is printed when the test failed."""
    made = []

    def make(d, image, overrides=None, files=None, start=True):
        workdir = tempfile.mkdtemp(prefix="zinc-ctr-", dir=str(tmp_path))
        c = ZincContainer(d, image, workdir, overrides, files)
        made.append(c)
        if start:
            c.start()
        return c

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for c in made:
        if failed and c.started:
            print("\n===== container %s log =====\n%s" % (c.name, c.logs()))
        c.remove()


def load_test_image(d, workdir, ref, layer_files, label):
    """Makes a multi-layer image from `layer_files` (a list of {path: bytes}, one per layer):
    an OCI layout (images_build), `skopeo copy` to a docker-archive named `ref`, then
    `docker load`. Returns the image ID."""
    from images_build import build_oci_layout

    layout, archive = os.path.join(workdir, "layout-" + label), os.path.join(workdir, label + ".tar")
    build_oci_layout(layout, "v1", layer_files, label=label)
    p = subprocess.run(["skopeo", "--insecure-policy", "copy", "oci:%s:v1" % layout,
                        "docker-archive:%s:%s" % (archive, ref)], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise DockerError("skopeo copy to docker-archive failed:\n" + p.stdout + p.stderr)
    d.docker("load", "-i", archive)
    return d.inspect(ref)["Id"]


def push_statuses(output):
    """docker push output -> ({layer status: count}, manifest digest). Statuses are
    "Pushed", "Layer already exists", "Mounted from <repo>"."""
    counts, pushed_digest = {}, None
    for line in output.splitlines():
        head, _, status = line.partition(": ")
        if status.startswith("digest: sha256:"):
            pushed_digest = status.split()[1]
        elif len(head) == 12 and (status in ("Pushed", "Layer already exists") or status.startswith("Mounted from ")):
            counts[status] = counts.get(status, 0) + 1
    return counts, pushed_digest


def store_owners(root):
    """{(uid, gid)} of every file and folder below root (root itself excluded)."""
    owners = set()
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            owners.add((st.st_uid, st.st_gid))
    return owners
