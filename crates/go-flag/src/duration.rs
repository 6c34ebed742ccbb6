//! Go duration strings (`time.ParseDuration`'s format: `300ms`, `2m`,
//! `1h30m`, `1.5s`, `0`). Negative durations are refused: no flag here
//! means one.

use std::time::Duration;

/// The string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use a Go duration such as 2m, 30s or 1h30m")]
pub struct InvalidDuration(pub String);

/// Parses a Go duration.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let err = || InvalidDuration(s.to_string());
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("2m", Some(120.0)),
            ("30s", Some(30.0)),
            ("1h30m", Some(5400.0)),
            ("1.5s", Some(1.5)),
            ("250ms", Some(0.25)),
            ("0", Some(0.0)),
            ("0s", Some(0.0)),
            ("", None),
            ("5", None),
            ("2 m", None),
            ("1d", None),
            ("-1s", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_duration(input).ok().map(|d| d.as_secs_f64()),
                want,
                "{input}"
            );
        }
        assert_eq!(
            parse_duration("1x").expect_err("bad").to_string(),
            "invalid duration \"1x\": use a Go duration such as 2m, 30s or 1h30m"
        );
    }
}
