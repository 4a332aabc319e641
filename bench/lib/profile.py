"""CPU profiles of zinc taken with its own /v2/_zot/pprof/profile while a workload runs
(BENCH_PROFILE=DIR): one NAME.pb.gz per metric, and NAME.top.txt from `go tool pprof -top`
when Go is installed. Profiling costs a little CPU, so profiled runs are not recorded.
"""
import os
import shutil
import subprocess
import threading

import requests


class CpuProfile:
    """Starts GET .../pprof/profile?seconds=N on a thread; finish() waits and saves it."""

    def __init__(self, srv, path, seconds):
        self.path, self.error = path, None
        headers = {"Authorization": srv.authorization} if getattr(srv, "authorization", None) else {}
        url = f"{srv.url}/v2/_zot/pprof/profile?seconds={seconds}"
        self._thread = threading.Thread(target=self._fetch, args=(url, headers, seconds), daemon=True)
        self._thread.start()

    def _fetch(self, url, headers, seconds):
        try:
            r = requests.get(url, headers=headers, timeout=seconds + 60)
            if r.status_code != 200:
                self.error = f"HTTP {r.status_code}: {r.text[:200]}"
                return
            with open(self.path, "wb") as f:
                f.write(r.content)
        except requests.RequestException as e:
            self.error = str(e)

    def finish(self):
        """Waits for the profile; returns None or the reason it is missing."""
        self._thread.join()
        if self.error is None and shutil.which("go"):
            top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=30", self.path],
                                 capture_output=True, text=True, timeout=120)
            with open(self.path.replace(".pb.gz", ".top.txt"), "w") as f:
                f.write(top.stdout + top.stderr)
        return self.error
