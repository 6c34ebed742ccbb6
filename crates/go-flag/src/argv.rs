//! Go-style command lines for clap: `-name=value` and `-name value` mean
//! `--name…` when `name` is a long flag, bools take `--flag`/`--flag=false`
//! only, and a repeated flag overrides the earlier one (Go's `flag`
//! package allows all three; clap alone allows none).

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};

use crate::boolean::parse_bool;

/// `cmd` with Go semantics: every plain `bool` flag (clap's `SetTrue`)
/// becomes a Go bool (`--flag`, `--flag=true`, `--flag=0`, but not
/// `--flag false`), and repeated flags override.
pub fn go_style(cmd: Command) -> Command {
    cmd.args_override_self(true).mut_args(|arg| {
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            go_bool(arg)
        } else {
            arg
        }
    })
}

fn go_bool(arg: Arg) -> Arg {
    let arg = if arg.get_default_values().is_empty() {
        arg.default_value("false")
    } else {
        arg
    };
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .value_parser(parse_bool)
}

/// Rewrites Go-style single-dash long flags (`-v=5`, `-logtostderr`,
/// `-vmodule=x=2`, `-endpoint unix:///x`) to clap's `--name` when `name`
/// is one of `cmd`'s long flags. Values of flags that take one, and
/// everything after `--`, are left alone; short flags stay short.
pub fn normalize<I, T>(cmd: &Command, argv: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut cmd = cmd.clone();
    cmd.build();
    let takes_value = |name: &str| {
        cmd.get_arguments()
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .map(|a| a.get_num_args().is_some_and(|n| n.min_values() > 0))
    };
    let mut out = Vec::new();
    let mut value_next = false;
    let mut rest = false;
    for (i, raw) in argv.into_iter().map(Into::<OsString>::into).enumerate() {
        if i == 0 || rest || std::mem::take(&mut value_next) {
            out.push(raw);
            continue;
        }
        let Some(s) = raw.to_str() else {
            out.push(raw);
            continue;
        };
        if s == "--" {
            rest = true;
            out.push(raw);
            continue;
        }
        let long = s.strip_prefix("--").or_else(|| s.strip_prefix('-'));
        let Some(body) = long.filter(|b| !b.is_empty() && !b.starts_with('-')) else {
            out.push(raw);
            continue;
        };
        let (name, has_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        match takes_value(name) {
            Some(needs) => {
                value_next = needs && !has_value;
                out.push(format!("--{body}").into());
            }
            None => out.push(raw),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        go_style(
            Command::new("t")
                .arg(Arg::new("v").short('v').long("v").default_value("0"))
                .arg(Arg::new("vmodule").long("vmodule"))
                .arg(Arg::new("endpoint").long("endpoint"))
                .arg(
                    Arg::new("logtostderr")
                        .long("logtostderr")
                        .action(ArgAction::SetTrue),
                )
                .arg(Arg::new("x").short('x').action(ArgAction::SetTrue)),
        )
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(&cmd(), args.iter().copied())
            .into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "t",
                "-v=5",
                "-logtostderr",
                "-vmodule=x=2",
                "-endpoint=unix:///x"
            ]),
            [
                "t",
                "--v=5",
                "--logtostderr",
                "--vmodule=x=2",
                "--endpoint=unix:///x"
            ]
        );
        // A separate value is a value, even if it looks like a flag.
        assert_eq!(
            norm(&["t", "-endpoint", "-logtostderr", "-x", "--", "-v=1"]),
            ["t", "--endpoint", "-logtostderr", "-x", "--", "-v=1"]
        );
        // Unknown names and short clusters are left for clap to judge.
        assert_eq!(
            norm(&["t", "-unknown=1", "-xv", "-"]),
            ["t", "-unknown=1", "-xv", "-"]
        );
    }

    #[test]
    fn go_bools_and_overrides_parse() {
        let parse = |args: &[&str]| {
            cmd()
                .try_get_matches_from(normalize(&cmd(), args.iter().copied()))
                .map(|m| {
                    (
                        m.get_one::<bool>("logtostderr").copied(),
                        m.get_one::<String>("v").cloned(),
                    )
                })
        };
        assert_eq!(
            parse(&["t"]).expect("defaults"),
            (Some(false), Some("0".into()))
        );
        assert_eq!(parse(&["t", "-logtostderr"]).expect("bare").0, Some(true));
        assert_eq!(
            parse(&["t", "--logtostderr=False"]).expect("false").0,
            Some(false)
        );
        assert_eq!(
            parse(&["t", "--logtostderr=1", "-v=2", "-v=3"]).expect("repeat"),
            (Some(true), Some("3".into()))
        );
        let err = parse(&["t", "--logtostderr=yes"]).expect_err("not a Go bool");
        assert!(err.to_string().contains("invalid boolean \"yes\""), "{err}");
        assert!(
            parse(&["t", "--logtostderr", "false"]).is_err(),
            "Go reads `false` as a positional"
        );
    }
}
