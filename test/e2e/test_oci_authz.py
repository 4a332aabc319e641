"""Authorization decisions the OCI handlers take themselves (zot.md §3): moving an existing
tag needs `update` where a new tag (or pushing again what the tag names) needs `create`; a mount reads its source only with
`read` on it (with `from`, and through the dedupe index without it); else a plain session."""
import time

import pytest
import requests

from oci_util import Registry, digest
from test_auth import AUTHN, DENIED, PASSWORDS, auth_config, basic, bcrypt_line, write_htpasswd

ACCESS = {
    "repositories": {
        "team/**": {"policies": [{"users": ["bob"], "actions": ["read", "create"]},
                                 {"users": ["carol"], "actions": ["read", "create", "update"]}]},
        "secret/**": {"policies": [{"users": ["carol"], "actions": ["read", "create"]}]},
    },
}


@pytest.fixture
def acl(zinc_factory, tmp_path):
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in PASSWORDS.items()])
    return zinc_factory(auth_config(path, ACCESS))


def client(z, user):
    reg = Registry(z.url)
    reg.s.headers["Authorization"] = basic(user, PASSWORDS[user])
    return reg


def test_moving_a_tag_needs_update(acl):
    bob, carol = client(acl, "bob"), client(acl, "carol")
    body1, d1 = bob.push_image("team/app", "v1", [b"one"])
    body2, d2 = bob.push_image("team/app", "v2", [b"two"])
    r = bob.put_manifest("team/app", "v1", body2)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    assert bob.get("/v2/team/app/manifests/v1").content == body1  # unchanged
    assert bob.put_manifest("team/app", "v1", body1).status_code == 201  # the same again: the tag does not move
    assert carol.put_manifest("team/app", "v1", body2).status_code == 201
    assert bob.get("/v2/team/app/manifests/v1").content == body2
    anon = requests.put(acl.url + "/v2/team/app/manifests/v1", data=body1,
                        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert anon.status_code == 401


# A realm zot writes with %q: quotes, a tab and non-ASCII text, escaped as Go's strconv.Quote.
ODD_REALM = 'zinc "test"\t\u00e9'
ODD_CHALLENGE = 'Basic realm="zinc \\"test\\"\\t\u00e9"'


def challenge_of(r):
    # requests decodes header bytes as latin-1; the challenge is UTF-8
    return r.headers["WWW-Authenticate"].encode("latin-1").decode("utf-8")


def test_handler_refusal_is_the_servers(zinc_factory, tmp_path):
    """A refusal a handler decides (a tag move without `update`) is the server's own: zot's
    bodies, the Basic challenge quoted as Go quotes it, after failDelay."""
    path = str(tmp_path / "htpasswd")
    write_htpasswd(path, [bcrypt_line(u, p) for u, p in PASSWORDS.items()])
    access = {"repositories": {"open/**": {"anonymousPolicy": ["read", "create"],
                                           "policies": [{"users": ["bob"], "actions": ["read", "create"]}]}}}
    z = zinc_factory(auth_config(path, access, fail_delay=1, realm=ODD_REALM))
    bob, anon = client(z, "bob"), Registry(z.url)
    body1, _ = bob.push_image("open/app", "v1", [b"one"])
    body2, _ = anon.push_image("open/app", "v2", [b"two"])
    for who, status, want in ((bob, 403, {"errors": [DENIED]}), (anon, 401, {"errors": [AUTHN]})):
        t0 = time.monotonic()
        r = who.put_manifest("open/app", "v1", body2)
        elapsed = time.monotonic() - t0
        assert r.status_code == status and r.json() == want
        assert challenge_of(r) == ODD_CHALLENGE
        assert elapsed >= 0.9  # the fail delay (a lower bound: never flaky)
    assert anon.get("/v2/open/app/manifests/v1").content == body1  # unchanged
    r = requests.get(z.url + "/v2/")  # anonymous ping: allowed here, with zot's unquoted challenge
    assert r.status_code == 200 and challenge_of(r) == "basic realm=" + ODD_REALM.replace("\t", "")


def test_tag_parameters_need_update_to_move_a_tag(acl):
    """PUT by digest with ?tag=: each tag is judged as a PUT by that tag would be."""
    bob, carol = client(acl, "bob"), client(acl, "carol")
    body1, d1 = bob.push_image("team/manifests/app", "v1", [b"one"])
    body2, d2 = bob.push_image("team/manifests/app", "v2", [b"two"])
    ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    url = "/v2/team/manifests/app/manifests/%s?tag=new&tag=v1" % d2
    r = bob.s.put(bob.url + url, data=body2, headers=ct)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    assert bob.get("/v2/team/manifests/app/tags/list").json()["tags"] == ["v1", "v2"]  # nothing applied
    r = bob.s.put(bob.url + "/v2/team/manifests/app/manifests/%s?tag=new&tag=v2" % d2, data=body2, headers=ct)
    assert r.status_code == 201 and r.raw.headers.getlist("OCI-Tag") == ["new", "v2"]
    r = carol.s.put(carol.url + url, data=body2, headers=ct)
    assert r.status_code == 201 and r.raw.headers.getlist("OCI-Tag") == ["new", "v1"]
    assert bob.get("/v2/team/manifests/app/manifests/v1").content == body2


def test_mount_needs_read_on_the_source(acl):
    carol, bob = client(acl, "carol"), client(acl, "bob")
    d = carol.push_blob("secret/s", b"classified")
    r = bob.s.post("%s/v2/team/app/blobs/uploads/?mount=%s&from=secret/s" % (acl.url, d))
    assert r.status_code == 202  # bob may not read secret/s: an ordinary upload session
    assert bob.s.head(acl.url + "/v2/team/app/blobs/" + d).status_code == 404
    r = bob.s.post("%s/v2/team/app/blobs/uploads/?mount=%s" % (acl.url, d))
    assert r.status_code == 202  # nor find it through the dedupe index
    r = carol.s.post("%s/v2/team/app/blobs/uploads/?mount=%s&from=secret/s" % (acl.url, d))
    assert r.status_code == 201
    assert bob.get("/v2/team/app/blobs/" + d).content == b"classified"
