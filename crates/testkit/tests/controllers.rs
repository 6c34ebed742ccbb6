//! kube-controller-manager runs on demand: garbage collection works.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use secrets_store_testkit::{ControlPlane, wait_for};

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() -> anyhow::Result<()> {
    let cp = ControlPlane::shared_with_controllers().await?;
    let ns = cp.namespace("gc").await?;
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await?, &ns);
    let mut owner = ConfigMap::default();
    owner.metadata.name = Some("owner".into());
    let owner = api.create(&PostParams::default(), &owner).await?;
    let mut dependent = ConfigMap::default();
    dependent.metadata.name = Some("dependent".into());
    dependent.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.metadata.uid.clone().expect("uid"),
        ..Default::default()
    }]);
    api.create(&PostParams::default(), &dependent).await?;
    api.delete("owner", &DeleteParams::background()).await?;
    wait_for(
        "GC of the dependent",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async { Ok(api.get_opt("dependent").await?.is_none().then_some(())) },
    )
    .await?;
    Ok(())
}
