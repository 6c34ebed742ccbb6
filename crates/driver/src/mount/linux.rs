//! Mount syscalls (Linux), through `nix`. Both calls act on a descriptor
//! of the target opened without following links (`/proc/self/fd/<n>`), so
//! no path is resolved again between the check and the syscall.

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
        let err = |source| Error::Mount {
            target: target.path().display().to_string(),
            source,
        };
        let fd = target.open()?.ok_or_else(|| err(missing(target)))?;
        // Secrets never reach disk: tmpfs is memory-backed and bounded;
        // nosuid/nodev/noexec because the volume only holds data files.
        nix::mount::mount(
            Some("tmpfs"),
            &Target::fd_path(&fd),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(options.data().as_str()),
        )
        .map_err(|e| err(e.into()))?;
        tracing::debug!(target = %target.path().display(), "mounted tmpfs");
        Ok(())
    }

    fn unmount(&self, target: &Target) -> Result<(), Error> {
        let err = |source| Error::Unmount {
            target: target.path().display().to_string(),
            source,
        };
        let fd = target.open()?.ok_or_else(|| err(missing(target)))?;
        nix::mount::umount2(&Target::fd_path(&fd), MntFlags::empty()).map_err(|e| err(e.into()))?;
        tracing::debug!(target = %target.path().display(), "unmounted");
        Ok(())
    }

    fn is_mounted(&self, target: &Target) -> Result<bool, Error> {
        Ok(target.is_mount_point()?)
    }
}
