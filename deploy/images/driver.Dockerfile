# The CSI driver image: one static binary, nothing else.
#   docker build -f deploy/images/driver.Dockerfile -t ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver:v0.1.0 .
# Without a container engine, hack/images.sh builds the same image as an OCI
# archive from the locally built binary.
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Static glibc binary (crt-static on the gnu target; build scripts and proc
# macros stay dynamic because --target is explicit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" && \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
      --target "$target" -p secrets-store-csi-driver --bin secrets-store-csi-driver && \
    cp "target/$target/release/secrets-store-csi-driver" /secrets-store-csi-driver

FROM scratch
COPY --from=build /secrets-store-csi-driver /secrets-store-csi-driver
# Root: the driver mounts tmpfs into kubelet's pod directories (the chart
# runs it privileged for mount propagation).
USER 0:0
ENTRYPOINT ["/secrets-store-csi-driver"]
LABEL org.opencontainers.image.title="secrets-store-csi-driver" \
      org.opencontainers.image.description="Secrets Store CSI Driver (secrets-store.csi.k8s.io), Rust implementation" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
