//! `secrets-store fill` through our `alibabacloud` provider (its own
//! process) against the local Alibaba protocol server: a first fill, the
//! refusals (foreign directory, no socket, bad class), `--watch` picking up
//! a rotated secret and keeping the last good content when a refresh
//! fails, a clean stop on SIGTERM, and `--tmpfs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use secrets_store_alibaba_emulator::Emulator;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::tools::workspace_binary;
use secrets_store_testkit::wait_for;

const SPC: &str = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app
spec:
  provider: alibabacloud
  parameters:
    region: cn-hangzhou
    objects: |
      - objectName: api-key
      - objectName: db
        jmesPath:
          - path: username
            objectAlias: user
"#;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secrets-store"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Env {
    emu: Emulator,
    dir: tempfile::TempDir,
    _provider: Process,
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        let emu = Emulator::start().await?;
        emu.add_access_key("AKID-FILL", "fill-secret-key", "acs:ram::100:user/fill");
        emu.add_secret("api-key", "v1", "one");
        emu.add_secret("db", "v1", r#"{"username":"app","password":"pw"}"#);
        let dir = tempfile::Builder::new()
            .prefix("standalone-fill-")
            .tempdir()?;
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers)?;
        let url = emu.url();
        let provider = Process::spawn(
            "alibabacloud provider",
            &workspace_binary("secrets-store-csi-driver-provider-alibabacloud")?,
            &[
                format!("--provider-volume={}", providers.display()),
                format!("--healthz-port={}", free_port()?),
                format!("--kms-endpoint={url}"),
                format!("--sts-endpoint={url}"),
                format!("--ecs-metadata-endpoint={url}"),
            ],
            &[
                ("KUBECONFIG", "/nonexistent"),
                ("ACCESS_KEY_ID", "AKID-FILL"),
                ("SECRET_ACCESS_KEY", "fill-secret-key"),
            ],
            &dir.path().join("provider.log"),
        )?;
        let socket = providers.join("alibabacloud.sock");
        secrets_store_testkit::wait_for_socket(&socket).await?;
        std::fs::write(dir.path().join("spc.yaml"), SPC)?;
        Ok(Self {
            emu,
            dir,
            _provider: provider,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn fill_args(&self, target: &Path) -> Vec<String> {
        vec![
            "fill".into(),
            self.path("spc.yaml").display().to_string(),
            target.display().to_string(),
            "--provider-dir".into(),
            self.path("providers").display().to_string(),
        ]
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_refuses_and_watches() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let target = env.path("secrets");
    let out = cli().args(env.fill_args(&target)).output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "filled {} with 3 file(s) from provider \"alibabacloud\": api-key, db, user\n",
            target.display()
        )
    );
    assert_eq!(read(&target, "api-key"), "one");
    assert_eq!(read(&target, "user"), "app");
    assert!(target.join("..data").is_symlink(), "the driver's layout");

    // Someone else's directory is never written into.
    let foreign = env.path("foreign");
    std::fs::create_dir_all(&foreign)?;
    std::fs::write(foreign.join("notes.txt"), "mine")?;
    let out = cli().args(env.fill_args(&foreign)).output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("is not empty and was not filled by secrets-store"),
        "{}",
        text(&out)
    );
    assert_eq!(read(&foreign, "notes.txt"), "mine");

    // No socket: the provider is named.
    let mut args = env.fill_args(&env.path("none"));
    args[4] = env.path("empty-providers").display().to_string();
    let out = cli().args(&args).output()?;
    assert!(
        text(&out).contains(r#"error: provider not found: provider "alibabacloud""#),
        "{}",
        text(&out)
    );

    watch(&env, &target).await
}

/// `--watch`: a rotated secret reaches the file; a refresh that fails (a
/// broken class file) keeps the content; SIGTERM stops it cleanly.
async fn watch(env: &Env, target: &Path) -> anyhow::Result<()> {
    let mut args = env.fill_args(target);
    args.extend(["--watch".into(), "200ms".into()]);
    let mut fill = Process::spawn(
        "fill --watch",
        Path::new(env!("CARGO_BIN_EXE_secrets-store")),
        &args,
        &[],
        &env.path("watch.log"),
    )?;
    let log = fill.log_path().to_path_buf();
    let logged = |what: &'static str| {
        let log = log.clone();
        move || {
            let seen = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(what);
            async move { Ok(seen.then_some(())) }
        }
    };
    wait_for(
        "the first fill",
        Duration::from_secs(20),
        Duration::from_millis(50),
        logged("filled"),
    )
    .await?;
    env.emu.put_secret_version("api-key", "v2", "two");
    wait_for(
        "the refresh",
        Duration::from_secs(20),
        Duration::from_millis(50),
        logged("refreshed"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", fill.log()))?;
    assert_eq!(read(target, "api-key"), "two");

    std::fs::write(
        env.path("spc.yaml"),
        SPC.replace("objectName: db", "objectNme: db"),
    )?;
    let failed = "refresh failed; the last good content stays";
    wait_for(
        "a failed refresh",
        Duration::from_secs(20),
        Duration::from_millis(50),
        logged(failed),
    )
    .await?;
    assert_eq!(read(target, "api-key"), "two");
    assert_eq!(read(target, "user"), "app");
    fill.check_running()?;
    let status = fill.signal_and_wait("TERM")?;
    assert!(status.success(), "{status}\n{}", fill.log());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmpfs_as_root() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let target = env.path("mem");
    let mut args = env.fill_args(&target);
    args.push("--tmpfs".into());
    let out = cli().args(&args).output()?;
    let mounted = secrets_store_testkit::mounts::mount_type(&target);
    let content = read(&target, "api-key");
    secrets_store_testkit::mounts::unmount_all_under(env.dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mounted.as_deref(), Some("tmpfs"));
    assert_eq!(content, "one");
    Ok(())
}
