"""The benchmark harness (bench/run.sh) on tiny sizes: it must run to the end, print one
well-formed table, record it, and measure every metric zinc's build can serve.

Never a timed assertion: numbers are only checked to be numbers. Distribution and nginx
parts run when their packages are installed (make bench installs them), else are skipped
through BENCH_SKIP so the rest of the harness is still exercised.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests

from conftest import REPO, ZINC_BIN, SLOW

sys.path.insert(0, os.path.join(REPO, "bench"))
from lib import report, workloads  # noqa: E402

RUN_SH = os.path.join(REPO, "bench", "run.sh")
ROW_KEYS = [r[0] for r in report.rows(workloads.TINY)]
CELL = re.compile(r"^(—|ERR\[\d+\]|[0-9][0-9,]*(\.[0-9]+)?)$")


def zinc_serves_uploads(zinc):
    return requests.post(zinc.url + "/v2/probe/blobs/uploads/").status_code == 202


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    if not shutil.which("wrk"):
        pytest.skip("wrk is not installed (.ci/deps.sh bench installs it)")
    tmp = tmp_path_factory.mktemp("bench")
    skip = [part for part, tool in (("dist", "docker-registry"), ("nginx", "nginx"), ("skopeo", "skopeo"))
            if not shutil.which(tool)]
    env = dict(os.environ, ZINC_BIN=ZINC_BIN, BENCH_TINY="1", BENCH_SKIP=",".join(skip),
               BENCH_JSON=str(tmp / "results.json"), BENCH_RESULTS=str(tmp / "RESULTS.md"),
               BENCH_HLOAD=str(tmp / "hload"))
    p = subprocess.run([RUN_SH], env=env, capture_output=True, text=True, timeout=90 * SLOW)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(tmp / "results.json") as f:
        results = json.load(f)
    with open(tmp / "RESULTS.md") as f:
        recorded = f.read()
    return {"out": p.stdout, "err": p.stderr, "results": results, "recorded": recorded, "skip": skip}


def table_rows(out):
    lines = [l for l in out.splitlines() if l.startswith("| ")]
    assert lines[0].startswith("| metric | unit | zinc | Distribution | ceiling |"), out
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines[1:]]


def test_table_is_well_formed(bench_run):
    out = bench_run["out"]
    assert re.search(r"^## \d{4}-\d\d-\d\d \d\d:\d\d UTC · commit \S+ · \d+ × .+$", out, re.M), out
    rows = table_rows(out)
    assert len(rows) == len(ROW_KEYS)
    footnotes = set(re.findall(r"^\[(\d+)\] ", out, re.M))
    for row in rows:
        assert len(row) == 8, row
        for cell in (row[2], row[3], row[4].split(" (")[0]):
            assert CELL.match(cell), (row, cell)
            if cell.startswith("ERR["):
                assert cell[4:-1] in footnotes, (row, cell)
    assert re.search(r"^targets: \d+ pass, \d+ FAIL, \d+ n/a;", out, re.M), out


def test_reference_and_ceilings_measured(bench_run):
    """Every Distribution cell and every ceiling is a number: the harness code paths work."""
    res, skip = bench_run["results"], bench_run["skip"]
    assert isinstance(res["push_mono"]["ceiling"], float)
    if "nginx" not in skip:
        for key in ("manifest_get", "manifest_head", "blob_get", "blob_get_par"):
            assert isinstance(res[key]["ceiling"], float), res[key]
    if "skopeo" not in skip:
        for key in ("skopeo_push", "skopeo_pull"):
            assert isinstance(res[key]["ceiling"], float), res[key]
    if "dist" not in skip:
        for key in ROW_KEYS:
            if key.startswith("skopeo") and "skopeo" in skip:
                continue
            assert isinstance(res[key]["distribution"], float), (key, res[key])


def test_zinc_measured_where_it_serves(bench_run, zinc):
    """zinc's cells are numbers wherever the build serves the feature (uploads = OCI API)."""
    res = bench_run["results"]
    assert isinstance(res["peak_rss"]["zinc"], float)
    if not zinc_serves_uploads(zinc):
        pytest.skip("this zinc build has no OCI upload API yet")
    for key in ROW_KEYS:
        if key == "manifest_get_auth" or (key.startswith("skopeo") and "skopeo" in bench_run["skip"]):
            continue
        assert isinstance(res[key]["zinc"], float), (key, res[key])


def test_run_recorded_newest_first(bench_run, tmp_path):
    rec = bench_run["recorded"]
    assert report.MARKER in rec
    assert rec.split(report.MARKER, 1)[1].lstrip().startswith("## "), rec[:500]
    path = str(tmp_path / "R.md")
    report.record(path, "## first", ["a"])
    report.record(path, "## second", ["b"])
    text = open(path).read()
    assert text.index("## second") < text.index("## first")


def test_targets_judged_from_ratios():
    res = {"manifest_get": {"zinc": 600.0, "distribution": 100.0, "ceiling": 1000.0},
           "peak_rss": {"zinc": 30.0, "distribution": 100.0},
           "skopeo_push": {"zinc": 1.0, "distribution": 2.0},
           "small_push": {"zinc": report.Err("down"), "distribution": 10.0}}
    assert report.judge("manifest_get", res["manifest_get"], res) == \
        ("≥5× Dist: pass; ≥0.6× ceiling: pass", True)
    assert report.judge("peak_rss", res["peak_rss"], res) == ("≤0.25× Dist: FAIL", False)
    assert report.judge("skopeo_push", res["skopeo_push"], res) == ("≤0.6× Dist: pass", True)
    assert report.judge("small_push", res["small_push"], res) == ("≥3× Dist: n/a", False)
    res["manifest_get_auth"] = {"zinc": 470.0}
    assert report.judge("manifest_get_auth", res["manifest_get_auth"], res)[1] is False
