//! Oracles shared by the fuzz targets under `fuzz_targets/`: the payload
//! path rule written independently of the atomic writer, and a snapshot of
//! a directory tree that never follows symlinks (to prove nothing outside a
//! target changed).

use std::collections::BTreeMap;
use std::path::{Component, Path};

/// The payload path rule, written from the spec rather than from the
/// writer's code: non-empty, at most 4096 bytes, no NUL, `/`-separated
/// elements (at most 64, the read-back's depth) that are each non-empty,
/// not `.` or `..`, at most 255 bytes, and a first element that does not
/// start with `..`.
pub fn payload_path_ok(path: &str) -> bool {
    let mut elements = path.split('/');
    let first_ok = elements.next().is_some_and(|e| !e.starts_with(".."));
    first_ok
        && !path.is_empty()
        && path.len() <= 4096
        && !path.contains('\0')
        && path.split('/').count() <= 64
        && path
            .split('/')
            .all(|e| !e.is_empty() && e != "." && e != ".." && e.len() <= 255)
}

/// Panics unless `path` is safe to join under a target: relative, only
/// normal components, none of them `..`, the first not `..`-prefixed.
pub fn assert_contained(path: &str, what: &str) {
    let p = Path::new(path);
    assert!(p.is_relative(), "{what}: accepted absolute path {path:?}");
    let mut components = p.components();
    match components.next() {
        Some(Component::Normal(first)) => assert!(
            !first.as_encoded_bytes().starts_with(b".."),
            "{what}: accepted reserved first element in {path:?}"
        ),
        other => panic!("{what}: accepted {path:?} starting with {other:?}"),
    }
    for c in components {
        assert!(
            matches!(c, Component::Normal(_)),
            "{what}: accepted {path:?} with component {c:?}"
        );
    }
}

/// A per-process scratch directory path for `tag`, on tmpfs (`/dev/shm`)
/// when there is one, as the driver's targets are, else the temp dir.
pub fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    parent.join(format!("sscsi-fuzz-{tag}-{}", std::process::id()))
}

/// One entry of a [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A regular file: contents and permission bits.
    File(Vec<u8>, u32),
    /// A symlink: its text.
    Link(std::path::PathBuf),
    /// Anything else.
    Other,
}

/// Every entry under `root` by relative path, without following symlinks.
pub fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let kind = if meta.is_dir() {
                stack.push(path);
                Entry::Dir
            } else if meta.is_file() {
                let contents = std::fs::read(&path).unwrap_or_default();
                Entry::File(contents, meta.permissions().mode() & 0o7777)
            } else if meta.file_type().is_symlink() {
                Entry::Link(std::fs::read_link(&path).unwrap_or_default())
            } else {
                Entry::Other
            };
            out.insert(rel, kind);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_matches_the_spec_examples() {
        for ok in ["a", "a/b", "a..b", "dir/..hidden", "x/.y"] {
            assert!(payload_path_ok(ok), "{ok}");
            assert_contained(ok, "test");
        }
        for bad in [
            "", "/a", "..", "../a", "a/../b", "..data", "./a", "a//b", "a/", "a\0",
        ] {
            assert!(!payload_path_ok(bad), "{bad}");
        }
    }
}
