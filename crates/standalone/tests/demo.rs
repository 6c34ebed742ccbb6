//! The README's first command keeps working: the demo (OpenBao in dev
//! mode, our vault provider, `secrets-store validate` and `fill --watch`)
//! fills a directory, shows a rotated secret and stops everything. So does
//! `./hack/demo.sh --kubernetes` (control plane, OpenBao with Kubernetes
//! auth, our driver and provider, a published pod volume).

use std::path::PathBuf;

/// An example built in target/<profile>/examples/.
fn example(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("examples")
        .join(name);
    anyhow::ensure!(path.exists(), "{} not built", path.display());
    Ok(path)
}

#[test]
fn demo_fills_refreshes_and_stops() -> anyhow::Result<()> {
    let demo = example("vault-demo")?;
    let dir = tempfile::tempdir()?;
    let out = std::process::Command::new(&demo)
        .arg("--dir")
        .arg(dir.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = dir.path().join("secrets");
    for want in [
        r#"SecretProviderClass "demo": ok"#,
        "with 3 file(s) from provider \"vault\": api-key, db-password, db-username",
        "refreshed ",
        "stopped fill, the provider and OpenBao",
    ] {
        assert!(stdout.contains(want), "{want:?} missing:\n{stdout}");
    }
    let read = |name: &str| std::fs::read_to_string(secrets.join(name));
    assert_eq!(read("db-password")?, "s3cr3t-2");
    assert_eq!(read("db-username")?, "app");
    assert_eq!(read("api-key")?, "hello-from-openbao");
    Ok(())
}

#[test]
fn kubernetes_demo_mounts_syncs_rotates_and_stops() -> anyhow::Result<()> {
    let out = std::process::Command::new(example("vault-k8s-demo")?).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Kubernetes auth checks tokens with the API server's TokenReview",
        "(tmpfs):\n  0400 db-password  s3cr3t-1\n  0644 db-username  app\n",
        ": mounted=true targetPath=",
        "objects=[db-password@",
        "(kubernetes.io/basic-auth): username=app password=s3cr3t-1\n",
        "(tmpfs):\n  0400 db-password  s3cr3t-2\n",
        "(kubernetes.io/basic-auth): username=app password=s3cr3t-2\n",
        "unpublished the volume; stopped the driver, the provider, OpenBao and the control plane",
    ] {
        assert!(stdout.contains(want), "{want:?} missing:\n{stdout}");
    }
    Ok(())
}
