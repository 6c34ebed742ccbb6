# The AWS provider image: one static binary and the CA bundle its HTTPS
# clients (Secrets Manager, SSM, STS) trust.
#   docker build -f deploy/images/provider-aws.Dockerfile -t ghcr.io/secrets-store-csi-rs/secrets-store-csi-driver-provider-aws:v0.1.0 .
# Without a container engine, hack/images.sh builds the same image as an OCI
# archive from the locally built binary.
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" && \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
      --target "$target" -p secrets-store-provider-aws \
      --bin secrets-store-csi-driver-provider-aws && \
    cp "target/$target/release/secrets-store-csi-driver-provider-aws" /provider

FROM scratch
COPY --from=build /provider /secrets-store-csi-driver-provider-aws
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Non-root by default. The chart runs it as uid 0 with every capability
# dropped, because the host's provider directory is root-owned.
USER 65532:65532
ENTRYPOINT ["/secrets-store-csi-driver-provider-aws"]
LABEL org.opencontainers.image.title="secrets-store-csi-driver-provider-aws" \
      org.opencontainers.image.description="AWS Secrets Manager and SSM Parameter Store provider for the Secrets Store CSI driver, Rust implementation" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
