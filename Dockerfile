# syntax=docker/dockerfile:1
#
# The pinip agent image: a release build on Debian bookworm, run from distroless
# (glibc, CA certificates, no shell, no package manager) as a non-root user.
#
# Build (from the repository root; the commit is baked into `pinip --version`):
#
#   docker build --build-arg PINIP_COMMIT="$(git rev-parse HEAD)" \
#     -t ghcr.io/pinip/pinip:"$(cargo pkgid -p pinip | cut -d'#' -f2)" .
#
# tests/deploy_dockerfile.rs checks this file's shape (no Docker engine runs in CI).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The commit to bake in (build.rs reads it; the build context has no .git).
ARG PINIP_COMMIT=unknown
ENV PINIP_COMMIT=${PINIP_COMMIT} \
    CARGO_TERM_COLOR=never
COPY . .
# --locked: exactly the dependency versions of Cargo.lock. The caches keep the registry
# and the target directory between builds; the binary is copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pinip \
 && install -D -m 0755 target/release/pinip /out/pinip \
 && /out/pinip --version

FROM gcr.io/distroless/cc-debian12:nonroot
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
ENTRYPOINT ["/usr/local/bin/pinip"]
CMD ["run"]
