//! The CSI conformance suite, csi-sanity, against the driver binary.
//!
//! The suite runs its Identity Service specs against our socket, and the
//! JUnit report it writes is parsed to assert every spec ran and passed.
//! Groups left out, one reason each:
//! - Node Service: the node RPCs come with the node-driver issue, which
//!   widens the focus here;
//! - Controller Server, ListSnapshots, DeleteSnapshot, ExpandVolume and the
//!   other `[Controller Server]` groups: a node-only ephemeral driver serves
//!   no Controller service, and those specs do not skip themselves.

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
async fn csi_sanity_identity_specs_pass() -> anyhow::Result<()> {
    let driver = DriverProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_secrets-store-csi-driver")),
        &["--nodeid=sanity-node".to_string()],
    )
    .await?;
    let work = tempfile::tempdir()?;
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
        .arg("--ginkgo.focus=Identity Service")
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
