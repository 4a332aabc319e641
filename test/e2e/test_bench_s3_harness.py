"""bench/s3.py on tiny sizes (BENCH_TINY=1, not recorded; it starts its own RGW): it must
run to the end and print one table whose cells are all numbers (zinc and Distribution both
measured), so `make bench-s3` cannot rot. Never a timed assertion. Skipped when the Ceph
binaries or docker-registry are missing (make deps-test / deps-bench install them)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, ZINC_BIN

sys.path.insert(0, os.path.join(REPO, "test", "s3"))
import rgw  # noqa: E402


@pytest.mark.skipif(bool(rgw.missing_binaries()), reason="no Ceph binaries")
@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry not installed")
def test_s3_bench_tiny():
    env = dict(os.environ, BENCH_TINY="1", BENCH_RESULTS="", ZINC_BIN=ZINC_BIN)
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "s3.py")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and not l.startswith("| metric")]
    assert [r.split(" | ")[0][2:] for r in rows] == ["push MB/s", "chunked MB/s", "pull MB/s", "manifest GET/s",
                                                      "peak RSS (VmHWM)", "peak anonymous RSS"]
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")][1:3]
        for c in cells:
            assert re.match(r"^[0-9][0-9,]*(\.[0-9]+)?( MiB)?$", c), r
