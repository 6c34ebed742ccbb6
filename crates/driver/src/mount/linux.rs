//! Mount syscalls (Linux), through `nix`.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::{Error, Mounter, TmpfsOptions, table};

/// The real mounter.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxMounter;

impl Mounter for LinuxMounter {
    fn mount_tmpfs(&self, target: &Path, options: TmpfsOptions) -> Result<(), Error> {
        // Secrets never reach disk: tmpfs is memory-backed; nosuid/nodev/noexec
        // because the volume only ever holds data files.
        let data = options.gid.map(|g| format!("gid={g},mode=0750"));
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data.as_deref(),
        )
        .map_err(|e| Error::Mount {
            target: target.display().to_string(),
            source: e.into(),
        })?;
        tracing::debug!(target = %target.display(), "mounted tmpfs");
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), Error> {
        nix::mount::umount2(target, MntFlags::empty()).map_err(|e| Error::Unmount {
            target: target.display().to_string(),
            source: e.into(),
        })?;
        tracing::debug!(target = %target.display(), "unmounted");
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> Result<bool, Error> {
        let entries = table::read().map_err(Error::Table)?;
        Ok(table::contains(&entries, target))
    }
}
