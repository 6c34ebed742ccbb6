//! Provider names and where their sockets live.

use std::path::{Path, PathBuf};

/// A provider name as used in `SecretProviderClass.spec.provider`: at most
/// 30 characters of `[a-zA-Z0-9_-]` (upstream's rule), so it can never
/// name a path outside the provider directories.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderName(String);

/// The provider name is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("invalid provider: provider {0:?}")]
pub struct InvalidProviderName(pub String);

impl ProviderName {
    /// Validates a provider name.
    pub fn new(name: &str) -> Result<Self, InvalidProviderName> {
        let ok = !name.is_empty()
            && name.len() <= 30
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(InvalidProviderName(name.to_string()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first existing `<dir>/<provider>.sock`, searching `dirs` in order.
pub fn find_socket(dirs: &[PathBuf], provider: &ProviderName) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| socket_in(d, provider))
        .find(|p| p.exists())
}

fn socket_in(dir: &Path, provider: &ProviderName) -> PathBuf {
    dir.join(format!("{}.sock", provider.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_name_rules() {
        for ok in [
            "alibabacloud",
            "vault",
            "e2e-provider",
            "a_b",
            &"x".repeat(30),
        ] {
            assert!(ProviderName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            "a.b",
            "name with space",
            &"x".repeat(31),
            "akv\n",
        ] {
            let err = ProviderName::new(bad).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("invalid provider: provider {bad:?}")
            );
        }
    }

    #[test]
    fn additional_dirs_are_searched_first() {
        let a = tempfile::tempdir().expect("tmp");
        let b = tempfile::tempdir().expect("tmp");
        let name = ProviderName::new("p").expect("valid");
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find_socket(&dirs, &name), None);
        std::fs::write(b.path().join("p.sock"), "").expect("touch");
        assert_eq!(find_socket(&dirs, &name), Some(b.path().join("p.sock")));
        std::fs::write(a.path().join("p.sock"), "").expect("touch");
        assert_eq!(find_socket(&dirs, &name), Some(a.path().join("p.sock")));
    }
}
