"""Disk waits that must not happen on an event loop (issue 13 target 3), on the filesystem
store: creating an upload session's file, and reading a manifest (or index.json) that the
cache does not hold. An LD_PRELOAD shim (test/shim/hold_open.c) holds the open(2) of the
file concerned until the test releases it and logs the name of the thread that waits, so
the test sees which thread does the work, and that the only worker (http.workers = 1) keeps
answering while that open is held. Nothing here depends on timing: the hold lasts until
the test ends it."""
import hashlib
import os
import time

import pytest
import requests

from conftest import SANITIZE, SLOW
from oci_util import OCI_MANIFEST, Registry, in_thread

SHIM = os.environ.get("ZINC_HOLD_SHIM", "")
pytestmark = pytest.mark.skipif(not os.path.exists(SHIM), reason="hold shim not built: " + SHIM)


class Hold:
    """Holds opens of paths containing `match` while active."""

    def __init__(self, server, tmp_path, match):
        self.file = str(tmp_path / "hold")
        self.log = str(tmp_path / "held.log")
        server.extra_env.update({"LD_PRELOAD": SHIM, "ZN_HOLD_MATCH": match, "ZN_HOLD_FILE": self.file,
                                 "ZN_HELD_LOG": self.log})
        if SANITIZE:  # the shim is preloaded ahead of libasan
            server.extra_env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0"

    def set(self):
        open(self.file, "w").close()

    def release(self):
        os.unlink(self.file)

    def held(self, timeout=30):
        """The (thread, path) lines of the opens held so far, waiting for the first."""
        deadline = time.time() + timeout * SLOW
        while True:
            if os.path.exists(self.log):
                with open(self.log) as f:
                    lines = [l.split(" ", 1) for l in f.read().splitlines() if " " in l]
                if lines:
                    return lines
            assert time.time() < deadline, "no open was held"
            time.sleep(0.01)


def answers_meanwhile(server):
    """The only worker answers a request that needs no disk while the held open waits."""
    r = requests.get(server.url + "/v2/", timeout=30 * SLOW)
    assert r.status_code == 200


def test_session_create_is_off_the_loop(zinc_factory, tmp_path):
    z = zinc_factory({"http": {"workers": 1}}, start=False)
    hold = Hold(z, tmp_path, "/.uploads/")
    z.start()
    reg = Registry(z.url)
    reg.push_blob("off/loop", b"warm-up")  # the repository exists: only the session file is new
    hold.set()
    t, out = in_thread(lambda: requests.post(z.url + "/v2/off/loop/blobs/uploads/", timeout=60 * SLOW))
    held = hold.held()
    assert all(not name.startswith("worker") for name, _ in held), held
    answers_meanwhile(z)
    assert t.is_alive(), out  # the POST is still waiting on its open
    hold.release()
    t.join(60 * SLOW)
    assert "error" not in out, out
    r = out["result"]
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    # the session works: finish it
    data = b"after the hold"
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    url = (z.url + loc if loc.startswith("/") else loc) + ("&" if "?" in loc else "?") + "digest=" + d
    p = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"})
    assert p.status_code == 201, p.text
    assert requests.get(z.url + "/v2/off/loop/blobs/" + d).content == data


def test_manifest_cache_miss_is_off_the_loop(zinc_factory, tmp_path):
    z = zinc_factory({"http": {"workers": 1}}, start=False)
    hold = Hold(z, tmp_path, "/index.json")
    z.start()
    body, md = Registry(z.url).push_image("off/manifests", "v1", [b"layer"])
    z.stop()
    z.start()  # nothing cached: the first GET reads index.json and the manifest from the disk
    hold.set()
    t, out = in_thread(lambda: requests.get(z.url + "/v2/off/manifests/manifests/v1",
                                            headers={"Accept": OCI_MANIFEST}, timeout=60 * SLOW))
    held = hold.held()
    assert all(not name.startswith("worker") for name, _ in held), held
    answers_meanwhile(z)
    assert t.is_alive(), out
    hold.release()
    t.join(60 * SLOW)
    assert "error" not in out, out
    r = out["result"]
    assert r.status_code == 200 and r.content == body and r.headers["Docker-Content-Digest"] == md
    # now cached: a second GET is answered from memory, with no open of index.json at all
    os.unlink(hold.log)
    hold.set()
    r = requests.get(z.url + "/v2/off/manifests/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=30 * SLOW)
    assert r.status_code == 200 and r.content == body
    hold.release()
    assert not os.path.exists(hold.log)
