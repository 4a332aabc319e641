"""test/s3/rgw.py leaves no Ceph daemon behind (issue 14 point 5: the fixture stops what it
started, by PID): `rgw.py run` stopped by SIGTERM, SIGINT or SIGHUP stops its cluster and its
command and exits 128 + the signal; SIGKILLed, its daemons die with it (PR_SET_PDEATHSIG).
Skipped when the Ceph binaries are missing (.ci/deps.sh test installs them)."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "test", "s3"))
import rgw  # noqa: E402

RGW = os.path.join(REPO, "test", "s3", "rgw.py")
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw")
DEADLINE = 120  # bounds a hang only: every wait ends on an event

pytestmark = pytest.mark.skipif(rgw.missing_binaries() != [], reason="no Ceph binaries")


def proc_stat(pid):
    """(comm, state, ppid) of pid, None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def children(ppid):
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None and st[2] == ppid:
                out[int(name)] = st[0]
    return out


def gone(pid, comm):
    st = proc_stat(pid)
    return st is None or st[1] == "Z" or st[0] != comm  # exited (a zombie until reaped), or the PID reused


def start_fixture():
    """rgw.py run with a command that waits on its stdin; returns (process, child pid,
    {daemon pid: name}, the cluster's directory) once the command runs."""
    p = subprocess.Popen([sys.executable, RGW, "run", "--", sys.executable, "-c",
                          "import os, sys; print(os.getpid(), flush=True); sys.stdin.read()"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    line = p.stdout.readline()  # the command runs: the cluster is up
    assert line.strip().isdigit(), line
    kids = children(p.pid)
    daemons = {pid: comm for pid, comm in kids.items() if comm in DAEMONS}
    assert sorted(daemons.values()) == sorted(DAEMONS), kids
    mon = next(pid for pid, comm in daemons.items() if comm == "ceph-mon")
    with open("/proc/%d/environ" % mon, "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    return p, int(line), daemons, os.path.dirname(env[b"CEPH_CONF"].decode())


def wait_gone(pids):
    deadline = time.monotonic() + DEADLINE
    while not all(gone(pid, comm) for pid, comm in pids.items()):
        assert time.monotonic() < deadline, {pid: proc_stat(pid) for pid in pids}
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_stops_cluster_and_command(sig):
    p, child, daemons, cdir = start_fixture()
    p.send_signal(sig)
    assert p.wait(DEADLINE) == 128 + sig
    # rgw.py waited for them: already gone, and its temp directory removed
    assert all(gone(pid, comm) for pid, comm in daemons.items()), {pid: proc_stat(pid) for pid in daemons}
    assert proc_stat(child) is None or proc_stat(child)[1] == "Z"
    assert not os.path.exists(cdir)
    p.stdin.close()
    p.stdout.close()


def test_sigkill_takes_the_daemons_along():
    p, child, daemons, cdir = start_fixture()
    p.kill()
    p.wait(DEADLINE)
    pids = dict(daemons)
    pids[child] = proc_stat(child)[0] if proc_stat(child) is not None else ""
    wait_gone(pids)
    p.stdin.close()
    p.stdout.close()
    shutil.rmtree(cdir, ignore_errors=True)  # nobody was left to remove it
