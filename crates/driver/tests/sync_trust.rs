//! The secret sync controller in-process, against the real API server, with
//! a fake [`MountedFiles`]: a status object never chooses which volume's
//! files are read, or into which namespace they go; the publish path's
//! trigger starts a pass at once, and a rotation is reported on the pod.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SYNC_TIMEOUT, secret_data, wait_pod_event};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use secrets_store_crds::v1::{
    SecretObject, SecretProviderClass, SecretProviderClassPodStatus,
    SecretProviderClassPodStatusStatus, SecretProviderClassSpec,
};
use secrets_store_crds::{NODE_NAME_LABEL, spcps_name};
use secrets_store_csi_driver::metrics::Metrics;
use secrets_store_csi_driver::sync::{
    self, Files, MountedFiles, SyncConfig, SyncHandle, VolumeClaim,
};
use secrets_store_testkit::kubelet::DRIVER_NAME;
use secrets_store_testkit::{ControlPlane, TestPod, wait_for};

/// Volumes the "driver" published: (pod uid, target) → files. Records
/// every claim it is asked about.
#[derive(Default)]
struct FakeFiles {
    volumes: Mutex<BTreeMap<(String, String), Files>>,
    asked: Mutex<Vec<VolumeClaim>>,
}

impl MountedFiles for FakeFiles {
    fn files(&self, v: &VolumeClaim) -> std::io::Result<Option<Files>> {
        self.asked.lock().expect("lock").push(v.clone());
        let key = (v.pod_uid.clone(), v.target.clone());
        Ok(self.volumes.lock().expect("lock").get(&key).cloned())
    }
}

impl FakeFiles {
    fn asked_in(&self, namespace: &str) -> usize {
        let asked = self.asked.lock().expect("lock");
        asked.iter().filter(|c| c.namespace == namespace).count()
    }
}

struct Volume {
    client: kube::Client,
    ns: String,
    uid: String,
    target: String,
}

/// A pod `app` in a fresh namespace with volume `secrets` of class `c`,
/// which "the driver" published with `pw`.
async fn published_pod(cp: &ControlPlane, files: &FakeFiles) -> anyhow::Result<Volume> {
    let client = cp.client().await?;
    let ns = cp.namespace("sync-trust").await?;
    let pod = TestPod::new(&ns, "app", "c").create(&client).await?;
    let uid = pod.metadata.uid.unwrap_or_default();
    let target = format!("/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/secrets/mount");
    files.volumes.lock().expect("lock").insert(
        (uid.clone(), target.clone()),
        [("pw".to_string(), b"s3cret".to_vec())].into(),
    );
    Ok(Volume {
        client,
        ns,
        uid,
        target,
    })
}

async fn class(v: &Volume, ns: &str, name: &str, secret: &str) -> anyhow::Result<()> {
    let spec = SecretProviderClassSpec {
        provider: "fake".into(),
        parameters: [("objects".to_string(), "x".to_string())].into(),
        secret_objects: vec![SecretObject {
            secret_name: secret.into(),
            type_: "Opaque".into(),
            data: secret_data(&[("pw", "password")]),
            ..Default::default()
        }],
    };
    Api::<SecretProviderClass>::namespaced(v.client.clone(), ns)
        .create(
            &PostParams::default(),
            &SecretProviderClass::new(name, spec),
        )
        .await?;
    Ok(())
}

/// A status object in `ns` claiming the volume `v` for class `class`.
async fn status(v: &Volume, ns: &str, name: &str, class: &str, node: &str) -> anyhow::Result<()> {
    let mut obj = SecretProviderClassPodStatus::default();
    obj.metadata.name = Some(name.into());
    obj.metadata.labels = Some([(NODE_NAME_LABEL.to_string(), node.to_string())].into());
    obj.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: "app".into(),
            uid: v.uid.clone(),
            ..Default::default()
        },
    ]);
    obj.status = Some(SecretProviderClassPodStatusStatus {
        pod_name: "app".into(),
        secret_provider_class_name: class.into(),
        mounted: true,
        target_path: v.target.clone(),
        objects: vec![],
    });
    Api::<SecretProviderClassPodStatus>::namespaced(v.client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await?;
    Ok(())
}

fn start(v: &Volume, node: &str, resync: Duration, files: Arc<FakeFiles>) -> SyncHandle {
    let (handle, trigger) = sync::trigger();
    let config = SyncConfig {
        node_id: node.into(),
        driver_name: DRIVER_NAME.into(),
        provider_dirs: vec![],
        resync,
        classes: Default::default(),
    };
    let metrics = Arc::new(Metrics::new());
    tokio::spawn(sync::run(v.client.clone(), config, files, metrics, trigger));
    handle
}

async fn wait_secret(v: &Volume, name: &str, password: &[u8]) -> anyhow::Result<Secret> {
    let api: Api<Secret> = Api::namespaced(v.client.clone(), &v.ns);
    wait_for(
        &format!(
            "secret {name} with password {:?}",
            String::from_utf8_lossy(password)
        ),
        SYNC_TIMEOUT,
        Duration::from_millis(100),
        || async {
            let secret = api.get_opt(name).await?;
            Ok(secret.filter(|s| {
                s.data
                    .as_ref()
                    .and_then(|d| d.get("password"))
                    .map(|p| &p.0[..])
                    == Some(password)
            }))
        },
    )
    .await
}

#[tokio::test]
async fn a_status_object_in_another_namespace_reads_nothing() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let files = Arc::new(FakeFiles::default());
    let victim = published_pod(cp, &files).await?;
    let node = format!("trust-{}", victim.ns);
    // The attacker's namespace: a class that would copy `pw` into its own
    // Secret, and a status object claiming the victim's pod, uid and target.
    let attacker = cp.namespace("sync-attacker").await?;
    class(&victim, &attacker, "evil", "stolen").await?;
    status(&victim, &attacker, "forged", "evil", &node).await?;
    class(&victim, &victim.ns, "c", "synced").await?;
    status(
        &victim,
        &victim.ns,
        &spcps_name("app", &victim.ns, "c"),
        "c",
        &node,
    )
    .await?;
    start(&victim, &node, Duration::from_secs(1), files.clone());

    wait_secret(&victim, "synced", b"s3cret").await?;
    // A second pass of the honest volume (one resync later): the forged
    // object has had its pass by then.
    wait_for(
        "a resync of the honest volume",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async { Ok((files.asked_in(&victim.ns) >= 2).then_some(())) },
    )
    .await?;
    assert_eq!(
        files.asked_in(&attacker),
        0,
        "files read for a forged status"
    );
    let stolen = Api::<Secret>::namespaced(victim.client.clone(), &attacker)
        .get_opt("stolen")
        .await?;
    assert!(stolen.is_none(), "the victim's secret was copied");
    Ok(())
}

#[tokio::test]
async fn the_publish_trigger_starts_a_pass_and_rotations_are_reported() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let files = Arc::new(FakeFiles::default());
    let v = published_pod(cp, &files).await?;
    let node = format!("trigger-{}", v.ns);
    let name = spcps_name("app", &v.ns, "c");
    class(&v, &v.ns, "c", "synced").await?;
    status(&v, &v.ns, &name, "c", &node).await?;
    // An hour's resync: only the trigger can bring a deleted Secret back.
    let handle = start(&v, &node, Duration::from_secs(3600), files.clone());
    wait_secret(&v, "synced", b"s3cret").await?;
    Api::<Secret>::namespaced(v.client.clone(), &v.ns)
        .delete("synced", &DeleteParams::default())
        .await?;
    handle.changed(&v.ns, &name);
    wait_secret(&v, "synced", b"s3cret").await?;

    // Rotated content: the triggered pass updates the Secret and says so.
    files.volumes.lock().expect("lock").insert(
        (v.uid.clone(), v.target.clone()),
        [("pw".to_string(), b"rotated".to_vec())].into(),
    );
    handle.changed(&v.ns, &name);
    wait_secret(&v, "synced", b"rotated").await?;
    let note = wait_pod_event(&v.client, &v.ns, "app", "SecretRotationComplete", &[]).await?;
    assert_eq!(
        note,
        format!(
            "secrets {}/synced were updated with the rotated content of the volume",
            v.ns
        )
    );
    Ok(())
}
