//! Publish latency and memory benchmark (a command, not a test):
//!
//! ```sh
//! hack/bench.sh
//! ```
//!
//! Starts a real control plane, an in-process provider serving two small
//! files, and the driver binary given as the first argument; prepares 200
//! pods (pod creation and token minting are not timed); then times 200
//! NodePublishVolume calls (tmpfs mount, provider call, atomic write,
//! SecretProviderClassPodStatus create) and 200 NodeUnpublishVolume calls,
//! and prints p50/p99 latency and the driver's RSS.

use std::time::{Duration, Instant};

use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::fake_provider::{Behavior, FakeProvider};
use secrets_store_testkit::{ControlPlane, Kubelet, TestPod, TokenOptions};

const N: usize = 200;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{what}: n={} p50={:.2}ms p99={:.2}ms mean={:.2}ms max={:.2}ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        samples.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: publish-bench <driver binary>"))?;
    let cp = ControlPlane::start(Default::default()).await?;
    let client = cp.client().await?;
    let ns = cp.namespace("bench").await?;
    let dir = tempfile::tempdir()?;
    let providers = dir.path().join("providers");
    std::fs::create_dir_all(&providers)?;
    let provider = FakeProvider::start(&providers, "bench").await?;
    provider.set(Behavior::files(
        &[
            ("username", b"admin", 0o644),
            ("password", &[b'x'; 64], 0o640),
        ],
        &[("secret/username", "1"), ("secret/password", "1")],
    ));
    let spc: kube::Api<secrets_store_crds::v1::SecretProviderClass> =
        kube::Api::namespaced(client.clone(), &ns);
    let spec = secrets_store_crds::v1::SecretProviderClassSpec {
        provider: "bench".into(),
        parameters: [(
            "objects".to_string(),
            "- username\n- password\n".to_string(),
        )]
        .into(),
        secret_objects: vec![],
    };
    spc.create(
        &Default::default(),
        &secrets_store_crds::v1::SecretProviderClass::new("bench", spec),
    )
    .await?;
    let mut args = vec![
        "--nodeid=bench-node".to_string(),
        format!("--provider-volume={}", providers.display()),
        "--additional-provider-volume-paths=".to_string(),
        "--metrics-addr=127.0.0.1:0".to_string(),
        format!("--kubeconfig={}", cp.kubeconfig().display()),
    ];
    args.extend(secrets_store_testkit::driver::kubelet_dir_args(
        std::path::Path::new(&binary),
        &dir.path().join("kubelet"),
    ));
    let driver = DriverProcess::start(std::path::Path::new(&binary), &args).await?;
    let kubelet =
        Kubelet::new(client.clone(), driver.socket(), &dir.path().join("kubelet")).await?;
    println!("driver RSS at start: {} KiB", rss_kib(driver.pid()));

    let mut requests = Vec::with_capacity(N);
    let mut pods = Vec::with_capacity(N);
    for i in 0..N {
        let pod = kubelet
            .create_pod(&TestPod::new(&ns, &format!("pod-{i}"), "bench"))
            .await?;
        let opts = TokenOptions {
            audiences: vec!["bench".into()],
            ..Default::default()
        };
        requests.push(kubelet.publish_request(&pod, "secrets", &opts).await?);
        pods.push(pod);
    }

    let mut publish = Vec::with_capacity(N);
    for req in requests {
        let start = Instant::now();
        kubelet.send_publish(req).await?;
        publish.push(start.elapsed());
    }
    println!(
        "driver RSS after {N} publishes ({N} volumes mounted): {} KiB",
        rss_kib(driver.pid())
    );
    report("NodePublishVolume", publish);

    let mut unpublish = Vec::with_capacity(N);
    for pod in &pods {
        let start = Instant::now();
        kubelet.unpublish(pod, "secrets").await??;
        unpublish.push(start.elapsed());
    }
    report("NodeUnpublishVolume", unpublish);
    secrets_store_testkit::mounts::unmount_all_under(dir.path());
    println!(
        "driver RSS after unpublishing all: {} KiB",
        rss_kib(driver.pid())
    );
    Ok(())
}
