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

/// `--help` describes the options instead of starting anything.
#[test]
fn control_plane_help_describes_its_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .arg("--help")
        .output()
        .expect("run control-plane --help");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for want in [
        "Usage: control-plane [OPTIONS]",
        "--once",
        "--node",
        "kubelet",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    assert!(!std::path::Path::new("--help").exists());
}

/// `--node --once`: a real node registers Ready, a busybox pod runs, gets
/// an IP, `kubectl exec` and `kubectl logs` work; everything is torn down.
#[test]
fn control_plane_real_node_runs_a_pod() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
        .args(["--node", "--once"])
        .output()
        .expect("run control-plane --node --once");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "control-plane --node failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" Ready "), "{stdout}");
    assert!(stdout.contains("10.88.0."), "pod IP missing:\n{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    let left: Vec<_> = secrets_store_testkit::mounts::read()
        .expect("mountinfo")
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with("/var/lib/kubelet") || p.starts_with("/tmp/sscsi-node"))
        .collect();
    assert!(left.is_empty(), "left mounted: {left:?}");
    assert!(
        !std::path::Path::new("/var/lib/kubelet").exists(),
        "kubelet's root directory is removed"
    );
}
