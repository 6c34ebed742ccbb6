//! Secret sync, rotation, the refresh trigger and metrics, end to end
//! against the real API server (with kube-controller-manager for garbage
//! collection).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, http_get, parse_metrics, secret_data};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use secrets_store_crds::v1::{SecretObject, SecretProviderClass};
use secrets_store_testkit::fake_provider::Behavior;
use secrets_store_testkit::wait_for;

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEkey\n-----END PRIVATE KEY-----\n";

/// The status object of `pod`'s volume of class `app`, as a Secret owner.
async fn status_owner(env: &Env, pod: &str) -> anyhow::Result<OwnerReference> {
    let status = env
        .wait_status(&format!("{pod}-{}-app", env.ns), |_| true)
        .await?;
    Ok(OwnerReference {
        api_version: "secrets-store.csi.x-k8s.io/v1".into(),
        kind: "SecretProviderClassPodStatus".into(),
        name: status.metadata.name.unwrap_or_default(),
        uid: status.metadata.uid.unwrap_or_default(),
        ..Default::default()
    })
}

/// A pod `name` owned (as its controller) by a new ConfigMap `owner`.
async fn owned_pod(env: &Env, name: &str, owner: &str) -> anyhow::Result<(Pod, OwnerReference)> {
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    let mut map = ConfigMap::default();
    map.metadata.name = Some(owner.into());
    let map = maps.create(&PostParams::default(), &map).await?;
    let reference = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.into(),
        uid: map.metadata.uid.unwrap_or_default(),
        ..Default::default()
    };
    let flagged = OwnerReference {
        controller: Some(true),
        block_owner_deletion: Some(true),
        ..reference.clone()
    };
    env.pod(name, "app").await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let patch = serde_json::json!({"metadata": {"ownerReferences": [flagged]}});
    let pod = pods
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok((pod, reference))
}

fn owner_names(secret: &Secret) -> Vec<String> {
    let mut names: Vec<String> = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|o| o.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn secret_objects_sync_with_exact_content_owners_and_gc_and_never_adopt() -> anyhow::Result<()>
{
    let env = Env::start_with_controllers(&[]).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    // Someone else's Secret with a name the SPC wants.
    let mut foreign = Secret::default();
    foreign.metadata.name = Some("taken".into());
    foreign.string_data = Some([("mine".to_string(), "not yours".to_string())].into());
    let foreign = secrets.create(&PostParams::default(), &foreign).await?;

    env.spc_with_secrets(
        "app",
        vec![
            SecretObject {
                secret_name: "app-creds".into(),
                type_: "Opaque".into(),
                labels: [("environment".to_string(), "test".to_string())].into(),
                annotations: [("team".to_string(), "payments".to_string())].into(),
                data: secret_data(&[("user", "username"), ("pw", "password")]),
            },
            SecretObject {
                secret_name: "app-tls".into(),
                type_: "kubernetes.io/tls".into(),
                data: secret_data(&[("tls/bundle.pem", "tls.crt"), ("tls/bundle.pem", "tls.key")]),
                ..Default::default()
            },
            SecretObject {
                secret_name: "taken".into(),
                type_: "Opaque".into(),
                data: secret_data(&[("user", "u")]),
                ..Default::default()
            },
        ],
        &[],
    )
    .await?;
    let bundle = format!("{KEY}{CERT}");
    env.provider.set(Behavior::files(
        &[
            ("user", b"admin", 0o644),
            ("pw", b"hunter2", 0o600),
            ("tls/bundle.pem", bundle.as_bytes(), 0o600),
        ],
        &[("user", "1"), ("pw", "1"), ("tls", "1")],
    ));
    let pod1 = env.pod("web-1", "app").await?;
    env.publish(&pod1).await??;

    let creds = env.wait_secret("app-creds", |_| true).await?;
    assert_eq!(creds.type_.as_deref(), Some("Opaque"));
    let d = creds.data.clone().unwrap_or_default();
    assert_eq!(d.len(), 2);
    assert_eq!(d["username"].0, b"admin");
    assert_eq!(d["password"].0, b"hunter2");
    let labels = creds.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("environment").map(String::as_str), Some("test"));
    assert_eq!(
        labels
            .get("secrets-store.csi.k8s.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        creds
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("payments")
    );
    // A pod without owners: the Secret is owned by its status object (as
    // upstream does), which the pod owns.
    assert_eq!(
        creds.metadata.owner_references,
        Some(vec![status_owner(&env, "web-1").await?])
    );

    let tls = env.wait_secret("app-tls", |_| true).await?;
    assert_eq!(tls.type_.as_deref(), Some("kubernetes.io/tls"));
    let d = tls.data.clone().unwrap_or_default();
    assert_eq!(String::from_utf8(d["tls.crt"].0.clone())?, CERT);
    assert_eq!(String::from_utf8(d["tls.key"].0.clone())?, KEY);

    // The foreign Secret is untouched and an event says why.
    env.wait_event("web-1", "FailedToCreateSecret", &["taken", "not managed"])
        .await?;
    let after = secrets.get("taken").await?;
    assert_eq!(
        after.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert!(
        !after
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("secrets-store.csi.k8s.io/managed")
    );

    // A second pod adds its status object; nothing is dropped.
    let pod2 = env.pod("web-2", "app").await?;
    env.publish(&pod2).await??;
    let both = [
        format!("web-1-{}-app", env.ns),
        format!("web-2-{}-app", env.ns),
    ];
    env.wait_secret("app-creds", |s| owner_names(s) == both)
        .await?;
    // A pod with owners: the Secret gets those owners (as upstream: never
    // its controller flag or blockOwnerDeletion), not the pod.
    let (pod3, map) = owned_pod(&env, "web-3", "web-owner").await?;
    env.publish(&pod3).await??;
    let with_map = env
        .wait_secret("app-creds", |s| {
            owner_names(s).contains(&"web-owner".to_string())
        })
        .await?;
    let owners = with_map.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 3, "{owners:?}");
    assert_eq!(owners[2], map);

    // The garbage collector drops deleted owners and deletes the Secrets
    // with the last one.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.delete("web-1", &DeleteParams::default()).await?;
    pods.delete("web-2", &DeleteParams::default()).await?;
    env.wait_secret("app-creds", |s| owner_names(s) == ["web-owner"])
        .await?;
    assert!(
        secrets.get_opt("app-tls").await?.is_some(),
        "still owned by web-owner"
    );
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    maps.delete("web-owner", &DeleteParams::default()).await?;
    wait_for(
        "GC of the synced Secrets",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            let gone = secrets.get_opt("app-creds").await?.is_none()
                && secrets.get_opt("app-tls").await?.is_none();
            Ok(gone.then_some(()))
        },
    )
    .await?;
    assert!(
        secrets.get_opt("taken").await?.is_some(),
        "the foreign Secret is never deleted"
    );
    Ok(())
}

#[tokio::test]
async fn rotation_updates_file_secret_status_and_events_only_when_content_changes()
-> anyhow::Result<()> {
    let env = Env::start(&["--enable-secret-rotation", "--rotation-poll-interval=0s"]).await?;
    env.spc_with_secrets(
        "rot",
        vec![SecretObject {
            secret_name: "rot".into(),
            type_: "Opaque".into(),
            data: secret_data(&[("pw", "password")]),
            ..Default::default()
        }],
        &[],
    )
    .await?;
    env.provider
        .set(Behavior::files(&[("pw", b"v1", 0o644)], &[("pw", "1")]));
    let pod = env.pod("rot", "rot").await?;
    let target = env.target(&pod);
    env.publish(&pod).await??;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let status_name = format!("rot-{}-rot", env.ns);

    // Unchanged content: nothing rewritten.
    let data_dir = std::fs::read_link(target.join("..data"))?;
    let mtime = std::fs::metadata(target.join("pw"))?.modified()?;
    let rv = env
        .wait_secret("rot", |_| true)
        .await?
        .metadata
        .resource_version;
    env.publish(&pod).await??;
    assert_eq!(
        env.provider.requests().len(),
        2,
        "the republish asked the provider"
    );
    assert_eq!(std::fs::read_link(target.join("..data"))?, data_dir);
    assert_eq!(std::fs::metadata(target.join("pw"))?.modified()?, mtime);
    assert_eq!(secrets.get("rot").await?.metadata.resource_version, rv);

    // New content at the provider: file, Secret, status and events follow.
    env.provider
        .set(Behavior::files(&[("pw", b"v2", 0o644)], &[("pw", "2")]));
    env.publish(&pod).await??;
    assert_eq!(std::fs::read(target.join("pw"))?, b"v2");
    env.wait_secret("rot", |s| {
        s.data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|v| &v.0[..])
            == Some(b"v2")
    })
    .await?;
    let objects = env
        .wait_status(&status_name, |s| {
            s.status
                .as_ref()
                .is_some_and(|s| s.objects.iter().any(|o| o.version == "2"))
        })
        .await?
        .status
        .expect("status")
        .objects;
    assert_eq!(objects[0].version, "2");
    let evs = env.events_for("rot").await?;
    assert!(
        evs.iter().any(|(r, _)| r == "MountRotationComplete"),
        "{evs:?}"
    );
    env.wait_event("rot", "SecretRotationComplete", &[]).await?;

    // The provider fails: the old content stays, and that is reported.
    env.provider.set(Behavior::Fail(
        tonic::Code::Unavailable,
        "backend down".into(),
    ));
    env.publish(&pod).await??;
    assert_eq!(std::fs::read(target.join("pw"))?, b"v2");
    assert_eq!(
        secrets.get("rot").await?.data.unwrap_or_default()["password"].0,
        b"v2"
    );
    let evs = env.events_for("rot").await?;
    assert!(
        evs.iter()
            .any(|(r, n)| r == "MountRotationFailed" && n.contains("previous content is kept")),
        "{evs:?}"
    );

    // Metrics, parsed: every flow above was counted.
    let (_, text) = http_get(&env.metrics_url()?).await?;
    let metrics = parse_metrics(&text);
    let total = |name: &str| -> f64 {
        metrics
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    };
    // One first publish; the republishes were refreshes, counted as
    // rotations (a refresh is not a publish, a hidden failure not an error
    // of NodePublishVolume).
    assert_eq!(total("node_publish_total"), 1.0, "{text}");
    assert_eq!(total("node_publish_error_total"), 0.0, "{text}");
    assert!(total("sync_k8s_secret_total") >= 2.0, "{text}");
    assert!(total("sync_k8s_secret_duration_sec_count") >= 2.0, "{text}");
    assert_eq!(total("rotation_reconcile_total"), 2.0, "{text}");
    assert_eq!(total("rotation_reconcile_error_total"), 1.0, "{text}");
    assert!(
        total("rotation_reconcile_duration_sec_count") >= 2.0,
        "{text}"
    );
    let rotated: f64 = metrics
        .iter()
        .filter(|(n, l, _)| {
            n == "rotation_reconcile_total" && l.get("rotated").map(String::as_str) == Some("true")
        })
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(rotated, 1.0, "exactly one refresh changed content");
    env.kubelet.unpublish(&pod, "secrets").await??;
    let bad = secrets_store_proto::csi::v1::NodeUnpublishVolumeRequest {
        volume_id: String::new(),
        target_path: "/x".into(),
    };
    let mut node = secrets_store_proto::csi::v1::node_client::NodeClient::new(
        secrets_store_testkit::csi::connect(env.driver.socket()).await?,
    );
    assert!(node.node_unpublish_volume(bad).await.is_err());
    let metrics = parse_metrics(&http_get(&env.metrics_url()?).await?.1);
    let total = |name: &str| -> f64 {
        metrics
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(total("node_unpublish_total"), 1.0);
    assert_eq!(total("node_unpublish_error_total"), 1.0);
    Ok(())
}

#[tokio::test]
async fn per_class_interval_and_on_demand_trigger() -> anyhow::Result<()> {
    // The flag's interval is an hour: only the class settings can refresh.
    let env = Env::start(&[
        "--enable-secret-rotation",
        "--rotation-poll-interval=1h",
        "--min-rotation-poll-interval=0s",
    ])
    .await?;
    env.spc_with_secrets(
        "fast",
        vec![],
        &[("secrets-store.csi.k8s.io/rotation-poll-interval", "0s")],
    )
    .await?;
    env.spc_with_secrets("slow", vec![], &[]).await?;
    env.provider
        .set(Behavior::files(&[("f", b"1", 0o644)], &[("f", "1")]));
    let fast = env.pod("fast", "fast").await?;
    let slow = env.pod("slow", "slow").await?;
    env.publish(&fast).await??;
    env.publish(&slow).await??;
    assert_eq!(env.provider.requests().len(), 2);

    env.provider
        .set(Behavior::files(&[("f", b"2", 0o644)], &[("f", "2")]));
    env.publish(&fast).await??;
    env.publish(&slow).await??;
    assert_eq!(
        env.provider.requests().len(),
        3,
        "only the class with a 0s interval refreshed"
    );
    assert_eq!(std::fs::read(env.target(&fast).join("f"))?, b"2");
    assert_eq!(std::fs::read(env.target(&slow).join("f"))?, b"1");

    // Changing the trigger annotation refreshes on the next republish.
    let api: Api<SecretProviderClass> = Api::namespaced(env.client.clone(), &env.ns);
    let patch = serde_json::json!({"metadata": {"annotations": {"secrets-store.csi.k8s.io/refresh-trigger": "2026-11-23T10:00"}}});
    api.patch(
        "slow",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    // The driver reads classes from a watch: the first republish after the
    // watch has delivered the new annotation refreshes.
    let (env_ref, slow_ref) = (&env, &slow);
    wait_for(
        "a republish to honour the new refresh trigger",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async move {
            env_ref.publish(slow_ref).await??;
            let content = std::fs::read(env_ref.target(slow_ref).join("f"))?;
            Ok((content == b"2").then_some(()))
        },
    )
    .await?;
    // The same trigger value again does not refresh again.
    env.provider
        .set(Behavior::files(&[("f", b"3", 0o644)], &[("f", "3")]));
    env.publish(&slow).await??;
    assert_eq!(std::fs::read(env.target(&slow).join("f"))?, b"2");
    Ok(())
}

#[tokio::test]
async fn refresh_loop_refreshes_without_republish_with_fresh_tokens_and_labelled_secret_refs()
-> anyhow::Result<()> {
    use k8s_openapi::api::storage::v1::{CSIDriver, TokenRequest};
    let env = Env::start(&[
        "--enable-secret-rotation",
        "--rotation-poll-interval=1s",
        "--enable-refresh-loop",
    ])
    .await?;
    // The loop mints tokens for the CSIDriver's tokenRequests audiences.
    let drivers: Api<CSIDriver> = Api::all(env.client.clone());
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/csidriver.yaml"
    ))?;
    let mut csidriver: CSIDriver = serde_yaml::from_str(&text)?;
    csidriver.spec.token_requests = Some(vec![TokenRequest {
        audience: "loop-aud".into(),
        expiration_seconds: None,
    }]);
    match drivers.create(&PostParams::default(), &csidriver).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    for (name, labelled) in [("labelled", true), ("unlabelled", false)] {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        if labelled {
            s.metadata.labels = Some(
                [(
                    "secrets-store.csi.k8s.io/used".to_string(),
                    "true".to_string(),
                )]
                .into(),
            );
        }
        s.string_data = Some([("access_key".to_string(), format!("AK-{name}"))].into());
        secrets.create(&PostParams::default(), &s).await?;
    }
    env.spc_with_secrets("loop", vec![], &[]).await?;
    env.provider
        .set(Behavior::files(&[("f", b"v1", 0o644)], &[("f", "1")]));
    let opts = secrets_store_testkit::TokenOptions {
        audiences: vec!["loop-aud".into()],
        ..Default::default()
    };
    let mut pods = Vec::new();
    for (pod, secret) in [("good", "labelled"), ("bad", "unlabelled")] {
        let mut spec = secrets_store_testkit::TestPod::new(&env.ns, pod, "loop");
        spec.volumes[0].node_publish_secret_ref = Some(secret.into());
        let pod = env.kubelet.create_pod(&spec).await?;
        env.kubelet.publish(&pod, "secrets", &opts).await??;
        pods.push(pod);
    }

    // New content at the provider; no republish from kubelet.
    env.provider
        .set(Behavior::files(&[("f", b"v2", 0o644)], &[("f", "2")]));
    let good = env.target(&pods[0]);
    wait_for(
        "the refresh loop to update the file",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let now = std::fs::read(good.join("f")).unwrap_or_default();
            async move { Ok((now == b"v2").then_some(())) }
        },
    )
    .await?;
    let last = env
        .provider
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.target_path == good.display().to_string())
        .expect("a refresh request");
    let secrets_sent: BTreeMap<String, String> = serde_json::from_str(&last.secrets)?;
    assert_eq!(secrets_sent["access_key"], "AK-labelled");
    let attrs: BTreeMap<String, String> = serde_json::from_str(&last.attributes)?;
    let tokens: serde_json::Value =
        serde_json::from_str(&attrs["csi.storage.k8s.io/serviceAccount.tokens"])?;
    assert!(
        tokens["loop-aud"]["token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );

    // The volume whose secret ref is not labelled is left alone, and the log says why.
    wait_for(
        "the loop to report the unlabelled secret",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let log = env.driver.log();
            async move {
                Ok(log
                    .contains("nodePublishSecretRef unlabelled is not labelled")
                    .then_some(()))
            }
        },
    )
    .await?;
    assert_eq!(std::fs::read(env.target(&pods[1]).join("f"))?, b"v1");
    assert!(
        !env.driver.log().contains("AK-labelled"),
        "secret values never logged"
    );
    Ok(())
}
