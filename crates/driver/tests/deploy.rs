//! The deploy manifests are accepted by a real API server.

use k8s_openapi::api::storage::v1::CSIDriver;
use kube::Api;
use kube::api::PostParams;
use secrets_store_testkit::ControlPlane;

#[tokio::test]
async fn csidriver_object_is_valid_and_says_what_the_driver_needs() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/csidriver.yaml"
    ))?;
    let obj: CSIDriver = serde_yaml::from_str(&text)?;
    let cp = ControlPlane::shared().await?;
    let api: Api<CSIDriver> = Api::all(cp.client().await?);
    let created = api.create(&PostParams::default(), &obj).await?;
    let spec = created.spec;
    assert_eq!(
        created.metadata.name.as_deref(),
        Some("secrets-store.csi.k8s.io")
    );
    assert_eq!(spec.pod_info_on_mount, Some(true));
    assert_eq!(spec.attach_required, Some(false));
    assert_eq!(spec.requires_republish, Some(true));
    assert_eq!(spec.fs_group_policy.as_deref(), Some("File"));
    assert_eq!(
        spec.volume_lifecycle_modes,
        Some(vec!["Ephemeral".to_string()])
    );
    let audiences: Vec<String> = spec
        .token_requests
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.audience)
        .collect();
    assert_eq!(audiences, ["sts.aliyuncs.com"]);
    assert_eq!(spec.service_account_token_in_secrets, Some(true));
    Ok(())
}
