//! The control plane is real: CRDs served, RBAC enforced, tokens minted and
//! reviewed by the API server itself.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassSpec,
};
use secrets_store_crds::v1alpha1;
use secrets_store_testkit::ControlPlane;

#[tokio::test]
async fn secret_provider_class_round_trips_typed_through_the_api_server() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("spc").await?;
    let client = cp.client().await?;
    let api: Api<SecretProviderClass> = Api::namespaced(client.clone(), &ns);
    let spec = SecretProviderClassSpec {
        provider: "alibabacloud".into(),
        parameters: BTreeMap::from([("objects".to_string(), "- objectName: db\n".to_string())]),
        secret_objects: vec![SecretObject {
            secret_name: "db".into(),
            type_: "Opaque".into(),
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            annotations: BTreeMap::new(),
            data: vec![SecretObjectData {
                object_name: "db".into(),
                key: "password".into(),
            }],
        }],
    };
    let created = api
        .create(
            &PostParams::default(),
            &SecretProviderClass::new("db", spec.clone()),
        )
        .await?;
    assert!(
        created.metadata.uid.is_some(),
        "the API server assigned a uid"
    );
    let read = api.get("db").await?;
    assert_eq!(read.spec, spec);

    // The same object is served as v1alpha1 (no conversion webhook needed).
    let old: Api<v1alpha1::SecretProviderClass> = Api::namespaced(client, &ns);
    let read_old = old.get("db").await?;
    assert_eq!(read_old.spec.spec, spec);
    Ok(())
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_wrong_types_rejected() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("schema").await?;
    let client = cp.client().await?;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        &ns,
        &kube::api::ApiResource::erase::<SecretProviderClass>(&()),
    );
    let bad: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "bad"},
        "spec": {"provider": "x", "parameters": {"n": 1}},
    }))?;
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("integer parameter accepted");
    assert!(
        err.to_string().contains("spec.parameters.n"),
        "unexpected error: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn token_request_and_token_review_round_trip() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("tokens").await?;
    let client = cp.client().await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("app".into());
    sas.create(&PostParams::default(), &sa).await?;

    let tr = sas
        .create_token_request(
            "app",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec!["sts.example.com".into()]),
                    expiration_seconds: Some(600),
                    bound_object_ref: None,
                }),
                ..Default::default()
            },
        )
        .await?;
    let token = tr.status.and_then(|s| s.token).expect("token in status");
    assert_eq!(token.split('.').count(), 3, "a JWT");

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = |token: String, aud: &str| TokenReview {
        spec: TokenReviewSpec {
            token,
            audiences: Some(vec![aud.to_string()]),
        },
        ..Default::default()
    };
    let ok = reviews
        .create(
            &PostParams::default(),
            &review(token.clone(), "sts.example.com"),
        )
        .await?;
    let status = ok.status.expect("review status");
    assert_eq!(status.authenticated, Some(true), "{:?}", status.error);
    let user = status.user.expect("user info");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{ns}:app").as_str())
    );
    assert_eq!(status.audiences, Some(vec!["sts.example.com".to_string()]));

    let wrong = reviews
        .create(&PostParams::default(), &review(token.clone(), "other"))
        .await?;
    assert_ne!(
        wrong.status.and_then(|s| s.authenticated),
        Some(true),
        "wrong audience accepted"
    );
    Ok(())
}

#[tokio::test]
async fn rbac_is_enforced_for_service_account_tokens() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rbac").await?;
    let client = cp.client().await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("nobody".into());
    sas.create(&PostParams::default(), &sa).await?;
    let token = sas
        .create_token_request("nobody", &PostParams::default(), &TokenRequest::default())
        .await?
        .status
        .and_then(|s| s.token)
        .expect("token");
    let as_sa = cp.client_with_token(&token).await?;
    let secrets: Api<Secret> = Api::namespaced(as_sa, &ns);
    let err = secrets
        .list(&Default::default())
        .await
        .expect_err("listing secrets allowed without RBAC");
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403, got {other}"),
    }
    Ok(())
}
