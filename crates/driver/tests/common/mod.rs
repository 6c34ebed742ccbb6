//! Shared set-up of the driver's end-to-end tests: a real control plane, a
//! fake provider on a socket, our driver binary as its own process, and the
//! kubelet simulator.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use secrets_store_crds::v1::{
    SecretObject, SecretObjectData, SecretProviderClass, SecretProviderClassPodStatus,
    SecretProviderClassSpec,
};
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::fake_provider::FakeProvider;
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions};

/// Node name the driver runs as.
pub const NODE: &str = "node-1";

/// How long a test waits for the asynchronous secret sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// `secretObjects[].data` from (objectName, key) pairs.
pub fn secret_data(pairs: &[(&str, &str)]) -> Vec<SecretObjectData> {
    pairs
        .iter()
        .map(|(o, k)| SecretObjectData {
            object_name: o.to_string(),
            key: k.to_string(),
        })
        .collect()
}

/// One driver with one fake provider (`fake`) and a namespace.
pub struct Env {
    pub cp: &'static ControlPlane,
    pub client: kube::Client,
    pub ns: String,
    pub providers_dir: PathBuf,
    pub kubelet_root: PathBuf,
    pub provider: FakeProvider,
    pub driver: DriverProcess,
    pub kubelet: Kubelet,
    _dir: tempfile::TempDir,
}

/// The driver binary under test.
pub fn driver_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_secrets-store-csi-driver"))
}

impl Env {
    /// Starts everything; `args` are extra driver flags.
    pub async fn start(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_kubeconfig(args, None).await
    }

    /// Like [`Env::start`], with the driver using `kubeconfig` instead of
    /// the control plane's.
    pub async fn start_with_kubeconfig(
        args: &[&str],
        kubeconfig: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::start_full(args, kubeconfig, false).await
    }

    /// Like [`Env::start`], on the control plane that also runs
    /// kube-controller-manager (garbage collection).
    pub async fn start_with_controllers(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_full(args, None, true).await
    }

    async fn start_full(
        args: &[&str],
        kubeconfig: Option<&Path>,
        controllers: bool,
    ) -> anyhow::Result<Self> {
        let cp = if controllers {
            ControlPlane::shared_with_controllers().await?
        } else {
            ControlPlane::shared().await?
        };
        let client = cp.client().await?;
        let ns = cp.namespace("publish").await?;
        let dir = tempfile::Builder::new().prefix("driver-e2e-").tempdir()?;
        let providers_dir = dir.path().join("providers");
        std::fs::create_dir_all(&providers_dir)?;
        let kubelet_root = dir.path().join("kubelet");
        let provider = FakeProvider::start(&providers_dir, "fake").await?;
        let mut all = vec![
            format!("--nodeid={NODE}"),
            format!("--provider-volume={}", providers_dir.display()),
            "--additional-provider-volume-paths=".to_string(),
            "--metrics-addr=127.0.0.1:0".to_string(),
            format!("--kubelet-dir={}", kubelet_root.display()),
            format!(
                "--kubeconfig={}",
                kubeconfig.unwrap_or(cp.kubeconfig()).display()
            ),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let driver = DriverProcess::start(driver_binary(), &all).await?;
        let kubelet = Kubelet::new(client.clone(), driver.socket(), &kubelet_root).await?;
        Ok(Self {
            cp,
            client,
            ns,
            providers_dir,
            kubelet_root,
            provider,
            driver,
            kubelet,
            _dir: dir,
        })
    }

    /// Creates SecretProviderClass `name` for `provider` with `params`.
    pub async fn spc(
        &self,
        name: &str,
        provider: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let api: Api<SecretProviderClass> = Api::namespaced(self.client.clone(), &self.ns);
        let spec = SecretProviderClassSpec {
            provider: provider.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            secret_objects: vec![],
        };
        api.create(
            &PostParams::default(),
            &SecretProviderClass::new(name, spec),
        )
        .await?;
        Ok(())
    }

    /// Creates SecretProviderClass `name` for the fake provider with
    /// `secretObjects` and class annotations.
    pub async fn spc_with_secrets(
        &self,
        name: &str,
        objects: Vec<SecretObject>,
        annotations: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let api: Api<SecretProviderClass> = Api::namespaced(self.client.clone(), &self.ns);
        let mut spc = SecretProviderClass::new(
            name,
            SecretProviderClassSpec {
                provider: "fake".into(),
                parameters: [("objects".to_string(), "x".to_string())].into(),
                secret_objects: objects,
            },
        );
        if !annotations.is_empty() {
            spc.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        api.create(&PostParams::default(), &spc).await?;
        Ok(())
    }

    /// Events about pod `pod`: (reason, note).
    pub async fn events_for(&self, pod: &str) -> anyhow::Result<Vec<(String, String)>> {
        pod_events(&self.client, &self.ns, pod).await
    }

    /// Waits (sync is asynchronous) for an event about `pod` with `reason`
    /// whose note contains every one of `words`; returns the note.
    pub async fn wait_event(
        &self,
        pod: &str,
        reason: &str,
        words: &[&str],
    ) -> anyhow::Result<String> {
        wait_pod_event(&self.client, &self.ns, pod, reason, words).await
    }

    /// Waits (sync is asynchronous) for Secret `name` to exist and satisfy
    /// `check`; returns it.
    pub async fn wait_secret(
        &self,
        name: &str,
        check: impl Fn(&Secret) -> bool,
    ) -> anyhow::Result<Secret> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let check = &check;
        secrets_store_testkit::wait_for(
            &format!("secret {name}"),
            SYNC_TIMEOUT,
            Duration::from_millis(100),
            || {
                let api = api.clone();
                async move { Ok(api.get_opt(name).await?.filter(|s| check(s))) }
            },
        )
        .await
    }

    /// Waits (the driver writes it after the publish returns) for the
    /// SecretProviderClassPodStatus `name` to exist and satisfy `check`.
    pub async fn wait_status(
        &self,
        name: &str,
        check: impl Fn(&SecretProviderClassPodStatus) -> bool,
    ) -> anyhow::Result<SecretProviderClassPodStatus> {
        let api: Api<SecretProviderClassPodStatus> = Api::namespaced(self.client.clone(), &self.ns);
        let check = &check;
        secrets_store_testkit::wait_for(
            &format!("SecretProviderClassPodStatus {name}"),
            SYNC_TIMEOUT,
            Duration::from_millis(20),
            || {
                let api = api.clone();
                async move { Ok(api.get_opt(name).await?.filter(|s| check(s))) }
            },
        )
        .await
    }

    /// Creates a pod named `pod` with one volume `secrets` using SPC `spc`.
    pub async fn pod(
        &self,
        pod: &str,
        spc: &str,
    ) -> anyhow::Result<k8s_openapi::api::core::v1::Pod> {
        self.kubelet
            .create_pod(&TestPod::new(&self.ns, pod, spc))
            .await
    }

    /// Publishes the pod's `secrets` volume with no tokens.
    pub async fn publish(
        &self,
        pod: &k8s_openapi::api::core::v1::Pod,
    ) -> anyhow::Result<Result<(), tonic::Status>> {
        Ok(self
            .kubelet
            .publish(pod, "secrets", &TokenOptions::default())
            .await?
            .map(|_| ()))
    }

    /// URL of the driver's metrics endpoint (its port is picked at start
    /// and logged).
    pub fn metrics_url(&self) -> anyhow::Result<String> {
        let log = self.driver.log();
        let line = log
            .lines()
            .find(|l| l.contains("serving metrics"))
            .ok_or_else(|| anyhow::anyhow!("driver did not log its metrics address:\n{log}"))?;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .ok_or_else(|| anyhow::anyhow!("no addr= in {line:?}"))?;
        Ok(format!("http://{addr}/metrics"))
    }

    /// The pod's target path.
    pub fn target(&self, pod: &k8s_openapi::api::core::v1::Pod) -> PathBuf {
        self.kubelet
            .target_path(pod.metadata.uid.as_deref().unwrap_or_default(), "secrets")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Volumes a test did not unpublish must not stay mounted.
        secrets_store_testkit::mounts::unmount_all_under(self._dir.path());
    }
}

/// Events about pod `ns/pod`: (reason, note).
pub async fn pod_events(
    client: &kube::Client,
    ns: &str,
    pod: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

/// Waits for an event about pod `ns/pod` with `reason` whose note contains
/// every one of `words`; returns the note.
pub async fn wait_pod_event(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    reason: &str,
    words: &[&str],
) -> anyhow::Result<String> {
    secrets_store_testkit::wait_for(
        &format!("event {reason} on {pod} mentioning {words:?}"),
        SYNC_TIMEOUT,
        Duration::from_millis(100),
        || async {
            Ok(pod_events(client, ns, pod)
                .await?
                .into_iter()
                .find_map(|(r, n)| {
                    (r == reason && words.iter().all(|w| n.contains(w))).then_some(n)
                }))
        },
    )
    .await
}

/// Whether `path` is a mount point, and of which filesystem type.
pub fn mount_type(path: &Path) -> Option<String> {
    secrets_store_testkit::mounts::mount_type(path)
}

/// Asserts the target holds nothing: not mounted, and no directory left.
pub fn assert_untouched(target: &Path) {
    assert_eq!(
        mount_type(target),
        None,
        "{} is still mounted",
        target.display()
    );
    assert!(!target.exists(), "{} was left behind", target.display());
}

/// A plain HTTP GET (the metrics endpoint is HTTP/1.1 on loopback).
pub async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not http: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8(buf)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP body"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// Parses Prometheus/OpenMetrics text into (name, labels, value).
pub fn parse_metrics(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            Some((name.to_string(), labels, value))
        })
        .collect()
}
