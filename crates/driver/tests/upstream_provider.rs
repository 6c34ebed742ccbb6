//! Wire compatibility with a provider built on upstream's Go stack: the
//! upstream driver's own fake provider (v1.6.0, grpc-go, upstream's
//! generated code) behind our driver, through the kubelet simulator.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Env, mount_type};
use secrets_store_testkit::process::Process;
use secrets_store_testkit::tools::tool;

#[tokio::test]
async fn our_driver_mounts_from_the_upstream_go_provider() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    let spec = serde_json::json!({
        "files": [
            {"path": "foo", "mode": 0o644, "contents": "secret"},
            {"path": "nested/fookey", "mode": 0o600, "contents": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
        ],
        "objects": {"secret/foo": "v1", "secret/fookey": "v1"},
    });
    let spec_file = env.providers_dir.join("upstream.json");
    std::fs::write(&spec_file, spec.to_string())?;
    let socket = env.providers_dir.join("upstream.sock");
    let mut peer = Process::spawn(
        "upstream-fake-provider",
        &tool("upstream-fake-provider")?,
        &[
            format!("--endpoint={}", socket.display()),
            format!("--spec={}", spec_file.display()),
        ],
        &[],
        &env.providers_dir.join("upstream.log"),
    )?;
    secrets_store_testkit::wait_for(
        "the Go provider socket",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let ready = socket.exists();
            async move { Ok(ready.then_some(())) }
        },
    )
    .await?;

    env.spc(
        "up",
        "upstream",
        &[("objects", "array:\n  - |\n    objectName: foo\n")],
    )
    .await?;
    let pod = env.pod("up", "up").await?;
    let target = env.target(&pod);
    env.publish(&pod).await??;
    peer.check_running()?;

    assert_eq!(mount_type(&target).as_deref(), Some("tmpfs"));
    assert_eq!(std::fs::read_to_string(target.join("foo"))?, "secret");
    assert!(
        std::fs::read_to_string(target.join("nested/fookey"))?
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert_eq!(
        std::fs::metadata(target.join("nested/fookey"))?
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let status = env
        .wait_status(&format!("up-{}-up", env.ns), |_| true)
        .await?
        .status
        .expect("status");
    let ids: Vec<_> = status
        .objects
        .iter()
        .map(|o| (o.id.as_str(), o.version.as_str()))
        .collect();
    assert_eq!(ids, [("secret/foo", "v1"), ("secret/fookey", "v1")]);

    env.kubelet.unpublish(&pod, "secrets").await??;
    common::assert_untouched(&target);
    Ok(())
}
