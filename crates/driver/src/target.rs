//! kubelet's CSI target paths: the only directories the driver mounts on,
//! creates or removes.
//!
//! kubelet publishes an ephemeral CSI volume at
//! `<kubelet-dir>/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount`.
//! A target of any other shape is refused before anything is touched, and
//! every component below the kubelet directory is resolved without
//! following symbolic links (`openat2` with `RESOLVE_NO_SYMLINKS` and
//! `RESOLVE_BENEATH`), so whoever controls a directory in kubelet's tree
//! cannot redirect a mount, a `mkdir` or an `rmdir` elsewhere. The kubelet
//! directory itself is the operator's (`--kubelet-dir`) and may be a link.
//! Only the final `mount` directory is ever created or removed, and never
//! recursively.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Name of the directory kubelet publishes into.
const MOUNT_DIR: &str = "mount";
/// kubelet's plugin directory name for CSI volumes.
const CSI_PLUGIN_DIR: &str = "kubernetes.io~csi";

/// Why a target path is refused or could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is not kubelet's CSI volume path under the kubelet directory.
    #[error(
        "target path {path:?} is not a kubelet CSI volume path \
         ({kubelet_dir}/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount)"
    )]
    Shape {
        /// The path as sent.
        path: String,
        /// The kubelet directory (`--kubelet-dir`).
        kubelet_dir: String,
    },
    /// A component below the kubelet directory is a symbolic link (or not a
    /// directory).
    #[error(
        "target path {path:?} has a symbolic link or a non-directory in it; refusing to follow it"
    )]
    Symlink {
        /// The path.
        path: String,
    },
    /// The target still holds entries after unmounting; they are not ours
    /// to delete.
    #[error("target path {path:?} is not empty after unmount; left in place")]
    NotEmpty {
        /// The path.
        path: String,
    },
    /// A filesystem call failed.
    #[error("target path {path:?}: {op}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The operation.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the request itself is at fault (wrong shape, or a link on
    /// the way): `InvalidArgument`, not a driver failure.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Shape { .. } | Error::Symlink { .. })
    }
}

/// The target path rules of one node.
#[derive(Debug, Clone)]
pub struct Rules {
    kubelet_dir: PathBuf,
}

/// A target path that has kubelet's CSI shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    path: PathBuf,
    kubelet_dir: PathBuf,
    pod_uid: String,
    volume: String,
}

impl Rules {
    /// Rules for targets under `kubelet_dir`.
    pub fn new(kubelet_dir: impl Into<PathBuf>) -> Self {
        Self {
            kubelet_dir: kubelet_dir.into(),
        }
    }

    /// The kubelet directory.
    pub fn kubelet_dir(&self) -> &Path {
        &self.kubelet_dir
    }

    /// Checks the shape of `raw` (no filesystem access).
    pub fn parse(&self, raw: &str) -> Result<Target, Error> {
        let shape = || Error::Shape {
            path: raw.to_string(),
            kubelet_dir: self.kubelet_dir.display().to_string(),
        };
        let path = Path::new(raw);
        let normal = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && path.components().collect::<PathBuf>().as_os_str() == path.as_os_str();
        if !normal {
            return Err(shape());
        }
        let rel = path.strip_prefix(&self.kubelet_dir).map_err(|_| shape())?;
        let parts: Vec<&str> = rel
            .components()
            .map(|c| c.as_os_str().to_str().unwrap_or(""))
            .collect();
        match parts.as_slice() {
            ["pods", uid, "volumes", CSI_PLUGIN_DIR, volume, MOUNT_DIR]
                if valid_uid(uid) && valid_volume(volume) =>
            {
                Ok(Target {
                    path: path.to_path_buf(),
                    kubelet_dir: self.kubelet_dir.clone(),
                    pod_uid: uid.to_string(),
                    volume: volume.to_string(),
                })
            }
            _ => Err(shape()),
        }
    }

    /// kubelet's target path for a pod's volume.
    pub fn target(&self, pod_uid: &str, volume: &str) -> Result<Target, Error> {
        let path = self
            .kubelet_dir
            .join("pods")
            .join(pod_uid)
            .join("volumes")
            .join(CSI_PLUGIN_DIR)
            .join(volume)
            .join(MOUNT_DIR);
        self.parse(&path.display().to_string())
    }
}

/// Pod UIDs are UUIDs (or, for static pods, hex digests).
fn valid_uid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Pod volume names are DNS labels; dots are allowed for safety margin.
fn valid_volume(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl Target {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pod UID in the path.
    pub fn pod_uid(&self) -> &str {
        &self.pod_uid
    }

    /// The pod volume name in the path.
    pub fn volume(&self) -> &str {
        &self.volume
    }

    /// A name for this volume that is safe as a file name.
    pub fn key(&self) -> String {
        format!("{}_{}", self.pod_uid, self.volume)
    }

    fn io(&self, op: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        move |e| match e {
            Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR => Error::Symlink {
                path: self.path.display().to_string(),
            },
            e => Error::Io {
                path: self.path.display().to_string(),
                op,
                source: e.into(),
            },
        }
    }

    /// Opens `rel` below the kubelet directory without following links.
    fn open_beneath(&self, rel: &Path, op: &'static str) -> Result<Option<OwnedFd>, Error> {
        let root = nix::fcntl::open(
            &self.kubelet_dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.io("open kubelet dir"))?;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
        match nix::fcntl::openat2(root.as_fd(), rel, how) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.io(op)(e)),
        }
    }

    fn rel(&self) -> &Path {
        self.path
            .strip_prefix(&self.kubelet_dir)
            .unwrap_or(&self.path)
    }

    /// The volume directory (`.../<volume>`), opened without following links.
    fn open_parent(&self) -> Result<Option<OwnedFd>, Error> {
        let parent = self.rel().parent().unwrap_or(Path::new("."));
        self.open_beneath(parent, "open parent")
    }

    /// The target directory opened without following links (`O_PATH`), or
    /// `None` when it does not exist.
    pub fn open(&self) -> Result<Option<OwnedFd>, Error> {
        self.open_beneath(self.rel(), "open")
    }

    /// Makes sure the target directory exists (`0750`), creating only the
    /// final component. Returns whether this call created it.
    pub fn create(&self) -> Result<bool, Error> {
        let parent = self.open_parent()?.ok_or_else(|| Error::Io {
            path: self.path.display().to_string(),
            op: "open parent",
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "kubelet's volume directory does not exist",
            ),
        })?;
        let created = match nix::sys::stat::mkdirat(
            parent.as_fd(),
            MOUNT_DIR,
            Mode::from_bits_truncate(0o750),
        ) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(self.io("mkdir")(e)),
        };
        // An existing entry must be a real directory.
        self.open()?.ok_or_else(|| Error::Symlink {
            path: self.path.display().to_string(),
        })?;
        Ok(created)
    }

    /// Removes the (unmounted) target directory, never recursively. A
    /// missing target is success.
    pub fn remove(&self) -> Result<(), Error> {
        let Some(parent) = self.open_parent()? else {
            return Ok(());
        };
        match nix::unistd::unlinkat(
            parent.as_fd(),
            MOUNT_DIR,
            nix::unistd::UnlinkatFlags::RemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(Error::NotEmpty {
                path: self.path.display().to_string(),
            }),
            Err(e) => Err(self.io("rmdir")(e)),
        }
    }

    /// Whether something is mounted on the target: its device differs from
    /// its parent's (what kubelet's mount-point check compares). Constant
    /// time, whatever the size of the mount table.
    pub fn is_mount_point(&self) -> Result<bool, Error> {
        let (Some(parent), Some(dir)) = (self.open_parent()?, self.open()?) else {
            return Ok(false);
        };
        let stat = |fd: &OwnedFd| {
            nix::sys::stat::fstat(fd.as_fd()).map_err(|e| Error::Io {
                path: self.path.display().to_string(),
                op: "stat",
                source: e.into(),
            })
        };
        Ok(stat(&parent)?.st_dev != stat(&dir)?.st_dev)
    }

    /// `/proc/self/fd/<n>` for an open descriptor: mount calls on it act on
    /// exactly the directory that was opened, with no path resolution.
    pub fn fd_path(fd: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "6b1c2a8e-1f1e-4b5a-9d7e-0c0c0c0c0c0c";

    fn rules() -> Rules {
        Rules::new("/var/lib/kubelet")
    }

    #[test]
    fn kubelet_csi_paths_parse() {
        let t = rules()
            .parse(&format!(
                "/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~csi/secrets-store-inline/mount"
            ))
            .expect("valid");
        assert_eq!(t.pod_uid(), UID);
        assert_eq!(t.volume(), "secrets-store-inline");
        assert_eq!(t.key(), format!("{UID}_secrets-store-inline"));
    }

    #[test]
    fn other_shapes_are_refused() {
        let base = format!("/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~csi");
        let cases = [
            "/tmp/csi/mount".to_string(),
            "relative/path".to_string(),
            format!("{base}/v/mount/"),
            format!("{base}/v/mount/x"),
            format!("{base}/v/../v/mount"),
            format!("{base}/./v/mount"),
            format!("{base}//v/mount"),
            format!("{base}/v/notmount"),
            format!("{base}/V/mount"),
            format!("{base}/.v/mount"),
            format!("/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~empty-dir/v/mount"),
            "/var/lib/kubelet/pods/a b/volumes/kubernetes.io~csi/v/mount".to_string(),
            format!("/var/lib/kubeletx/pods/{UID}/volumes/kubernetes.io~csi/v/mount"),
            "/var/lib/kubelet".to_string(),
        ];
        for raw in cases {
            let err = rules().parse(&raw).expect_err(&raw);
            assert!(
                err.to_string()
                    .contains("is not a kubelet CSI volume path (/var/lib/kubelet/pods/"),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn create_and_remove_touch_only_the_final_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(dir.path());
        let t = rules.target(UID, "v").expect("shape");
        let parent = t.path().parent().expect("parent");
        // kubelet creates the volume directory; without it nothing is made.
        assert!(t.create().is_err());
        std::fs::create_dir_all(parent).expect("mkdir");
        std::fs::write(parent.join("vol_data.json"), "{}").expect("write");
        assert!(t.create().expect("create"));
        assert!(!t.create().expect("exists"), "second create is a no-op");
        assert!(!t.is_mount_point().expect("stat"));
        std::fs::write(t.path().join("x"), "not ours").expect("write");
        assert!(matches!(t.remove(), Err(Error::NotEmpty { .. })));
        assert!(t.path().join("x").exists(), "nothing deleted recursively");
        std::fs::remove_file(t.path().join("x")).expect("rm");
        t.remove().expect("remove");
        assert!(!t.path().exists());
        assert!(parent.join("vol_data.json").exists());
        t.remove().expect("missing is fine");
    }

    #[test]
    fn symlinked_components_are_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(dir.path());
        let t = rules.target(UID, "v").expect("shape");
        // pods/<uid>/volumes -> a directory outside.
        let pod = dir.path().join("pods").join(UID);
        std::fs::create_dir_all(&pod).expect("mkdir");
        std::fs::create_dir_all(elsewhere.path().join("kubernetes.io~csi/v")).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.path(), pod.join("volumes")).expect("symlink");
        assert!(matches!(t.create(), Err(Error::Symlink { .. })));
        assert!(!elsewhere.path().join("kubernetes.io~csi/v/mount").exists());
        // The final component as a link to a directory.
        std::fs::remove_file(pod.join("volumes")).expect("rm");
        let vol = pod.join("volumes/kubernetes.io~csi/v");
        std::fs::create_dir_all(&vol).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.path(), vol.join("mount")).expect("symlink");
        assert!(matches!(t.create(), Err(Error::Symlink { .. })));
        assert!(matches!(t.open(), Err(Error::Symlink { .. })));
        assert!(elsewhere.path().exists());
    }
}
