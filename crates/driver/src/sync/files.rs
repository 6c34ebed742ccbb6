//! Where secret sync gets a volume's files: only from the driver's own
//! knowledge of what it published, through [`MountedFiles`]. A
//! SecretProviderClassPodStatus is writable by anyone with RBAC on it, so
//! its `targetPath` is a claim to check, never a path to read.

use std::collections::BTreeMap;

use crate::target::{Rules, Target};
use crate::volume::{Phase, Store};

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

/// [`MountedFiles`] over the driver's own records ([`crate::volume`]): a
/// claim is honoured only when its target has kubelet's CSI shape for that
/// pod, the driver holds a completed record for exactly that target naming
/// the same pod (namespace, name, uid) and class, and the target is still a
/// mount point. The files are then read back with
/// [`secrets_store_atomic_writer::read`] (no link followed, at most `limit`
/// bytes). Nothing a pod or an SPCPS can write decides what is read.
#[derive(Debug, Clone)]
pub struct TrustedVolumes {
    rules: Rules,
    store: Store,
    limit: usize,
}

impl TrustedVolumes {
    /// Volumes the driver recorded in `store`, read up to `limit` bytes each.
    pub fn new(rules: Rules, store: Store, limit: usize) -> Self {
        Self {
            rules,
            store,
            limit,
        }
    }

    /// The target of `claim`, if the driver's record vouches for it.
    fn vouched(&self, claim: &VolumeClaim) -> std::io::Result<Option<Target>> {
        let Ok(target) = self.rules.parse(&claim.target) else {
            return Ok(None);
        };
        if target.pod_uid() != claim.pod_uid {
            return Ok(None);
        }
        let record = self.store.load(&target).map_err(std::io::Error::other)?;
        let matches = record.is_some_and(|r| {
            r.phase == Phase::Published
                && r.pod.uid == claim.pod_uid
                && r.pod.name == claim.pod_name
                && r.pod.namespace == claim.namespace
                && r.class == claim.class
        });
        if !matches || !target.is_mount_point().map_err(std::io::Error::other)? {
            return Ok(None);
        }
        Ok(Some(target))
    }
}

impl MountedFiles for TrustedVolumes {
    fn files(&self, claim: &VolumeClaim) -> std::io::Result<Option<Files>> {
        let Some(target) = self.vouched(claim)? else {
            return Ok(None);
        };
        secrets_store_atomic_writer::read(target.path(), self.limit)
            .map(Some)
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::tests_support::record;

    fn claim(target: &Target) -> VolumeClaim {
        VolumeClaim {
            namespace: "ns".into(),
            pod_name: "p".into(),
            pod_uid: target.pod_uid().into(),
            class: "spc".into(),
            target: target.path().display().to_string(),
        }
    }

    #[test]
    fn only_volumes_the_driver_recorded_and_still_mounts_are_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let rules = Rules::new(dir.path().join("kubelet"));
        let store = Store::open(dir.path().join("state")).expect("store");
        let files = TrustedVolumes::new(rules.clone(), store.clone(), 1 << 20);
        let t = rules.target("u1", "v").expect("target");
        std::fs::create_dir_all(t.path()).expect("mkdir");
        std::fs::write(t.path().join("f"), "x").expect("write");
        let mut r = record(&t.path().display().to_string());
        r.pod.uid = "u1".into();
        let good = claim(&t);
        // No record: nothing, whatever the SPCPS claims.
        assert_eq!(files.files(&good).expect("read"), None);
        store.save(&t, &r).expect("save");
        // Recorded but not a mount point (not our tmpfs): nothing.
        assert_eq!(files.files(&good).expect("read"), None);
        // Claims that disagree with the record are refused before any read.
        for bad in [
            VolumeClaim {
                namespace: "other".into(),
                ..good.clone()
            },
            VolumeClaim {
                pod_name: "q".into(),
                ..good.clone()
            },
            VolumeClaim {
                class: "x".into(),
                ..good.clone()
            },
            VolumeClaim {
                pod_uid: "u2".into(),
                ..good.clone()
            },
            VolumeClaim {
                target: "/etc".into(),
                ..good.clone()
            },
        ] {
            assert_eq!(files.vouched(&bad).expect("check"), None, "{bad:?}");
        }
    }
}
