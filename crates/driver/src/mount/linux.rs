//! Mount syscalls (Linux), through `nix`. `mount` acts on a descriptor of
//! the target opened without following links (`/proc/self/fd/<n>`), so no
//! path is resolved again between the check and the syscall. `umount`
//! cannot (an open descriptor keeps the mount busy): the target is
//! resolved link-free first, the descriptor closed, and `umount2` gets the
//! path with `UMOUNT_NOFOLLOW` (the components above it belong to kubelet).

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::{Error, Mounter, TmpfsOptions};
use crate::target::Target;

/// The real mounter.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxMounter;

fn missing(target: &Target) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} does not exist", target.path().display()),
    )
}

impl Mounter for LinuxMounter {
    fn mount_tmpfs(&self, target: &Target, options: TmpfsOptions) -> Result<(), Error> {
        let fd = target.open()?.ok_or_else(|| Error::Mount {
            target: target.path().display().to_string(),
            source: missing(target),
        })?;
        mount_tmpfs_on(&fd, target.path(), options)
    }

    fn unmount(&self, target: &Target) -> Result<(), Error> {
        drop(target.open()?.ok_or_else(|| Error::Unmount {
            target: target.path().display().to_string(),
            source: missing(target),
        })?);
        unmount_path(target.path())
    }

    fn is_mounted(&self, target: &Target) -> Result<bool, Error> {
        Ok(target.is_mount_point()?)
    }
}

/// Mounts a bounded tmpfs on the directory `dir` (a descriptor its caller
/// opened without following links; `shown` names it in errors and logs).
/// The driver's targets and the standalone CLI's directories share it.
pub fn mount_tmpfs_on(dir: &OwnedFd, shown: &Path, options: TmpfsOptions) -> Result<(), Error> {
    mount_on(dir, shown, &options.data())
}

/// Mounts a tmpfs of `size` bytes, mode `0700`, on the directory `dir`
/// (opened without following links): the driver's own state directory.
pub fn mount_private_tmpfs_on(dir: &OwnedFd, shown: &Path, size: u64) -> Result<(), Error> {
    mount_on(dir, shown, &format!("size={size},mode=0700"))
}

/// Whether the directory `dir` is on a tmpfs.
pub fn on_tmpfs(dir: &OwnedFd) -> std::io::Result<bool> {
    let fs = nix::sys::statfs::fstatfs(dir)?;
    Ok(fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

fn mount_on(dir: &OwnedFd, shown: &Path, data: &str) -> Result<(), Error> {
    // Secrets never reach disk: tmpfs is memory-backed and bounded;
    // nosuid/nodev/noexec because it only holds data files.
    nix::mount::mount(
        Some("tmpfs"),
        &Target::fd_path(dir),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data),
    )
    .map_err(|e| Error::Mount {
        target: shown.display().to_string(),
        source: e.into(),
    })?;
    tracing::debug!(target = %shown.display(), "mounted tmpfs");
    Ok(())
}

/// Unmounts `path` without following a link in its final component (the
/// caller has checked the components above it).
pub fn unmount_path(path: &Path) -> Result<(), Error> {
    nix::mount::umount2(path, MntFlags::UMOUNT_NOFOLLOW).map_err(|e| Error::Unmount {
        target: path.display().to_string(),
        source: e.into(),
    })?;
    tracing::debug!(target = %path.display(), "unmounted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Rules;

    /// Needs root (the test suite runs as root, as the driver does).
    #[test]
    fn mounts_and_unmounts_through_the_target_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Rules::new(dir.path()).target("u", "v").expect("target");
        std::fs::create_dir_all(t.path().parent().expect("parent")).expect("mkdir");
        t.create().expect("create");
        let m = LinuxMounter;
        let options = TmpfsOptions {
            gid: Some(1234),
            size: 1 << 20,
        };
        m.mount_tmpfs(&t, options).expect("mount");
        assert!(m.is_mounted(&t).expect("check"));
        let meta = std::fs::metadata(t.path()).expect("stat");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(
            (meta.gid(), meta.permissions().mode() & 0o7777),
            (1234, 0o750)
        );
        m.unmount(&t).expect("unmount");
        assert!(!m.is_mounted(&t).expect("check"));
        t.remove().expect("remove");
    }
}
