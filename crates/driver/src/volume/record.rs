//! What the driver records about one volume, kept in its private state
//! directory (never on the volume, which the pod can see).

use std::collections::BTreeMap;

use secrets_store_crds::v1::SecretProviderClassObject;
use serde::{Deserialize, Serialize};

/// Format version of a record.
pub const RECORD_VERSION: u32 = 1;
/// Largest record accepted when reading, bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// A record that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("volume record is larger than {MAX_RECORD_BYTES} bytes")]
    TooLarge,
    /// Not the JSON of a record.
    #[error("volume record is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a newer driver.
    #[error("volume record version {0} is not supported")]
    Version(u32),
    /// Stored under another target's name.
    #[error("volume record names another target")]
    WrongTarget,
}

/// The pod a volume belongs to, as kubelet named it in NodePublishVolume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Service account of the pod.
    pub service_account: String,
}

/// How far a publish of the volume got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Mounted; content and status not yet complete.
    Publishing,
    /// Content written and status recorded.
    Published,
}

/// The driver's record of one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeRecord {
    /// Format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The target path (kubelet's shape).
    pub target: String,
    /// CSI volume id.
    pub volume_id: String,
    /// The pod.
    pub pod: PodInfo,
    /// SecretProviderClass name.
    pub class: String,
    /// Provider of the class at the last publish.
    pub provider: String,
    /// Group owning the files (fsGroup).
    pub mount_group: Option<u32>,
    /// The volume context kubelet sent, without service-account tokens.
    pub context: BTreeMap<String, String>,
    /// How far the publish got.
    pub phase: Phase,
    /// Unix time (milliseconds) of the last successful fill.
    pub refreshed_at_ms: u64,
    /// The class's refresh trigger at the last successful fill.
    pub trigger: String,
    /// Object versions the SecretProviderClassPodStatus still has to
    /// record (written in the background, `crate::status::writer`); once
    /// written, dropped at the record's next write (`super::memo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_pending: Option<Vec<SecretProviderClassObject>>,
}

impl VolumeRecord {
    /// Parses a stored record, bounded in size.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        let record: Self = serde_json::from_slice(bytes)?;
        if record.version != RECORD_VERSION {
            return Err(RecordError::Version(record.version));
        }
        Ok(record)
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and maps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(target: &str) -> VolumeRecord {
        VolumeRecord {
            version: RECORD_VERSION,
            target: target.into(),
            volume_id: "csi-1".into(),
            pod: PodInfo {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u".into(),
                service_account: "default".into(),
            },
            class: "spc".into(),
            provider: "fake".into(),
            mount_group: Some(2000),
            context: BTreeMap::from([("secretProviderClass".into(), "spc".into())]),
            phase: Phase::Published,
            refreshed_at_ms: 1,
            trigger: String::new(),
            status_pending: None,
        }
    }

    #[test]
    fn round_trips_and_refuses_what_it_does_not_know() {
        let r = record("/t");
        assert_eq!(VolumeRecord::decode(&r.encode()).expect("decode"), r);
        let mut v = serde_json::to_value(&r).expect("json");
        v["version"] = 2.into();
        let err = VolumeRecord::decode(v.to_string().as_bytes()).expect_err("v2");
        assert_eq!(err.to_string(), "volume record version 2 is not supported");
        v["version"] = 1.into();
        v["extra"] = true.into();
        assert!(VolumeRecord::decode(v.to_string().as_bytes()).is_err());
        assert!(matches!(
            VolumeRecord::decode(&vec![b' '; MAX_RECORD_BYTES + 1]),
            Err(RecordError::TooLarge)
        ));
    }
}
