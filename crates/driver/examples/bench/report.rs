//! The results: machine, every figure, the side-by-side table and the
//! fleet extrapolated to 250 nodes × 40 pods.

use crate::fleet::Fleet;
use crate::idle::Idle;
use crate::run::RunResult;
use crate::setup::Kind;
use crate::stats::{self, Row};

/// Nodes and pods per node of the upstream load test (seed "Load tests").
const TARGET_NODES: f64 = 250.0;
const TARGET_PODS_PER_NODE: f64 = 40.0;
/// Upstream's default `--rotation-poll-interval`.
const DEFAULT_ROTATION_S: f64 = 120.0;

/// Everything one invocation measured.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    machine: Machine,
    args: serde_json::Value,
    idle: Vec<Idle>,
    runs: Vec<RunResult>,
    fleet: Vec<Fleet>,
    table: Vec<Row>,
}

/// The machine and its load when the run started.
#[derive(Debug, serde::Serialize)]
struct Machine {
    cpu: String,
    cpus: usize,
    mem_total_kib: u64,
    kernel: String,
    loadavg_at_start: String,
}

impl Machine {
    fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let cpuinfo = read("/proc/cpuinfo");
        let mem = field(&read("/proc/meminfo"), "MemTotal");
        Self {
            cpu: field(&cpuinfo, "model name"),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            mem_total_kib: mem
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            loadavg_at_start: read("/proc/loadavg").trim().to_string(),
        }
    }
}

impl Report {
    /// Builds the report and its table.
    pub fn new(
        args: &impl serde::Serialize,
        idle: Vec<Idle>,
        runs: Vec<RunResult>,
        fleet: Vec<Fleet>,
    ) -> Self {
        let mut table = Vec::new();
        idle_rows(&idle, &mut table);
        run_rows(&runs, &mut table);
        fleet_rows(&fleet, &mut table);
        Self {
            machine: Machine::read(),
            args: serde_json::to_value(args).unwrap_or_default(),
            idle,
            runs,
            fleet,
            table,
        }
    }

    /// Prints the machine and the table.
    pub fn print(&self) {
        let m = &self.machine;
        println!(
            "machine: {} × {}, {} MiB, kernel {}, load at start {}",
            m.cpus,
            m.cpu,
            m.mem_total_kib / 1024,
            m.kernel,
            m.loadavg_at_start
        );
        stats::print(&self.table);
    }
}

fn pair<T>(items: &[T], kind: impl Fn(&T) -> Kind) -> Option<(&T, &T)> {
    let ours = items.iter().find(|i| kind(i) == Kind::Ours)?;
    let upstream = items.iter().find(|i| kind(i) == Kind::Upstream)?;
    Some((ours, upstream))
}

fn idle_rows(idle: &[Idle], t: &mut Vec<Row>) {
    let Some((o, u)) = pair(idle, |i| i.driver) else {
        return;
    };
    t.push(Row::new(
        "idle: API requests per minute",
        o.requests_per_min,
        u.requests_per_min,
    ));
    t.push(Row::new(
        "idle: API requests at start-up",
        o.startup_requests as f64,
        u.startup_requests as f64,
    ));
    t.push(Row::new(
        "idle: watches held",
        o.watches as f64,
        u.watches as f64,
    ));
    t.push(Row::new("idle: RSS (MiB)", mib(o.rss_kib), mib(u.rss_kib)));
    t.push(Row::new(
        "idle: CPU seconds per minute",
        o.cpu_s_per_min,
        u.cpu_s_per_min,
    ));
}

fn run_rows(runs: &[RunResult], t: &mut Vec<Row>) {
    let ours = runs.iter().filter(|r| r.case.driver == Kind::Ours);
    for o in ours {
        let c = o.case;
        let Some(u) = runs.iter().find(|r| {
            r.case.driver == Kind::Upstream
                && (r.case.provider, r.case.n, r.case.concurrency)
                    == (c.provider, c.n, c.concurrency)
        }) else {
            continue;
        };
        let label = format!("{:?} N={} c={}", c.provider, c.n, c.concurrency).to_lowercase();
        let mut row = |m: &str, a: f64, b: f64| t.push(Row::new(format!("[{label}] {m}"), a, b));
        row("publish p50 (ms)", o.publish.p50_ms, u.publish.p50_ms);
        row("publish p99 (ms)", o.publish.p99_ms, u.publish.p99_ms);
        row("publish max (ms)", o.publish.max_ms, u.publish.max_ms);
        row("publishes per second", o.publish.per_s, u.publish.per_s);
        row("unpublish p50 (ms)", o.unpublish.p50_ms, u.unpublish.p50_ms);
        row("unpublish p99 (ms)", o.unpublish.p99_ms, u.unpublish.p99_ms);
        row("unpublish max (ms)", o.unpublish.max_ms, u.unpublish.max_ms);
        row(
            "unpublishes per second",
            o.unpublish.per_s,
            u.unpublish.per_s,
        );
        row("RSS idle (MiB)", mib(o.rss_idle_kib), mib(u.rss_idle_kib));
        row("RSS peak (MiB)", mib(o.rss_peak_kib), mib(u.rss_peak_kib));
        row(
            "RSS steady, N mounted (MiB)",
            mib(o.rss_steady_kib),
            mib(u.rss_steady_kib),
        );
        let per = |r: &RunResult| r.cpu_publish_s * 1e3 / r.case.n as f64;
        row("CPU per publish (ms)", per(o), per(u));
        row(
            "CPU for the N publishes (s)",
            o.cpu_publish_s,
            u.cpu_publish_s,
        );
        row(
            "API requests per publish",
            o.api_per_publish,
            u.api_per_publish,
        );
        row(
            "API requests per unpublish",
            o.api_per_unpublish,
            u.api_per_unpublish,
        );
        row(
            "watches held, N mounted",
            o.watches as f64,
            u.watches as f64,
        );
        if let (Some(a), Some(b)) = (&o.rotation, &u.rotation) {
            row("rotation pass: wall (s)", a.wall_s, b.wall_s);
            row("rotation pass: CPU (s)", a.cpu_s, b.cpu_s);
            let calls =
                |r: &crate::run::Rotation| r.provider_calls.map(|c| c as f64).unwrap_or(f64::NAN);
            row("rotation pass: provider calls", calls(a), calls(b));
            row(
                "rotation pass: API requests",
                a.api_requests as f64,
                b.api_requests as f64,
            );
        }
    }
}

fn fleet_rows(fleet: &[Fleet], t: &mut Vec<Row>) {
    let Some((o, u)) = pair(fleet, |f| f.driver) else {
        return;
    };
    let label = format!("fleet K={} M={}", o.nodes, o.volumes_per_node);
    let mut row =
        |m: &str, f: &dyn Fn(&Fleet) -> f64| t.push(Row::new(format!("[{label}] {m}"), f(o), f(u)));
    row("total RSS (MiB)", &|f| mib(f.rss_total_kib));
    row("watches held", &|f| f.watches as f64);
    row("API requests/s, steady", &|f| f.steady_req_per_s);
    row("fleet CPU s/s, steady", &|f| f.steady_cpu_s_per_s);
    row("rotation wave: API requests per volume", &|f| per_volume(f));
    row("rotation wave: API requests/s", &|f| f.wave_req_per_s);
    row("rotation wave: fleet CPU (s)", &|f| f.wave_cpu_s);
    let scale = |f: &Fleet| TARGET_NODES / f.nodes as f64;
    let label = "extrapolated to 250 nodes × 40 pods";
    let mut row =
        |m: &str, f: &dyn Fn(&Fleet) -> f64| t.push(Row::new(format!("[{label}] {m}"), f(o), f(u)));
    row("watches", &|f| f.watches as f64 * scale(f));
    row("API requests/s, steady", &|f| f.steady_req_per_s * scale(f));
    row("API requests/s from rotation at 2m", &|f| {
        per_volume(f) * TARGET_NODES * TARGET_PODS_PER_NODE / DEFAULT_ROTATION_S
    });
    row("total RSS (GiB)", &|f| {
        mib(f.rss_total_kib) / 1024.0 * scale(f)
    });
}

fn per_volume(f: &Fleet) -> f64 {
    f.wave_requests as f64 / (f.nodes * f.volumes_per_node).max(1) as f64
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
