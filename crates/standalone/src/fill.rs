//! `secrets-store fill`: the driver's publish path without Kubernetes.
//!
//! The class comes from a file ([`crate::class::pick`], re-read at every
//! fill), the pod from flags. The `MountRequest` is built, sent and checked
//! by the driver's own code (`publish::response`, `provider::ProviderClients`),
//! and the files are written by the driver's atomic writer, so a directory
//! is filled exactly as a volume would be. A failed refresh changes
//! nothing on disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use secrets_store_atomic_writer::{AtomicWriter, Outcome, Ownership, Payload};
use secrets_store_csi_driver::mount::{self, TmpfsOptions};
use secrets_store_csi_driver::provider::client::ClientConfig;
use secrets_store_csi_driver::provider::{self, ProviderClients};
use secrets_store_csi_driver::publish::response::{self, ResponseError};
use secrets_store_proto::attributes::{
    EPHEMERAL, POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS, SERVICE_ACCOUNT_NAME,
    SERVICE_ACCOUNT_TOKENS, ServiceAccountTokens,
};
use secrets_store_redact::Redacted;

use crate::class::{self, Problem};
use crate::cli::{FillArgs, PodArgs};

/// Why a fill failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The class file is wrong.
    #[error(transparent)]
    Class(#[from] Problem),
    /// A token or secret file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    Input {
        /// `token` or `secret`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The directory holds files this command did not write.
    #[error(
        "{0} is not empty and was not filled by secrets-store; choose an empty or new directory"
    )]
    Foreign(PathBuf),
    /// `--tmpfs` without root.
    #[error("--tmpfs mounts a tmpfs and needs root; run as root or drop --tmpfs")]
    NotRoot,
    /// The directory could not be created or inspected.
    #[error("directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Mounting the tmpfs failed.
    #[error(transparent)]
    Mount(#[from] mount::Error),
    /// The provider could not be asked, or failed.
    #[error(transparent)]
    Provider(#[from] provider::Error),
    /// The provider's answer was refused.
    #[error("provider {provider:?}: {source}")]
    Response {
        /// Provider name.
        provider: String,
        /// Why.
        source: ResponseError,
    },
    /// Writing the files failed.
    #[error(transparent)]
    Write(#[from] secrets_store_atomic_writer::Error),
    /// The blocking writer task died.
    #[error("writer task failed: {0}")]
    Task(String),
}

/// The pod a fill acts for.
#[derive(Debug, Clone)]
pub struct Pod {
    name: String,
    namespace: String,
    uid: String,
    service_account: String,
}

impl Pod {
    /// The flags' pod, with defaults for a machine without Kubernetes (a
    /// random UID per run).
    pub fn from_args(args: &PodArgs) -> Self {
        Self {
            name: args.pod_name.clone().unwrap_or_else(|| "standalone".into()),
            namespace: args
                .pod_namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            uid: args.pod_uid.clone().unwrap_or_else(random_uid),
            service_account: args.service_account.clone(),
        }
    }
}

fn random_uid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

/// The volume context kubelet would send for this pod (tokens aside).
pub fn context(pod: &Pod, class: &str, args: &PodArgs) -> BTreeMap<String, String> {
    let mut c: BTreeMap<String, String> = args.attributes.iter().cloned().collect();
    c.insert(POD_NAME.into(), pod.name.clone());
    c.insert(POD_NAMESPACE.into(), pod.namespace.clone());
    c.insert(POD_UID.into(), pod.uid.clone());
    c.insert(SERVICE_ACCOUNT_NAME.into(), pod.service_account.clone());
    c.insert(EPHEMERAL.into(), "true".into());
    c.insert(SECRET_PROVIDER_CLASS.into(), class.into());
    c
}

fn read(what: &'static str, path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Input {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// nodePublishSecretRef data from `--secret` files.
pub fn secrets(args: &PodArgs) -> Result<Redacted<BTreeMap<String, String>>, Error> {
    let mut out = BTreeMap::new();
    for (k, path) in &args.secrets {
        out.insert(k.clone(), read("secret", path)?);
    }
    Ok(Redacted(out))
}

/// kubelet's token JSON from `--token` files (`None` without any).
pub fn tokens(list: &[(String, PathBuf)]) -> Result<Option<Redacted<String>>, Error> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut t = ServiceAccountTokens::default();
    for (audience, path) in list {
        t.insert(audience.clone(), read("token", path)?, String::new());
    }
    Ok(Some(Redacted(t.to_json())))
}

/// What one fill did.
#[derive(Debug)]
pub struct Filled {
    /// Provider asked.
    pub provider: String,
    /// File paths written, sorted.
    pub files: Vec<String>,
    /// Whether the content changed.
    pub changed: bool,
}

/// Fills the directory once.
pub async fn once(args: &FillArgs, pod: &Pod, clients: &ProviderClients) -> Result<Filled, Error> {
    let class = class::pick(&args.spc, args.class.as_deref(), &pod.namespace)?;
    let mut context = context(pod, &class.name, &args.pod);
    if let Some(t) = tokens(&args.tokens)? {
        context.insert(SERVICE_ACCOUNT_TOKENS.into(), t.expose().clone());
    }
    let secrets = secrets(&args.pod)?;
    let request =
        response::provider_request(&class.parameters, &context, secrets.expose(), &args.dir);
    let provider = class.provider.to_string();
    let answer = clients.mount(&class.provider, request).await?;
    let checked = response::check(answer).map_err(|source| Error::Response {
        provider: provider.clone(),
        source,
    })?;
    let files: Vec<String> = checked.payload.files().keys().cloned().collect();
    let changed = write(&args.dir, checked.payload, args.group).await?;
    Ok(Filled {
        provider,
        files,
        changed,
    })
}

async fn write(dir: &Path, payload: Payload, group: Option<u32>) -> Result<bool, Error> {
    if payload.is_empty() {
        tracing::info!("provider returned no files; it is expected to have written them itself");
        return Ok(true);
    }
    let dir = dir.to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || {
        AtomicWriter::new(&dir)
            .with_ownership(Ownership { group })
            .write(&payload)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    Ok(outcome == Outcome::Written)
}

/// Creates the directory if needed, mounts the tmpfs when asked, and
/// refuses a directory with someone else's files.
pub fn prepare(args: &FillArgs) -> Result<(), Error> {
    let dir = &args.dir;
    let err = |source| Error::Dir {
        path: dir.clone(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    if !std::fs::metadata(dir).map_err(err)?.is_dir() {
        return Err(err(std::io::Error::other("not a directory")));
    }
    let empty = std::fs::read_dir(dir).map_err(err)?.next().is_none();
    if !empty && !secrets_store_atomic_writer::has_data(dir) {
        return Err(Error::Foreign(dir.clone()));
    }
    if args.tmpfs {
        mount_tmpfs(args, empty)?;
    }
    Ok(())
}

fn mount_tmpfs(args: &FillArgs, empty: bool) -> Result<(), Error> {
    let dir = &args.dir;
    let err = |source| Error::Dir {
        path: dir.clone(),
        source,
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).map_err(err);
    if dev(dir)? != dev(&dir.join(".."))? {
        return Ok(()); // already a mount point: a previous run's tmpfs
    }
    if !empty {
        return Err(Error::Foreign(dir.clone()));
    }
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        dir.as_path(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let options = TmpfsOptions {
        gid: args.group,
        size: secrets_store_csi_driver::config::tmpfs_size(args.max_call_recv_msg_size),
    };
    mount::linux::mount_tmpfs_on(&fd, dir, options)?;
    Ok(())
}

/// Prints what a fill did.
fn say(out: &mut impl Write, dir: &Path, f: &Filled, first: bool) {
    let what = if first { "filled" } else { "refreshed" };
    let _ = writeln!(
        out,
        "{what} {} with {} file(s) from provider {:?}: {}",
        dir.display(),
        f.files.len(),
        f.provider,
        f.files.join(", ")
    );
}

/// `fill`: prepare, fill once (an error ends the command), then with
/// `--watch` refresh every interval until SIGINT/SIGTERM; a failed
/// refresh is reported and the last good content stays.
pub async fn run(args: FillArgs) -> Result<(), Error> {
    let pod = Pod::from_args(&args.pod);
    prepare(&args)?;
    let clients = ProviderClients::new(ClientConfig {
        dirs: args.provider_dirs.clone(),
        max_recv: args.max_call_recv_msg_size,
        mount_timeout: args.timeout,
    });
    let filled = once(&args, &pod, &clients).await?;
    say(&mut std::io::stdout(), &args.dir, &filled, true);
    let Some(every) = args.watch else {
        return Ok(());
    };
    let stop = secrets_store_signal::shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        match once(&args, &pod, &clients).await {
            Ok(f) if f.changed => say(&mut std::io::stdout(), &args.dir, &f, false),
            Ok(_) => tracing::debug!("content unchanged"),
            Err(e) => eprintln!("refresh failed; the last good content stays: {e}"),
        }
    }
}
