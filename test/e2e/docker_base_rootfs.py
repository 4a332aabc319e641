"""Makes the cached debian:bookworm-slim rootfs tar the Docker tests import (docker_fixture.py)
unless it is already cached. A ctest fixture (test/CMakeLists.txt): in the sanitizer pass of
`make test` it runs beside the other entries, so the release pass's image test, which needs
it, finds it made instead of spending its first minute making it. Fails loudly (never skips),
as the Docker tests do."""
import sys
import time

from docker_fixture import DockerError, build_base_rootfs

if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        path = build_base_rootfs()
    except DockerError as e:
        sys.exit("docker_base_rootfs: %s" % e)
    print("base rootfs %s ready in %.1f s" % (path, time.monotonic() - t0))
