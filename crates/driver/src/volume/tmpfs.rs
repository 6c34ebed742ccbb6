//! The state directory on a tmpfs (`--state-dir-tmpfs`, on by default).
//!
//! Records describe tmpfs mounts and end with them at a reboot, so they
//! belong on a tmpfs too: writing one there costs no journal and no disk
//! inode (on ext4 the record file was the largest single cost of a publish,
//! BENCHMARKS.md). At start the driver mounts a small private tmpfs
//! (`0700`, `nosuid,nodev,noexec`, size-bounded) on the directory unless it
//! is on a tmpfs already: after a container restart it is the one mounted
//! before (the chart mounts the plugin directory with bidirectional
//! propagation, so the mount lives on the host and keeps the records), or
//! one the operator chose. Records found on the directory underneath (an
//! upgrade) are moved onto the new tmpfs. Without the privilege to mount,
//! the directory is used as it is.
//!
//! A marker file says the tmpfs is the driver's own: only then does a clean
//! shutdown unmount it, and only when no record remains (a driver stopped
//! with volumes still mounted keeps their records for its next start).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::{Error, Store, VolumeRecord, io, read_record};
use crate::mount::linux::{mount_private_tmpfs_on, on_tmpfs, unmount_path};

/// Marks a state tmpfs this driver mounted.
const MARKER: &str = ".secrets-store-csi-state-tmpfs";

/// Where the records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A tmpfs mounted by this start (`moved` records found underneath).
    Mounted {
        /// Records moved onto it.
        moved: usize,
    },
    /// Already on a tmpfs (the driver's own from before a restart, or one
    /// the operator chose).
    Tmpfs,
    /// The directory's own filesystem (`--state-dir-tmpfs=false`, or no
    /// privilege to mount: the reason).
    Disk(String),
}

impl Store {
    /// Opens the state directory (as [`Store::open`]) on a tmpfs of `size`
    /// bytes, mounting one when it is not on a tmpfs.
    pub fn open_on_tmpfs(dir: impl Into<PathBuf>, size: u64) -> Result<(Self, Backing), Error> {
        let store = Self::open(dir)?;
        let fd = open_dir(store.dir())?;
        if on_tmpfs(&fd).map_err(io("statfs", store.dir()))? {
            return Ok((store, Backing::Tmpfs));
        }
        let found = store.records_with_keys()?;
        match mount_private_tmpfs_on(&fd, store.dir(), size) {
            Ok(()) => {}
            Err(crate::mount::Error::Mount { source, .. })
                if source.raw_os_error() == Some(nix::libc::EPERM) =>
            {
                return Ok((store, Backing::Disk(source.to_string())));
            }
            Err(e) => {
                return Err(io("mount tmpfs", store.dir())(std::io::Error::other(
                    e.to_string(),
                )));
            }
        }
        let marker = store.dir().join(MARKER);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&marker)
            .map_err(io("create", &marker))?;
        for (key, record) in &found {
            store.write_key(key, record)?;
            // The descriptor still names the directory underneath.
            let name = format!("{key}.json");
            nix::unistd::unlinkat(
                fd.as_fd(),
                name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(|e| io("remove", store.dir())(e.into()))?;
        }
        Ok((store, Backing::Mounted { moved: found.len() }))
    }

    /// At a clean shutdown: unmounts the state tmpfs when this driver
    /// mounted it (the marker) and no record remains. Returns whether it
    /// did.
    pub fn release_tmpfs(&self) -> Result<bool, Error> {
        if std::fs::symlink_metadata(self.dir().join(MARKER)).is_err() {
            return Ok(false);
        }
        if !self.record_files()?.is_empty() {
            return Ok(false);
        }
        unmount_path(self.dir())
            .map_err(|e| io("unmount", self.dir())(std::io::Error::other(e.to_string())))?;
        Ok(true)
    }

    /// Every readable record file with its key (the name without `.json`);
    /// unreadable ones are left where they are.
    fn records_with_keys(&self) -> Result<Vec<(String, VolumeRecord)>, Error> {
        let mut out = Vec::new();
        for path in self.record_files()? {
            let key = path.file_stem().and_then(|n| n.to_str());
            if let (Some(key), Ok(Some(record))) = (key, read_record(&path)) {
                out.push((key.to_string(), record));
            }
        }
        Ok(out)
    }
}

/// The directory, opened without following links.
fn open_dir(dir: &Path) -> Result<OwnedFd, Error> {
    open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| io("open", dir)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Rules;

    /// Needs root (the test suite runs as root, as the driver does).
    #[test]
    fn records_move_onto_a_private_tmpfs_that_is_reused_and_released_when_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        if on_tmpfs(&open_dir(dir.path()).expect("open")).expect("statfs") {
            return eprintln!("skipped: the temporary directory is on a tmpfs already");
        }
        let rules = Rules::new(dir.path().join("kubelet"));
        let state = dir.path().join("state");
        let disk = Store::open(&state).expect("open");
        let t = rules.target("uid-1", "v").expect("target");
        let r = super::super::record::tests::record(&t.path().display().to_string());
        disk.save(&t, &r).expect("save");

        let (store, backing) = Store::open_on_tmpfs(&state, 1 << 20).expect("tmpfs");
        assert_eq!(backing, Backing::Mounted { moved: 1 });
        assert!(on_tmpfs(&open_dir(&state).expect("open")).expect("statfs"));
        assert_eq!(store.load(&t).expect("load"), Some(r.clone()));
        let (again, backing) = Store::open_on_tmpfs(&state, 1 << 20).expect("reuse");
        assert_eq!(backing, Backing::Tmpfs, "a restart reuses it");
        assert!(!again.release_tmpfs().expect("release"), "a record remains");
        again.remove(&t).expect("remove");
        assert!(again.release_tmpfs().expect("release"));
        let fd = open_dir(&state).expect("open");
        assert!(!on_tmpfs(&fd).expect("statfs"), "unmounted");
        assert_eq!(
            disk.load(&t).expect("load"),
            None,
            "moved, not copied: nothing stale underneath"
        );
    }
}
