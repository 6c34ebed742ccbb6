//! The README's first command keeps working: the demo (OpenBao in dev
//! mode, our vault provider, `secrets-store validate` and `fill --watch`)
//! fills a directory, shows a rotated secret and stops everything.

#[test]
fn demo_fills_refreshes_and_stops() -> anyhow::Result<()> {
    // The example sits in target/<profile>/examples/.
    let exe = std::env::current_exe()?;
    let demo = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("examples/vault-demo");
    anyhow::ensure!(demo.exists(), "{} not built", demo.display());
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
