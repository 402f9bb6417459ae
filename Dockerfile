# Weft's container image: a Debian bookworm stage builds Weft (and, when asked, runs its unit
# tests); a bookworm-slim stage runs `weft` as a non-root user with the bundled plugins and the config in
# deploy/container/weft.toml. Build it with deploy/scripts/build-image.sh, or plainly:
#   podman build -t weft .
# `--format docker` keeps the HEALTHCHECK (the OCI format has none). `--build-arg
# WEFT_UNIT_TESTS=ON` builds and runs the unit tests in the build stage too (installing the
# servers they start); under the default seccomp profile, which hides io_uring, their io_uring
# variants skip and say so, and `--security-opt seccomp=deploy/seccomp/weft-io-uring.json` runs
# them.

FROM docker.io/library/debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# OFF: build only what the image ships (the test suite runs the unit tests on the host, in
# Release and sanitizer builds). ON: build and run the unit tests here as well.
ARG WEFT_UNIT_TESTS=OFF
# The package lists alone first, so this layer is reused until they change: the build set, and
# with the tests the test set for the tools they call (curl, python3, promtool, prometheus, ...).
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN if [ "$WEFT_UNIT_TESTS" = ON ]; then sets="build test"; else sets=build; fi \
    && scripts/install-deps.sh $sets \
    && apt-get install -y -qq --no-install-recommends ccache >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY . .
ARG WEFT_BUILD_JOBS=2
# ccache's folder is a cache mount that outlives the build: a rebuild compiles only the sources
# whose contents changed.
RUN --mount=type=cache,target=/root/.cache/ccache,sharing=locked \
    deploy/container/build-in-image.sh /tmp/build "$WEFT_BUILD_JOBS" "$WEFT_UNIT_TESTS"

FROM docker.io/library/debian:bookworm-slim AS runtime
# The shared libraries Weft links, by their Debian runtime packages (the build stage has the -dev
# ones). The ldd check below fails the build if this list falls behind.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libboost-context1.74.0 liburing2 libspdlog1.10 libfmt9 libdw1 libtomlplusplus3 libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin weft
COPY --from=build /opt/weft /opt/weft
COPY deploy/container/weft.toml /etc/weft/weft.toml
COPY deploy/container/healthcheck.sh /usr/local/bin/weft-healthcheck
RUN echo /opt/weft/lib > /etc/ld.so.conf.d/weft.conf && ldconfig \
    && missing=$(find /opt/weft -name '*.so*' -type f -o -path '*/bin/*' -type f \
        | xargs ldd 2>/dev/null | grep 'not found' | sort -u) \
    && if [ -n "$missing" ]; then echo "libraries missing from the image:$missing" >&2; exit 1; fi
ENV PATH=/opt/weft/bin:$PATH
USER 10001:10001
EXPOSE 8080 9090
# SIGTERM starts the drain (bounded by drain_timeout); give the container a longer stop timeout.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/weft-healthcheck", "/healthz"]
ENTRYPOINT ["/opt/weft/bin/weft"]
CMD ["--config", "/etc/weft/weft.toml"]
LABEL org.opencontainers.image.title="weft" \
      org.opencontainers.image.description="Weft: green-threaded HTTP server (io_uring hubs, fibers, a watchdog)"
