"""zot's cluster mode: three zinc members on loopback with the same cluster config and
nothing shared (each its own storage root). A repository belongs to the member at
siphash24(hashKey, name) % 3 (computed here independently in Python); pushing through one
member and pulling through another works for monolithic and chunked uploads, each
repository's data exists only under its owner's root, a stopped member makes its own
repositories answer a clean 502 OCI error while the others keep serving, the hop header
stops loops, and htpasswd authentication works across the proxy."""
import hashlib
import json
import os
import shutil
import struct
import subprocess

import pytest
import requests

from conftest import SLOW, ZINC_BIN
from images_build import build_oci_layout
from oci_util import OCI_MANIFEST, Registry, canon, digest, error_code
from test_auth import PASSWORDS, bcrypt_line, write_htpasswd
from test_skopeo import skopeo
from test_tls import pki  # noqa: F401 (fixture)

HASH_KEY = "loremipsumdolors"
HOP = "X-Zot-Cluster-Hop-Count"
MASK = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def _round(v):
    v[0] = (v[0] + v[1]) & MASK; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)
    v[2] = (v[2] + v[3]) & MASK; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
    v[0] = (v[0] + v[3]) & MASK; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
    v[2] = (v[2] + v[1]) & MASK; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)


def siphash24(key, msg):
    """SipHash-2-4 as github.com/dchest/siphash computes it (k0, k1 = the key's halves, LE)."""
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]
    tail = len(msg) - len(msg) % 8
    blocks = [struct.unpack("<Q", msg[i:i + 8])[0] for i in range(0, tail, 8)]
    blocks.append(int.from_bytes(msg[tail:], "little") | ((len(msg) & 0xff) << 56))
    for m in blocks:
        v[3] ^= m
        _round(v)
        _round(v)
        v[0] ^= m
    v[2] ^= 0xff
    for _ in range(4):
        _round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def owner(name, n=3):
    return siphash24(HASH_KEY.encode(), name.encode()) % n


def test_python_siphash_is_the_reference():
    # the SipHash paper's Appendix A example: key 00..0f, message 00..0e
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xa129ca6149be45e5
    assert siphash24(bytes(range(16)), b"") == 0x726fdb47dd0e0e31


def repos_per_owner(count=2, prefix="repo"):
    """Names such that every member owns `count` of them: {member index: [names]}."""
    out = {0: [], 1: [], 2: []}
    i = 0
    while min(len(v) for v in out.values()) < count:
        name = "%s/%d" % (prefix, i)
        if len(out[owner(name)]) < count:
            out[owner(name)].append(name)
        i += 1
    return out


def start_cluster(zinc_factory, overrides=None, members=None):
    servers = [zinc_factory(overrides, start=False) for _ in range(3)]
    for s in servers:
        s.config["cluster"] = {"members": members or [x.hostport for x in servers], "hashKey": HASH_KEY}
        s.write_config()
    for s in servers:
        s.start()
    return servers


def repo_in(server, repo):
    return os.path.exists(os.path.join(server.root, repo, "index.json"))


def blob_file(server, repo, d):
    return os.path.join(server.root, repo, "blobs", "sha256", d.split(":", 1)[1])


def pull(reg, repo, tag, body, blobs):
    r = reg.get("/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    assert r.content == body
    assert r.headers["Docker-Content-Digest"] == digest(body)
    r = reg.s.head("%s/v2/%s/manifests/%s" % (reg.url, repo, tag), headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(body) and r.headers["Docker-Content-Digest"] == digest(body)
    for data in blobs:
        r = reg.get("/v2/%s/blobs/%s" % (repo, digest(data)))
        assert r.status_code == 200, r.text
        assert r.content == data


def test_push_through_one_member_pull_through_another(zinc_factory):
    servers = start_cluster(zinc_factory)
    regs = [Registry(s.url) for s in servers]
    pushed = []
    for own, names in repos_per_owner().items():
        for k, repo in enumerate(names):
            via = (own + 1 + k) % 3  # never the owner
            layer = os.urandom(300_000) + repo.encode()
            big = os.urandom(3 << 20)
            body, _ = regs[via].push_image(repo, "v1", [layer])
            # a chunked upload through a member that is not the owner (several PATCH hops)
            chunked_via = (own + 2) % 3
            d = regs[chunked_via].push_blob_chunked(repo, big, chunk=1 << 20)
            assert d == digest(big)
            pushed.append((own, via, repo, body, [layer, big]))
    for own, via, repo, body, blobs in pushed:
        pull(regs[(via + 1) % 3], repo, "v1", body, blobs)
        # the data lives only at the owner
        for i, s in enumerate(servers):
            assert repo_in(s, repo) == (i == own), (repo, i, own)
            assert os.path.exists(blob_file(s, repo, digest(blobs[1]))) == (i == own)
        r = regs[via].get("/v2/%s/tags/list" % repo)
        assert r.status_code == 200 and r.json() == {"name": repo, "tags": ["v1"]}
    # the owner served every repository request: its access log has them, the others proxied
    for own, via, repo, _, _ in pushed:
        served = [e for e in servers[own].log_lines() if e.get("message") == "request"
                  and e.get("path", "").startswith("/v2/%s/manifests/" % repo)]
        assert served, repo


def test_member_down_is_a_clean_502_and_others_keep_serving(zinc_factory):
    servers = start_cluster(zinc_factory)
    regs = [Registry(s.url) for s in servers]
    names = repos_per_owner(count=1, prefix="down")
    bodies = {}
    for own, (repo,) in names.items():
        bodies[repo], _ = regs[(own + 1) % 3].push_image(repo, "t", [os.urandom(1000)])
    servers[2].stop()
    dead = names[2][0]
    for via in (0, 1):
        for verb in ("GET", "HEAD"):
            r = regs[via].s.request(verb, "%s/v2/%s/manifests/t" % (servers[via].url, dead), timeout=30 * SLOW)
            assert r.status_code == 502
            assert r.headers["Content-Type"] == "application/json"
            assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
            if verb == "GET":
                assert error_code(r) == "UNAVAILABLE"
                assert servers[2].hostport in r.json()["errors"][0]["detail"]
        r = regs[via].s.post("%s/v2/%s/blobs/uploads/" % (servers[via].url, dead), data=b"x" * 10)
        assert r.status_code == 502 and error_code(r) == "UNAVAILABLE"
        for own in (0, 1):
            repo = names[own][0]
            r = regs[via].get("/v2/%s/manifests/t" % repo, headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 200 and r.content == bodies[repo]
    assert any(e.get("message") == "cluster: proxying to the owner failed" for e in servers[0].log_lines() +
               servers[1].log_lines())
    # back up: its repositories are served again, with their data intact
    servers[2].start()
    r = regs[0].get("/v2/%s/manifests/t" % dead, headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200 and r.content == bodies[dead]


def test_hop_header_stops_loops(zinc_factory):
    servers = start_cluster(zinc_factory)
    names = repos_per_owner(count=1, prefix="hop")
    # a request already proxied once that reaches a non-owner: 508, never forwarded again
    r = requests.get("%s/v2/%s/tags/list" % (servers[0].url, names[1][0]), headers={HOP: "1"})
    assert r.status_code == 508
    assert r.json()["errors"][0]["code"] == "UNKNOWN"
    assert not any(e.get("path", "").startswith("/v2/" + names[1][0]) for e in servers[1].log_lines())
    assert any("does not own its repository" in e.get("message", "") for e in servers[0].log_lines())
    # at the owner the header is what a proxied request carries: served locally
    r = requests.get("%s/v2/%s/tags/list" % (servers[0].url, names[0][0]), headers={HOP: "1"})
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_members_disagreeing_get_508_not_a_loop(zinc_factory):
    """Member 1 lists the members in another order: what it proxies lands on a non-owner."""
    servers = [zinc_factory(start=False) for _ in range(3)]
    members = [s.hostport for s in servers]
    for i, s in enumerate(servers):
        order = members if i != 1 else [members[0], members[2], members[1]]
        s.config["cluster"] = {"members": order, "hashKey": HASH_KEY}
        s.write_config()
        s.start()
    # owner index 1: member 1 takes it for members[2] (and itself for index 2) and forwards
    # there; member 2 says index 1 is member 1, sees the hop header and answers 508
    repo = next("loop/%d" % i for i in range(1000) if owner("loop/%d" % i) == 1)
    r = requests.get("%s/v2/%s/tags/list" % (servers[1].url, repo))
    assert r.status_code == 508


def test_auth_across_the_proxy(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in PASSWORDS.items()])
    user, pw = next(iter(PASSWORDS.items()))
    servers = start_cluster(zinc_factory, {"http": {"realm": "zinc", "auth": {"htpasswd": {"path": path}}}})
    names = repos_per_owner(count=1, prefix="auth")
    for own, (repo,) in names.items():
        via = (own + 1) % 3
        anon = requests.post("%s/v2/%s/blobs/uploads/" % (servers[via].url, repo))
        assert anon.status_code == 401
        assert anon.headers["WWW-Authenticate"] == 'Basic realm="zinc"'
        wrong = requests.post("%s/v2/%s/blobs/uploads/" % (servers[via].url, repo), auth=(user, pw + "x"))
        assert wrong.status_code == 401
        reg = Registry(servers[via].url)
        reg.s.auth = (user, pw)
        body, _ = reg.push_image(repo, "a", [os.urandom(5000)])
        other = Registry(servers[(own + 2) % 3].url)
        other.s.auth = (user, pw)
        r = other.get("/v2/%s/manifests/a" % repo, headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == body
        assert requests.get("%s/v2/%s/manifests/a" % (servers[(own + 2) % 3].url, repo)).status_code == 401
        assert repo_in(servers[own], repo) and not repo_in(servers[via], repo)
    # the catalog gathered from every member carries the caller's credentials
    every = sorted(r for v in names.values() for r in v)
    for s in servers:
        assert requests.get(s.url + "/v2/_catalog", auth=(user, pw)).json() == {"repositories": every}
        assert requests.get(s.url + "/v2/_catalog").status_code == 401


def test_not_a_member_refuses_to_start(zinc_factory):
    s = zinc_factory(start=False)
    s.config["cluster"] = {"members": ["127.0.0.1:1", "127.0.0.1:2"], "hashKey": HASH_KEY}
    s.write_config()
    p = subprocess.run([ZINC_BIN, "serve", s.config_path], capture_output=True, text=True, timeout=30 * SLOW)
    assert p.returncode != 0
    assert "cluster.members: failed to determine the local cluster socket" in p.stdout + p.stderr


def test_members_talk_https_and_verify_each_other(zinc_factory, pki):
    """With http.tls, members reach each other over https and check the owner's certificate
    against cluster.tls.cacert: the right CA works, a wrong one fails cleanly with 502."""
    servers = start_cluster(zinc_factory, {"http": {"tls": {"cert": pki["server"][0], "key": pki["server"][1]}}})
    names = repos_per_owner(count=1, prefix="tls")
    ca = pki["ca"][0]
    for s in servers:
        s.stop()
        s.config["cluster"]["tls"] = {"cacert": ca}
        s.write_config()
        s.start()
    for own, (repo,) in names.items():
        via = (own + 1) % 3
        reg = Registry(servers[via].url)
        reg.s.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
        reg.s.verify = ca
        body, _ = reg.push_image(repo, "s", [os.urandom(70_000)])
        other = Registry(servers[(own + 2) % 3].url)
        other.s.trust_env = False
        other.s.verify = ca
        pull(other, repo, "s", body, [])
        assert repo_in(servers[own], repo) and not repo_in(servers[via], repo)
    # member 0 no longer trusts the others' certificates
    servers[0].stop()
    servers[0].config["cluster"]["tls"] = {"cacert": os.path.join(pki["dir"], "other-ca.pem")}
    servers[0].write_config()
    servers[0].start()
    r = requests.get("%s/v2/%s/tags/list" % (servers[0].url, names[1][0]), verify=ca)
    assert r.status_code == 502 and error_code(r) == "UNAVAILABLE"
    r = requests.get("%s/v2/%s/tags/list" % (servers[0].url, names[0][0]), verify=ca)
    assert r.status_code == 200


def test_big_blob_streams_through_a_member(zinc_factory):
    """A blob larger than h2o's in-memory buffers goes up and down through a non-owner."""
    servers = start_cluster(zinc_factory)
    names = repos_per_owner(count=1, prefix="big")
    repo = names[2][0]
    data = os.urandom(24 << 20)
    reg = Registry(servers[0].url)
    d = reg.push_blob(repo, data)
    r = Registry(servers[1].url).s.get("%s/v2/%s/blobs/%s" % (servers[1].url, repo, d), stream=True, timeout=120 * SLOW)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
    h = hashlib.sha256()
    for part in r.iter_content(1 << 20):
        h.update(part)
    assert "sha256:" + h.hexdigest() == d
    assert os.path.getsize(blob_file(servers[2], repo, d)) == len(data)
    assert not repo_in(servers[0], repo) and not repo_in(servers[1], repo)
    # a range request is the owner's answer too
    r = requests.get("%s/v2/%s/blobs/%s" % (servers[0].url, repo, d), headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_through_non_owners(zinc_factory, tmp_path):
    """A real client: skopeo pushes through one non-owner, inspects and pulls through the other."""
    servers = start_cluster(zinc_factory)
    layers = [{"etc/a.txt": b"alpha\n" * 1000}, {"var/data.bin": os.urandom(2 << 20)}]
    for own, (repo,) in repos_per_owner(count=1, prefix="skopeo").items():
        src = str(tmp_path / ("src%d" % own))
        want = build_oci_layout(src, "v1", layers)
        push_via, pull_via = servers[(own + 1) % 3], servers[(own + 2) % 3]
        skopeo("copy", "--dest-tls-verify=false", "oci:%s:v1" % src, "docker://%s/%s:v1" % (push_via.hostport, repo))
        info = json.loads(skopeo("inspect", "--tls-verify=false", "docker://%s/%s:v1" % (pull_via.hostport, repo)))
        assert info["Digest"] == want
        back = str(tmp_path / ("back%d" % own))
        skopeo("copy", "--src-tls-verify=false", "docker://%s/%s:v1" % (pull_via.hostport, repo), "oci:%s:v1" % back)
        assert os.path.exists(os.path.join(back, "index.json"))
        assert repo_in(servers[own], repo) and not repo_in(push_via, repo) and not repo_in(pull_via, repo)


def test_client_and_owner_going_away_mid_stream(zinc_factory):
    """A client dropping a proxied download, and the owner killed while one streams: the
    member in the middle stays up and keeps serving (the fixture also fails the test on
    any sanitizer report)."""
    servers = start_cluster(zinc_factory)
    names = repos_per_owner(count=1, prefix="gone")
    data = os.urandom(16 << 20)
    d = Registry(servers[0].url).push_blob(names[2][0], data)
    Registry(servers[0].url).push_image(names[0][0], "ok", [b"still here"])
    url = "%s/v2/%s/blobs/%s" % (servers[1].url, names[2][0], d)
    for _ in range(3):
        r = requests.get(url, stream=True, timeout=60 * SLOW)
        assert r.status_code == 200
        next(r.iter_content(1 << 16))
        r.close()
    r = requests.get(url, stream=True, timeout=60 * SLOW)
    assert r.status_code == 200
    got = next(r.iter_content(1 << 16))
    servers[2].proc.kill()
    servers[2].proc.wait()
    try:
        for part in r.iter_content(1 << 20):
            got += part
    except requests.RequestException:
        pass
    # either the whole blob had already been relayed or the stream was cut: never wrong bytes
    assert data.startswith(got)
    r.close()
    r = requests.get("%s/v2/%s/manifests/ok" % (servers[1].url, names[0][0]), headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    r = requests.get(url, timeout=60 * SLOW)
    assert r.status_code == 502 and error_code(r) == "UNAVAILABLE"


def walk_catalog(url, n, auth=None):
    """Every page of /v2/_catalog?n= following Link headers; returns the names in order."""
    names, path = [], "/v2/_catalog?n=%d" % n
    for _ in range(100):
        r = requests.get(url + path, auth=auth, timeout=30 * SLOW)
        assert r.status_code == 200, r.text
        page = r.json()["repositories"]
        assert len(page) <= n
        names += page
        if "Link" not in r.headers:
            return names
        path = r.headers["Link"].split(";")[0].strip("<>")
    raise AssertionError("catalog pages never end")


def test_catalog_spans_all_members(zinc_factory):
    """Members share nothing, so each one's catalog gathers the others' (zot answers locally
    from shared storage)."""
    servers = start_cluster(zinc_factory)
    names = repos_per_owner(count=2, prefix="cat")
    every = sorted(r for v in names.values() for r in v)
    reg = Registry(servers[0].url)
    for repo in every:
        reg.push_image(repo, "t", [repo.encode()])
    for s in servers:
        r = requests.get(s.url + "/v2/_catalog")
        assert r.status_code == 200 and r.json() == {"repositories": every}
        for n in (1, 2, 4):
            assert walk_catalog(s.url, n) == every
    # asked by a member (hop header): only what this member owns
    r = requests.get(servers[1].url + "/v2/_catalog", headers={HOP: "1"})
    assert r.json() == {"repositories": sorted(names[1])}
    r = requests.get(servers[1].url + "/v2/_catalog?n=1&last=" + every[0])
    assert r.json() == {"repositories": [every[1]]}
    servers[2].stop()
    r = requests.get(servers[0].url + "/v2/_catalog")
    assert r.status_code == 502 and error_code(r) == "UNAVAILABLE"
    assert servers[2].hostport in r.json()["errors"][0]["detail"]
