//! The project's demo (`./hack/demo.sh`): standalone mode end to end on
//! this machine, without Kubernetes.
//!
//! 1. OpenBao in dev mode on loopback (KV v2 at `secret/`), two secrets, a
//!    read policy, and JWT auth trusting a key made for this run (the JWT
//!    plays the pod's service-account token; Kubernetes and JWT auth share
//!    one login endpoint).
//! 2. Our `vault` provider as its own process.
//! 3. `secrets-store validate`, then `secrets-store fill --watch 1s` fills
//!    `<dir>/secrets` (default `./demo/secrets`) through the provider's
//!    socket; the files are shown.
//! 4. A secret changes in OpenBao; the refreshed file is shown.
//!
//! Then everything stops; also on error and on Ctrl-C. `--dir DIR` puts
//! the class and the secrets elsewhere (the test suite does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::{tools, wait_for};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use common::binary;

const SPC: &str = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: demo
spec:
  provider: vault
  parameters:
    roleName: demo
    vaultAuthMountPath: jwt
    objects: |
      - objectName: db-username
        secretPath: secret/data/demo/db
        secretKey: username
      - objectName: db-password
        secretPath: secret/data/demo/db
        secretKey: password
      - objectName: api-key
        secretPath: secret/data/demo/api
        secretKey: key
"#;

const POLICY: &str = "path \"secret/data/demo/*\" { capabilities = [\"read\"] }\n";
const SUBJECT: &str = "system:serviceaccount:default:demo";

/// The `bao` CLI against the dev server.
struct Bao {
    bin: PathBuf,
    addr: String,
    token: String,
}

impl Bao {
    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "bao {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// Starts `bao server -dev` on a free loopback port and waits until it
/// answers.
async fn start_openbao(work: &Path) -> anyhow::Result<(Process, Bao)> {
    let bao = Bao {
        bin: tools::tool("bao")?,
        addr: format!("http://127.0.0.1:{}", free_port()?),
        token: format!("demo-{:016x}", fastrand::u64(..)),
    };
    let server = Process::spawn(
        "OpenBao dev server",
        &bao.bin,
        &[
            "server".into(),
            "-dev".into(),
            format!("-dev-listen-address={}", &bao.addr["http://".len()..]),
            format!("-dev-root-token-id={}", bao.token),
            "-dev-no-store-token".into(),
        ],
        &[],
        &work.join("openbao.log"),
    )?;
    wait_for(
        "OpenBao",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let ready = bao.run(&["status"]).is_ok();
            async move { Ok(ready.then_some(())) }
        },
    )
    .await?;
    Ok((server, bao))
}

/// Secrets, a policy, and JWT auth trusting `public_pem`.
fn configure(bao: &Bao, work: &Path, public_pem: &str) -> anyhow::Result<()> {
    let (policy, key) = (work.join("demo.hcl"), work.join("jwt.pub"));
    std::fs::write(&policy, POLICY)?;
    std::fs::write(&key, public_pem)?;
    bao.run(&[
        "kv",
        "put",
        "-mount=secret",
        "demo/db",
        "username=app",
        "password=s3cr3t-1",
    ])?;
    bao.run(&[
        "kv",
        "put",
        "-mount=secret",
        "demo/api",
        "key=hello-from-openbao",
    ])?;
    bao.run(&["policy", "write", "demo", &policy.display().to_string()])?;
    bao.run(&["auth", "enable", "jwt"])?;
    bao.run(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys=@{}", key.display()),
    ])?;
    bao.run(&[
        "write",
        "auth/jwt/role/demo",
        "role_type=jwt",
        "bound_audiences=vault",
        "user_claim=sub",
        &format!("bound_subject={SUBJECT}"),
        "token_policies=demo",
        "token_ttl=10m",
    ])
}

/// A signed ES256 JWT for audience `vault`, standing in for the pod's
/// projected service-account token.
fn mint_token(key: &rcgen::KeyPair) -> anyhow::Result<String> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "iss": "secrets-store-demo", "sub": SUBJECT, "aud": ["vault"],
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
            .map_err(|e| anyhow::anyhow!("demo key: {e}"))?;
    let sig = pair
        .sign(&rng, input.as_bytes())
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    Ok(format!("{input}.{}", b64(sig.as_ref())))
}

/// Starts our vault provider with its socket in `<work>/providers`.
async fn start_provider(work: &Path, bao: &Bao) -> anyhow::Result<Process> {
    let providers = work.join("providers");
    std::fs::create_dir_all(&providers)?;
    let provider = Process::spawn(
        "vault provider",
        &binary("secrets-store-csi-driver-provider-vault")?,
        &[
            format!("--provider-volume={}", providers.display()),
            format!("--vault-addr={}", bao.addr),
            format!("--health-addr=127.0.0.1:{}", free_port()?),
        ],
        &[("KUBECONFIG", "/nonexistent")],
        &work.join("provider.log"),
    )?;
    let socket = providers.join("vault.sock");
    secrets_store_testkit::wait_for_socket(&socket).await?;
    Ok(provider)
}

fn show(dir: &Path, names: &[&str]) -> anyhow::Result<()> {
    for name in names {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        println!(
            "    {:<width$} {text}",
            path.display(),
            width = dir.display().to_string().len() + 13
        );
    }
    Ok(())
}

/// Prints `fill`'s lines until one starts with `prefix`.
async fn until(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> anyhow::Result<()> {
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            println!("  {line}");
            if line.starts_with(prefix) {
                return Ok(());
            }
        }
        anyhow::bail!("secrets-store fill stopped before it {prefix} the directory")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .with_context(|| format!("secrets-store fill has not {prefix} the directory in 30 s"))?
}

/// `validate`, then `fill --watch 1s` as its own process.
fn fill(dir: &Path, work: &Path) -> anyhow::Result<Child> {
    let cli = binary("secrets-store")?;
    let spc = dir.join("spc.yaml");
    println!("$ secrets-store validate {}", spc.display());
    let out = std::process::Command::new(&cli)
        .arg("validate")
        .arg(&spc)
        .output()?;
    print!("  {}", String::from_utf8_lossy(&out.stdout));
    anyhow::ensure!(out.status.success(), "the demo class is invalid");
    let secrets = dir.join("secrets");
    println!(
        "$ secrets-store fill {} {} --token vault=<jwt> --watch 1s",
        spc.display(),
        secrets.display()
    );
    let token = work.join("token");
    Ok(tokio::process::Command::new(&cli)
        .arg("fill")
        .arg(&spc)
        .arg(&secrets)
        .arg(format!(
            "--provider-dir={}",
            work.join("providers").display()
        ))
        .arg(format!("--token=vault={}", token.display()))
        .args(["--service-account=demo", "--watch=1s"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

async fn demo(dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("secrets-store-demo-")
        .tempdir()?;
    let (_openbao, bao) = start_openbao(work.path()).await?;
    let key = rcgen::KeyPair::generate()?;
    configure(&bao, work.path(), &key.public_key_pem())?;
    std::fs::write(work.path().join("token"), mint_token(&key)?)?;
    println!(
        "OpenBao dev server on {}: KV v2 secrets demo/db and demo/api, JWT auth role \"demo\"",
        bao.addr
    );
    let _provider = start_provider(work.path(), &bao).await?;
    println!(
        "our vault provider is listening on {}",
        work.path().join("providers/vault.sock").display()
    );
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("spc.yaml"), SPC)?;
    let mut child = fill(dir, work.path())?;
    let stdout = child.stdout.take().context("fill has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    until(&mut lines, "filled").await?;
    let secrets = dir.join("secrets");
    show(&secrets, &["db-username", "db-password", "api-key"])?;
    println!("$ bao kv put -mount=secret demo/db username=app password=s3cr3t-2");
    bao.run(&[
        "kv",
        "put",
        "-mount=secret",
        "demo/db",
        "username=app",
        "password=s3cr3t-2",
    ])?;
    until(&mut lines, "refreshed").await?;
    show(&secrets, &["db-password"])?;
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    }
    let status = child.wait().await?;
    anyhow::ensure!(status.success(), "secrets-store fill exited with {status}");
    println!(
        "stopped fill, the provider and OpenBao; {} keeps the last content ({:.1} s)",
        secrets.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = match (args.next().as_deref(), args.next()) {
        (None, _) => PathBuf::from("demo"),
        (Some("--dir"), Some(d)) => PathBuf::from(d),
        _ => anyhow::bail!("usage: vault-demo [--dir DIR]"),
    };
    common::until_ctrl_c(demo(&dir)).await
}
