//! Latency summaries and the side-by-side table.

use std::time::Duration;

/// Percentiles of one set of calls, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    /// Number of calls.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest call.
    pub max_ms: f64,
    /// Calls per second over the wall time of all of them.
    pub per_s: f64,
}

impl Latency {
    /// Summarises `samples` taken over `wall`.
    pub fn of(mut samples: Vec<Duration>, wall: Duration) -> Self {
        samples.sort();
        let at = |p: f64| {
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples.get(i).map(ms).unwrap_or(0.0)
        };
        Self {
            n: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: samples.last().map(ms).unwrap_or(0.0),
            per_s: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        }
    }
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One row of the side-by-side table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// What was measured (with its unit).
    pub metric: String,
    /// Our driver's figure.
    pub ours: f64,
    /// The upstream driver's figure.
    pub upstream: f64,
    /// ours / upstream.
    pub ratio: f64,
}

impl Row {
    /// A row; the ratio is ours / upstream.
    pub fn new(metric: impl Into<String>, ours: f64, upstream: f64) -> Self {
        let ratio = if upstream == 0.0 {
            if ours == 0.0 { 1.0 } else { f64::INFINITY }
        } else {
            ours / upstream
        };
        Self {
            metric: metric.into(),
            ours,
            upstream,
            ratio,
        }
    }
}

/// Prints `rows` as a Markdown table.
pub fn print(rows: &[Row]) {
    println!("| metric | ours | upstream v1.6.0 | ours/upstream |");
    println!("| --- | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} |",
            r.metric,
            fmt(r.ours),
            fmt(r.upstream),
            r.ratio
        );
    }
}

fn fmt(v: f64) -> String {
    if v == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
