//! The `control-plane` helper binary (a bare control plane for manual
//! work) starts, passes its kubectl checks and stops.

#[test]
fn control_plane_demo_runs_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .arg("--once")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("customresourcedefinition.apiextensions.k8s.io/secretproviderclasses.secrets-store.csi.x-k8s.io"), "{stdout}");
    assert!(
        stdout.contains("secretproviderclass.secrets-store.csi.x-k8s.io/example created"),
        "{stdout}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
