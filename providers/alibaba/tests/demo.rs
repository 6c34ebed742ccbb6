//! The README's main command keeps working: the demo publishes a volume
//! through our driver and provider and checks the synced Secret.

#[test]
fn demo_runs_once() -> anyhow::Result<()> {
    // The demo example sits in target/<profile>/examples/.
    let exe = std::env::current_exe()?;
    let examples = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("examples");
    let demo = examples.join("demo");
    anyhow::ensure!(demo.exists(), "{} not built", demo.display());
    let out = std::process::Command::new(&demo).arg("--once").output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("MySecretUsername   app"), "{stdout}");
    assert!(stdout.contains("password=s3cr3t-demo"), "{stdout}");
    assert!(stdout.contains("mounted=true"), "{stdout}");
    assert!(stdout.contains("demo checks passed"), "{stdout}");
    Ok(())
}
