#!/usr/bin/python3
"""
test/s3/rgw.py - a throw-away single-node Ceph RGW (S3) for zinc's S3 tests.

One cluster = one temp directory: a monitor, one memstore OSD (objects live in its RAM)
and radosgw (beast frontend), all bound to 127.0.0.1 on free ports, with every path
(data, sockets, logs, pid files) inside the directory. start() returns once a SigV4-signed
request with a freshly created user's keys succeeds; stop() signals only the PIDs this
fixture recorded when it launched the daemons, and only while /proc/PID/exe is still the
binary it launched. See ../../README's S3 section and the RGW quirks noted in
storage/s3_driver.c.

  rgw.py run [--] CMD ARGS...  starts a cluster, runs CMD with S3_ENDPOINT, S3_ACCESS_KEY,
                               S3_SECRET_KEY, S3_REGION in its environment, stops the cluster
                               and exits with CMD's status (77 = skipped when Ceph is missing)

Used as a module by pytest tests (test/e2e) too: Cluster().start() / .stop().

No daemon outlives the fixture: `rgw.py run` stops the cluster (and passes the signal to
CMD) on SIGTERM, SIGINT and SIGHUP, exiting 128 + the signal's number; and every daemon is
started with PR_SET_PDEATHSIG (SIGKILL), so that even a SIGKILL of the process that started
it (rgw.py, a pytest worker, a ctest timeout) takes the daemons with it. test/e2e's
test_rgw_fixture.py checks both.
"""
import ctypes
import datetime
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

SKIP = 77  # ctest SKIP_RETURN_CODE
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def _death_signal(sig):
    """A preexec_fn: the child gets sig when the thread that started it dies."""
    def set_it():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() == 1:  # the parent died before prctl: act as the signal would have
            os.kill(os.getpid(), int(sig))
    return set_it
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")
REGION = "us-east-1"


def missing_binaries():
    return [b for b in BINARIES if shutil.which(b) is None]


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def sigv4_request(endpoint, access, secret, method="GET", path="/", body=b""):
    """A signed request; returns (status, body). Path must need no encoding."""
    host = endpoint.split("://", 1)[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    amzdate, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    canon = "\n".join([method, path, "", "host:" + host, "x-amz-content-sha256:" + payload,
                       "x-amz-date:" + amzdate, "", "host;x-amz-content-sha256;x-amz-date", payload])
    scope = "/".join([day, REGION, "s3", "aws4_request"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%s" % (
        access, scope, sig)
    req = urllib.request.Request(endpoint + path, method=method, data=body if method in ("PUT", "POST") else None,
                                 headers={"x-amz-date": amzdate, "x-amz-content-sha256": payload,
                                          "Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sigv4_get(endpoint, access, secret, path="/"):
    """A signed GET (empty payload); returns (status, body)."""
    return sigv4_request(endpoint, access, secret, "GET", path)


def make_bucket(env, bucket):
    """Creates `bucket` on the cluster described by env (S3_ENDPOINT, S3_ACCESS_KEY,
    S3_SECRET_KEY: what `rgw.py run` exports, or Cluster().env). Raises unless RGW says 200."""
    status, body = sigv4_request(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], "PUT", "/" + bucket)
    if status != 200:
        raise RuntimeError("cannot create bucket %s: %d %r" % (bucket, status, body[:300]))


class Cluster:
    def __init__(self, base=None, timeout=180):
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix="zn-rgw-", dir=base)
        self.procs = {}  # name -> (pid, exe path)
        self.env = {}

    def _conf(self, mon_v1, mon_v2, s3):
        d = self.dir
        return f"""[global]
fsid = {uuid.uuid4()}
mon host = [v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw asks the monitor for "secure" mode only, which auth none does not offer
ms mon client mode = crc secure
keyring = {d}/keyring
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
log to stderr = false
err to stderr = false
crash dir = {d}/crash
tmp dir = {d}/tmp
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
# radosgw creates its pools one mon commit at a time: without this each waits 1 s
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = {d}/mon/$id
mon cluster log file = {d}/log/cluster.log

[osd]
osd data = {d}/osd/$id
osd objectstore = memstore
memstore device bytes = {4 << 30}
osd class load list = *
osd class default list = *

[client.rgw.t]
rgw frontends = beast endpoint=127.0.0.1:{s3}
rgw data = {d}/rgw
rgw thread pool size = 32
rgw enable usage log = false
"""

    def _run(self, *args):
        with open(os.path.join(self.dir, "log", "setup.out"), "ab") as log:
            subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           env=self._cenv(), timeout=self.timeout)

    def _cenv(self):
        return dict(os.environ, CEPH_CONF=os.path.join(self.dir, "ceph.conf"))

    def _launch(self, name, *args):
        out = open(os.path.join(self.dir, "log", name + ".out"), "ab")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=self._cenv(),
                             start_new_session=True, preexec_fn=_death_signal(signal.SIGKILL))
        out.close()
        self.procs[name] = (p, shutil.which(args[0]))

    def _alive(self, name):
        p, exe = self.procs[name]
        if p.poll() is not None:
            return False
        try:
            return os.path.realpath("/proc/%d/exe" % p.pid) == os.path.realpath(exe)
        except OSError:
            return False

    def _check(self):
        for name in self.procs:
            if not self._alive(name):
                tail = ""
                for f in (name + ".out", name + ".log"):
                    try:
                        with open(os.path.join(self.dir, "log", f), errors="replace") as fh:
                            tail += fh.read()[-2000:]
                    except OSError:
                        pass
                raise RuntimeError("rgw fixture: %s exited early:\n%s" % (name, tail))

    def _poll(self, what, fn, deadline):
        while True:
            self._check()
            if fn():
                return
            if time.monotonic() > deadline:
                raise RuntimeError("rgw fixture: timed out waiting for " + what)
            time.sleep(0.1)

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        deadline = time.monotonic() + self.timeout
        for sub in ("run", "log", "mon/a", "osd/0", "rgw", "crash", "tmp"):
            os.makedirs(os.path.join(self.dir, sub))
        mon_v1, mon_v2, s3 = free_ports(3)
        with open(os.path.join(self.dir, "ceph.conf"), "w") as f:
            f.write(self._conf(mon_v1, mon_v2, s3))
        open(os.path.join(self.dir, "keyring"), "w").close()
        with open(os.path.join(self.dir, "ceph.conf")) as f:
            fsid = next(l.split("=")[1].strip() for l in f if l.startswith("fsid"))
        monmap = os.path.join(self.dir, "monmap")
        self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                  "[v2:127.0.0.1:%d,v1:127.0.0.1:%d]" % (mon_v2, mon_v1), monmap)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", os.path.join(self.dir, "keyring"))
        self._launch("mon", "ceph-mon", "-f", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        self._run("ceph", "--connect-timeout", "60", "osd", "new", osd_uuid)
        self._run("ceph-osd", "--mkfs", "-i", "0", "--osd-uuid", osd_uuid)
        self._launch("osd", "ceph-osd", "-f", "-i", "0")
        self._launch("rgw", "radosgw", "-f", "-n", "client.rgw.t")
        endpoint = "http://127.0.0.1:%d" % s3

        def anonymous_ok():
            # only RGW's own answer counts: a foreign server on the port would not say this
            try:
                with urllib.request.urlopen(endpoint + "/", timeout=2) as r:
                    return b"ListAllMyBucketsResult" in r.read()
            except OSError:
                return False
        self._poll("radosgw to answer", anonymous_ok, deadline)
        access = uuid.uuid4().hex[:20].upper()
        secret = hashlib.sha256(os.urandom(32)).hexdigest()[:40]
        self._run("radosgw-admin", "user", "create", "--uid=zinc", "--display-name=zinc tests",
                  "--access-key=" + access, "--secret-key=" + secret)

        def signed_ok():
            try:
                return sigv4_get(endpoint, access, secret)[0] == 200
            except OSError:
                return False
        self._poll("a signed request to succeed", signed_ok, deadline)
        self.env = {"S3_ENDPOINT": endpoint, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret, "S3_REGION": REGION}

    def stop(self):
        """Signals each daemon this fixture launched, by PID, while it still runs that binary.
        radosgw and the memstore OSD hold nothing worth a clean shutdown (radosgw 16 can
        take 20 s to exit on SIGTERM; a memstore OSD would dump its RAM): SIGKILL."""
        for name in ("rgw", "osd", "mon"):
            if name not in self.procs:
                continue
            p, _ = self.procs[name]
            if self._alive(name):
                p.send_signal(signal.SIGTERM if name == "mon" else signal.SIGKILL)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                if self._alive(name):
                    p.kill()
                p.wait(timeout=10)
        self.procs = {}
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    if argv and argv[0] == "run":
        argv = argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    miss = missing_binaries()
    if miss:
        print("rgw fixture: skipped, missing %s (.ci/deps.sh test installs ceph-mon ceph-osd radosgw ceph-common)"
              % " ".join(miss), file=sys.stderr)
        return SKIP
    stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    class Stop(BaseException):
        def __init__(self, signum):
            super().__init__(signum)
            self.signum = signum

    def on_signal(signum, frame):
        raise Stop(signum)

    for sig in stops:
        signal.signal(sig, on_signal)
    c = Cluster()
    child = None
    t0 = time.monotonic()
    try:
        c.start()
        print("rgw fixture: up in %.1f s at %s" % (time.monotonic() - t0, c.env["S3_ENDPOINT"]), file=sys.stderr)
        child = subprocess.Popen(argv, env=dict(os.environ, **c.env), preexec_fn=_death_signal(signal.SIGTERM))
        return child.wait()
    except Stop as e:
        print("rgw fixture: %s, stopping" % signal.Signals(e.signum).name, file=sys.stderr)
        if child is not None and child.poll() is None:
            child.send_signal(e.signum)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 128 + e.signum
    finally:
        for sig in stops:  # a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        c.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
