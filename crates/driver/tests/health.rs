//! Health: the livenessprobe sidecar (v2.19.0, built from ../shared/peers)
//! sees the driver healthy, then not once it stops; `--provider-health-check` reports each provider.

mod common;

use std::time::Duration;

use common::{Env, http_get, parse_metrics};
use secrets_store_testkit::driver::DriverProcess;
use secrets_store_testkit::process::{Process, free_port};
use secrets_store_testkit::tools::tool;
use secrets_store_testkit::wait_for;

#[tokio::test]
async fn liveness_probe_reports_healthy_then_unhealthy_when_the_driver_stops() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let mut driver = DriverProcess::start(
        common::driver_binary(),
        &[
            "--nodeid=n".to_string(),
            "--metrics-addr=127.0.0.1:0".to_string(),
            format!("--kubelet-dir={}", dir.path().display()),
        ],
    )
    .await?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}/healthz");
    let _probe = Process::spawn(
        "livenessprobe",
        &tool("livenessprobe")?,
        &[
            format!("--csi-address={}", driver.socket().display()),
            format!("--http-endpoint=127.0.0.1:{port}"),
        ],
        &[],
        &dir.path().join("probe.log"),
    )?;
    let healthy = wait_for(
        "/healthz to answer 200",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let url = url.clone();
            async move { Ok(http_get(&url).await.ok().filter(|(code, _)| *code == 200)) }
        },
    )
    .await?;
    assert_eq!(healthy.1, "ok");

    driver.stop()?;
    let (code, body) = wait_for(
        "/healthz to fail",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            let url = url.clone();
            async move { Ok(http_get(&url).await.ok().filter(|(code, _)| *code != 200)) }
        },
    )
    .await?;
    assert_eq!(code, 500, "{body}");
    Ok(())
}

#[tokio::test]
async fn provider_health_check_reports_each_provider() -> anyhow::Result<()> {
    let mut env = Env::start(&[
        "--provider-health-check",
        "--provider-health-check-interval=200ms",
    ])
    .await?;
    let url = env.metrics_url()?;
    let healthy = |want: f64| {
        let url = url.clone();
        async move {
            let (_, text) = http_get(&url).await?;
            let ok = parse_metrics(&text).iter().any(|(n, l, v)| {
                n == "provider_healthy"
                    && l.get("provider").map(String::as_str) == Some("fake")
                    && *v == want
            });
            Ok(ok.then_some(()))
        }
    };
    wait_for(
        "provider_healthy{provider=fake} 1",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || healthy(1.0),
    )
    .await?;
    env.provider.crash();
    wait_for(
        "provider_healthy{provider=fake} 0",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || healthy(0.0),
    )
    .await?;
    assert!(env.driver.log().contains("provider unhealthy"));
    Ok(())
}
