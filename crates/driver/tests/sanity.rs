//! The CSI conformance suite, csi-sanity, against the driver binary.
//!
//! Every spec that applies to a node-only ephemeral driver runs against our
//! socket, and the JUnit report csi-sanity writes is parsed to assert they
//! ran and passed. Skipped, one reason per group:
//! - `[Controller Server]` (Controller Service, snapshots, expansion,
//!   modification): a node-only ephemeral driver serves no Controller
//!   service, and these specs do not skip themselves.
//! - "should remove target path": it provisions a volume with CreateVolume
//!   first, which needs a Controller service.
//! - "should work", "should be idempotent": they also start from
//!   CreateVolume/ControllerPublish; our publish path is covered end to end
//!   by `tests/publish.rs` with the kubelet simulator instead.
//! - Groups gated on capabilities we do not advertise (staging, volume
//!   stats, expansion, group controller) skip themselves.

use std::process::Command;

use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::tools::tool;

/// Counts from a JUnit report: (tests, failures + errors, skipped).
fn junit_counts(xml: &str) -> (u32, u32, u32) {
    let attr = |name: &str| -> u32 {
        let key = format!(" {name}=\"");
        xml.find("<testsuite ")
            .and_then(|start| xml[start..].find(&key).map(|i| start + i + key.len()))
            .and_then(|i| xml[i..].split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        attr("tests"),
        attr("failures") + attr("errors"),
        attr("skipped"),
    )
}

#[tokio::test]
async fn csi_sanity_node_and_identity_specs_pass() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let driver = DriverProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_secrets-store-csi-driver")),
        &[
            "--nodeid=sanity-node".to_string(),
            "--metrics-addr=127.0.0.1:0".to_string(),
            format!("--kubelet-dir={}", work.path().join("kubelet").display()),
        ],
    )
    .await?;
    let report = work.path().join("sanity.xml");
    let out = Command::new(tool("csi-sanity")?)
        .arg(format!("--csi.endpoint={}", driver.endpoint()))
        .arg(format!(
            "--csi.mountdir={}",
            work.path().join("mnt").display()
        ))
        .arg(format!(
            "--csi.stagingdir={}",
            work.path().join("stg").display()
        ))
        .arg("--ginkgo.skip=\\[Controller Server\\]|should remove target path|should work|should be idempotent")
        .arg("--ginkgo.no-color")
        .arg(format!("--ginkgo.junit-report={}", report.display()))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let xml = std::fs::read_to_string(&report)
        .map_err(|e| anyhow::anyhow!("no JUnit report ({e}); csi-sanity said:\n{stdout}"))?;
    let (tests, failed, skipped) = junit_counts(&xml);
    let ran = tests - skipped;
    println!("csi-sanity: {ran} specs ran, {failed} failed, {skipped} skipped/filtered");
    assert!(
        out.status.success(),
        "csi-sanity failed:\n{stdout}\n--- driver log ---\n{}",
        driver.log()
    );
    assert_eq!(failed, 0, "{stdout}");
    assert!(
        ran >= 3,
        "expected the Identity specs (GetPluginInfo, GetPluginCapabilities, Probe) to run; ran {ran}:\n{stdout}"
    );
    Ok(())
}
