//! What kubelet puts in a NodePublishVolume request for an inline
//! (ephemeral) volume beyond the attribute keys: the volume handle it
//! derives and the target path it asks for. Tools that play kubelet use
//! these; the driver only checks a target's shape.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::csi::v1 as csi;

/// kubelet's handle of an inline volume: `csi-` and the hex SHA-256 of the
/// pod UID followed by the volume name.
pub fn volume_handle(pod_uid: &str, volume: &str) -> String {
    let digest = Sha256::digest(format!("{pod_uid}{volume}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("csi-{hex}")
}

/// kubelet's target path of a pod's CSI volume:
/// `<kubelet_dir>/pods/<pod_uid>/volumes/kubernetes.io~csi/<volume>/mount`.
pub fn target_path(kubelet_dir: &Path, pod_uid: &str, volume: &str) -> PathBuf {
    kubelet_dir
        .join("pods")
        .join(pod_uid)
        .join("volumes/kubernetes.io~csi")
        .join(volume)
        .join("mount")
}

/// The capability kubelet asks for on an inline volume: single-node
/// writer, mounted with `fs_type` (empty: the driver's choice) and the
/// pod's fsGroup as `volume_mount_group` (empty: none).
pub fn inline_volume_capability(
    fs_type: String,
    volume_mount_group: String,
) -> csi::VolumeCapability {
    csi::VolumeCapability {
        access_mode: Some(csi::volume_capability::AccessMode {
            mode: csi::volume_capability::access_mode::Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(csi::volume_capability::AccessType::Mount(
            csi::volume_capability::MountVolume {
                fs_type,
                mount_flags: Vec::new(),
                volume_mount_group,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_hashes_uid_then_volume() {
        // printf uidvol | sha256sum
        assert_eq!(
            volume_handle("uid", "vol"),
            "csi-59a84980f8ef4826da54c7ced3605cf80e85f6bb08948be904a09383f8317b93"
        );
    }

    #[test]
    fn the_target_is_under_the_pods_csi_volume() {
        assert_eq!(
            target_path(Path::new("/var/lib/kubelet"), "u", "secrets"),
            Path::new("/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/secrets/mount")
        );
    }
}
