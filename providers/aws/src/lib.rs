//! The `aws` provider: mounts AWS Secrets Manager secrets and SSM Parameter
//! Store parameters, a drop-in for upstream's
//! `secrets-store-csi-driver-provider-aws` 3.1.1.
//!
//! The provider API server, request decoding, YAML, paths, jmesPath and the
//! cache/coalesce/backoff helpers come from `secrets-store-provider-sdk`;
//! this crate holds the flags ([`config`]), the `objects` descriptors and
//! their validation ([`objects`], [`validate_parameters`]), the pod's
//! credentials ([`auth`]: IRSA and EKS Pod Identity), the backend calls
//! through the official AWS SDK ([`backend`]), errors and their gRPC codes
//! ([`error`]) and the mount flow ([`provider`]).

pub mod auth;
pub mod backend;
pub mod config;
pub mod error;
pub mod objects;
pub mod provider;

use std::collections::BTreeMap;
use std::sync::Arc;

use secrets_store_provider_sdk::objects::Strictness;
use secrets_store_provider_sdk::ops::backoff::Backoff;
use secrets_store_provider_sdk::parameters::{self, ParameterError};
use secrets_store_provider_sdk::{Server, ServerConfig};

pub use config::Flags;
pub use provider::AwsProvider;

/// Provider name (`spec.provider`, socket stem).
pub const PROVIDER_NAME: &str = "aws";
/// `runtime_name` of the Version RPC, and the SDK app id's prefix.
pub const RUNTIME_NAME: &str = "secrets-store-csi-driver-provider-aws";

/// SecretProviderClass parameters this provider reads.
pub const PARAMETERS: &[&str] = &[
    "objects",
    "region",
    "failoverRegion",
    "pathTranslation",
    "usePodIdentity",
    "preferredAddressType",
];

/// Strict validation of an `aws` class's parameters, without a pod or a
/// backend: unknown parameter names (besides the driver's
/// `csi.storage.k8s.io/*` and `secretProviderClass`), malformed values,
/// unknown fields in `objects`, and every check a mount makes of the
/// objects (ARN regions against `region` only when it is set).
pub fn validate_parameters(
    parameters: &BTreeMap<String, String>,
) -> Result<(), Vec<ParameterError>> {
    let mut errors: Vec<ParameterError> = parameters::known_only(parameters, PARAMETERS)
        .err()
        .into_iter()
        .chain(parameters::boolean(parameters, "usePodIdentity").err())
        .collect();
    let get = |k: &str| parameters.get(k).map(String::as_str).unwrap_or_default();
    match get("preferredAddressType").to_ascii_lowercase().as_str() {
        "" | "auto" | "ipv4" | "ipv6" => {}
        other => errors.push(ParameterError::new(
            "preferredAddressType",
            format!("must be ipv4, ipv6 or auto, not {other:?}"),
        )),
    }
    let mut regions = vec![get("region").to_string()];
    if !get("failoverRegion").is_empty() {
        if get("failoverRegion") == get("region") {
            errors.push(ParameterError::new(
                "failoverRegion",
                format!(
                    "{}: failover region cannot be the same as the primary region",
                    get("region")
                ),
            ));
        }
        regions.push(get("failoverRegion").to_string());
    }
    if let Err(e) = objects::parse(
        get("objects"),
        parameters.get("pathTranslation").map(String::as_str),
        &regions,
        Strictness::Strict,
    ) {
        let which = match e {
            objects::ObjectError::Translation(_) => "pathTranslation",
            _ => "objects",
        };
        errors.push(ParameterError::new(which, e));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Runs the provider until SIGTERM/SIGINT.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let endpoints = config::Endpoints::from_env(env);
    if flags.driver_writes_secrets {
        tracing::info!(
            "--driver-writes-secrets: the driver writes the files (always the case here)"
        );
    }
    let version = if flags.eks_addon_version.is_empty() {
        env!("CARGO_PKG_VERSION").to_string()
    } else {
        flags.eks_addon_version.clone()
    };
    let app_id = format!("{RUNTIME_NAME}-{version}");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let backoff = Backoff::default();
    let auth = auth::Authenticator::new(
        auth::AuthConfig {
            sts_endpoint: endpoints.sts.clone(),
            agent_endpoint: flags.pod_identity_endpoint.clone(),
            agent_timeout: config::pod_identity_timeout(&flags.pod_identity_http_timeout),
            use_fips: endpoints.use_fips,
        },
        http.clone(),
        backoff,
    );
    let backend = backend::Backend::new(http, endpoints, &app_id, backoff);
    let kube = match kube_client(&flags).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "no Kubernetes client; IRSA and the node region lookup are unavailable");
            None
        }
    };
    let provider = Arc::new(AwsProvider::new(auth, backend, kube, env("AWS_REGION")));
    tracing::info!(
        "this provider requires tokenRequests in the CSIDriver spec (audiences: sts.amazonaws.com, pods.eks.amazonaws.com)"
    );
    let server = Server::bind(
        ServerConfig {
            providers_dir: flags.provider_volume.clone(),
            name: PROVIDER_NAME.into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            healthz: None,
        },
        provider,
    )
    .await?;
    server.serve(secrets_store_provider_sdk::shutdown()).await?;
    Ok(())
}

async fn kube_client(flags: &Flags) -> anyhow::Result<kube::Client> {
    // kube-rs has no client-side rate limiter: `--qps`/`--burst` are
    // accepted and the API server's own flow control applies.
    tracing::debug!(qps = flags.qps, burst = flags.burst, "Kubernetes client");
    let config = kube::Config::infer().await?;
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_is_strict() {
        let good = params(&[
            ("objects", "- {objectName: a, objectType: secretsmanager}\n"),
            ("region", "us-east-1"),
            ("usePodIdentity", "true"),
            ("preferredAddressType", "ipv6"),
            ("csi.storage.k8s.io/pod.name", "p"),
            ("secretProviderClass", "spc"),
        ]);
        assert_eq!(validate_parameters(&good), Ok(()));
        let bad = params(&[
            (
                "objects",
                "- {objectName: a, objectType: secretsmanager, objectTyp: x}\n",
            ),
            ("regoin", "us-east-1"),
            ("usePodIdentity", "yes"),
            ("preferredAddressType", "ipv5"),
            ("pathTranslation", "ab"),
        ]);
        let errs: Vec<String> = validate_parameters(&bad)
            .expect_err("bad")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("regoin: unknown parameter"), "{errs:?}");
        assert_eq!(
            errs[1],
            "usePodIdentity: must be \"true\" or \"false\", not \"yes\""
        );
        assert_eq!(
            errs[2],
            "preferredAddressType: must be ipv4, ipv6 or auto, not \"ipv5\""
        );
        assert_eq!(
            errs[3],
            "pathTranslation: pathTranslation must be either 'False' or a single character string"
        );
        let unknown_field = params(&[(
            "objects",
            "- {objectName: a, objectType: secretsmanager, objectTyp: x}\n",
        )]);
        let e = validate_parameters(&unknown_field).expect_err("field");
        assert!(
            e[0].to_string().contains("unknown field `objectTyp`"),
            "{e:?}"
        );
        let same = params(&[("region", "r"), ("failoverRegion", "r")]);
        assert_eq!(
            validate_parameters(&same).expect_err("same")[0].to_string(),
            "failoverRegion: r: failover region cannot be the same as the primary region"
        );
        // No region: ARN regions cannot be compared and are accepted.
        let arn = params(&[(
            "objects",
            "- objectName: arn:aws:secretsmanager:eu-west-1:1:secret:a\n",
        )]);
        assert_eq!(validate_parameters(&arn), Ok(()));
    }
}
