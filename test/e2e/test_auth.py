"""End-to-end tests of authentication and authorization (docs/zot.md §2-3): the /v2/
matrix, exact 401/403 answers, failDelay without blocking, malformed headers, htpasswd
reloads, the credential cache, what the log may not contain, and - where the OCI and
pprof routes are present - the per-repository matrix, catalog filtering and admin-only
pprof."""
import base64
import http.client
import json
import os
import select
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import SLOW

REALM = "zinc-test"
PASSWORDS = {"alice": "alice-Pw1", "bob": "bob-Pw2", "carol": "carol-Pw3"}

AUTHN = {
    "code": "UNAUTHORIZED",
    "message": "authentication required",
    "detail": {
        "description": "The access controller was unable to authenticate the client. Often this will be "
        "accompanied by a WWW-Authenticate HTTP response header indicating how to authenticate."
    },
}
DENIED = {
    "code": "DENIED",
    "message": "requested access to the resource is denied",
    "detail": {"description": "The access controller denied access for the operation on a resource."},
}


def bcrypt_line(user, pw, cost=5):
    """A `user:hash` line as htpasswd -B writes it ($2y$); Python's crypt ($2b$) without it."""
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", "-C", str(cost), user, pw], check=True, capture_output=True, text=True)
        return out.stdout.strip()
    import crypt  # Debian 12's Python still has it

    return "%s:%s" % (user, crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << cost)))


def shacrypt_line(user, pw, alg):
    out = subprocess.run(["openssl", "passwd", "-" + alg, "-stdin"], input=pw, check=True, capture_output=True, text=True)
    return "%s:%s" % (user, out.stdout.strip())


def write_htpasswd(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, path)


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


@pytest.fixture
def htpasswd(tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in PASSWORDS.items()])
    return path


def auth_config(htpasswd, access=None, fail_delay=None, realm=REALM, workers=None):
    http = {"realm": realm, "auth": {"htpasswd": {"path": htpasswd}}}
    if realm is None:
        http.pop("realm")
    if fail_delay is not None:
        http["auth"]["failDelay"] = fail_delay
    if access is not None:
        http["accessControl"] = access
    if workers is not None:
        http["workers"] = workers
    return {"http": http}


ACCESS = {
    "groups": {"devs": {"users": ["carol"]}},
    "repositories": {
        "**": {"defaultPolicy": ["read"]},
        "team/app": {"policies": [{"users": ["bob"], "actions": ["read"]}]},
        "team/**": {"policies": [{"groups": ["devs"], "actions": ["read", "create"]}]},
        "pub/**": {"anonymousPolicy": ["read"], "defaultPolicy": ["read"]},
    },
    "adminPolicy": {"users": ["alice"], "actions": ["read", "create", "update", "delete"]},
}


def get(server, path, user=None, pw=None, headers=None):
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = basic(user, pw if pw is not None else PASSWORDS.get(user, "x"))
    return requests.get(server.url + path, headers=h, timeout=30 * SLOW)


def assert_authn_401(r, realm=REALM):
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == 'Basic realm="%s"' % realm
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == AUTHN  # a single object, not a list (zot)


# ---- /v2/ -------------------------------------------------------------------------------------


def test_v2_without_auth_ignores_credentials(zinc):
    for user, pw in ((None, None), ("alice", "x"), ("nobody", "")):
        r = get(zinc, "/v2/", user, pw)
        assert r.status_code == 200
        assert "WWW-Authenticate" not in r.headers


def test_v2_auth_without_anonymous_policy(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd))
    assert_authn_401(get(z, "/v2/"))
    r = get(z, "/v2/", "alice")
    assert r.status_code == 200
    assert r.headers["WWW-Authenticate"] == "basic realm=" + REALM
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert_authn_401(get(z, "/v2/", "alice", "wrong"))
    assert_authn_401(get(z, "/v2/", "mallory", "alice-Pw1"))
    # empty user and password is no credentials at all (zot): still the same 401
    assert_authn_401(get(z, "/v2/", headers={"Authorization": "Basic Og=="}))
    h = requests.head(z.url + "/v2/", headers={"Authorization": basic("bob", PASSWORDS["bob"])})
    assert h.status_code == 200 and h.content == b""


def test_v2_auth_with_anonymous_policy(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, ACCESS))
    r = get(z, "/v2/")
    assert r.status_code == 200
    assert r.headers["WWW-Authenticate"] == "basic realm=" + REALM
    assert get(z, "/v2/", "bob").status_code == 200
    # wrong credentials never become anonymous
    assert_authn_401(get(z, "/v2/", "bob", "wrong"))


def test_default_realm(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, realm=None))
    assert_authn_401(get(z, "/v2/"), realm="Authorization Required")
    assert get(z, "/v2/", "alice").headers["WWW-Authenticate"] == "basic realm="


# ---- hostile headers --------------------------------------------------------------------------


def raw_request(server, headers):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30 * SLOW)
    conn.putrequest("GET", "/v2/")
    for k, v in headers:
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_malformed_authorization_is_401(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, ACCESS))
    bad = [
        "Basic",
        "Basic ",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic " + base64.b64encode(b"alice:alice-Pw1").decode().rstrip("=") + "=",  # bad padding
        "Basic " + base64.b64encode(b"al\x00ice:alice-Pw1").decode(),
        "Basic " + base64.b64encode(b"alice:alice-Pw1\x00").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode(),
        "Basic " + base64.b64encode(b"u" * 300 + b":pw").decode(),
        "Basic " + "A" * 5000,  # over 4 KiB
        "Basic " + base64.b64encode(b"alice:" + b"p" * 3500).decode(),
        "Bearer abc.def.ghi",
        "Digest username=\"alice\"",
        "basic\t" + base64.b64encode(b"alice:nope").decode(),
    ]
    for value in bad:
        status, body = raw_request(z, [("Authorization", value)])
        assert status == 401, (value[:40], status, body[:200])
        assert json.loads(body) == AUTHN
    # control bytes: h2o refuses the request before zinc sees it
    status, _ = raw_request(z, [("Authorization", "\x01\x02")])
    assert status == 400
    # two Authorization headers, even if both are valid
    good = basic("alice", PASSWORDS["alice"])
    status, _ = raw_request(z, [("Authorization", good), ("Authorization", good)])
    assert status == 401
    assert get(z, "/v2/", "alice").status_code == 200  # still serving


# ---- failDelay --------------------------------------------------------------------------------


def test_fail_delay_without_blocking_the_worker(zinc_factory, htpasswd):
    delay = 3
    z = zinc_factory(auth_config(htpasswd, fail_delay=delay, workers=1))
    get(z, "/v2/", "alice")  # warm the cache
    # bob's wrong password is sent (and so queued at the kernel) before alice connects; the
    # only worker then holds bob's refusal on a timer for `delay` s. Alice must be answered
    # meanwhile, and so must a request with no credentials at all (zot delays only wrong
    # ones): both before bob's refusal, not after it (ordering, not a time bound).
    bob = http.client.HTTPConnection("127.0.0.1", z.port, timeout=30 * SLOW)
    t1 = time.time()
    bob.request("GET", "/v2/", headers={"Authorization": basic("bob", "wrong")})
    assert get(z, "/v2/", "alice").status_code == 200
    assert_authn_401(get(z, "/v2/"))
    assert not select.select([bob.sock], [], [], 0)[0], "answered only after bob's refusal"
    r = bob.getresponse()
    took = time.time() - t1
    assert r.status == 401 and r.getheader("WWW-Authenticate") == 'Basic realm="%s"' % REALM
    assert json.loads(r.read()) == AUTHN
    assert took >= delay - 0.1
    bob.close()


def v2_answers(z):
    """The access-log lines of GET /v2/ requests so far."""
    return [l for l in z.log_lines() if l.get("message") == "request" and l.get("path") == "/v2/"]


def test_client_gone_during_fail_delay(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, fail_delay=1))
    for _ in range(5):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(z.url + "/v2/", headers={"Authorization": basic("bob", "nope")}, timeout=0.2)
    # each delayed 401 is answered (and logged) for a client that has left
    assert wait_for(lambda: len(v2_answers(z)) >= 5, timeout=30), z.log()[-3000:]
    assert all(l["status"] == 401 for l in v2_answers(z))
    assert get(z, "/v2/", "bob").status_code == 200
    assert z.proc.poll() is None


# ---- htpasswd: schemes, bad lines, reloads, cache -------------------------------------------------


def wait_for(fn, timeout=5):
    deadline = time.time() + timeout * SLOW
    while True:
        if fn():
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.1)


def test_hash_schemes_and_bad_lines(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(
        path,
        [
            bcrypt_line("y2", "pw-y2"),
            "no colon on this line",
            shacrypt_line("s5", "pw-s5", "5"),
            "md5:$apr1$abcdefgh$0123456789012345678901",
            shacrypt_line("s6", "pw-s6", "6"),
        ],
    )
    z = zinc_factory(auth_config(path))
    for user in ("y2", "s5", "s6"):
        assert get(z, "/v2/", user, "pw-" + user).status_code == 200, user
        assert get(z, "/v2/", user, "pw-x").status_code == 401, user
    assert get(z, "/v2/", "md5", "x").status_code == 401
    warns = [l for l in z.log_lines() if l.get("message") == "htpasswd line ignored"]
    assert sorted(l["line"] for l in warns) == [2, 4]
    assert all(l["file"] == path for l in warns)


def test_reload_adds_removes_and_changes_users(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line("alice", "one"), bcrypt_line("bob", "bob")])
    z = zinc_factory(auth_config(path))
    assert get(z, "/v2/", "alice", "one").status_code == 200
    assert get(z, "/v2/", "bob", "bob").status_code == 200
    assert get(z, "/v2/", "dave", "dave").status_code == 401
    write_htpasswd(path, [bcrypt_line("alice", "two"), bcrypt_line("dave", "dave")])
    assert wait_for(lambda: get(z, "/v2/", "dave", "dave").status_code == 200)
    # bob is gone and alice's old password (cached a moment ago) no longer works
    assert get(z, "/v2/", "bob", "bob").status_code == 401
    assert get(z, "/v2/", "alice", "one").status_code == 401
    assert get(z, "/v2/", "alice", "two").status_code == 200
    assert any(l.get("message") == "htpasswd reloaded" for l in z.log_lines())


def password_checks(z, auth):
    """zinc_auth_password_checks_total by result, scraped with `auth` (itself one check)."""
    r = requests.get(z.url + "/metrics", headers={"Authorization": auth}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    out = {}
    for line in r.text.splitlines():
        if line.startswith("zinc_auth_password_checks_total{"):
            out[line.split('result="', 1)[1].split('"', 1)[0]] = int(float(line.rsplit(" ", 1)[1]))
    assert set(out) == {"cached", "verified", "refused"}, r.text
    return out


def test_cache_spares_bcrypt(zinc_factory, tmp_path):
    """A correct password is hashed (bcrypt, cost 12) once, then answered from the cache; a
    wrong one is hashed every time, never cached. Counted by zinc itself (the scrapes are
    made by the same user, so each is one more cache hit), not guessed from timings."""
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line("slow", "pw", cost=12)])
    cfg = auth_config(path)
    cfg["extensions"] = {"metrics": {"enable": True}}
    z = zinc_factory(cfg)
    s = requests.Session()
    h = {"Authorization": basic("slow", "pw")}
    assert s.get(z.url + "/v2/", headers=h).status_code == 200
    c0 = password_checks(z, h["Authorization"])
    assert c0 == {"cached": 1, "verified": 1, "refused": 0}, c0  # the /v2/ hashed, the scrape hit
    for _ in range(20):
        assert s.get(z.url + "/v2/", headers=h).status_code == 200
    c1 = password_checks(z, h["Authorization"])
    assert c1 == {"cached": c0["cached"] + 21, "verified": 1, "refused": 0}, (c0, c1)
    for _ in range(3):
        assert s.get(z.url + "/v2/", headers={"Authorization": basic("slow", "nope")}).status_code == 401
    assert s.get(z.url + "/v2/", headers={"Authorization": basic("nobody", "pw")}).status_code == 401
    c2 = password_checks(z, h["Authorization"])
    assert c2 == {"cached": c1["cached"] + 1, "verified": 1, "refused": 4}, (c1, c2)


def test_client_gone_during_verification(zinc_factory, tmp_path):
    """Requests whose client leaves while bcrypt runs on the verification pool: the answer
    arrives for a request that no longer exists and must be dropped quietly."""
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line("slow", "pw", cost=12)])
    z = zinc_factory(auth_config(path))
    for pw in ("pw", "nope", "pw2", "nope2"):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(z.url + "/v2/", headers={"Authorization": basic("slow", pw)}, timeout=0.05)
    # every verification ends and its answer is logged, for a client that has left
    assert wait_for(lambda: len(v2_answers(z)) >= 4, timeout=60), z.log()[-3000:]
    assert sorted(l["status"] for l in v2_answers(z)) == [200, 401, 401, 401]
    assert get(z, "/v2/", "slow", "pw").status_code == 200
    assert z.proc.poll() is None


def test_parallel_clients(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, ACCESS))
    errors = []

    def client(user):
        s = requests.Session()
        for i in range(25):
            pw = PASSWORDS[user] if i % 5 else "wrong"
            r = s.get(z.url + "/v2/", headers={"Authorization": basic(user, pw)})
            if r.status_code != (200 if i % 5 else 401):
                errors.append((user, i, r.status_code))

    threads = [threading.Thread(target=client, args=(u,)) for u in list(PASSWORDS) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_no_secrets_in_log(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    line = bcrypt_line("alice", "Sup3r-Secret-Pw")
    write_htpasswd(path, [line, "broken"])
    z = zinc_factory(dict(auth_config(path, ACCESS, fail_delay=0), log={"level": "debug"}))
    get(z, "/v2/", "alice", "Sup3r-Secret-Pw")
    get(z, "/v2/", "alice", "Wr0ng-Secret-Pw")
    get(z, "/v2/_catalog", "alice", "Sup3r-Secret-Pw")
    raw_request(z, [("Authorization", "Basic " + base64.b64encode(b"Secret-User:Other-Secret").decode())])
    write_htpasswd(path, [line])
    wait_for(lambda: any(l.get("message") == "htpasswd reloaded" for l in z.log_lines()))
    z.stop()
    log = z.log()
    for secret in ("Sup3r-Secret-Pw", "Wr0ng-Secret-Pw", "Other-Secret", line.split(":", 1)[1], "Basic ",
                   base64.b64encode(b"alice:Sup3r-Secret-Pw").decode()):
        assert secret not in log, secret
    assert '"user":"alice"' in log  # the access log still says who


# ---- repository routes (need the OCI API), catalog, pprof ------------------------------------------


def need_route(server, path, user="alice"):
    r = get(server, path, user)
    if r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND":
        pytest.skip("route %s not in this build" % path)


@pytest.fixture
def acl_zinc(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, ACCESS))
    need_route(z, "/v2/x/tags/list")
    return z


def allowed(r):
    """Past authorization: the handler answered (a missing repository is NAME_UNKNOWN)."""
    return r.status_code not in (401, 403)


def test_repository_matrix(acl_zinc):
    z = acl_zinc
    cases = [
        # user, repository, expected (200/404 = allowed, 401, 403)
        (None, "pub/img", "ok"),
        (None, "team/app", 401),
        (None, "other", 401),
        ("bob", "team/app", "ok"),
        ("bob", "team/app2", 403),  # team/app does not leak to team/app2
        ("bob", "team/app/sub", 403),
        ("bob", "pub/img", "ok"),
        ("bob", "other", "ok"),  # "**" defaultPolicy
        ("carol", "team/app2", "ok"),  # devs group on team/**
        ("carol", "team", "ok"),  # team/** also matches team
        ("carol", "team/app", 403),  # the longer pattern decides alone
        ("alice", "team/app", "ok"),  # adminPolicy
        ("alice", "anything/at/all", "ok"),
    ]
    for user, repo, want in cases:
        r = get(z, "/v2/%s/tags/list" % repo, user)
        if want == "ok":
            assert allowed(r), (user, repo, r.status_code, r.text)
        else:
            assert r.status_code == want, (user, repo, r.status_code, r.text)
            assert r.headers["WWW-Authenticate"] == 'Basic realm="%s"' % REALM
            assert r.json() == {"errors": [AUTHN if want == 401 else DENIED]}


def test_actions_per_route(acl_zinc):
    z = acl_zinc
    hdr = lambda u: {"Authorization": basic(u, PASSWORDS[u])}
    # create: carol on team/**, not bob
    r = requests.post(z.url + "/v2/team/app2/blobs/uploads/", headers=hdr("carol"))
    assert r.status_code == 202, r.text
    assert requests.post(z.url + "/v2/team/app2/blobs/uploads/", headers=hdr("bob")).status_code == 403
    assert requests.post(z.url + "/v2/pub/x/blobs/uploads/").status_code == 401
    # delete: nobody but the admin
    d = requests.delete(z.url + "/v2/team/app2/manifests/sha256:" + "0" * 64, headers=hdr("carol"))
    assert d.status_code == 403
    d = requests.delete(z.url + "/v2/team/app2/manifests/sha256:" + "0" * 64, headers=hdr("alice"))
    assert d.status_code not in (401, 403)


def push_image(server, repo, user):
    """A minimal image (config blob + manifest) pushed with the OCI API."""
    h = {"Authorization": basic(user, PASSWORDS[user])}
    cfg = b"{}"
    import hashlib

    digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    r = requests.post(server.url + "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest), headers=h, data=cfg)
    if r.status_code == 202:
        loc = r.headers["Location"]
        loc = loc if loc.startswith("http") else server.url + loc
        sep = "&" if "?" in loc else "?"
        r = requests.put(loc + sep + "digest=" + digest, headers=h, data=cfg)
    assert r.status_code == 201, r.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(cfg)},
            "layers": [],
        }
    ).encode()
    h2 = dict(h, **{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    r = requests.put(server.url + "/v2/%s/manifests/latest" % repo, headers=h2, data=manifest)
    assert r.status_code == 201, r.text


def test_catalog_filtered(acl_zinc):
    z = acl_zinc
    need_route(z, "/v2/_catalog")
    for repo in ("team/app", "team/app2", "pub/img", "other"):
        push_image(z, repo, "alice")

    def catalog(user):
        r = get(z, "/v2/_catalog", user)
        assert r.status_code == 200, r.text
        return sorted(r.json()["repositories"])

    assert catalog("alice") == ["other", "pub/img", "team/app", "team/app2"]
    assert catalog("bob") == ["other", "pub/img", "team/app"]
    assert catalog("carol") == ["other", "pub/img", "team/app2"]
    assert catalog(None) == ["pub/img"]


def test_pprof_admin_only(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd, ACCESS))
    need_route(z, "/v2/_zot/pprof/")
    r = get(z, "/v2/_zot/pprof/")
    assert r.status_code == 401 and r.json() == {"errors": [AUTHN]}
    r = get(z, "/v2/_zot/pprof/", "bob")
    assert r.status_code == 403 and r.json() == {"errors": [DENIED]}
    assert get(z, "/v2/_zot/pprof/", "alice").status_code == 200
    assert get(z, "/v2/_zot/pprof/goroutine?debug=1", "bob").status_code == 403
    assert get(z, "/v2/_zot/pprof/goroutine?debug=1", "alice").status_code == 200


def test_pprof_no_access_control_every_user_is_admin(zinc_factory, htpasswd):
    z = zinc_factory(auth_config(htpasswd))
    need_route(z, "/v2/_zot/pprof/")
    assert get(z, "/v2/_zot/pprof/").status_code == 401
    assert get(z, "/v2/_zot/pprof/", "bob").status_code == 200


def test_pprof_open_without_auth(zinc):
    need_route(zinc, "/v2/_zot/pprof/", user=None)
    assert get(zinc, "/v2/_zot/pprof/").status_code == 200
