# zinc container image. The build stage compiles zinc on Debian 12 with its -dev packages;
# the runtime stage is debian:bookworm-slim plus only the shared libraries zinc links,
# the binary (not stripped: the built-in profiler symbolizes itself from it) and a
# default config. It runs as the unprivileged user zinc (uid/gid 10001).
#   docker build --network host -t zinc .
#   docker run -d --network host -v /srv/zinc:/var/lib/zinc zinc      (chown 10001 /srv/zinc)
# README-container.md has the details (volume, config, health check, htpasswd, podman).

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev make cmake pkg-config protobuf-c-compiler \
        libh2o-evloop-dev libcurl4-openssl-dev libssl-dev libjansson-dev libargon2-dev libcrypt-dev zlib1g-dev \
        libprotobuf-c-dev libunwind-dev libdw-dev libelf-dev \
    && rm -rf /var/lib/apt/lists/*
# One COPY of the sources .dockerignore lets through (tests, docs and benchmarks do not
# change the binary, so editing them keeps this stage cached). One layer, not one per
# module: with the vfs storage driver every layer of this ~500 MB stage is a full copy.
COPY . /src
RUN cd /src && cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZN_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target zinc \
    && install -D -m 0755 /build/server/zinc /out/usr/local/bin/zinc \
    && install -D -m 0644 examples/config-container.json /out/etc/zinc/config.json

FROM debian:bookworm-slim
# The runtime packages of the libraries in CMakeLists.txt: libh2o-evloop, OpenSSL, jansson,
# argon2, libcrypt, zlib, protobuf-c, libunwind, elfutils (libdw/libelf), libcurl (the S3 driver).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libcurl4 libssl3 libjansson4 libargon2-1 libcrypt1 zlib1g libprotobuf-c1 libunwind8 \
        libdw1 libelf1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
        /var/log/apt /var/log/dpkg.log /var/log/alternatives.log \
    && groupadd --system --gid 10001 zinc \
    && useradd --system --uid 10001 --gid zinc --home-dir /var/lib/zinc --no-create-home \
        --shell /usr/sbin/nologin zinc \
    && install -d -o zinc -g zinc -m 0700 /var/lib/zinc
COPY --from=build /out/ /
# numeric, so that Kubernetes' runAsNonRoot can verify it
USER 10001:10001
VOLUME /var/lib/zinc
# the port zinc serves on by default (make run, examples)
EXPOSE 8080
# The binary checks itself (no curl in the image). It reads the address and port from the
# config the server runs with, so a mounted config with another port stays healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/zinc", "probe", "--config", "/etc/zinc/config.json", "/livez"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/zinc"]
CMD ["serve", "/etc/zinc/config.json"]
