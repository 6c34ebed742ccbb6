//! `secrets-store fill` through HashiCorp's vault-csi-provider v1.7.4 (the
//! real upstream binary, on its own socket) against a real OpenBao whose
//! Kubernetes auth validates the service account's TokenRequest token (a
//! `--token vault=FILE`) through the shared control plane's TokenReview:
//! the files, their contents and modes, and a `--watch` refresh after the
//! secret changes in OpenBao.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use secrets_store_testkit::process::Process;
use secrets_store_testkit::vault::{Kind, OpenBao, start_peer};
use secrets_store_testkit::{ControlPlane, wait_for};
use serde_json::{Value, json};

const CANARY: &str = "canary-7f3e-fill-upstream";
const CANARY_V2: &str = "canary-7f3e-fill-rotated";

fn spc(ns: &str) -> String {
    format!(
        r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: upstream
spec:
  provider: vault
  parameters:
    roleName: {ns}
    objects: |
      - objectName: password
        secretPath: secret/data/fill/{ns}
        secretKey: password
        filePermission: 0600
      - objectName: api
        secretPath: kv1/fill/{ns}
        secretKey: api
        filePermission: 0440
      - objectName: app.json
        secretPath: secret/data/fill/{ns}
"#
    )
}

/// A `vault`-audience token of service account `app` in `ns`.
async fn token(cp: &ControlPlane, ns: &str) -> anyhow::Result<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(cp.client().await?, ns);
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("app".into());
    sas.create(&PostParams::default(), &sa).await?;
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["vault".into()]),
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tr = sas
        .create_token_request("app", &PostParams::default(), &req)
        .await?;
    tr.status.and_then(|s| s.token).context("no token")
}

fn file(dir: &Path, name: &str) -> anyhow::Result<(String, u32)> {
    let path = dir.join(name);
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    Ok((std::fs::read_to_string(&path)?, mode))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_through_the_upstream_vault_provider() -> anyhow::Result<()> {
    let (cp, bao) = (ControlPlane::shared().await?, OpenBao::shared().await?);
    let ns = cp.namespace("fill-vault").await?;
    let policy = "path \"secret/data/fill/*\" { capabilities = [\"read\"] }\n\
                  path \"kv1/fill/*\" { capabilities = [\"read\"] }\n";
    bao.role(&ns, &ns, policy, Some("vault")).await?;
    let kv2 = format!("secret/data/fill/{ns}");
    let data = json!({"data": {"username": "app", "password": CANARY}});
    bao.api("POST", &kv2, Some(data)).await?;
    let kv1 = json!({"api": "v1-value"});
    bao.api("POST", &format!("kv1/fill/{ns}"), Some(kv1))
        .await?;
    let upstream = start_peer(Kind::Upstream, bao, &[]).await?;

    let dir = tempfile::Builder::new()
        .prefix("fill-upstream-")
        .tempdir()?;
    let jwt = token(cp, &ns).await?;
    let (class, token_file) = (dir.path().join("spc.yaml"), dir.path().join("token"));
    std::fs::write(&class, spc(&ns))?;
    std::fs::write(&token_file, &jwt)?;
    let target = dir.path().join("secrets");
    let args: Vec<String> = vec![
        "fill".into(),
        class.display().to_string(),
        target.display().to_string(),
        format!("--provider-dir={}", upstream.providers_dir().display()),
        format!("--token=vault={}", token_file.display()),
        format!("--pod-namespace={ns}"),
        "--service-account=app".into(),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-store"))
        .args(&args)
        .output()?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}\n{}", upstream.log());
    assert_eq!(
        output,
        format!(
            "filled {} with 3 file(s) from provider \"vault\": api, app.json, password\n",
            target.display()
        )
    );
    assert_eq!(file(&target, "password")?, (CANARY.into(), 0o600));
    assert_eq!(file(&target, "api")?, ("v1-value".into(), 0o440));
    let (whole, mode) = file(&target, "app.json")?;
    assert_eq!(mode, 0o644, "the request's mode");
    let whole: Value = serde_json::from_str(&whole)?;
    assert_eq!(whole["data"]["data"]["password"], CANARY);
    assert!(target.join("..data").is_symlink(), "the driver's layout");

    watch(bao, &args, &target, dir.path()).await?;
    let logs = format!("{output}\n{}", upstream.log());
    assert!(!logs.contains(&jwt), "the token is in the logs");
    assert!(!logs.contains(CANARY), "a secret is in the logs");
    Ok(())
}

/// `fill --watch`: the secret changes in OpenBao and the next refresh
/// writes it; SIGTERM ends the command cleanly.
async fn watch(bao: &OpenBao, args: &[String], target: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut args = args.to_vec();
    args.push("--watch=200ms".into());
    let mut fill = Process::spawn(
        "fill --watch",
        Path::new(env!("CARGO_BIN_EXE_secrets-store")),
        &args,
        &[],
        &dir.join("watch.log"),
    )?;
    let log = fill.log_path().to_path_buf();
    wait_for(
        "the first fill of fill --watch",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move { Ok(text.contains("filled ").then_some(())) }
        },
    )
    .await?;
    let ns = args[5].trim_start_matches("--pod-namespace=");
    let data = json!({"data": {"username": "app", "password": CANARY_V2}});
    bao.api("POST", &format!("secret/data/fill/{ns}"), Some(data))
        .await?;
    // The file is swapped in just before the line is printed.
    wait_for(
        "the rotated password and the refresh line",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            let rotated = file(target, "password").is_ok_and(|f| f.0 == CANARY_V2);
            let said = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("refreshed "));
            async move { Ok((rotated && said).then_some(())) }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", fill.log()))?;
    assert_eq!(file(target, "password")?, (CANARY_V2.into(), 0o600));
    fill.check_running()?;
    let status = fill.signal_and_wait("TERM")?;
    assert!(status.success(), "{status}\n{}", fill.log());
    Ok(())
}
