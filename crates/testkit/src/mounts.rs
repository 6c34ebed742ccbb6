//! The test side of mounts: this process's mount table (the one
//! mountinfo parser in the workspace; the driver itself never reads the
//! table), and cleaning up mounts a test leaves behind, so a test that
//! stops before unpublishing does not leak tmpfs mounts under its
//! temporary directory.

use std::path::{Path, PathBuf};

/// Unmounts every mount point under `dir`, deepest first (best effort).
pub fn unmount_all_under(dir: &Path) {
    let Ok(entries) = read() else {
        return;
    };
    let mut points: Vec<PathBuf> = entries
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = std::process::Command::new("umount").arg(&p).status();
    }
}

/// One line of mountinfo, the fields the driver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type, e.g. `tmpfs`.
    pub fs_type: String,
    /// Mount source, e.g. `tmpfs`.
    pub source: String,
}

/// Parses mountinfo text (see `proc(5)`), undoing its octal escapes.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: unescape(fs_type),
                source: unescape(source),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads this process's mount table.
pub fn read() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The filesystem type mounted at `path`, if it is a mount point.
pub fn mount_type(path: &Path) -> Option<String> {
    read()
        .ok()?
        .into_iter()
        .rev()
        .find(|e| e.mount_point == path)
        .map(|e| e.fs_type)
}

/// The files of a published volume: path relative to `dir` → contents,
/// skipping the atomic writer's `..` entries (its files are reached
/// through the visible names).
pub fn read_tree(dir: &Path) -> anyhow::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".."))
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir)?.display().to_string();
                out.insert(rel, std::fs::read(&path)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines_with_optional_fields_and_escapes() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
412 22 0:98 / /var/lib/kubelet/pods/abc/volumes/kubernetes.io~csi/my\\040vol/mount rw,relatime shared:200 master:1 - tmpfs tmpfs rw,gid=2000
";
        let entries = parse(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].mount_point, PathBuf::from("/"));
        assert_eq!(entries[0].fs_type, "ext4");
        assert_eq!(
            entries[1].mount_point,
            PathBuf::from("/var/lib/kubelet/pods/abc/volumes/kubernetes.io~csi/my vol/mount")
        );
        assert_eq!(entries[1].fs_type, "tmpfs");
        assert_eq!(entries[1].source, "tmpfs");
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(parse("not a mountinfo line\n\n").is_empty());
    }
}
