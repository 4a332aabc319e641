"""`zinc probe --config FILE [PATH]`, the container image's HEALTHCHECK: it must follow the
config the server runs with (port, wildcard address, TLS), so a mounted config stays
healthy. No Docker needed; test_docker.py checks the same command inside the image."""
import json
import subprocess

from conftest import ZINC_BIN, SLOW


def probe(*args):
    return subprocess.run([ZINC_BIN, "probe"] + list(args), capture_output=True, text=True, timeout=10 * SLOW)


def test_probe_config_wildcard_address(zinc_factory):
    s = zinc_factory({"http": {"address": "0.0.0.0"}})
    ok = probe("--config", s.config_path)
    assert ok.returncode == 0, ok.stderr
    assert probe("--config", s.config_path, "/v2/").returncode == 0
    bad = probe("--config", s.config_path, "/nope")
    assert bad.returncode == 1 and ("127.0.0.1:%d/nope" % s.port) in bad.stderr
    assert s.stop() == 0
    down = probe("--config", s.config_path)
    assert down.returncode == 1 and "not healthy" in down.stderr


def test_probe_config_tls(zinc_factory, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=localhost", "-days", "2"], check=True, capture_output=True)
    s = zinc_factory({"http": {"tls": {"cert": str(cert), "key": str(key)}}})
    ok = probe("--config", s.config_path)
    assert ok.returncode == 0, ok.stderr
    assert probe("https://127.0.0.1:%d/livez" % s.port).returncode == 0
    # plain HTTP to a TLS listener is no answer
    assert probe("http://127.0.0.1:%d/livez" % s.port).returncode == 1


def test_probe_config_errors(tmp_path):
    missing = probe("--config", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "none.json" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"storage": {"rootDirectory": "/x"}, "http": {"port": "99999"}}))
    r = probe("--config", str(bad))
    assert r.returncode == 1 and "http.port" in r.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"storage": {"rootDirectory": "/x"}}))
    assert probe("--config", str(good), "no-slash").returncode == 1
    for args in ([], ["--config"], ["--nope", "x"], ["--config", str(good), "/livez", "extra"]):
        u = probe(*args)
        assert u.returncode == 2 and "usage" in u.stderr, args
