use super::*;
use std::sync::{Arc, Mutex};

#[derive(Debug, clap::Parser)]
struct Bin {
    #[command(flatten)]
    log: LogFlags,
}

fn parse(args: &[&str]) -> LogFlags {
    secrets_store_go_flag::try_parse_from::<Bin, _, _>(
        std::iter::once("bin").chain(args.iter().copied()),
    )
    .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    .log
}

/// Captures what a subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Capture {
    type Writer = Capture;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn every_klog_flag_is_accepted_in_go_syntax() {
    let f = parse(&[
        "-v=5",
        "-logtostderr=false",
        "--alsologtostderr",
        "-log_file=/var/log/x.log",
        "--log_dir=/var/log",
        "--log_file_max_size=10",
        "-vmodule=publish=5,sync=2",
        "--stderrthreshold=INFO",
        "--alsologtostderrthreshold=2",
        "--legacy_stderr_threshold_behavior=false",
        "--add_dir_header",
        "--skip_headers=true",
        "--skip_log_headers=1",
        "--one_output",
        "--log_backtrace_at=main.go:1",
        "--log-format-json",
    ]);
    assert_eq!(f.verbosity, 5);
    assert!(f.json && f.alsologtostderr && !f.logtostderr);
    assert_eq!(
        f.ignored(),
        [
            "--vmodule",
            "--logtostderr=false",
            "--log_file",
            "--log_dir",
            "--log_file_max_size",
            "--stderrthreshold",
            "--alsologtostderrthreshold",
            "--legacy_stderr_threshold_behavior",
            "--add_dir_header",
            "--skip_headers",
            "--skip_log_headers",
            "--one_output",
            "--log_backtrace_at",
        ]
    );
}

#[test]
fn defaults_and_harmless_klog_flags_ignore_nothing() {
    let f = parse(&[]);
    assert_eq!((f.verbosity, f.json, f.logtostderr), (0, false, true));
    assert!(f.ignored().is_empty());
    let f = parse(&["--logtostderr", "--alsologtostderr=true", "--v", "2"]);
    assert_eq!(f.verbosity, 2);
    assert!(f.ignored().is_empty(), "{:?}", f.ignored());
}

#[test]
fn verbosity_has_one_meaning() {
    let level = |v: &str| parse(&[&format!("-v={v}")]).level();
    assert_eq!(
        ["0", "3", "4", "5", "10"].map(level),
        ["info", "info", "debug", "trace", "trace"]
    );
    assert_eq!(parse(&[]).directives(), "info");
    let d = parse(&["-v=4"]).directives();
    assert!(d.starts_with("debug,h2=info,hyper=info"), "{d}");
    for target in CAPPED {
        assert!(d.contains(&format!(",{target}=info")), "{target}: {d}");
    }
}

#[test]
fn dependencies_stay_at_info_at_the_highest_verbosity() {
    let out = Capture::default();
    let sub = parse(&["-v=10"]).subscriber(out.clone(), false);
    tracing::subscriber::with_default(sub, || {
        tracing::trace!(target: "secrets_store_csi_driver::publish", "ours-trace");
        tracing::debug!(target: "h2::codec", "h2-debug");
        tracing::trace!(target: "kube_client::client", "kube-trace");
        tracing::info!(target: "tonic::transport", "tonic-info");
    });
    let text = out.text();
    assert!(
        text.contains("ours-trace") && text.contains("tonic-info"),
        "{text}"
    );
    assert!(
        !text.contains("h2-debug") && !text.contains("kube-trace"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour without a terminal: {text}"
    );
}

#[test]
fn json_output_and_one_warning_for_ignored_flags() {
    let out = Capture::default();
    let flags = parse(&["--log-format-json", "--log_dir=/tmp", "--one_output"]);
    let sub = flags.subscriber(out.clone(), false);
    tracing::subscriber::with_default(sub, || {
        flags.warn_ignored(&["--enable-pprof".to_string()]);
        tracing::debug!("hidden at -v=0");
    });
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with('{') && lines[0].contains(r#""level":"WARN""#),
        "{text}"
    );
    assert!(
        lines[0].contains(r#""flags":"--log_dir --one_output --enable-pprof""#),
        "{text}"
    );
}
