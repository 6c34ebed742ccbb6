//! `hack/images.sh` builds one OCI archive per image from the static release
//! binaries: each is a valid OCI image (skopeo reads it, umoci unpacks it)
//! named as the charts expect, with the entrypoint, user and labels set, and
//! its binary starts (`--version`) in a root filesystem holding nothing
//! else, which also proves it is static. The release build's time is
//! printed (it reuses a target directory under ~/.cache between runs).

use std::path::Path;
use std::process::Command;

use secrets_store_deploy_tests::{repo_root, run};
use serde_json::Value;

const REGISTRY: &str = "ghcr.io/secrets-store-csi-rs";
const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Image {
    name: &'static str,
    user: &'static str,
    /// Every file of the root filesystem.
    files: &'static [&'static str],
}

const IMAGES: [Image; 4] = [
    Image {
        name: "secrets-store-csi-driver",
        user: "0:0",
        files: &["secrets-store-csi-driver"],
    },
    Image {
        name: "secrets-store-csi-driver-provider-alibabacloud",
        user: "65532:65532",
        files: &[
            "etc/ssl/certs/ca-certificates.crt",
            "secrets-store-csi-driver-provider-alibabacloud",
        ],
    },
    Image {
        name: "secrets-store-csi-driver-provider-vault",
        user: "65532:65532",
        files: &[
            "etc/ssl/certs/ca-certificates.crt",
            "secrets-store-csi-driver-provider-vault",
        ],
    },
    Image {
        name: "secrets-store-csi-driver-provider-aws",
        user: "65532:65532",
        files: &[
            "etc/ssl/certs/ca-certificates.crt",
            "secrets-store-csi-driver-provider-aws",
        ],
    },
];

fn rootfs_files(dir: &Path, base: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rootfs_files(&path, base, out)?;
        } else {
            out.push(path.strip_prefix(base)?.display().to_string());
        }
    }
    Ok(())
}

fn check(image: &Image, out: &Path) -> anyhow::Result<()> {
    let archive = out.join(format!("{}.oci.tar", image.name));
    let reference = format!("{REGISTRY}/{}:v{VERSION}", image.name);
    let skopeo = |extra: &[&str]| -> anyhow::Result<Value> {
        let text = run(Command::new("skopeo")
            .arg("inspect")
            .args(extra)
            .arg(format!("oci-archive:{}", archive.display())))?;
        Ok(serde_json::from_str(&text)?)
    };
    let info = skopeo(&[])?;
    assert_eq!(info["Os"], "linux", "{info}");
    assert_eq!(info["Labels"]["org.opencontainers.image.title"], image.name);
    assert_eq!(info["Labels"]["org.opencontainers.image.version"], VERSION);
    let config = skopeo(&["--config"])?;
    let binary = image.files.last().copied().unwrap_or_default();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([format!("/{binary}")])
    );
    assert_eq!(config["config"]["User"], image.user);

    let layout = out.join(format!("{}-layout", image.name));
    std::fs::create_dir_all(&layout)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout))?;
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.ref.name"],
        reference.as_str()
    );
    assert_eq!(annotations["io.containerd.image.name"], reference.as_str());
    let bundle = out.join(format!("{}-bundle", image.name));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{reference}", layout.display()))
        .arg(&bundle))?;
    let rootfs = bundle.join("rootfs");
    let mut files = Vec::new();
    rootfs_files(&rootfs, &rootfs, &mut files)?;
    files.sort();
    assert_eq!(files, image.files, "the image holds only these files");
    let version = run(Command::new("chroot")
        .arg(&rootfs)
        .arg(format!("/{binary}"))
        .arg("--version"))?;
    assert!(version.contains(VERSION), "{binary} --version: {version}");
    Ok(())
}

#[test]
fn image_archives_are_oci_images_whose_static_binaries_start_in_an_empty_rootfs()
-> anyhow::Result<()> {
    let out = tempfile::Builder::new().prefix("images-").tempdir()?;
    let started = std::time::Instant::now();
    let output = Command::new(repo_root().join("hack/images.sh"))
        .arg(out.path())
        .output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hack/images.sh failed:\n{log}");
    let build = log
        .lines()
        .find(|l| l.contains("release build:"))
        .unwrap_or("");
    eprintln!("{build}; images.sh took {:.0?} in all", started.elapsed());
    for image in &IMAGES {
        check(image, out.path())?;
    }
    Ok(())
}
