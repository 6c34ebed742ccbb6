//! Go `flag` syntax for our clap command lines, so the upstream driver's
//! and providers' DaemonSet arguments work unchanged:
//! - [`duration`]: Go durations (`2m`, `1h30m`, `500ms`);
//! - [`boolean`]: Go bools (`strconv.ParseBool`: `true`, `1`, `t`, `False`…);
//! - [`argv`]: single-dash long flags (`-v=5`, `-logtostderr`), bare or
//!   `=`-valued bools, and repeated flags that override.
//!
//! Binaries parse with [`parse`] (or [`try_parse_from`] in tests) instead
//! of `clap::Parser::parse`; a plain `bool` field in a derived parser is
//! then a Go bool. What the flags mean is left to each binary.

pub mod argv;
pub mod boolean;
pub mod duration;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

pub use argv::{go_style, normalize};
pub use boolean::{InvalidBool, parse_bool};
pub use duration::{InvalidDuration, parse_duration};

/// Parses `argv` into `P` with Go flag syntax.
pub fn try_parse_from<P, I, T>(argv: I) -> Result<P, clap::Error>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut cmd = go_style(P::command());
    let argv = normalize(&cmd, argv);
    let mut matches = cmd.try_get_matches_from_mut(argv)?;
    P::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

/// Parses the process arguments into `P` with Go flag syntax; on error
/// (or `--help`) prints clap's message and exits as clap does.
pub fn parse<P: Parser>() -> P {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// `P`'s command with Go semantics, e.g. for rendering help.
pub fn command<P: CommandFactory>() -> clap::Command {
    go_style(P::command())
}
