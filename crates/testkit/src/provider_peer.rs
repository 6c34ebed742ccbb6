//! A provider binary (ours or its upstream peer) running the way it runs in
//! a cluster, for differential and end-to-end tests.
//!
//! Cloud endpoints keep their real names: a test serves them with a fresh
//! CA's certificate on port 443 of a random loopback address
//! ([`bind_random_loopback_443`]), writes a hosts file mapping the names
//! there ([`write_hosts`]), and starts the provider in a private mount
//! namespace whose `/etc/hosts` is that file ([`PeerBuilder::bind`]).
//! Upstream providers that ignore endpoint flags reach the test's server
//! this way, with no change to their code.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrets_store_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use tonic::transport::Channel;

use crate::process::Process;

/// Which provider binary a [`Peer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The crate under test's own binary.
    Ours,
    /// The upstream Go provider, built by `hack/install-tools.sh`.
    Upstream,
}

/// What the provider's private mount namespace sets up before it starts.
#[derive(Debug, Clone)]
enum Setup {
    /// `mount -t tmpfs tmpfs <target>`.
    Tmpfs(String),
    /// `mount --bind <source> <target>`, creating `target` as a directory
    /// when it does not exist.
    Bind(PathBuf, String),
}

/// Builds a [`Peer`]: program, arguments, environment and namespace set-up.
/// The socket directory (a fresh temporary directory) is passed as
/// `--provider-volume`, or the socket itself as [`socket_flag`](Self::socket_flag).
#[derive(Debug)]
pub struct PeerBuilder {
    kind: Kind,
    provider: String,
    dir: tempfile::TempDir,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    setup: Vec<Setup>,
    socket_flag: Option<String>,
}

impl PeerBuilder {
    /// Passes the socket path as `<flag>=<socket>` instead of the
    /// directory as `--provider-volume` (vault-csi-provider's `-endpoint`).
    pub fn socket_flag(mut self, flag: &str) -> Self {
        self.socket_flag = Some(flag.into());
        self
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(format!("{}.sock", self.provider))
    }

    /// The socket directory (also holds the log); write files the provider
    /// needs here before [`start`](Self::start).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds environment variables.
    pub fn envs<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env
            .extend(env.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Mounts a tmpfs at `target` in the provider's mount namespace.
    pub fn tmpfs(mut self, target: &str) -> Self {
        self.setup.push(Setup::Tmpfs(target.into()));
        self
    }

    /// Bind-mounts `source` at `target` in the provider's mount namespace
    /// (after the tmpfs and bind mounts added before it).
    pub fn bind(mut self, source: &Path, target: &str) -> Self {
        self.setup
            .push(Setup::Bind(source.to_path_buf(), target.into()));
        self
    }

    /// `unshare -m sh -c <set-up && exec "$@"> peer <sources...> <program>
    /// <args...>`: the sources are positional parameters, never spliced
    /// into the script.
    fn command(&self) -> Vec<String> {
        let mut script = Vec::new();
        let mut sources = Vec::new();
        for s in &self.setup {
            match s {
                Setup::Tmpfs(t) => script.push(format!("mount -t tmpfs tmpfs '{t}'")),
                Setup::Bind(source, t) => {
                    sources.push(source.display().to_string());
                    script.push(format!(
                        r#"{{ [ -e '{t}' ] || mkdir -p '{t}'; }} && mount --bind "${{{}}}" '{t}'"#,
                        sources.len()
                    ));
                }
            }
        }
        script.push(format!("shift {} && exec \"$@\"", sources.len()));
        let mut args = vec![
            "-m".to_string(),
            "sh".into(),
            "-c".into(),
            script.join(" && "),
            "peer".into(),
        ];
        args.extend(sources);
        args.push(self.program.display().to_string());
        args.extend(self.args.iter().cloned());
        args.push(match &self.socket_flag {
            Some(flag) => format!("{flag}={}", self.socket().display()),
            None => format!("--provider-volume={}", self.dir.path().display()),
        });
        args
    }

    /// Starts the provider and waits for `<provider>.sock`; the error
    /// carries the provider's log.
    pub async fn start(self) -> anyhow::Result<Peer> {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let kind = self.kind;
        let process = Process::spawn(
            &format!("{kind:?} {} provider", self.provider),
            Path::new("unshare"),
            &self.command(),
            &env,
            &self.dir.path().join("provider.log"),
        )?;
        let socket = self.socket();
        crate::wait_for_socket(&socket)
            .await
            .with_context(|| format!("{kind:?} provider log:\n{}", process.log()))?;
        Ok(Peer {
            kind,
            process,
            dir: self.dir,
            socket,
        })
    }
}

/// A running provider and its socket directory.
#[derive(Debug)]
pub struct Peer {
    /// Which one.
    pub kind: Kind,
    /// The process (the provider itself, after `unshare` and `sh` exec).
    pub process: Process,
    /// Holds the socket, the log and whatever the test wrote there.
    pub dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Peer {
    /// A provider named `provider` (its socket is `<provider>.sock`) run
    /// from `program`.
    pub fn builder(kind: Kind, provider: &str, program: &Path) -> anyhow::Result<PeerBuilder> {
        Ok(PeerBuilder {
            kind,
            provider: provider.into(),
            dir: tempfile::Builder::new()
                .prefix(&format!("{provider}-peer-"))
                .tempdir()?,
            program: program.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            setup: Vec::new(),
            socket_flag: None,
        })
    }

    /// The provider's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The socket's directory (a driver's `--provider-volume`).
    pub fn providers_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The provider's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// A provider client on the socket.
    pub async fn client(&self) -> anyhow::Result<CsiDriverProviderClient<Channel>> {
        Ok(CsiDriverProviderClient::new(
            secrets_store_grpc_uds::connect(&self.socket).await?,
        ))
    }
}

/// Binds with `bind` on port 443 of a random `127.x.y.z` address, trying
/// another address while the port is taken there.
pub async fn bind_random_loopback_443<T, F, Fut>(what: &str, mut bind: F) -> anyhow::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    let state = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..1000 {
        let mut h = state.build_hasher();
        h.write_u32(attempt);
        let [a, b, c, ..] = h.finish().to_le_bytes();
        let ip = Ipv4Addr::new(127, 16 + a % 234, 1 + b % 249, 2 + c % 248);
        match bind(SocketAddr::from((ip, 443))).await {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e).with_context(|| format!("binding {what} on {ip}:443")),
        }
    }
    anyhow::bail!("binding {what}: port 443 taken on every address tried")
}

/// Writes a hosts file at `path` mapping `names` to `ip` (and `localhost`).
pub fn write_hosts(path: &Path, ip: IpAddr, names: &[impl AsRef<str>]) -> anyhow::Result<()> {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    std::fs::write(
        path,
        format!("127.0.0.1 localhost\n{ip} {}\n", names.join(" ")),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Creates the SecretProviderClass `name` in `ns` for `provider` with
/// `params`.
pub async fn create_class(
    client: &kube::Client,
    ns: &str,
    name: &str,
    provider: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<()> {
    use secrets_store_crds::v1::{SecretProviderClass, SecretProviderClassSpec};
    let spc = SecretProviderClass {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: SecretProviderClassSpec {
            provider: provider.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
        status: None,
    };
    kube::Api::<SecretProviderClass>::namespaced(client.clone(), ns)
        .create(&kube::api::PostParams::default(), &spc)
        .await
        .with_context(|| format!("creating SecretProviderClass {ns}/{name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_positional_and_the_socket_flag_comes_last() -> anyhow::Result<()> {
        let b = Peer::builder(Kind::Upstream, "p", Path::new("/bin/provider"))?
            .bind(Path::new("/tmp/hosts"), "/etc/hosts")
            .tmpfs("/run")
            .bind(Path::new("/tmp/sa"), "/run/sa")
            .args(["-v=1"]);
        let dir = b.dir().display().to_string();
        let args = b.command();
        assert_eq!(
            args[3],
            "{ [ -e '/etc/hosts' ] || mkdir -p '/etc/hosts'; } && mount --bind \"${1}\" '/etc/hosts' \
             && mount -t tmpfs tmpfs '/run' \
             && { [ -e '/run/sa' ] || mkdir -p '/run/sa'; } && mount --bind \"${2}\" '/run/sa' \
             && shift 2 && exec \"$@\""
        );
        assert_eq!(
            args[4..],
            [
                "peer".to_string(),
                "/tmp/hosts".into(),
                "/tmp/sa".into(),
                "/bin/provider".into(),
                "-v=1".into(),
                format!("--provider-volume={dir}"),
            ]
        );
        let b = Peer::builder(Kind::Ours, "vault", Path::new("/bin/v"))?.socket_flag("-endpoint");
        let want = format!("-endpoint={}/vault.sock", b.dir().display());
        assert_eq!(b.command().last(), Some(&want));
        Ok(())
    }
}
