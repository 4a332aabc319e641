"""zinc deployed from its own container image, with the real Docker Engine (issue 9):
the image's build and config, a run with a mounted config and storage folder (healthy,
serving, non-root, graceful `docker stop`).

Docker runs as a private daemon (docker_fixture.py). The image build does not use the
host's zinc binary, so the sanitizer pass of `make test` skips this file (it would build
and test the same image twice); the release pass runs it.
"""
import os
import socket
import threading
import time

import pytest
import requests

from conftest import REPO, SANITIZE
from docker_fixture import BASE_IMAGE, ZINC_UID, dockerd, zinc_container  # noqa: F401 (fixtures)

if SANITIZE:
    pytest.skip("container image tests run once, in the release pass (the image builds its own zinc)",
                allow_module_level=True)

IMAGE = "zinc:e2e"
MB = 1000 * 1000


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
    assert cfg["ExposedPorts"] == {"5000/tcp": {}}
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
              "zinc verify /etc/zinc/config.json; zinc version; id -u; id -g; stat -c '%u %a' /var/lib/zinc")
    out = dockerd.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", zinc_image, "-c",
                         script).stdout.split("\n")
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

    # A request in flight when `docker stop` sends SIGTERM is finished, then zinc exits 0.
    sock = socket.create_connection(("127.0.0.1", c.port))
    sock.sendall(b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    time.sleep(0.2)
    stopped = {}

    def stop():
        t0 = time.monotonic()
        stopped["p"] = dockerd.docker("stop", "-t", "10", c.name, check=False, timeout=30)
        stopped["s"] = time.monotonic() - t0

    t = threading.Thread(target=stop)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)
    assert c.state()["Running"], "zinc exited with a request in flight:\n" + c.logs()
    sock.sendall(b"67890")
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\nok" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 200"), data
    t.join(30)
    assert stopped["p"].returncode == 0, stopped["p"].stderr
    print("docker stop took %.2f s (%.2f s after SIGTERM)" % (stopped["s"], time.monotonic() - t0))
    assert stopped["s"] < 3, stopped
    st = c.state()
    assert not st["Running"] and st["ExitCode"] == 0 and not st["OOMKilled"], st
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", c.port), timeout=1).close()
