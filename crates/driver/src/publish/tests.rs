use super::*;
use secrets_store_proto::csi::v1 as csi;

fn csi_request() -> csi::NodePublishVolumeRequest {
    csi::NodePublishVolumeRequest {
        volume_id: "csi-1".into(),
        target_path: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/v/mount".into(),
        volume_capability: Some(csi::VolumeCapability {
            access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
            access_mode: None,
        }),
        readonly: true,
        volume_context: [
            (SECRET_PROVIDER_CLASS.to_string(), "spc".to_string()),
            (POD_NAME.to_string(), "web".to_string()),
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
        let err = PublishRequest::from_csi(r).expect_err(want);
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
    let err = PublishRequest::from_csi(r).expect_err("non-numeric");
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
    let req = PublishRequest::from_csi(r).expect("valid");
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
    let req = PublishRequest::from_csi(csi_request()).expect("valid");
    assert_eq!(mount_request(&req, &BTreeMap::new()).secrets, "null");
}

#[test]
fn request_debug_output_hides_tokens_and_secrets() {
    let mut r = csi_request();
    r.volume_context
        .insert(SERVICE_ACCOUNT_TOKENS.into(), "canary-token".into());
    r.secrets.insert("key".into(), "canary-secret".into());
    let printed = format!("{:?}", PublishRequest::from_csi(r).expect("valid"));
    assert!(!printed.contains("canary"), "{printed}");
}
