//! The secret sync controller against the real API server: a synced Secret
//! deleted by hand comes back within one resync, a failed sync is retried
//! without a new publish, and credential-minting Secret types are refused.

mod common;

use std::time::Duration;

use common::{Env, http_get, parse_metrics, secret_data};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use secrets_store_crds::v1::SecretObject;
use secrets_store_testkit::fake_provider::Behavior;
use secrets_store_testkit::wait_for;

/// Short resync so a repair is observable; retries are capped by it too.
const RESYNC: &str = "--secret-sync-resync-interval=2s";

fn opaque(name: &str) -> SecretObject {
    SecretObject {
        secret_name: name.into(),
        type_: "Opaque".into(),
        data: secret_data(&[("pw", "password")]),
        ..Default::default()
    }
}

/// One published pod of class `class` whose provider serves `pw`.
async fn published(env: &Env, class: &str, objects: Vec<SecretObject>) -> anyhow::Result<()> {
    env.spc_with_secrets(class, objects, &[]).await?;
    env.provider
        .set(Behavior::files(&[("pw", b"s3cret", 0o644)], &[("pw", "1")]));
    let pod = env.pod(class, class).await?;
    env.publish(&pod).await??;
    Ok(())
}

fn managed(s: &Secret) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("secrets-store.csi.k8s.io/managed"))
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_synced_secret_deleted_by_hand_comes_back_within_one_resync() -> anyhow::Result<()> {
    let env = Env::start(&[RESYNC]).await?;
    published(&env, "kept", vec![opaque("kept")]).await?;
    let first = env.wait_secret("kept", managed).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    secrets.delete("kept", &DeleteParams::default()).await?;
    let back = env
        .wait_secret("kept", |s| s.metadata.uid != first.metadata.uid)
        .await?;
    assert_eq!(back.data.unwrap_or_default()["password"].0, b"s3cret");
    assert_eq!(
        back.metadata.owner_references,
        first.metadata.owner_references
    );
    assert_eq!(
        env.provider.requests().len(),
        1,
        "no new publish was needed"
    );
    // The repair is counted, labelled with the installed provider.
    let url = env.metrics_url()?;
    wait_for(
        "sync_k8s_secret_total{provider=\"fake\"} >= 2 (created, re-created)",
        common::SYNC_TIMEOUT,
        Duration::from_millis(100),
        || async {
            let (_, text) = http_get(&url).await?;
            let synced: f64 = parse_metrics(&text)
                .iter()
                .filter(|(n, l, _)| {
                    n == "sync_k8s_secret_total"
                        && l.get("provider").map(String::as_str) == Some("fake")
                })
                .map(|(_, _, v)| v)
                .sum();
            Ok((synced >= 2.0).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_sync_is_retried_until_it_succeeds() -> anyhow::Result<()> {
    let env = Env::start(&[RESYNC]).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let mut foreign = Secret::default();
    foreign.metadata.name = Some("blocked".into());
    foreign.string_data = Some([("mine".to_string(), "not yours".to_string())].into());
    secrets.create(&PostParams::default(), &foreign).await?;
    published(&env, "blocked", vec![opaque("blocked")]).await?;
    env.wait_event(
        "blocked",
        "FailedToCreateSecret",
        &["blocked", "is not managed"],
    )
    .await?;
    assert!(!managed(&secrets.get("blocked").await?), "never adopted");

    secrets.delete("blocked", &DeleteParams::default()).await?;
    let synced = env.wait_secret("blocked", managed).await?;
    assert_eq!(synced.data.unwrap_or_default()["password"].0, b"s3cret");
    assert_eq!(
        env.provider.requests().len(),
        1,
        "no new publish was needed"
    );
    Ok(())
}

#[tokio::test]
async fn credential_minting_secret_types_are_refused_with_an_event() -> anyhow::Result<()> {
    let env = Env::start(&[RESYNC]).await?;
    let token = |name: &str, type_: &str| SecretObject {
        type_: type_.into(),
        annotations: [(
            "kubernetes.io/service-account.name".to_string(),
            "default".to_string(),
        )]
        .into(),
        ..opaque(name)
    };
    published(
        &env,
        "tokens",
        vec![
            token("sa-token", "kubernetes.io/service-account-token"),
            token("bootstrap-token-abcdef", "bootstrap.kubernetes.io/token"),
            opaque("fine"),
        ],
    )
    .await?;
    env.wait_event(
        "tokens",
        "FailedToCreateSecret",
        &[
            "secret sa-token: type kubernetes.io/service-account-token is refused",
            "long-lived service account token",
        ],
    )
    .await?;
    env.wait_event(
        "tokens",
        "FailedToCreateSecret",
        &["type bootstrap.kubernetes.io/token is refused"],
    )
    .await?;
    // The allowed Secret of the same class is synced: the pass ran.
    env.wait_secret("fine", managed).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    for name in ["sa-token", "bootstrap-token-abcdef"] {
        assert!(secrets.get_opt(name).await?.is_none(), "{name} was created");
    }
    Ok(())
}
