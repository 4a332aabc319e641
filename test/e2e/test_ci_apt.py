""".ci/apt-backports.sh, which .ci/deps.sh uses to add bookworm-backports: it must copy the
machine's own bookworm entry (URIs, Signed-By) from either apt source format, and add
nothing when a backports entry exists. Runs on fixture apt directories, never /etc/apt."""
import os
import subprocess

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, ".ci", "apt-backports.sh")
# local addresses only: the point is that whatever the machine has is reused
MIRROR = "http://127.0.0.1:3142/debian"
KEY = "/usr/share/keyrings/debian-archive-keyring.gpg"


def run(tmp_path, files):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    p = subprocess.run([SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout


def stanza(uris, signed=KEY):
    out = "Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n" % uris
    return out + ("Signed-By: %s\n" % signed if signed else "")


def test_deb822_entry_is_copied(tmp_path):
    rc, out = run(tmp_path, {"sources.list.d/debian.sources": (
        "Types: deb deb-src\n# a comment\nURIs: %s file:/srv/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: %s\n\n"
        "Types: deb\nURIs: http://127.0.0.2/debian-security\nSuites: bookworm-security\nComponents: main\n"
        % (MIRROR, KEY))})
    assert rc == 0
    assert out == stanza(MIRROR + " file:/srv/debian")


def test_one_line_entry_is_copied(tmp_path):
    rc, out = run(tmp_path, {"sources.list": (
        "# deb http://127.0.0.9/debian bookworm main\n"
        "deb-src %s bookworm main\n"
        "deb [arch=amd64 signed-by=%s] %s bookworm main non-free-firmware\n"
        "deb %s bookworm-updates main\n" % (MIRROR, KEY, MIRROR, MIRROR))})
    assert rc == 0
    assert out == stanza(MIRROR)


def test_one_line_without_options_has_no_signed_by(tmp_path):
    rc, out = run(tmp_path, {"sources.list": "deb %s bookworm main  # trailing comment\n" % MIRROR})
    assert rc == 0
    assert out == stanza(MIRROR, None)


def test_inline_key_is_kept_whole(tmp_path):
    key = "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEZ\n -----END PGP PUBLIC KEY BLOCK-----"
    rc, out = run(tmp_path, {"sources.list.d/debian.sources": (
        "Types: deb\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By:%s\n" % (MIRROR, key))})
    assert rc == 0
    assert out == stanza(MIRROR, key.lstrip(" "))


@pytest.mark.parametrize("files", [
    {"sources.list.d/debian.sources": "Types: deb\nURIs: %s\nSuites: bookworm bookworm-backports\n"
                                      "Components: main\n" % MIRROR},
    {"sources.list": "deb %s bookworm main\n" % MIRROR,
     "sources.list.d/backports.list": "deb [signed-by=%s] %s bookworm-backports main\n" % (KEY, MIRROR)},
])
def test_existing_backports_entry_adds_nothing(tmp_path, files):
    assert run(tmp_path, files) == (0, "")


def test_disabled_entries_do_not_count(tmp_path):
    rc, out = run(tmp_path, {
        "sources.list.d/a-old.sources": "Enabled: no\nTypes: deb\nURIs: http://127.0.0.3/debian\n"
                                        "Suites: bookworm bookworm-backports\nComponents: main\n",
        "sources.list.d/b.sources": "Types: deb\nURIs: %s\nSuites: bookworm\nComponents: main\n" % MIRROR})
    assert rc == 0
    assert out == stanza(MIRROR, None)


def test_no_bookworm_entry_fails(tmp_path):
    rc, out = run(tmp_path, {"sources.list": "deb %s trixie main\ndeb-src %s bookworm main\n" % (MIRROR, MIRROR)})
    assert (rc, out) == (1, "")


def test_repo_names_no_mirror_host():
    # the sources we write come from the machine; a host name in the repo would be a default
    p = subprocess.run(["git", "-C", REPO, "grep", "-n", "-I", "-i", "-E",
                        r"(deb|ftp|httpredir|security|snapshot|archive)\.debian\.org|archive\.ubuntu\.com"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode == 128:
        pytest.skip("not a git checkout")
    assert p.stdout == ""
