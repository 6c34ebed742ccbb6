//! Mounts on the node: the tmpfs that holds one volume's files.
//!
//! [`Mounter`] is the narrow interface the publish path uses; [`linux`] is
//! the only module that makes mount syscalls, [`fake`] records calls for
//! unit tests that run without root. Every call takes a [`Target`], whose
//! path rules and link-free resolution come from [`crate::target`]. The
//! calls block: callers run them off the async worker threads.

pub mod fake;
pub mod linux;

use crate::target::{self, Target};

/// Mount errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target could not be resolved safely.
    #[error(transparent)]
    Target(#[from] target::Error),
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
}

/// Options of the tmpfs mounted for one volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// Group owning the tmpfs root (the pod's fsGroup): mode `0750` then,
    /// `0755` without one (never world-writable).
    pub gid: Option<u32>,
    /// `size=` in bytes.
    pub size: u64,
}

impl TmpfsOptions {
    /// The `data` string passed to `mount(2)`.
    pub fn data(&self) -> String {
        match self.gid {
            Some(gid) => format!("size={},mode=0750,gid={gid}", self.size),
            None => format!("size={},mode=0755", self.size),
        }
    }
}

/// The mount operations the driver needs.
pub trait Mounter: Send + Sync + 'static {
    /// Mounts a fresh tmpfs on `target` (an existing directory).
    fn mount_tmpfs(&self, target: &Target, options: TmpfsOptions) -> Result<(), Error>;
    /// Unmounts whatever is mounted on `target`.
    fn unmount(&self, target: &Target) -> Result<(), Error>;
    /// Whether `target` is a mount point.
    fn is_mounted(&self, target: &Target) -> Result<bool, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_data_is_bounded_and_never_world_writable() {
        let plain = TmpfsOptions {
            gid: None,
            size: 9 << 20,
        };
        assert_eq!(plain.data(), "size=9437184,mode=0755");
        let group = TmpfsOptions {
            gid: Some(2000),
            size: 4096,
        };
        assert_eq!(group.data(), "size=4096,mode=0750,gid=2000");
    }
}
