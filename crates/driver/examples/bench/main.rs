//! Side-by-side benchmark of our driver and the upstream Go driver v1.6.0
//! (a command, not a test; BENCHMARKS.md shows a run):
//!
//! ```sh
//! hack/bench.sh
//! ```
//!
//! One real control plane with its audit log on (each driver runs as its own
//! service account, so requests are counted per driver), the zero-latency
//! provider (testkit's fake provider in this process, counting calls only)
//! and the upstream e2e provider (Go), each serving two small files. For
//! each provider, N and concurrency, each driver in turn: N publishes
//! through the kubelet simulator, memory and CPU from `/proc`, API requests,
//! one rotation pass (every volume republished once due, as kubelet's
//! `requiresRepublish` does), N unpublishes. Then both drivers idle side by
//! side, and a fleet of K drivers per kind. Prints a table (metric, ours,
//! upstream, ratio) and writes everything as JSON.

mod audit;
mod fleet;
mod idle;
mod procfs;
mod report;
mod run;
mod setup;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use setup::{Env, Kind, ProviderKind};

/// Command-line flags.
#[derive(Debug, Clone, Parser, serde::Serialize)]
struct Args {
    /// Our driver binary.
    #[arg(long)]
    ours: PathBuf,
    /// The upstream driver binary (default: the installed test tool).
    #[arg(long)]
    upstream: Option<PathBuf>,
    /// Volume counts N.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    volumes: Vec<usize>,
    /// Concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Providers: zero, e2e.
    #[arg(long, value_delimiter = ',', default_value = "zero,e2e")]
    providers: Vec<String>,
    /// Length of the idle measurement.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Fleet size K per driver (0: no fleet).
    #[arg(long, default_value_t = 50)]
    fleet_nodes: usize,
    /// Volumes per fleet node M.
    #[arg(long, default_value_t = 40)]
    fleet_volumes: usize,
    /// Length of the fleet's steady window.
    #[arg(long, default_value_t = 30)]
    fleet_steady_seconds: u64,
    /// Drivers to run: ours, upstream (ratios need both; `ours` alone is
    /// a quick before/after of our own figures, e.g. under a heap profiler).
    #[arg(long, value_delimiter = ',', default_value = "ours,upstream")]
    drivers: Vec<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let upstream = match &args.upstream {
        Some(p) => p.clone(),
        None => secrets_store_testkit::tools::tool("upstream-secrets-store-csi-driver")?,
    };
    let kinds = args
        .drivers
        .iter()
        .map(|d| match d.as_str() {
            "ours" => Ok(Kind::Ours),
            "upstream" => Ok(Kind::Upstream),
            other => anyhow::bail!("unknown driver {other:?} (ours, upstream)"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let env = Env::start(&[(Kind::Ours, args.ours.clone()), (Kind::Upstream, upstream)]).await?;
    let providers = args
        .providers
        .iter()
        .map(|p| match p.as_str() {
            "zero" => Ok(ProviderKind::Zero),
            "e2e" => Ok(ProviderKind::E2e),
            other => anyhow::bail!("unknown provider {other:?} (zero, e2e)"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let max_n = args.volumes.iter().copied().max().unwrap_or(0);
    let mut pods = HashMap::new();
    for p in &providers {
        eprintln!("creating {max_n} pods for provider {}", p.name());
        pods.insert(*p, env.create_pods(*p, p.name(), run::NODE, max_n).await?);
    }
    eprintln!("idle: both drivers for {} s", args.idle_seconds);
    let idle = idle::measure(&env, &kinds, args.idle_seconds).await?;
    let mut runs = Vec::new();
    for p in &providers {
        for &n in &args.volumes {
            for &concurrency in &args.concurrency {
                for &driver in &kinds {
                    let case = run::Case {
                        driver,
                        provider: *p,
                        n,
                        concurrency,
                        rotation: true,
                    };
                    eprintln!("run: {case:?}");
                    match run::run(&env, case, &pods[p]).await {
                        Ok(result) => runs.push(result),
                        // One failed run (e.g. a mount another process
                        // holds busy) costs its row, not the whole bench.
                        Err(e) => eprintln!("run {case:?} failed: {e:#}"),
                    }
                    let partial =
                        report::Report::new(&args, idle.clone(), runs.clone(), Vec::new());
                    std::fs::write(&args.out, serde_json::to_string_pretty(&partial)?)?;
                }
            }
        }
    }
    let fleet = fleet(&env, &args).await?;
    let out = report::Report::new(&args, idle, runs, fleet);
    out.print();
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)?)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// The fleet for each driver over the same pods.
async fn fleet(env: &Env, args: &Args) -> anyhow::Result<Vec<fleet::Fleet>> {
    if args.fleet_nodes == 0 {
        return Ok(Vec::new());
    }
    eprintln!(
        "fleet: creating {} × {} pods",
        args.fleet_nodes, args.fleet_volumes
    );
    let node = |i: usize| {
        let name = format!("fleet-{i}");
        async move {
            env.create_pods(ProviderKind::Zero, &name, &name, args.fleet_volumes)
                .await
        }
    };
    // Node 0 first: its first pod may create the service account.
    let mut pods = vec![node(0).await?];
    let rest: Vec<_> = futures::stream::iter(1..args.fleet_nodes)
        .map(node)
        .buffered(2)
        .try_collect()
        .await?;
    pods.extend(rest);
    let steady = Duration::from_secs(args.fleet_steady_seconds);
    let mut out = Vec::new();
    for kind in [Kind::Ours, Kind::Upstream] {
        eprintln!("fleet: {} × {kind:?}", args.fleet_nodes);
        out.push(fleet::run(env, kind, &pods, steady).await?);
    }
    Ok(out)
}
