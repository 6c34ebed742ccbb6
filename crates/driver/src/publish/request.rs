//! NodePublishVolume and NodeUnpublishVolume requests, validated into
//! types before anything is touched (upstream's checks and messages, plus
//! the target path rules of [`crate::target`]).

use std::collections::BTreeMap;

use secrets_store_proto::attributes::{
    POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS, SERVICE_ACCOUNT_NAME,
    SERVICE_ACCOUNT_TOKENS,
};
use secrets_store_proto::csi::v1 as csi;

use super::Error;
use crate::redact::Redacted;
use crate::target::{Rules, Target};
use crate::volume::PodInfo;

/// A validated NodePublishVolume request.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Volume id.
    pub volume_id: String,
    /// Target directory (kubelet's shape).
    pub target: Target,
    /// SecretProviderClass name.
    pub class: String,
    /// The pod, from the volume context.
    pub pod: PodInfo,
    /// Volume context (attributes and pod info; may hold tokens).
    pub context: Redacted<BTreeMap<String, String>>,
    /// CSI secrets (nodePublishSecretRef data; may hold tokens).
    pub secrets: Redacted<BTreeMap<String, String>>,
    /// Group to own the files (VOLUME_MOUNT_GROUP).
    pub mount_group: Option<u32>,
}

/// A validated NodeUnpublishVolume request.
#[derive(Debug, Clone)]
pub struct UnpublishRequest {
    /// Volume id.
    pub volume_id: String,
    /// Target directory (kubelet's shape).
    pub target: Target,
}

fn required<'a>(
    context: &'a BTreeMap<String, String>,
    key: &'static str,
) -> Result<&'a str, Error> {
    context
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or(Error::NoPodInfo(key))
}

impl PublishRequest {
    /// Validates the CSI request, in upstream's order and with its messages.
    pub fn from_csi(req: csi::NodePublishVolumeRequest, rules: &Rules) -> Result<Self, Error> {
        let capability = req
            .volume_capability
            .as_ref()
            .ok_or(Error::InvalidArgument(
                "Volume capability missing in request",
            ))?;
        if req.volume_id.is_empty() {
            return Err(Error::InvalidArgument("Volume ID missing in request"));
        }
        if req.target_path.is_empty() {
            return Err(Error::InvalidArgument("Target path missing in request"));
        }
        if req.volume_context.is_empty() {
            return Err(Error::InvalidArgument(
                "Volume attributes missing in request",
            ));
        }
        let mount_group = mount_group(capability)?;
        let target = rules.parse(&req.target_path)?;
        let context: BTreeMap<String, String> = req.volume_context.into_iter().collect();
        let class = context
            .get(SECRET_PROVIDER_CLASS)
            .filter(|s| !s.is_empty())
            .cloned()
            .ok_or(Error::NoClassName)?;
        if !req.readonly {
            return Err(Error::InvalidArgument("Readonly is not true in request"));
        }
        let pod = PodInfo {
            name: required(&context, POD_NAME)?.to_string(),
            namespace: required(&context, POD_NAMESPACE)?.to_string(),
            uid: required(&context, POD_UID)?.to_string(),
            service_account: context
                .get(SERVICE_ACCOUNT_NAME)
                .cloned()
                .unwrap_or_default(),
        };
        if pod.uid != target.pod_uid() {
            return Err(Error::InvalidArgument(
                "Target path does not belong to the pod in the volume context",
            ));
        }
        Ok(Self {
            volume_id: req.volume_id,
            target,
            class,
            pod,
            context: Redacted(context),
            secrets: Redacted(req.secrets.into_iter().collect()),
            mount_group,
        })
    }

    /// The volume context without service-account tokens (what the
    /// driver may keep).
    pub fn context_without_tokens(&self) -> BTreeMap<String, String> {
        let mut context = self.context.expose().clone();
        context.remove(SERVICE_ACCOUNT_TOKENS);
        context
    }

    /// `namespace/name` of the pod.
    pub fn pod_key(&self) -> String {
        format!("{}/{}", self.pod.namespace, self.pod.name)
    }
}

fn mount_group(capability: &csi::VolumeCapability) -> Result<Option<u32>, Error> {
    use csi::volume_capability::AccessType;
    match &capability.access_type {
        Some(AccessType::Mount(m)) if !m.volume_mount_group.is_empty() => m
            .volume_mount_group
            .parse::<u32>()
            .map(Some)
            .map_err(|_| Error::MountGroup(m.volume_mount_group.clone())),
        Some(AccessType::Block(_)) => Err(Error::InvalidArgument(
            "Block access is not supported; use a mount volume",
        )),
        _ => Ok(None),
    }
}

impl UnpublishRequest {
    /// Validates the CSI request.
    pub fn from_csi(req: csi::NodeUnpublishVolumeRequest, rules: &Rules) -> Result<Self, Error> {
        if req.volume_id.is_empty() {
            return Err(Error::InvalidArgument("Volume ID missing in request"));
        }
        if req.target_path.is_empty() {
            return Err(Error::InvalidArgument("Target path missing in request"));
        }
        Ok(Self {
            volume_id: req.volume_id,
            target: rules.parse(&req.target_path)?,
        })
    }
}

impl PublishRequest {
    /// The request a refresh without kubelet sends, rebuilt from the
    /// driver's own record with fresh `secrets` and `tokens` (JSON).
    pub fn from_record(
        target: Target,
        record: &crate::volume::VolumeRecord,
        secrets: BTreeMap<String, String>,
        tokens: Option<String>,
    ) -> Self {
        let mut context = record.context.clone();
        if let Some(tokens) = tokens {
            context.insert(SERVICE_ACCOUNT_TOKENS.to_string(), tokens);
        }
        Self {
            volume_id: record.volume_id.clone(),
            target,
            class: record.class.clone(),
            pod: record.pod.clone(),
            context: Redacted(context),
            secrets: Redacted(secrets),
            mount_group: record.mount_group,
        }
    }
}
