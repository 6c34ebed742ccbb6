use std::collections::BTreeMap;

use super::response::mount_request;
use super::*;
use crate::mount::fake::FakeMounter;
use crate::provider::client::ClientConfig;
use crate::volume::tests_support::record;
use secrets_store_proto::attributes::{
    POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS, SERVICE_ACCOUNT_TOKENS,
};
use secrets_store_proto::csi::v1 as csi;

const UID: &str = "u-1";

fn rules() -> target::Rules {
    target::Rules::new("/var/lib/kubelet")
}

fn csi_request() -> csi::NodePublishVolumeRequest {
    csi::NodePublishVolumeRequest {
        volume_id: "csi-1".into(),
        target_path: format!("/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~csi/v/mount"),
        volume_capability: Some(csi::VolumeCapability {
            access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
            access_mode: None,
        }),
        readonly: true,
        volume_context: [
            (SECRET_PROVIDER_CLASS.to_string(), "spc".to_string()),
            (POD_NAME.to_string(), "web".to_string()),
            (POD_NAMESPACE.to_string(), "ns".to_string()),
            (POD_UID.to_string(), UID.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

#[test]
fn validation_messages_match_upstream() {
    type Mutation = Box<dyn Fn(&mut csi::NodePublishVolumeRequest)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|r| r.volume_capability = None),
            "Volume capability missing in request",
        ),
        (
            Box::new(|r| r.volume_id.clear()),
            "Volume ID missing in request",
        ),
        (
            Box::new(|r| r.target_path.clear()),
            "Target path missing in request",
        ),
        (
            Box::new(|r| r.volume_context.clear()),
            "Volume attributes missing in request",
        ),
    ];
    for (mutate, want) in cases {
        let mut r = csi_request();
        mutate(&mut r);
        let err = PublishRequest::from_csi(r, &rules()).expect_err(want);
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn volume_mount_group_must_be_numeric() {
    let mut r = csi_request();
    r.volume_capability = Some(csi::VolumeCapability {
        access_type: Some(csi::volume_capability::AccessType::Mount(
            csi::volume_capability::MountVolume {
                volume_mount_group: "staff".into(),
                ..Default::default()
            },
        )),
        access_mode: None,
    });
    let err = PublishRequest::from_csi(r, &rules()).expect_err("non-numeric");
    assert_eq!(
        err.to_string(),
        "invalid volume_mount_group \"staff\": must be a numeric group id"
    );
}

#[test]
fn mount_request_overlays_context_on_parameters_and_prefers_tokens_from_secrets() {
    let mut r = csi_request();
    r.volume_context
        .insert("objects".into(), "from-context".into());
    r.volume_context
        .insert(SERVICE_ACCOUNT_TOKENS.into(), "{\"ctx\":{}}".into());
    r.secrets
        .insert(SERVICE_ACCOUNT_TOKENS.into(), "{\"sec\":{}}".into());
    let req = PublishRequest::from_csi(r, &rules()).expect("valid");
    let params: BTreeMap<String, String> = [
        ("objects".to_string(), "from-spc".to_string()),
        ("region".to_string(), "r".to_string()),
    ]
    .into();
    let m = mount_request(&req, &params);
    let attrs: BTreeMap<String, String> = serde_json::from_str(&m.attributes).expect("json");
    assert_eq!(attrs["objects"], "from-context");
    assert_eq!(attrs["region"], "r");
    assert_eq!(attrs[SERVICE_ACCOUNT_TOKENS], "{\"sec\":{}}");
    assert_eq!(m.permission, "420");
    let secrets: BTreeMap<String, String> = serde_json::from_str(&m.secrets).expect("json");
    assert_eq!(secrets.len(), 1);
}

#[test]
fn no_secrets_are_sent_as_json_null() {
    let req = PublishRequest::from_csi(csi_request(), &rules()).expect("valid");
    assert_eq!(mount_request(&req, &BTreeMap::new()).secrets, "null");
}

#[test]
fn request_debug_output_hides_tokens_and_secrets() {
    let mut r = csi_request();
    r.volume_context
        .insert(SERVICE_ACCOUNT_TOKENS.into(), "canary-token".into());
    r.secrets.insert("key".into(), "canary-secret".into());
    let printed = format!(
        "{:?}",
        PublishRequest::from_csi(r, &rules()).expect("valid")
    );
    assert!(!printed.contains("canary"), "{printed}");
}

#[test]
fn targets_outside_kubelets_shape_or_of_another_pod_are_invalid() {
    for (target, want) in [
        (
            "/tmp/csi/mount".to_string(),
            "is not a kubelet CSI volume path",
        ),
        (
            "/var/lib/kubelet/pods/other/volumes/kubernetes.io~csi/v/mount".to_string(),
            "Target path does not belong to the pod in the volume context",
        ),
    ] {
        let mut r = csi_request();
        r.target_path = target;
        let err = PublishRequest::from_csi(r, &rules()).expect_err(want);
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn modes_follow_the_mount_and_the_record() {
    let mut r = record("/t");
    assert_eq!(Mode::of(false, None), Mode::First);
    assert_eq!(
        Mode::of(false, Some(&r)),
        Mode::First,
        "a record without a mount is stale"
    );
    assert_eq!(
        Mode::of(true, None),
        Mode::Resume,
        "interrupted, or an older driver's volume"
    );
    assert_eq!(Mode::of(true, Some(&r)), Mode::Refresh);
    r.phase = Phase::Publishing;
    assert_eq!(Mode::of(true, Some(&r)), Mode::Resume);
}

/// A publisher over a fake mounter, a kubelet tree and a state dir in a
/// tempdir (no root, no API server: the API is never reached here).
struct Fixture {
    dir: tempfile::TempDir,
    mounter: Arc<FakeMounter>,
    publisher: Publisher,
}

impl Fixture {
    fn new(rotation: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounter = Arc::new(FakeMounter::default());
        let providers = Arc::new(ProviderClients::new(ClientConfig {
            dirs: vec![dir.path().join("providers")],
            max_recv: 1 << 20,
            mount_timeout: Duration::from_secs(1),
        }));
        let publisher = Publisher::new(
            PublishConfig {
                node_id: "n".into(),
                rotation,
                intervals: Intervals {
                    default: Duration::from_secs(120),
                    floor: Duration::from_secs(30),
                },
                tmpfs_size: 4 << 20,
            },
            target::Rules::new(dir.path().join("kubelet")),
            mounter.clone(),
            providers,
            Store::open(dir.path().join("state")).expect("store"),
            LazyClient::new(dir.path().join("no-kubeconfig").display().to_string()),
        );
        Self {
            dir,
            mounter,
            publisher,
        }
    }

    fn request(&self, gid: Option<u32>) -> PublishRequest {
        let t = self.publisher.rules().target(UID, "v").expect("target");
        std::fs::create_dir_all(t.path().parent().expect("parent")).expect("kubelet's dir");
        let mut r = record(&t.path().display().to_string());
        r.mount_group = gid;
        PublishRequest::from_record(t, &r, BTreeMap::new(), None)
    }
}

#[tokio::test]
async fn first_mount_creates_the_target_and_mounts_a_bounded_tmpfs() {
    let f = Fixture::new(false);
    let req = f.request(Some(2000));
    f.publisher.prepare(&req).await.expect("prepare");
    assert!(req.target.path().is_dir());
    let options = f.mounter.mounted(&req.target).expect("mounted");
    assert_eq!(
        options.data(),
        format!("size={},mode=0750,gid=2000", 4 << 20)
    );
}

#[tokio::test]
async fn a_failed_mount_removes_only_the_directory_it_created() {
    let f = Fixture::new(false);
    let req = f.request(None);
    f.mounter.fail_mounts(true);
    let err = f.publisher.prepare(&req).await.expect_err("injected");
    assert_eq!(err.reason(), Reason::FailedToMount);
    assert!(
        !req.target.path().exists(),
        "created by this call, so removed"
    );
    assert!(
        req.target.path().parent().expect("parent").is_dir(),
        "kubelet's dir stays"
    );
}

#[tokio::test]
async fn undo_unmounts_and_removes_the_target() {
    let f = Fixture::new(false);
    let req = f.request(None);
    f.publisher.prepare(&req).await.expect("prepare");
    f.publisher.undo(&req.target).await;
    assert!(f.mounter.mounted(&req.target).is_none());
    assert!(!req.target.path().exists());
}

#[tokio::test]
async fn republish_of_a_published_volume_without_rotation_touches_nothing() {
    let f = Fixture::new(false);
    let req = f.request(None);
    f.publisher.prepare(&req).await.expect("prepare");
    let mut r = record(&req.target.path().display().to_string());
    r.provider = "vault".into();
    f.publisher.store().save(&req.target, &r).expect("save");
    let outcome = f
        .publisher
        .publish(req.clone())
        .await
        .expect("no API needed");
    assert!(
        matches!(outcome, Outcome::Unchanged { ref provider } if provider == "vault"),
        "{outcome:?}"
    );
    assert!(f.mounter.mounted(&req.target).is_some());
}

#[tokio::test]
async fn first_publish_without_api_access_fails_before_touching_the_target() {
    let f = Fixture::new(true);
    let req = f.request(None);
    let failure = f
        .publisher
        .publish(req.clone())
        .await
        .expect_err("no kubeconfig");
    assert_eq!(failure.error.reason(), Reason::KubernetesApiError);
    assert_eq!(failure.error.code(), tonic::Code::Unavailable);
    assert!(!req.target.path().exists());
    assert!(f.mounter.mounted(&req.target).is_none());
    drop(f.dir);
}

#[tokio::test]
async fn unpublish_unmounts_removes_the_directory_and_forgets_the_volume() {
    let f = Fixture::new(false);
    let req = f.request(None);
    f.publisher.prepare(&req).await.expect("prepare");
    f.publisher
        .store()
        .save(
            &req.target,
            &record(&req.target.path().display().to_string()),
        )
        .expect("save");
    let unpublish = UnpublishRequest {
        volume_id: "csi-1".into(),
        target: req.target.clone(),
    };
    f.publisher
        .unpublish(unpublish.clone())
        .await
        .expect("unpublish");
    assert!(f.mounter.mounted(&req.target).is_none());
    assert!(!req.target.path().exists());
    assert_eq!(f.publisher.store().load(&req.target).expect("load"), None);
    f.publisher
        .unpublish(unpublish)
        .await
        .expect("already gone is success");
}

#[tokio::test]
async fn a_second_call_for_the_same_target_is_aborted() {
    let f = Fixture::new(false);
    let req = f.request(None);
    let _guard = f.publisher.claim(req.target.path()).expect("first");
    let failure = f.publisher.publish(req).await.expect_err("in progress");
    assert_eq!(failure.error.code(), tonic::Code::Aborted);
    assert_eq!(failure.error.reason(), Reason::OperationInProgress);
}
