//! Compiles our `.proto` files with protox (no system protoc) and generates
//! tonic clients and servers for both APIs.

/// Messages whose fields carry secrets (`csi_secret` maps, the tokens in a
/// volume context or in provider attributes) or file contents.
const SECRET_MESSAGES: [&str; 5] = [
    ".csi.v1.NodePublishVolumeRequest",
    ".csi.v1.NodeStageVolumeRequest",
    ".csi.v1.NodeExpandVolumeRequest",
    ".v1alpha1.MountRequest",
    ".v1alpha1.File",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/csi.proto", "proto/provider.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // Messages with secrets, tokens or file contents: `Debug` is written
        // by hand in src/debug.rs and prints them redacted.
        .skip_debug(SECRET_MESSAGES)
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
