//! Where secret sync gets a volume's files: only from the driver's own
//! knowledge of what it published, through [`MountedFiles`]. A
//! SecretProviderClassPodStatus is writable by anyone with RBAC on it, so
//! its `targetPath` is a claim to check, never a path to read.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::mount::table;

/// A volume's files: relative path → bytes (secret material; never log it).
pub type Files = BTreeMap<String, Vec<u8>>;

/// A volume as a SecretProviderClassPodStatus describes it. The controller
/// has checked namespace, pod name and uid against the API server (they
/// belong together, and the pod mounts `class` through this driver);
/// `target` is still only a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeClaim {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod uid.
    pub pod_uid: String,
    /// SecretProviderClass name.
    pub class: String,
    /// Claimed target path.
    pub target: String,
}

/// What secret sync needs from the driver's trusted volume state.
pub trait MountedFiles: Send + Sync + 'static {
    /// The files (relative path → bytes) of the volume the driver itself
    /// published for `volume.pod_uid` at `volume.target`, or `None` when the
    /// driver holds no such volume. Blocking: the controller calls it through
    /// `spawn_blocking`.
    fn files(&self, volume: &VolumeClaim) -> std::io::Result<Option<Files>>;
}

/// **Provisional** [`MountedFiles`], until the driver keeps its own volume
/// state: accepts a target only if it is exactly kubelet's CSI directory for
/// that pod uid (`<kubelet-dir>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`)
/// and a tmpfs mount point in the mount table, then reads it back with
/// [`secrets_store_atomic_writer::read`] (no symlink followed, at most
/// `limit` bytes). It cannot tell our tmpfs from another one mounted at that
/// exact path, which only a privileged process on the node can do.
#[derive(Debug, Clone)]
pub struct KubeletVolumes {
    kubelet_dir: PathBuf,
    limit: usize,
}

impl KubeletVolumes {
    /// Volumes under `kubelet_dir`, read up to `limit` bytes each.
    pub fn new(kubelet_dir: impl Into<PathBuf>, limit: usize) -> Self {
        Self {
            kubelet_dir: kubelet_dir.into(),
            limit,
        }
    }
}

impl MountedFiles for KubeletVolumes {
    fn files(&self, volume: &VolumeClaim) -> std::io::Result<Option<Files>> {
        // kubelet may reach its directory through a symlink; the mount
        // table shows resolved paths.
        let dir =
            std::fs::canonicalize(&self.kubelet_dir).unwrap_or_else(|_| self.kubelet_dir.clone());
        let Some(rel) = csi_target(&self.kubelet_dir, &volume.pod_uid, &volume.target) else {
            return Ok(None);
        };
        let target = dir.join(rel);
        let mounted = table::read()?
            .iter()
            .any(|e| e.mount_point == target && e.fs_type == "tmpfs");
        if !mounted {
            return Ok(None);
        }
        secrets_store_atomic_writer::read(&target, self.limit)
            .map(Some)
            .map_err(std::io::Error::other)
    }
}

/// The part of `target` below `kubelet_dir` when it is exactly
/// `pods/<pod_uid>/volumes/kubernetes.io~csi/<volume>/mount` (no `.`,
/// `..` or empty element), else `None`.
pub fn csi_target(kubelet_dir: &Path, pod_uid: &str, target: &str) -> Option<PathBuf> {
    let rel = Path::new(target).strip_prefix(kubelet_dir).ok()?;
    let parts = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect::<Option<Vec<&OsStr>>>()?;
    let shape = |s: &OsStr, want: &str| s == OsStr::new(want);
    let ok = matches!(parts.as_slice(), [pods, uid, volumes, csi, _volume, mount]
        if shape(pods, "pods")
            && !pod_uid.is_empty()
            && shape(uid, pod_uid)
            && shape(volumes, "volumes")
            && shape(csi, "kubernetes.io~csi")
            && shape(mount, "mount"));
    ok.then(|| rel.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubelets_csi_directory_of_that_pod_is_accepted() {
        let dir = Path::new("/var/lib/kubelet");
        let ok = "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount";
        assert_eq!(
            csi_target(dir, "u1", ok),
            Some(PathBuf::from(
                "pods/u1/volumes/kubernetes.io~csi/secrets/mount"
            ))
        );
        for bad in [
            "/var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/secrets/mount",
            "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/secrets/mount",
            "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount/sub",
            "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/../csi/x/mount",
            "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets",
            "/tmp/pods/u1/volumes/kubernetes.io~csi/secrets/mount",
            "pods/u1/volumes/kubernetes.io~csi/secrets/mount",
            "",
        ] {
            assert_eq!(csi_target(dir, "u1", bad), None, "{bad}");
        }
        assert_eq!(
            csi_target(
                dir,
                "",
                "/var/lib/kubelet/pods//volumes/kubernetes.io~csi/s/mount"
            ),
            None
        );
    }

    #[test]
    fn a_directory_that_is_not_a_tmpfs_mount_is_not_a_volume() {
        let root = tempfile::tempdir().expect("tmp");
        let target = root
            .path()
            .join("pods/u1/volumes/kubernetes.io~csi/v/mount");
        std::fs::create_dir_all(&target).expect("mkdir");
        std::fs::write(target.join("f"), "x").expect("write");
        let files = KubeletVolumes::new(root.path(), 1 << 20);
        let claim = VolumeClaim {
            namespace: "ns".into(),
            pod_name: "p".into(),
            pod_uid: "u1".into(),
            class: "c".into(),
            target: target.display().to_string(),
        };
        assert_eq!(files.files(&claim).expect("read"), None);
    }
}
