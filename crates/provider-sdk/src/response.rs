//! Building the `MountResponse`: files with their mode, and one version per
//! object id.

use std::collections::{BTreeMap, BTreeSet};

use secrets_store_proto::provider::v1alpha1 as pb;

use crate::path::{self, PathError};

/// Response building errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The file path is not a safe relative path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Two objects would write the same file.
    #[error("duplicate file path: {0}")]
    Duplicate(String),
}

/// The result of a successful mount: files and object versions.
#[derive(Debug, Default)]
pub struct Mounted {
    files: Vec<pb::File>,
    paths: BTreeSet<String>,
    versions: BTreeMap<String, String>,
}

impl Mounted {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file after validating its path.
    pub fn file(&mut self, path: &str, mode: u32, contents: Vec<u8>) -> Result<(), ResponseError> {
        path::validate(path)?;
        if !self.paths.insert(path.to_string()) {
            return Err(ResponseError::Duplicate(path.to_string()));
        }
        self.files.push(pb::File {
            path: path.to_string(),
            mode: (mode & 0o777) as i32,
            contents,
        });
        Ok(())
    }

    /// Records the version of object `id`.
    pub fn version(&mut self, id: &str, version: &str) {
        self.versions.insert(id.to_string(), version.to_string());
    }

    /// The file paths, in insertion order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }

    /// The wire response.
    pub fn into_response(self) -> pb::MountResponse {
        pb::MountResponse {
            object_version: self
                .versions
                .into_iter()
                .map(|(id, version)| pb::ObjectVersion { id, version })
                .collect(),
            error: None,
            files: self.files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_files_and_versions() {
        let mut m = Mounted::new();
        m.file("a", 0o644, b"1".to_vec()).expect("a");
        m.file("dir/b", 0o400, b"2".to_vec()).expect("b");
        m.version("a", "v1");
        assert_eq!(
            m.file("a", 0o644, vec![]),
            Err(ResponseError::Duplicate("a".into()))
        );
        assert!(matches!(
            m.file("../x", 0o644, vec![]),
            Err(ResponseError::Path(_))
        ));
        let r = m.into_response();
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files[0].mode, 0o644);
        assert_eq!(r.object_version[0].id, "a");
    }
}
