//! The node region lookup against a real API server: a SecretProviderClass
//! without `region` uses the region label of the node the pod runs on,
//! read once and cached.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use secrets_store_provider_alibabacloud::region::{RegionError, RegionLookup};
use secrets_store_testkit::ControlPlane;

#[tokio::test]
async fn region_comes_from_the_pods_node_label_and_is_cached() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let ns = cp.namespace("region").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    for (name, labels) in [
        (
            "node-hz",
            BTreeMap::from([(
                "topology.kubernetes.io/region".to_string(),
                "cn-hangzhou".to_string(),
            )]),
        ),
        ("node-bare", BTreeMap::new()),
    ] {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.metadata.labels = Some(labels);
        nodes.create(&PostParams::default(), &node).await?;
    }
    // No controller-manager here: create the namespace's default account.
    let mut sa = k8s_openapi::api::core::v1::ServiceAccount::default();
    sa.metadata.name = Some("default".into());
    Api::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (pod, node) in [("on-hz", "node-hz"), ("on-bare", "node-bare")] {
        let mut p = Pod::default();
        p.metadata.name = Some(pod.into());
        p.spec = Some(PodSpec {
            node_name: Some(node.into()),
            automount_service_account_token: Some(false),
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "c".into(),
                image: Some("pause".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        pods.create(&PostParams::default(), &p).await?;
    }

    let lookup = RegionLookup::new(Some(client.clone()), None);
    assert_eq!(lookup.region(&ns, "on-hz").await?, "cn-hangzhou");
    let err = lookup.region(&ns, "on-bare").await.expect_err("no label");
    assert!(
        matches!(err, RegionError::NoLabel(ref n) if n == "node-bare"),
        "{err}"
    );

    // Cached: a label change is not seen by the same lookup.
    let patch = serde_json::json!({"metadata": {"labels": {"topology.kubernetes.io/region": "cn-beijing"}}});
    nodes
        .patch("node-hz", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    assert_eq!(lookup.region(&ns, "on-hz").await?, "cn-hangzhou");
    // A fresh lookup (a restarted provider) sees the new label.
    let fresh = RegionLookup::new(Some(client), Some("node-hz".into()));
    assert_eq!(fresh.region(&ns, "ignored").await?, "cn-beijing");
    Ok(())
}
