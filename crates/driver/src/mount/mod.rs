//! Mounts on the node: the tmpfs that holds one volume's files.
//!
//! [`table`] parses `/proc/self/mountinfo` (the one mount-table reader);
//! [`linux`] is the only module that makes mount syscalls. Everything the
//! driver knows about what is mounted comes from the table, so a restarted
//! driver finds its mounts again.

pub mod linux;
pub mod table;

use std::path::Path;

/// Mount errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `mount(2)` failed.
    #[error("mount tmpfs at {target}: {source}")]
    Mount {
        /// Target directory.
        target: String,
        /// Cause.
        source: std::io::Error,
    },
    /// `umount(2)` failed.
    #[error("unmount {target}: {source}")]
    Unmount {
        /// Target directory.
        target: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The mount table could not be read.
    #[error("read mount table: {0}")]
    Table(std::io::Error),
}

/// Options of the tmpfs mounted for one volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// Group owning the tmpfs root (the pod's fsGroup).
    pub gid: Option<u32>,
}

/// The mount operations the driver needs.
pub trait Mounter: Send + Sync + 'static {
    /// Mounts a fresh tmpfs at `target` (an existing directory).
    fn mount_tmpfs(&self, target: &Path, options: TmpfsOptions) -> Result<(), Error>;
    /// Unmounts whatever is mounted at `target`.
    fn unmount(&self, target: &Path) -> Result<(), Error>;
    /// Whether `target` is a mount point.
    fn is_mounted(&self, target: &Path) -> Result<bool, Error>;
}
