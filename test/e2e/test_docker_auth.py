"""Classic Docker against zinc with anonymous and authenticated policies side by side
(docs/zot.md §2, zinc point 2).

Docker pings /v2/ without credentials and keeps a challenge only from a 401; after a 200
it never sends credentials. So with htpasswd and an anonymousPolicy, zinc answers an
anonymous ping from a Docker User-Agent with 401 + `Bearer realm=".../v2/_zinc/token"`;
Docker gets a short-lived token there (with Basic credentials when logged in) and sends it
as `Authorization: Bearer`. Other clients keep the 200 ping with the Basic challenge.

The Docker test runs the locally built zinc on loopback (no image build) and a private
dockerd (docker_fixture.py); the rest drives the token endpoint with plain HTTP.
"""
import base64
import datetime
import http.client
import io
import json
import os
import tarfile
import time

import pytest
import requests

from conftest import SLOW
from docker_fixture import DockerError, bare_dockerd  # noqa: F401
from test_auth import AUTHN, DENIED, PASSWORDS, REALM, assert_authn_401, auth_config, basic, htpasswd  # noqa: F401

TOKEN_PATH = "/v2/_zinc/token"
# What Debian's dockerd 20.10 sends (docker/docker dockerversion.DockerUserAgent)
DOCKER_UA = ("docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0 os/linux arch/amd64 "
             "UpstreamClient(Docker-Client/20.10.24+dfsg1 \\(linux\\))")
OTHER_UAS = ["curl/7.88.1", "containers/5.24.1 (github.com/containers/image)", "skopeo/1.9.3",
             "libpod/4.3.1", "containerd/1.6.20+unknown", "python-requests/2.28.1"]
ALL = ["read", "create", "update", "delete"]
MIXED = {
    "repositories": {
        "public/**": {"anonymousPolicy": ["read"], "policies": [{"users": ["alice"], "actions": ALL}]},
        "private/**": {"policies": [{"users": ["alice"], "actions": ALL}]},
    },
}


@pytest.fixture
def mixed(zinc_factory, htpasswd):
    return zinc_factory(auth_config(htpasswd, MIXED))


def get(server, path, headers=None, auth=None, method="GET"):
    return requests.request(method, server.url + path, headers=headers or {}, auth=auth, timeout=30 * SLOW)


def token(server, auth=None, query="?service=x&scope=repository:public/app:pull"):
    r = get(server, TOKEN_PATH + query, auth=auth)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


# ---- the ping ---------------------------------------------------------------------------------


def test_docker_ping_gets_bearer_challenge(mixed):
    for method in ("GET", "HEAD"):
        r = get(mixed, "/v2/", {"User-Agent": DOCKER_UA}, method=method)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="http://%s%s",service="%s"' % (
            mixed.hostport, TOKEN_PATH, mixed.hostport)
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        if method == "GET":
            assert r.json() == AUTHN
    # with credentials (Basic or a token) Docker's ping is an ordinary 200
    for h in ({"Authorization": basic("alice", PASSWORDS["alice"])}, bearer(token(mixed)),
              bearer(token(mixed, ("alice", PASSWORDS["alice"])))):
        r = get(mixed, "/v2/", dict(h, **{"User-Agent": DOCKER_UA}))
        assert r.status_code == 200 and r.headers["WWW-Authenticate"] == "basic realm=" + REALM


def test_other_clients_keep_the_200_ping(mixed):
    for ua in OTHER_UAS:
        r = get(mixed, "/v2/", {"User-Agent": ua})
        assert r.status_code == 200, ua
        assert r.headers["WWW-Authenticate"] == "basic realm=" + REALM


def test_ping_unchanged_without_mixed_policies(zinc_factory, htpasswd):
    # auth without any anonymousPolicy: the Basic 401 Docker already handles
    z = zinc_factory(auth_config(htpasswd, {"repositories": {"**": {"defaultPolicy": ["read"]}}}))
    assert_authn_401(get(z, "/v2/", {"User-Agent": DOCKER_UA}))
    assert_authn_401(get(z, TOKEN_PATH))  # no anonymous tokens either
    tok = token(z, ("bob", PASSWORDS["bob"]))
    assert get(z, "/v2/", bearer(tok)).status_code == 200
    # no auth at all: open, and no token endpoint
    z = zinc_factory()
    assert get(z, "/v2/", {"User-Agent": DOCKER_UA}).status_code == 200
    assert get(z, TOKEN_PATH).status_code == 404


def test_external_url_and_hostile_host(zinc_factory, htpasswd):
    cfg = auth_config(htpasswd, MIXED)
    cfg["http"]["externalUrl"] = "https://registry.example.com:8443/"
    z = zinc_factory(cfg)
    r = get(z, "/v2/", {"User-Agent": DOCKER_UA})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == ('Bearer realm="https://registry.example.com:8443/v2/_zinc/token",'
                                            'service="registry.example.com:8443"')
    z = zinc_factory(auth_config(htpasswd, MIXED))
    # a Host that cannot be quoted safely is never echoed: the ordinary 200 ping instead
    for host in ('evil"x', "a b", "h\\o"):
        conn = http.client.HTTPConnection("127.0.0.1", z.port, timeout=30 * SLOW)
        conn.putrequest("GET", "/v2/", skip_host=True)
        conn.putheader("Host", host)
        conn.putheader("User-Agent", DOCKER_UA)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status in (200, 400), host
        assert "Bearer" not in (resp.getheader("WWW-Authenticate") or "")


# ---- the token endpoint -----------------------------------------------------------------------


def test_token_endpoint_answers(mixed):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    r = get(mixed, TOKEN_PATH + "?account=alice&client_id=docker&offline_token=true&service=%s"
            "&scope=repository:private/app:pull,push&scope=repository:public/app:pull" % mixed.hostport,
            auth=("alice", PASSWORDS["alice"]))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    issued = datetime.datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=2) <= issued <= before + datetime.timedelta(seconds=5)
    assert get(mixed, TOKEN_PATH, method="POST").status_code == 405
    # wrong credentials never become an anonymous token
    assert_authn_401(get(mixed, TOKEN_PATH, auth=("alice", "wrong")))
    assert_authn_401(get(mixed, TOKEN_PATH, auth=("nobody", "x")))


def test_token_acts_as_its_identity(mixed):
    alice, anon = token(mixed, ("alice", PASSWORDS["alice"])), token(mixed)
    assert alice != anon
    # alice may read and write private/*, anonymous may not (401 with the Basic challenge)
    r = get(mixed, "/v2/private/app/tags/list", bearer(alice))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    r = get(mixed, "/v2/private/app/tags/list", bearer(anon))
    assert r.status_code == 401 and r.json() == {"errors": [AUTHN]}
    assert r.headers["WWW-Authenticate"] == 'Basic realm="%s"' % REALM
    r = requests.post(mixed.url + "/v2/private/app/blobs/uploads/", headers=bearer(alice), timeout=30 * SLOW)
    assert r.status_code == 202
    assert requests.post(mixed.url + "/v2/public/app/blobs/uploads/", headers=bearer(anon)).status_code == 401
    # bob's token: a user, so a refusal is 403 (he has no policy on private/**)
    bob = token(mixed, ("bob", PASSWORDS["bob"]))
    r = get(mixed, "/v2/private/app/tags/list", bearer(bob))
    assert r.status_code == 403 and r.json() == {"errors": [DENIED]}
    # the access log names the token's user; no token ever reaches the log
    assert any(json.loads(l).get("user") == "alice" for l in mixed.log().splitlines() if l.startswith("{"))
    assert alice not in mixed.log() and anon not in mixed.log() and "zn1." not in mixed.log()


def test_bad_tokens_are_401_never_500(mixed):
    good = token(mixed, ("alice", PASSWORDS["alice"]))
    flipped = good[:-1] + ("0" if good[-1] != "0" else "1")
    longer = good.replace(".", ".9", 2)  # a longer expiry under the old MAC
    bad = ["Bearer", "Bearer ", "Bearer x", "Bearer " + flipped, "Bearer " + longer, "Bearer " + good + "00",
           "Bearer " + "a" * 5000, "Bearer zn1.1.2.-." + "0" * 64, "Bearer " + good.replace("zn1", "zn2"),
           "bearer\t" + good, "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."]
    for value in bad:
        r = get(mixed, "/v2/private/app/tags/list", {"Authorization": value})
        assert r.status_code == 401, value[:60]
        assert r.json() == AUTHN
    # non-ASCII bytes in the header
    conn = http.client.HTTPConnection("127.0.0.1", mixed.port, timeout=30 * SLOW)
    conn.putrequest("GET", "/v2/")
    conn.putheader("Authorization", b"Bearer zn1.\xff\xfe.\x80")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 401 and json.loads(resp.read()) == AUTHN
    conn.close()
    assert get(mixed, "/v2/private/app/tags/list", bearer(good)).status_code == 404  # still serving


def test_tokens_die_with_the_process(mixed):
    tok = token(mixed, ("alice", PASSWORDS["alice"]))
    assert get(mixed, "/v2/", bearer(tok)).status_code == 200
    mixed.restart()
    assert_authn_401(get(mixed, "/v2/", bearer(tok)))
    assert get(mixed, "/v2/", bearer(token(mixed, ("alice", PASSWORDS["alice"])))).status_code == 200


# ---- real Docker ------------------------------------------------------------------------------


def import_tiny_image(d, ref, tmp_path):
    """`docker import` of a one-file tar: a one-layer image in well under a second."""
    path = str(tmp_path / "tiny.tar")
    data = os.urandom(20000)
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("hello.bin")
        info.size, info.mtime = len(data), int(time.time())
        tf.addfile(info, io.BytesIO(data))
    d.docker("import", path, ref)
    return d.inspect(ref)["Id"]


def test_docker_mixed_policies(bare_dockerd, zinc_factory, htpasswd, tmp_path):  # noqa: F811
    dockerd = bare_dockerd  # the image is one imported tar: no base image needed
    z = zinc_factory(auth_config(htpasswd, MIXED))
    pub, priv = "%s/public/app:v1" % z.hostport, "%s/private/app:v1" % z.hostport
    image_id = import_tiny_image(dockerd, pub, tmp_path)
    dockerd.docker("tag", pub, priv)
    creds = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")

    def stored():
        try:
            with open(creds) as f:
                return json.load(f).get("auths", {}).get(z.hostport)
        except FileNotFoundError:
            return None

    def login(pw):
        return dockerd.docker("login", z.hostport, "-u", "alice", "--password-stdin", input=pw + "\n", check=False)

    # anonymous: pushing is refused even where reading is allowed
    anon = dockerd.docker("push", pub, check=False)
    assert anon.returncode != 0 and "authentication required" in anon.stderr, anon.stderr
    # a wrong password fails (it used to "succeed" against the 200 ping)
    bad = login("wrong")
    assert bad.returncode != 0 and "unauthorized" in bad.stderr.lower(), bad.stderr
    assert stored() is None
    ok = login(PASSWORDS["alice"])
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    assert stored() is not None
    for ref in (pub, priv):
        dockerd.docker("push", ref)
    dockerd.docker("rmi", pub, priv)
    dockerd.docker("pull", priv)
    assert dockerd.inspect(priv)["Id"] == image_id

    dockerd.docker("logout", z.hostport)
    assert stored() is None
    dockerd.docker("rmi", priv)
    dockerd.docker("pull", pub)  # anonymous read of public/**
    assert dockerd.inspect(pub)["Id"] == image_id
    refused = dockerd.docker("pull", priv, check=False)
    assert refused.returncode != 0 and ("authentication required" in refused.stderr or
                                        "unauthorized" in refused.stderr), refused.stderr
    with pytest.raises(DockerError):
        dockerd.inspect(priv)
    # Docker really went through the token service, as alice while logged in
    log = [json.loads(l) for l in z.log().splitlines() if l.startswith("{")]
    token_users = {e.get("user") for e in log if e.get("path") == TOKEN_PATH and e.get("status") == 200}
    assert token_users == {"alice", None}, token_users
    assert any(e.get("path") == TOKEN_PATH and e.get("status") == 401 for e in log)
    assert "zn1." not in z.log()
