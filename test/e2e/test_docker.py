"""zinc deployed from its own container image, with the real Docker Engine (issue 9):
the image's build and config, a run with a mounted config and storage folder (healthy,
serving, non-root, graceful `docker stop`), the docker client pushing and pulling
multi-layer images to the containerized zinc (by tag and digest, re-push, shared
layers), with htpasswd auth (login, logout, refusals), and zinc's own image pushed into
zinc and pulled back.

Docker runs as a private daemon (docker_fixture.py). The image build does not use the
host's zinc binary, so the sanitizer pass of `make test` skips this file (it would build
and test the same image twice); the release pass runs it.
"""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import REPO, SANITIZE
from docker_fixture import (BASE_IMAGE, ZINC_UID, Dockerd, DockerError, dockerd, load_test_image,  # noqa: F401
                            push_statuses, store_owners, zinc_container)
from oci_util import DOCKER_MANIFEST, digest

if SANITIZE:
    pytest.skip("container image tests run once, in the release pass (the image builds its own zinc)",
                allow_module_level=True)

IMAGE = "zinc:e2e"


def wait_until(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)

MB = 1000 * 1000
# Three layers, a few hundred kB in all (vfs copies every layer in full).
LAYERS = [{"etc/zinc-e2e/a.txt": b"alpha\n" * 4000},
          {"usr/share/zinc-e2e/b.bin": os.urandom(200000)},
          {"var/lib/zinc-e2e/c.bin": os.urandom(300000)}]


@pytest.fixture(scope="session")
def zinc_image(dockerd):
    """The project's Dockerfile built with `docker build --network host`; returns the tag."""
    t0 = time.monotonic()
    dockerd.build(REPO, IMAGE)
    print("\nimage build: %.1f s" % (time.monotonic() - t0))
    return IMAGE


def test_image_config(dockerd, zinc_image):
    cfg = dockerd.inspect(zinc_image)["Config"]
    assert cfg["User"] == "%d:%d" % (ZINC_UID, ZINC_UID)
    assert cfg["Volumes"] == {"/var/lib/zinc": {}}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/zinc", "probe", "--config", "/etc/zinc/config.json",
                                          "/livez"]
    assert cfg["Healthcheck"]["Interval"] == 10 * 10**9 and cfg["Healthcheck"]["Timeout"] == 3 * 10**9
    assert cfg["Entrypoint"] == ["/usr/local/bin/zinc"]
    assert cfg["Cmd"] == ["serve", "/etc/zinc/config.json"]
    assert cfg["StopSignal"] == "SIGTERM"


def test_image_holds_only_the_runtime(dockerd, zinc_image):
    """The runtime stage: debian:bookworm-slim + two layers (runtime libraries and user,
    then binary and config); every library resolves, no compiler, the default config is
    valid and the binary runs as the zinc user."""
    image, base = dockerd.inspect(zinc_image), dockerd.inspect(BASE_IMAGE)
    added = image["Size"] - base["Size"]
    print("\nimage %.1f MB = base %.1f MB + runtime stage %.1f MB" % (image["Size"] / MB, base["Size"] / MB,
                                                                      added / MB))
    assert image["RootFS"]["Layers"][:len(base["RootFS"]["Layers"])] == base["RootFS"]["Layers"]
    assert len(image["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 2
    assert 0 < added < 40 * MB, added
    script = ("set -e; if ldd /usr/local/bin/zinc | grep 'not found'; then exit 1; fi; "
              "for t in gcc cc cmake make pkg-config; do if command -v $t; then exit 1; fi; done; "
              "zinc verify /etc/zinc/config.json; zinc version; touch /var/lib/zinc/w; "
              "id -u; id -g; stat -c '%u %a' /var/lib/zinc")
    # a new named volume takes the image's owner of /var/lib/zinc: writable without a chown
    out = dockerd.docker("run", "--rm", "--network", "none", "-v", "zinc-e2e-data:/var/lib/zinc", "--entrypoint",
                         "/bin/sh", zinc_image, "-c", script).stdout.split("\n")
    dockerd.docker("volume", "rm", "zinc-e2e-data")
    assert "/etc/zinc/config.json: ok" in out and any(l.startswith("zinc ") for l in out), out
    assert out[-4:-1] == [str(ZINC_UID), str(ZINC_UID), "%d 700" % ZINC_UID], out


def test_run_healthy_serves_and_stops_gracefully(dockerd, zinc_image, zinc_container):
    c = zinc_container(dockerd, zinc_image)
    took = c.wait_healthy()
    print("\nhealthy after %.1f s" % took)
    r = requests.get(c.url + "/v2/", timeout=5)
    assert r.status_code == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    with open("/proc/%d/status" % c.state()["Pid"]) as f:
        uids = [l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))]
    assert uids == [[str(ZINC_UID)] * 4] * 2, uids

    # The profiler works under Docker's default seccomp profile (per-thread CPU timers) and
    # names zinc's functions and source lines from the unstripped binary.
    g = requests.get(c.url + "/v2/_zot/pprof/goroutine", params={"debug": "2"}, timeout=10)
    assert g.status_code == 200 and "zn_server_run()" in g.text and "server/server.c:" in g.text, g.text[:2000]
    cpu = requests.get(c.url + "/v2/_zot/pprof/profile", params={"seconds": "1"}, timeout=10)
    assert cpu.status_code == 200 and cpu.content[:2] == b"\x1f\x8b", cpu.content[:200]

    # A blob upload in flight when `docker stop` sends SIGTERM is finished and stored (as
    # the zinc user, in the mounted folder), then zinc exits 0 within 3 s.
    blob = os.urandom(1 << 20)
    r = requests.post(c.url + "/v2/e2e/inflight/blobs/uploads/", timeout=5)
    assert r.status_code == 202, r.text
    loc = urllib.parse.urljoin(c.url + "/", r.headers["Location"])
    target = urllib.parse.urlsplit(loc)
    head = "PUT %s?%s%sdigest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n" \
           "Content-Length: %d\r\n\r\n" % (target.path, target.query, "&" if target.query else "", digest(blob),
                                          c.hostport, len(blob))
    sock = socket.create_connection(("127.0.0.1", c.port))
    sock.sendall(head.encode() + blob[:len(blob) // 2])
    # the body streams into the session file (in the mounted folder): once it has bytes,
    # zinc is inside the request, not merely holding unread bytes at the kernel
    session = os.path.join(c.store, "e2e/inflight/.uploads", target.path.rsplit("/", 1)[1])
    wait_until(lambda: os.path.exists(session) and os.path.getsize(session) > 0, "the body reaching the session")
    stopped = {}

    def stop():
        t0 = time.monotonic()
        stopped["p"] = dockerd.docker("stop", "-t", "10", c.name, check=False, timeout=30)
        stopped["s"] = time.monotonic() - t0

    t = threading.Thread(target=stop)
    t.start()
    # zinc logs the signal as it starts its shutdown: from then on it waits for this request
    wait_until(lambda: '"message":"shutting down"' in c.logs(), "zinc to get SIGTERM")
    assert c.state()["Running"], "zinc exited with a request in flight:\n" + c.logs()
    sock.sendall(blob[len(blob) // 2:])
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 201"), data
    t.join(30)
    assert stopped["p"].returncode == 0, stopped["p"].stderr
    print("docker stop took %.2f s" % stopped["s"])
    # zinc ended by itself once the request was answered: not by docker's SIGKILL after -t 10
    # (ExitCode 137), nor by its own 10 s grace period cutting idle connections
    assert "shutdown grace period over" not in c.logs()
    st = c.state()
    assert not st["Running"] and st["ExitCode"] == 0 and not st["OOMKilled"], st
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", c.port), timeout=1).close()
    with open(os.path.join(c.store, "e2e/inflight/blobs/sha256", digest(blob)[7:]), "rb") as f:
        assert f.read() == blob
    assert store_owners(c.store) == {(ZINC_UID, ZINC_UID)}


def test_docker_push_pull_by_tag_and_digest(dockerd, zinc_image, zinc_container, tmp_path):
    c = zinc_container(dockerd, zinc_image)
    c.wait_serving()
    ref = "%s/e2e/multi:v1" % c.hostport
    image_id = load_test_image(dockerd, str(tmp_path), ref, LAYERS, "multi")
    out = dockerd.docker("push", ref).stdout
    counts, pushed = push_statuses(out)
    assert counts == {"Pushed": 3} and pushed, out
    r = requests.head(c.url + "/v2/e2e/multi/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == pushed
    assert r.headers["Content-Type"] == DOCKER_MANIFEST
    by_digest = "%s/e2e/multi@%s" % (c.hostport, pushed)
    assert dockerd.inspect(ref)["RepoDigests"] == [by_digest]

    dockerd.docker("rmi", ref)
    assert dockerd.docker("image", "inspect", image_id, check=False).returncode != 0
    dockerd.docker("pull", ref)
    img = dockerd.inspect(ref)
    assert img["Id"] == image_id and img["RepoDigests"] == [by_digest]

    dockerd.docker("rmi", ref)
    assert dockerd.docker("image", "inspect", image_id, check=False).returncode != 0
    out = dockerd.docker("pull", by_digest).stdout
    assert "Digest: " + pushed in out, out
    assert dockerd.inspect(by_digest)["Id"] == image_id

    dockerd.docker("tag", image_id, ref)
    out = dockerd.docker("push", ref).stdout
    assert push_statuses(out) == ({"Layer already exists": 3}, pushed), out
    assert store_owners(c.store) == {(ZINC_UID, ZINC_UID)}


def test_docker_push_images_sharing_layers(dockerd, zinc_image, zinc_container, tmp_path):
    c = zinc_container(dockerd, zinc_image)
    c.wait_serving()
    a, b = "%s/e2e/base:v1" % c.hostport, "%s/e2e/app:v1" % c.hostport
    ida = load_test_image(dockerd, str(tmp_path), a, LAYERS[:2] + [{"a/only.txt": os.urandom(1000)}], "a")
    idb = load_test_image(dockerd, str(tmp_path), b, LAYERS[:2] + [{"b/only.txt": os.urandom(1000)}], "b")
    out = dockerd.docker("push", a).stdout
    assert push_statuses(out)[0] == {"Pushed": 3}, out
    # Docker remembers where it pushed the two shared layers and mounts them across repositories.
    out = dockerd.docker("push", b).stdout
    counts, db = push_statuses(out)
    assert counts == {"Pushed": 1, "Mounted from e2e/base": 2}, out
    # The same layers in a third repository, pushed by another tag of the same image.
    again = "%s/e2e/app:v2" % c.hostport
    dockerd.docker("tag", b, again)
    out = dockerd.docker("push", again).stdout
    assert push_statuses(out) == ({"Layer already exists": 3}, db), out

    shared = [l["digest"] for l in requests.get(c.url + "/v2/e2e/app/manifests/" + db,
                                               headers={"Accept": DOCKER_MANIFEST}).json()["layers"][:2]]
    for d in shared:  # one file for both repositories (storage.dedupe defaults to true)
        ino = {os.stat(os.path.join(c.store, "e2e", repo, "blobs/sha256", d[7:])).st_ino for repo in ("base", "app")}
        assert len(ino) == 1, d
    dockerd.docker("rmi", a, b, again)
    dockerd.docker("pull", a)
    dockerd.docker("pull", b)
    assert (dockerd.inspect(a)["Id"], dockerd.inspect(b)["Id"]) == (ida, idb)
    assert store_owners(c.store) == {(ZINC_UID, ZINC_UID)}


def htpasswd_line(user, password):
    p = subprocess.run(["htpasswd", "-nbB", user, password], capture_output=True, text=True)
    if p.returncode != 0:
        raise DockerError("htpasswd (apache2-utils) failed: " + p.stderr)
    line = p.stdout.strip()
    assert line.startswith(user + ":$2y$"), line
    return line + "\n"


def test_docker_login_push_pull_logout(dockerd, zinc_image, zinc_container, tmp_path):
    auth = {"http": {"realm": "zinc", "auth": {"htpasswd": {"path": "/etc/zinc/htpasswd"}},
                     "accessControl": {"repositories": {"**": {"policies": [
                         {"users": ["alice"], "actions": ["read", "create", "update", "delete"]}]}}}}}
    c = zinc_container(dockerd, zinc_image, auth, files={"/etc/zinc/htpasswd": htpasswd_line("alice", "s3cret")})
    c.wait_healthy()
    ref = "%s/private/app:v1" % c.hostport
    image_id = load_test_image(dockerd, str(tmp_path), ref, LAYERS, "auth")
    creds = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")

    def stored():
        try:
            with open(creds) as f:
                return json.load(f).get("auths", {}).get(c.hostport)
        except FileNotFoundError:
            return None

    bad = dockerd.docker("login", c.hostport, "-u", "alice", "--password-stdin", input="wrong\n", check=False)
    assert bad.returncode == 1 and "unauthorized" in bad.stderr.lower(), bad.stderr
    assert stored() is None
    anon = dockerd.docker("push", ref, check=False)
    assert anon.returncode != 0 and "no basic auth credentials" in anon.stderr, anon.stderr

    ok = dockerd.docker("login", c.hostport, "-u", "alice", "--password-stdin", input="s3cret\n")
    assert "Login Succeeded" in ok.stdout and stored() is not None
    counts, pushed = push_statuses(dockerd.docker("push", ref).stdout)
    assert counts == {"Pushed": 3}
    dockerd.docker("rmi", ref)
    dockerd.docker("pull", ref)
    assert dockerd.inspect(ref)["Id"] == image_id

    dockerd.docker("logout", c.hostport)
    assert stored() is None
    dockerd.docker("rmi", ref)
    refused = dockerd.docker("pull", ref, check=False)
    assert refused.returncode != 0 and "no basic auth credentials" in refused.stderr, refused.stderr
    r = requests.get(c.url + "/v2/private/app/manifests/v1")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="zinc"'
    r = requests.get(c.url + "/v2/private/app/manifests/v1", auth=("alice", "s3cret"),
                     headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == pushed


def test_zinc_image_pushed_into_zinc_and_pulled_back(dockerd, zinc_image, zinc_container):
    """zinc in a container stores its own image; a second, empty Docker Engine pulls it back
    from there (every layer downloaded, same image ID) and runs it."""
    c = zinc_container(dockerd, zinc_image)
    c.wait_healthy()
    image = dockerd.inspect(zinc_image)
    ref = "%s/zinc/zinc:e2e" % c.hostport
    dockerd.docker("tag", zinc_image, ref)
    out = dockerd.docker("push", ref).stdout
    counts, pushed = push_statuses(out)
    assert counts == {"Pushed": len(image["RootFS"]["Layers"])}, out
    m = requests.get(c.url + "/v2/zinc/zinc/manifests/e2e", headers={"Accept": DOCKER_MANIFEST})
    assert m.status_code == 200 and digest(m.content) == pushed
    assert m.json()["config"]["digest"] == image["Id"]

    other = Dockerd()
    try:
        other.start()
        back = "%s/zinc/zinc@%s" % (c.hostport, pushed)
        out = other.docker("pull", back).stdout
        assert out.count("Pull complete") == len(image["RootFS"]["Layers"]), out
        assert other.inspect(back)["Id"] == image["Id"]
        run = other.docker("run", "--rm", "--network", "none", back, "version")
        assert run.stdout.startswith("zinc "), run.stdout
    finally:
        other.stop()
    assert store_owners(c.store) == {(ZINC_UID, ZINC_UID)}
