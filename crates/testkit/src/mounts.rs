//! Cleaning up mounts a test leaves behind: a test that stops before
//! unpublishing must not leak tmpfs mounts under its temporary directory.

use std::path::Path;

/// Unmounts every mount point under `dir`, deepest first (best effort).
pub fn unmount_all_under(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = std::process::Command::new("umount").arg(&p).status();
    }
}
