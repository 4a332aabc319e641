# zinc container image: build on Debian 12, run on debian:bookworm-slim with only the
# runtime libraries, as a non-root user.
#   docker build --network host -t zinc .
#   docker run --network host -v /srv/zinc:/var/lib/zinc zinc
FROM debian:bookworm-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc make cmake pkg-config libc6-dev libh2o-evloop-dev libssl-dev libjansson-dev libargon2-dev \
        libcrypt-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler libunwind-dev libdw-dev libelf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY common common
COPY config config
COPY storage storage
COPY auth auth
COPY pprof pprof
COPY api api
COPY server server
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZN_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target zinc \
    && install -D -m 0755 /build/server/zinc /out/usr/local/bin/zinc

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libssl3 libjansson4 libargon2-1 libcrypt1 zlib1g libprotobuf-c1 libunwind8 libdw1 libelf1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && groupadd --system --gid 10001 zinc \
    && useradd --system --uid 10001 --gid zinc --home-dir /var/lib/zinc --shell /usr/sbin/nologin zinc \
    && install -d -o zinc -g zinc -m 0700 /var/lib/zinc \
    && install -d -m 0755 /etc/zinc
COPY --from=build /out/ /
COPY examples/config-container.json /etc/zinc/config.json
USER zinc
VOLUME /var/lib/zinc
EXPOSE 8080
# the binary answers its own health check: no curl in the image
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/usr/local/bin/zinc", "probe", "http://127.0.0.1:8080/livez"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/zinc"]
CMD ["serve", "/etc/zinc/config.json"]
