"""End-to-end tests of extensions.metrics (docs/zot.md §1, §3 /metrics rule, §6): the
Prometheus text format parsed strictly, counters that move by exactly the requests made,
the repo label, storage bytes, scrapes not counting themselves, disabled -> 404, a custom
path, and the accessControl.metrics authorization matrix."""
import math
import os
import re
import time

import pytest
import requests

from conftest import SLOW
from oci_util import Registry
from test_auth import AUTHN, DENIED, basic, bcrypt_line, write_htpasswd

ENABLED = {"extensions": {"metrics": {"enable": True}}}
ONE_WORKER = {"extensions": {"metrics": {"enable": True}}, "http": {"workers": 1}}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse(text):
    """Strict text format 0.0.4 parser: returns ({family: type}, {(name, labels): value}). Every
    line is a HELP/TYPE comment or a sample; a sample belongs to a family TYPE'd before it."""
    assert text.endswith("\n")
    types, samples, helps = {}, {}, set()
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[1] in ("HELP", "TYPE") and re.match("^%s$" % NAME, parts[2]), line
            if parts[1] == "TYPE":
                assert parts[3] in TYPES and parts[2] not in types, line
                types[parts[2]] = parts[3]
            else:
                assert parts[2] not in helps, line
                helps.add(parts[2])
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        name, labels, value = m.group(1), m.group(2), m.group(m.lastindex)
        assert VALUE.match(value), line
        pairs = tuple(sorted((k, unescape(v)) for k, v in re.findall(LABEL, labels or "")))
        assert len(set(k for k, _ in pairs)) == len(pairs), line
        family = family_of(name, types)
        assert family is not None, "sample before its TYPE: %r" % line
        assert (name, pairs) not in samples, "duplicate: %r" % line
        samples[(name, pairs)] = float(value)
    assert set(types) <= helps
    return types, samples


def family_of(name, types):
    if name in types:
        return name
    for fam, t in types.items():
        if name in (fam + s for s in SUFFIXES.get(t, ())):
            return fam
    return None


def scrape(server, path="/metrics", **kw):
    r = requests.get(server.url + path, timeout=30 * SLOW, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def check_histograms(types, samples):
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                le = dict(labels)["le"]
                rest = tuple(p for p in labels if p[0] != "le")
                series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), v))
        assert series, fam
        for rest, buckets in series.items():
            buckets.sort()
            les = [le for le, _ in buckets]
            assert les == [0.05, 0.5, 1, 5, 30, 60, 600, math.inf], les
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (fam, rest, counts)
            assert counts[-1] == samples[(fam + "_count", rest)]
            assert samples[(fam + "_sum", rest)] >= 0


def wait_value(server, name, expected, timeout=5, path="/metrics", **labels):
    """The access log (which feeds the metrics) runs once a response is fully written, which
    may be just after the client has read it: poll briefly, then demand equality."""
    deadline = time.time() + timeout * SLOW
    while True:
        types, s = scrape(server, path)
        got = val(s, name, **labels)
        if got >= expected or time.time() > deadline:
            assert got == expected, (name, labels, got, expected)
            return types, s
        time.sleep(0.05)


def dir_bytes(path, skip_repos=True):
    total = 0
    for top, dirs, files in os.walk(path):
        if skip_repos and top != path and "oci-layout" in files:
            dirs[:] = []
            continue
        total += sum(os.lstat(os.path.join(top, f)).st_size for f in files)
    return total


# ---- format ---------------------------------------------------------------------------------------


def test_format_families_and_info(zinc_factory):
    z = zinc_factory(ENABLED)
    requests.head(z.url + "/v2/")  # the harness's readiness polls are GETs
    types, s = wait_value(z, "zot_http_requests_total", 1, method="HEAD", code="200")
    assert types["zot_http_requests_total"] == "counter"
    assert types["zot_http_repo_latency_seconds"] == "summary"
    assert types["zot_http_method_latency_seconds"] == "histogram"
    assert types["zot_repo_storage_bytes"] == "gauge"
    assert types["zot_repo_uploads_total"] == "counter"
    assert types["zot_repo_downloads_total"] == "counter"
    assert types["process_cpu_seconds_total"] == "counter"
    check_histograms(types, s)
    info = [labels for (name, labels), v in s.items() if name == "zot_info" and v == 0]  # zot sets 0
    assert len(info) == 1
    info = dict(info[0])
    assert set(info) == {"commit", "binaryType", "goVersion", "version"}
    assert info["goVersion"] == "none" and info["version"]
    assert val(s, "process_resident_memory_bytes") > 1 << 20
    assert val(s, "process_open_fds") >= 3
    assert val(s, "process_cpu_seconds_total") >= 0
    with open("/proc/%d/stat" % z.proc.pid) as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
        btime = int([l.split()[1] for l in f if l.startswith("btime ")][0])
    assert abs(val(s, "process_start_time_seconds") - (btime + start_ticks / os.sysconf("SC_CLK_TCK"))) < 0.02
    assert abs(val(s, "process_start_time_seconds") - time.time()) < 120
    with open("/proc/%d/status" % z.proc.pid) as f:
        rss = int([l.split()[1] for l in f if l.startswith("VmRSS:")][0]) * 1024
    assert rss / 2 < val(s, "process_resident_memory_bytes") < rss * 2


def test_parser_rejects_bad_lines():
    for bad in ['x{a="b} 1\n', "x 1 2 3\n", 'x{a="b"} one\n', "# TYPE x counter\nx{a=\"\\q\"} 1\n", "x 1\n"]:
        with pytest.raises(AssertionError):
            parse(bad)
    parse('# HELP x h\n# TYPE x counter\nx{a="q\\"\\\\\\n"} 1e3\n')


# ---- counting -----------------------------------------------------------------------------------------


def test_counts_move_by_exactly_the_requests_made(zinc_factory):
    z = zinc_factory(ENABLED)
    # the fixture's one successful GET /readyz is counted once its access log ran, which may be
    # after the fixture saw the answer (and on another worker): take the baseline after it
    deadline = time.time() + 5 * SLOW
    while True:
        _, before = scrape(z)
        if val(before, "zot_http_requests_total", method="GET", code="200") >= 1 or time.time() > deadline:
            break
        time.sleep(0.05)
    for _ in range(3):
        assert requests.get(z.url + "/v2/").status_code == 200
    for _ in range(2):
        assert requests.get(z.url + "/v2/nope/tags/list").status_code == 404
    assert requests.head(z.url + "/v2/").status_code == 200
    assert requests.delete(z.url + "/v2/").status_code == 405
    assert requests.request("BREW", z.url + "/v2/").status_code == 405
    wait_value(z, "zot_http_requests_total", val(before, "zot_http_requests_total", method="GET", code="200") + 3,
               method="GET", code="200")
    types, after = wait_value(z, "zot_http_requests_total", 1, method="other", code="405")

    def delta(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    assert delta("zot_http_requests_total", method="GET", code="200") == 3
    assert delta("zot_http_requests_total", method="GET", code="404") == 2
    assert delta("zot_http_requests_total", method="HEAD", code="200") == 1
    assert delta("zot_http_requests_total", method="DELETE", code="405") == 1
    assert delta("zot_http_method_latency_seconds_count", method="GET") == 5
    assert delta("zot_http_method_latency_seconds_bucket", method="GET", le="+Inf") == 5
    assert delta("zot_http_repo_latency_seconds_count", repo="N/A") == 8  # 404s on unknown repos too
    check_histograms(types, after)


def test_scrapes_are_not_counted(zinc_factory):
    z = zinc_factory(ONE_WORKER)
    requests.head(z.url + "/v2/")
    _, first = wait_value(z, "zot_http_requests_total", 1, method="HEAD", code="200")
    for _ in range(5):
        scrape(z)
    # the access log sees a request after its answer left: a HEAD sent after the scrapes, once
    # counted, tells that the one worker has logged every scrape before it
    requests.head(z.url + "/v2/")
    _, last = wait_value(z, "zot_http_requests_total", 2, method="HEAD", code="200")
    # the scrapes are GETs: had they been counted, a GET series would have moved, and the
    # repository-less requests would number more than the one HEAD
    pick = lambda s: {k: v for k, v in s.items() if k[0].startswith("zot_http") and ("method", "GET") in k[1]}
    assert pick(first) == pick(last)
    n_a = lambda s: val(s, "zot_http_repo_latency_seconds_count", repo="N/A")
    assert n_a(last) == n_a(first) + 1


def test_repo_label_uploads_downloads_and_storage_bytes(zinc_factory):
    z = zinc_factory(ENABLED)
    reg = Registry(z.url)
    body, d = reg.push_image("team/app", "v1", [b"layer-one" * 100])
    for _ in range(2):
        assert reg.get("/v2/team/app/manifests/v1").status_code == 200
    assert reg.s.head(z.url + "/v2/team/app/manifests/v1").status_code == 200
    assert reg.get("/v2/team/app/manifests/nope").status_code == 404
    assert reg.get("/v2/other/manifests/v1").status_code == 404
    _, s = wait_value(z, "zot_repo_downloads_total", 2, repo="team/app")
    assert val(s, "zot_repo_uploads_total", repo="team/app") == 1
    assert ("zot_repo_downloads_total", (("repo", "other"),)) not in s
    # push: 2 blob POSTs + manifest PUT; then GET, GET, HEAD; the 404 is N/A
    assert val(s, "zot_http_repo_latency_seconds_count", repo="team/app") == 6
    assert ("zot_http_repo_latency_seconds_count", (("repo", "other"),)) not in s
    repo_dir = os.path.join(z.root, "team", "app")
    assert val(s, "zot_repo_storage_bytes", repo="team/app") == dir_bytes(repo_dir)

    reg.push_image("team/app", "v2", [os.urandom(5000)])
    _, s = wait_value(z, "zot_repo_uploads_total", 2, repo="team/app")
    assert val(s, "zot_repo_storage_bytes", repo="team/app") == dir_bytes(repo_dir)
    # a nested repository is its own series and not part of its parent's bytes
    reg.push_image("team/app/sub", "v1", [os.urandom(3000)])
    _, s = wait_value(z, "zot_repo_uploads_total", 1, repo="team/app/sub")
    assert val(s, "zot_repo_storage_bytes", repo="team/app") == dir_bytes(repo_dir)
    assert val(s, "zot_repo_storage_bytes", repo="team/app/sub") == dir_bytes(os.path.join(repo_dir, "sub"))
    assert dir_bytes(repo_dir, skip_repos=False) > val(s, "zot_repo_storage_bytes", repo="team/app")


def test_counts_sum_over_workers(zinc_factory):
    z = zinc_factory({"extensions": {"metrics": {"enable": True}}, "http": {"workers": 4}})
    sessions = [requests.Session() for _ in range(8)]
    for i in range(40):
        assert sessions[i % 8].head(z.url + "/v2/").status_code == 200
    wait_value(z, "zot_http_requests_total", 40, method="HEAD", code="200")


# ---- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [None, {"extensions": {"metrics": {"enable": False}}}])
def test_disabled_is_404(zinc_factory, overrides):
    z = zinc_factory(overrides)
    r = requests.get(z.url + "/metrics")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"


def test_custom_path(zinc_factory):
    z = zinc_factory({"extensions": {"metrics": {"enable": True, "prometheus": {"path": "/ops/prom"}}}})
    assert requests.get(z.url + "/metrics").status_code == 404
    assert requests.post(z.url + "/ops/prom").status_code == 405
    _, s = wait_value(z, "zot_http_requests_total", 1, path="/ops/prom", method="GET", code="404")
    assert val(s, "zot_http_requests_total", method="POST", code="405") == 0  # the metrics path: never counted


def test_section_without_enable_is_on(zinc_factory):
    z = zinc_factory({"extensions": {"metrics": {}}})
    scrape(z)


# ---- authorization (zot.md §3 /metrics) ------------------------------------------------------------------

USERS = {"admin": "admin-Pw1", "metrics": "metrics-Pw2", "alice": "alice-Pw3"}


@pytest.fixture
def htpasswd(tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in USERS.items()])
    return path


def auth_server(zinc_factory, htpasswd, access=None):
    http = {"realm": "zinc-test", "auth": {"htpasswd": {"path": htpasswd}}}
    if access is not None:
        http["accessControl"] = access
    return zinc_factory({"http": http, "extensions": {"metrics": {"enable": True}}})


def get_as(server, user=None, pw=None):
    h = {} if user is None else {"Authorization": basic(user, pw if pw is not None else USERS[user])}
    return requests.get(server.url + "/metrics", headers=h, timeout=30 * SLOW)


def assert_denied(r, code):
    assert r.status_code == code, r.text
    assert r.headers["WWW-Authenticate"] == 'Basic realm="zinc-test"'
    assert r.json() == {"errors": [AUTHN if code == 401 else DENIED]}


def test_no_auth_is_open(zinc_factory):
    z = zinc_factory(ENABLED)
    assert requests.get(z.url + "/metrics", headers={"Authorization": basic("who", "ever")}).status_code == 200


def test_auth_without_access_control_any_user(zinc_factory, htpasswd):
    z = auth_server(zinc_factory, htpasswd)
    r = get_as(z)
    assert r.status_code == 401 and r.json() == AUTHN  # authentication 401: single object
    assert get_as(z, "alice").status_code == 200
    assert get_as(z, "metrics").status_code == 200
    assert get_as(z, "alice", "wrong").status_code == 401


ACL = {
    "metrics": {"users": ["metrics"], "anonymousPolicy": ["read"]},
    "repositories": {"**": {"anonymousPolicy": ["read"], "defaultPolicy": ["read", "create"]}},
    "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]},
}


def test_access_control_metrics_users_and_anonymous(zinc_factory, htpasswd):
    z = auth_server(zinc_factory, htpasswd, ACL)
    assert get_as(z).status_code == 200
    assert get_as(z, "metrics").status_code == 200
    assert_denied(get_as(z, "alice"), 403)
    assert_denied(get_as(z, "admin"), 403)  # admins get nothing extra
    assert get_as(z, "metrics", "wrong").status_code == 401  # never falls back to anonymous


def test_access_control_metrics_empty_users_is_nobody(zinc_factory, htpasswd):
    acl = dict(ACL, metrics={"users": []})
    z = auth_server(zinc_factory, htpasswd, acl)
    assert_denied(get_as(z), 401)
    assert_denied(get_as(z, "metrics"), 403)
    assert_denied(get_as(z, "admin"), 403)
    acl = dict(ACL)
    acl.pop("metrics")
    z2 = auth_server(zinc_factory, htpasswd, acl)
    assert_denied(get_as(z2), 401)
    assert_denied(get_as(z2, "alice"), 403)
