"""End-to-end tests of TLS: HTTPS with HTTP/2 negotiated by ALPN (curl --http2), client
certificates (mTLS) required or optional as zot decides, and skopeo pushing over TLS with
--dest-cert-dir and --dest-creds. Certificates are made here with openssl."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest
import requests

from conftest import SLOW

PW = "tls-Pw-1"


def run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw)


def make_cert(d, name, ca=None, ext=None, subj=None):
    """EC key + certificate `name` in d, self-signed (a CA) when ca is None."""
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]
    subj = subj or "/CN=" + name
    if ca is None:
        run("openssl", "req", "-x509", *newkey, "-out", crt, "-days", "2", "-subj", subj,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return crt, key
    csr = os.path.join(d, name + ".csr")
    extfile = os.path.join(d, name + ".ext")
    with open(extfile, "w") as f:
        f.write(ext + "\n")
    run("openssl", "req", "-new", *newkey, "-out", csr, "-subj", subj)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", crt,
        "-days", "2", "-extfile", extfile)
    return crt, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_cert(d, "ca")
    server = make_cert(d, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
                       subj="/CN=127.0.0.1")
    client = make_cert(d, "client", ca, "extendedKeyUsage=clientAuth", subj="/CN=alice")
    other_ca = make_cert(d, "other-ca")
    stranger = make_cert(d, "stranger", other_ca, "extendedKeyUsage=clientAuth", subj="/CN=mallory")
    return {"dir": d, "ca": ca, "server": server, "client": client, "stranger": stranger}


def htpasswd_file(d):
    path = os.path.join(d, "htpasswd")
    if shutil.which("htpasswd"):
        line = run("htpasswd", "-nbB", "-C", "5", "alice", PW).stdout.strip()
    else:
        import crypt

        line = "alice:" + crypt.crypt(PW, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
    with open(path, "w") as f:
        f.write(line + "\n")
    return path


def tls_config(pki, cacert=False, htpasswd=None):
    tls = {"cert": pki["server"][0], "key": pki["server"][1]}
    if cacert:
        tls["cacert"] = pki["ca"][0]
    http = {"tls": tls}
    if htpasswd:
        http["auth"] = {"htpasswd": {"path": htpasswd}}
    return {"http": http}


def start(zinc_factory, config, pki, client_cert=None):
    """Start and wait for readyz over TLS (with a client certificate when mTLS needs one)."""
    z = zinc_factory(config, start=False)
    z.start(wait=False)
    deadline = time.time() + 10 * SLOW
    while True:
        try:
            if requests.get(z.url + "/readyz", verify=pki["ca"][0], cert=client_cert, timeout=1).status_code == 200:
                return z
        except requests.RequestException:
            pass
        if z.proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("zinc did not come up:\n" + z.log())
        time.sleep(0.05)


def curl(z, pki, path="/v2/", *args):
    """curl over TLS; returns (exit code, http_version, status)."""
    p = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--cacert", pki["ca"][0],
         "--max-time", str(20 * SLOW), *args, z.url + path],
        capture_output=True, text=True)
    parts = p.stdout.split()
    return p.returncode, parts[0] if parts else "", int(parts[1]) if len(parts) > 1 else 0


def test_https_http2_by_alpn(zinc_factory, pki):
    z = start(zinc_factory, tls_config(pki), pki)
    assert z.url.startswith("https://")
    r = requests.get(z.url + "/v2/", verify=pki["ca"][0])
    assert r.status_code == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert curl(z, pki, "/v2/", "--http2") == (0, "2", 200)
    assert curl(z, pki, "/v2/", "--http1.1") == (0, "1.1", 200)
    # the certificate really is checked by the client: without the CA curl refuses
    p = subprocess.run(["curl", "-s", "--max-time", "10", z.url + "/v2/"], capture_output=True)
    assert p.returncode != 0


def test_http2_with_basic_auth(zinc_factory, pki, tmp_path):
    z = start(zinc_factory, tls_config(pki, htpasswd=htpasswd_file(str(tmp_path))), pki)
    assert curl(z, pki, "/v2/", "--http2") == (0, "2", 401)
    assert curl(z, pki, "/v2/", "--http2", "-u", "alice:" + PW) == (0, "2", 200)
    assert curl(z, pki, "/v2/", "--http2", "-u", "alice:nope") == (0, "2", 401)
    # many requests multiplexed on one HTTP/2 connection, some waiting for bcrypt
    urls = []
    for _ in range(20):
        urls += ["-o", "/dev/null", z.url + "/v2/"]
    p = subprocess.run(
        ["curl", "-s", "--http2", "--parallel", "--parallel-immediate", "--cacert", pki["ca"][0], "-u", "alice:" + PW,
         "-w", "%{http_version} %{http_code}\\n"] + urls,
        capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0
    assert p.stdout.split("\n")[:20] == ["2 200"] * 20


def test_mtls_required_without_other_auth(zinc_factory, pki):
    client = pki["client"]
    z = start(zinc_factory, tls_config(pki, cacert=True), pki, client_cert=client)
    r = requests.get(z.url + "/v2/", verify=pki["ca"][0], cert=client)
    assert r.status_code == 200
    assert curl(z, pki, "/v2/", "--http2", "--cert", client[0], "--key", client[1]) == (0, "2", 200)
    # no certificate, or one from another CA: the handshake fails (with TLS 1.3 the client
    # may only notice when it reads: a closed connection rather than an SSL error)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(z.url + "/v2/", verify=pki["ca"][0])
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(z.url + "/v2/", verify=pki["ca"][0], cert=pki["stranger"])
    assert curl(z, pki, "/v2/")[0] != 0


def test_mtls_optional_with_htpasswd(zinc_factory, pki, tmp_path):
    z = start(zinc_factory, tls_config(pki, cacert=True, htpasswd=htpasswd_file(str(tmp_path))), pki)
    ca = pki["ca"][0]
    # no certificate: the handshake passes, then Basic auth decides
    assert requests.get(z.url + "/v2/", verify=ca).status_code == 401
    assert requests.get(z.url + "/v2/", verify=ca, auth=("alice", PW)).status_code == 200
    assert requests.get(z.url + "/v2/", verify=ca, cert=pki["client"], auth=("alice", PW)).status_code == 200
    # a certificate that is sent is verified
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(z.url + "/v2/", verify=ca, cert=pki["stranger"], auth=("alice", PW))


def test_bad_tls_files_refused(zinc_factory, pki, tmp_path):
    bad = str(tmp_path / "garbage.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    for tls in ({"cert": bad, "key": pki["server"][1]}, {"cert": pki["server"][0], "key": pki["client"][1]},
                {"cert": pki["server"][0], "key": pki["server"][1], "cacert": bad}):
        z = zinc_factory({"http": {"tls": tls}}, start=False)
        z.start(wait=False)
        assert z.proc.wait(timeout=20 * SLOW) != 0
        assert "http.tls" in z.log()


# ---- skopeo ------------------------------------------------------------------------------------


def tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oci_layout(d):
    """A one-layer OCI image layout in d, tagged latest."""
    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + h, "size": len(data)}

    layer = put(tar_gz({"hello.txt": b"hello from zinc\n"}))
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cfg, "layers": [layer]}).encode()
    m = put(manifest)
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def cert_dir(d, pki, client=False):
    """skopeo's --*-cert-dir: CA certificates as *.crt, a client pair as *.cert + *.key."""
    os.makedirs(d)
    shutil.copy(pki["ca"][0], os.path.join(d, "ca.crt"))
    if client:
        shutil.copy(pki["client"][0], os.path.join(d, "client.cert"))
        shutil.copy(pki["client"][1], os.path.join(d, "client.key"))
    return d


def skopeo(*args):
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120 * SLOW)


def need_push_routes(z, **kw):
    r = requests.get(z.url + "/v2/x/tags/list", **kw)
    if r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND":
        pytest.skip("OCI routes not in this build")


def test_skopeo_push_with_creds_and_cert_dir(zinc_factory, pki, tmp_path):
    z = start(zinc_factory, tls_config(pki, htpasswd=htpasswd_file(str(tmp_path))), pki)
    need_push_routes(z, verify=pki["ca"][0], auth=("alice", PW))
    src = str(tmp_path / "img")
    oci_layout(src)
    certs = cert_dir(str(tmp_path / "certs"), pki)
    dest = "docker://%s/tls/img:latest" % z.hostport
    p = skopeo("copy", "--dest-cert-dir", certs, "--dest-creds", "alice:" + PW, "oci:" + src + ":latest", dest)
    assert p.returncode == 0, p.stderr
    p = skopeo("inspect", "--cert-dir", certs, "--creds", "alice:" + PW, dest)
    assert p.returncode == 0, p.stderr
    # wrong password and no CA are both refused
    p = skopeo("copy", "--dest-cert-dir", certs, "--dest-creds", "alice:nope", "oci:" + src + ":latest", dest)
    assert p.returncode != 0 and "401" in p.stderr or "unauthorized" in p.stderr.lower()
    p = skopeo("inspect", "--creds", "alice:" + PW, dest)
    assert p.returncode != 0 and "certificate" in p.stderr


def test_skopeo_push_with_client_certificate(zinc_factory, pki, tmp_path):
    z = start(zinc_factory, tls_config(pki, cacert=True), pki, client_cert=pki["client"])
    need_push_routes(z, verify=pki["ca"][0], cert=pki["client"])
    src = str(tmp_path / "img")
    oci_layout(src)
    dest = "docker://%s/mtls/img:latest" % z.hostport
    p = skopeo("copy", "--dest-cert-dir", cert_dir(str(tmp_path / "c1"), pki, client=True), "oci:" + src + ":latest",
               dest)
    assert p.returncode == 0, p.stderr
    p = skopeo("inspect", "--cert-dir", cert_dir(str(tmp_path / "c2"), pki), dest)
    assert p.returncode != 0
