# syntax=docker/dockerfile:1
#
# The pinip agent image: the agent alone (no simulators, no test harness), built on
# Debian bookworm and run from distroless (glibc, CA certificates, no shell, no package
# manager) as a non-root user.
#
# Build (from the repository root; the commit is baked into `pinip --version`):
#
#   docker build --build-arg PINIP_COMMIT="$(git rev-parse HEAD)" \
#     -t ghcr.io/pinip/pinip:"$(cargo pkgid -p pinip | cut -d'#' -f2)" .
#
# The base images are named once, here, as build arguments. They carry no digest: none
# that anyone here could verify. Pin them in your release pipeline, where you can:
#   --build-arg BUILD_IMAGE=docker.io/library/rust:1.95-slim-bookworm@sha256:… \
#   --build-arg RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:…
#
# tests/deploy_dockerfile.rs checks this file's shape (no Docker engine runs in CI), and
# .ci/validate-deploy runs checkov's Dockerfile checks on it.

ARG RUST_VERSION=1.95
ARG BUILD_IMAGE=docker.io/library/rust:${RUST_VERSION}-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# The commit to bake in (build.rs reads it; the build context has no .git).
ARG PINIP_COMMIT=unknown
ENV PINIP_COMMIT=${PINIP_COMMIT} \
    CARGO_TERM_COLOR=never
COPY . .
# --locked: exactly the dependency versions of Cargo.lock. --no-default-features: the
# agent without the `simulate` feature (the simulators, the fake cloud, `pinip
# simulate`'s playground). `--profile image` (Cargo.toml): release, built small (the
# idle agent's resident memory is mostly its own code's pages: 14.4 MiB against 21 MiB
# for plain --release; docs/benchmarks.md). The caches keep the registry and the target directory
# between builds; the binary is copied out of the cache mount. The last check proves
# the simulators are out: such a binary's `pinip simulate` exits 2, saying where the
# playground is.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile image --locked --no-default-features --bin pinip \
 && install -D -m 0755 target/image/pinip /out/pinip \
 && /out/pinip --version \
 && { /out/pinip simulate >/dev/null 2>&1; test $? -eq 2; }

FROM ${RUNTIME_IMAGE}
ARG PINIP_COMMIT=unknown
LABEL org.opencontainers.image.title="pinip" \
      org.opencontainers.image.description="Pins reserved static public IPs to Kubernetes nodes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${PINIP_COMMIT}"
COPY --from=build /out/pinip /usr/local/bin/pinip
# distroless' nonroot user; the DaemonSet also sets runAsUser/runAsGroup 65532.
USER 65532:65532
# Liveness and readiness are the DaemonSet's httpGet probes on the admin port, so there
# is no Docker HEALTHCHECK (Kubernetes ignores it, and the image has no shell to run one).
# checkov:skip=CKV_DOCKER_2: health is probed by Kubernetes (/healthz, /readyz on ADMIN_ADDR)
# checkov:skip=CKV_DOCKER_7: the base images are the build arguments BUILD_IMAGE and RUNTIME_IMAGE, both with pinned tags; checkov does not expand ARG defaults in FROM
ENTRYPOINT ["/usr/local/bin/pinip"]
CMD ["run"]
