//! What `--version` prints: upstream's JSON shape,
//! `{"BuildVersion":"…","GitCommit":"…","BuildDate":"…"}`. The commit and
//! date come from `SECRETS_STORE_GIT_COMMIT` and `SECRETS_STORE_BUILD_DATE`
//! at build time (empty when unset, as in upstream's local builds).

use serde::Serialize;

/// The build, in upstream's field names and order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildInfo {
    /// The driver version.
    pub build_version: &'static str,
    /// The source commit.
    pub git_commit: &'static str,
    /// When the binary was built.
    pub build_date: &'static str,
}

/// This binary's build.
pub const BUILD: BuildInfo = BuildInfo {
    build_version: crate::VERSION,
    git_commit: match option_env!("SECRETS_STORE_GIT_COMMIT") {
        Some(c) => c,
        None => "",
    },
    build_date: match option_env!("SECRETS_STORE_BUILD_DATE") {
        Some(d) => d,
        None => "",
    },
};

impl BuildInfo {
    /// One line of JSON.
    pub fn json(&self) -> String {
        // Three strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_json_shape() {
        let b = BuildInfo {
            build_version: "1.2.3",
            git_commit: "abc",
            build_date: "2026-01-01-00:00",
        };
        assert_eq!(
            b.json(),
            r#"{"BuildVersion":"1.2.3","GitCommit":"abc","BuildDate":"2026-01-01-00:00"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&BUILD.json()).expect("json");
        assert_eq!(v["BuildVersion"], crate::VERSION);
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }
}
