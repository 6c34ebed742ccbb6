//! Publish and unpublish end to end: kubelet simulator → our driver binary
//! → provider on a unix socket, against a real API server.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{Env, NODE, mount_type};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ResourceQuotaSpec, ResourceQuotaStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::PostParams;
use secrets_store_crds::v1::SecretProviderClassPodStatus;
use secrets_store_testkit::TokenOptions;
use secrets_store_testkit::fake_provider::Behavior;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn publish_writes_files_on_tmpfs_records_status_and_unpublish_removes_it()
-> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("db", "fake", &[("objects", "- name: foo\n")])
        .await?;
    env.provider.set(Behavior::files(
        &[("foo", b"s3cr3t", 0o644), ("certs/tls.key", b"KEY", 0o600)],
        &[("secret/foo", "v1"), ("secret/certs", "v7")],
    ));
    let pod = env.pod("web", "db").await?;
    let target = env.target(&pod);
    env.publish(&pod).await??;

    assert_eq!(mount_type(&target).as_deref(), Some("tmpfs"));
    assert_eq!(std::fs::read(target.join("foo"))?, b"s3cr3t");
    assert_eq!(std::fs::read(target.join("certs/tls.key"))?, b"KEY");
    assert_eq!(mode(&target.join("foo")), 0o644);
    assert_eq!(mode(&target.join("certs/tls.key")), 0o600);
    assert!(
        std::fs::symlink_metadata(target.join("foo"))?
            .file_type()
            .is_symlink(),
        "..data layout"
    );

    // The request had upstream's shape.
    let reqs = env.provider.requests();
    assert_eq!(reqs.len(), 1);
    let attrs: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&reqs[0].attributes)?;
    assert_eq!(attrs["objects"], "- name: foo\n");
    assert_eq!(attrs["secretProviderClass"], "db");
    assert_eq!(attrs["csi.storage.k8s.io/pod.name"], "web");
    assert_eq!(attrs["csi.storage.k8s.io/pod.namespace"], env.ns);
    assert_eq!(reqs[0].permission, "420");
    assert_eq!(reqs[0].secrets, "null");
    assert_eq!(reqs[0].target_path, target.display().to_string());

    // The SecretProviderClassPodStatus.
    let spcps = env
        .wait_status(&format!("web-{}-db", env.ns), |_| true)
        .await?;
    let labels = spcps.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("internal.secrets-store.csi.k8s.io/node-name")
            .map(String::as_str),
        Some(NODE)
    );
    let owners = spcps.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].name.as_str()),
        ("Pod", "web")
    );
    assert_eq!(Some(&owners[0].uid), pod.metadata.uid.as_ref());
    let status = spcps.status.expect("status");
    assert!(status.mounted);
    assert_eq!(status.pod_name, "web");
    assert_eq!(status.secret_provider_class_name, "db");
    assert_eq!(status.target_path, target.display().to_string());
    let objects: Vec<(String, String)> = status
        .objects
        .into_iter()
        .map(|o| (o.id, o.version))
        .collect();
    assert_eq!(
        objects,
        [
            ("secret/certs".into(), "v7".into()),
            ("secret/foo".into(), "v1".into())
        ]
    );

    // A second publish is a no-op: no provider call, no second mount.
    let data_before = std::fs::read_link(target.join("..data"))?;
    env.publish(&pod).await??;
    assert_eq!(env.provider.requests().len(), 1, "no second provider call");
    let mounts = secrets_store_testkit::mounts::read()?;
    assert_eq!(
        mounts.iter().filter(|m| m.mount_point == target).count(),
        1,
        "mounted once"
    );
    assert_eq!(std::fs::read_link(target.join("..data"))?, data_before);

    // Unpublish removes the mount and the directory, and is idempotent.
    env.kubelet.unpublish(&pod, "secrets").await??;
    common::assert_untouched(&target);
    env.kubelet.unpublish(&pod, "secrets").await??;
    Ok(())
}

#[tokio::test]
async fn tokens_reach_the_provider_from_context_or_secrets() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("tok", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("a", b"1", 0o644)], &[("a", "1")]));
    for (i, in_secrets) in [false, true].into_iter().enumerate() {
        let pod = env.pod(&format!("tok-{i}"), "tok").await?;
        let opts = TokenOptions {
            audiences: vec!["aud-a".into()],
            in_secrets,
            ..Default::default()
        };
        env.kubelet.publish(&pod, "secrets", &opts).await??;
        let req = env.provider.requests().pop().expect("request");
        let attrs: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&req.attributes)?;
        let tokens: serde_json::Value =
            serde_json::from_str(&attrs["csi.storage.k8s.io/serviceAccount.tokens"])?;
        assert!(
            tokens["aud-a"]["token"]
                .as_str()
                .is_some_and(|t| t.split('.').count() == 3),
            "in_secrets={in_secrets}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn fs_group_makes_files_group_readable() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("grp", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("key", b"k", 0o600)], &[("key", "1")]));
    let mut spec = secrets_store_testkit::TestPod::new(&env.ns, "nonroot", "grp");
    spec.fs_group = Some(3000);
    let pod = env.kubelet.create_pod(&spec).await?;
    env.publish(&pod).await??;
    let target = env.target(&pod);
    let meta = std::fs::metadata(target.join("key"))?;
    assert_eq!(meta.gid(), 3000);
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::metadata(&target)?.gid(),
        3000,
        "tmpfs root owned by the fsGroup"
    );
    Ok(())
}

#[tokio::test]
async fn rotation_refreshes_content_on_republish_and_keeps_it_when_the_provider_fails()
-> anyhow::Result<()> {
    let env = Env::start(&["--enable-secret-rotation", "--rotation-poll-interval=0s"]).await?;
    env.spc("rot", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("pw", b"one", 0o644)], &[("pw", "1")]));
    let pod = env.pod("rot", "rot").await?;
    let target = env.target(&pod);
    env.publish(&pod).await??;
    assert_eq!(std::fs::read(target.join("pw"))?, b"one");

    env.provider
        .set(Behavior::files(&[("pw", b"two", 0o644)], &[("pw", "2")]));
    env.publish(&pod).await??;
    assert_eq!(std::fs::read(target.join("pw"))?, b"two");

    // A refresh that changes nothing stored does not rewrite the record.
    let record = record_inode(&env, &pod)?;
    env.publish(&pod).await??;
    assert_eq!(env.provider.requests().len(), 3, "refreshed");
    assert_eq!(record_inode(&env, &pod)?, record, "record not rewritten");

    env.provider
        .set(Behavior::Fail(tonic::Code::Internal, "backend down".into()));
    env.publish(&pod).await??;
    assert_eq!(
        std::fs::read(target.join("pw"))?,
        b"two",
        "last good content kept"
    );
    assert_eq!(mount_type(&target).as_deref(), Some("tmpfs"));
    Ok(())
}

#[tokio::test]
async fn restart_kill9_then_unpublish_and_interrupted_publish_is_finished_by_retry()
-> anyhow::Result<()> {
    let mut env = Env::start(&["--provider-timeout=30s"]).await?;
    env.spc("rs", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("f", b"v", 0o644)], &[("f", "1")]));
    let done = env.pod("done", "rs").await?;
    env.publish(&done).await??;

    // Kill -9 in the middle of a publish: the provider hangs, the driver dies.
    let half = env.pod("half", "rs").await?;
    env.provider.set(Behavior::Hang);
    let kubelet = env.kubelet.clone();
    let half2 = half.clone();
    let call = tokio::spawn(async move {
        kubelet
            .publish(&half2, "secrets", &TokenOptions::default())
            .await
    });
    let before = env.provider.requests().len();
    secrets_store_testkit::wait_for(
        "the hanging Mount call",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let n = env.provider.requests().len();
            async move { Ok((n > before).then_some(())) }
        },
    )
    .await?;
    env.driver.kill9_and_restart().await?;
    assert!(
        call.await??.is_err(),
        "the interrupted publish must not report success"
    );
    let half_target = env.target(&half);
    assert_eq!(
        mount_type(&half_target).as_deref(),
        Some("tmpfs"),
        "killed after mounting"
    );
    assert!(!half_target.join("f").exists());

    // kubelet retries: the restarted driver finishes the publish.
    env.kubelet = secrets_store_testkit::Kubelet::new(
        env.client.clone(),
        env.driver.socket(),
        &env.kubelet_root,
    )
    .await?;
    env.provider
        .set(Behavior::files(&[("f", b"v", 0o644)], &[("f", "1")]));
    env.publish(&half).await??;
    assert_eq!(std::fs::read(half_target.join("f"))?, b"v");

    // The restarted driver unpublishes what the old one mounted.
    let done_target = env.target(&done);
    env.kubelet.unpublish(&done, "secrets").await??;
    common::assert_untouched(&done_target);
    env.kubelet.unpublish(&half, "secrets").await??;
    common::assert_untouched(&half_target);
    Ok(())
}

#[tokio::test]
async fn canary_secrets_and_tokens_never_reach_the_log_at_v10() -> anyhow::Result<()> {
    let env = Env::start(&["-v=10"]).await?;
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let mut creds = k8s_openapi::api::core::v1::Secret::default();
    creds.metadata.name = Some("creds".into());
    creds.string_data = Some(
        [(
            "access_key".to_string(),
            "CANARY-NODE-PUBLISH-SECRET".to_string(),
        )]
        .into(),
    );
    api.create(&Default::default(), &creds).await?;
    env.spc("canary", "fake", &[("objects", "x")]).await?;
    env.provider.set(Behavior::files(
        &[("pw", b"CANARY-FILE-CONTENT", 0o644)],
        &[("pw", "1")],
    ));
    let mut spec = secrets_store_testkit::TestPod::new(&env.ns, "canary", "canary");
    spec.volumes[0].node_publish_secret_ref = Some("creds".into());
    let pod = env.kubelet.create_pod(&spec).await?;
    let opts = TokenOptions {
        audiences: vec!["canary-aud".into()],
        ..Default::default()
    };
    let req = env.kubelet.publish_request(&pod, "secrets", &opts).await?;
    let token_json = req.volume_context["csi.storage.k8s.io/serviceAccount.tokens"].clone();
    let token: serde_json::Value = serde_json::from_str(&token_json)?;
    let token = token["canary-aud"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    env.kubelet.send_publish(req.clone()).await?;
    // Error paths too: a provider failure and a bad file path.
    env.provider.set(Behavior::files(
        &[("../x", b"CANARY-FILE-CONTENT", 0o644)],
        &[("pw", "1")],
    ));
    let pod2 = env
        .kubelet
        .create_pod(&{
            let mut s = spec.clone();
            s.name = "canary-2".into();
            s
        })
        .await?;
    let bad = env.kubelet.publish(&pod2, "secrets", &opts).await?;
    assert!(bad.is_err());
    env.provider
        .set(Behavior::Fail(tonic::Code::Unavailable, "down".into()));
    let _ = env.kubelet.publish(&pod2, "secrets", &opts).await?;
    env.kubelet.unpublish(&pod, "secrets").await??;

    let log = env.driver.log();
    assert!(
        log.len() > 500,
        "expected verbose logs at -v=10, got:\n{log}"
    );
    for canary in [
        "CANARY-NODE-PUBLISH-SECRET",
        "CANARY-FILE-CONTENT",
        token.as_str(),
        &token[..20],
    ] {
        assert!(
            !log.contains(canary),
            "log contains a secret value ({}...):\n{log}",
            &canary[..8.min(canary.len())]
        );
    }
    Ok(())
}

/// Publishes a fresh pod's volume of class `spc`; the pod is named
/// `<prefix>-<i>` for the i-th attempt.
async fn publish_fresh(
    env: &Env,
    spc: &str,
    prefix: &str,
    i: &mut usize,
) -> anyhow::Result<Result<(), tonic::Status>> {
    *i += 1;
    let pod = env.pod(&format!("{prefix}-{i}"), spc).await?;
    env.publish(&pod).await
}

#[tokio::test]
async fn classes_come_from_the_watch_and_a_changed_or_deleted_class_is_not_served_stale()
-> anyhow::Result<()> {
    use secrets_store_crds::v1::SecretProviderClass;
    let env = Env::start(&[]).await?;
    env.provider.set(Behavior::files(
        &[("foo", b"x", 0o644)],
        &[("secret/foo", "v1")],
    ));
    // A class created just before the publish is read with a GET (the
    // cache has not seen it, or has: either way the publish succeeds).
    env.spc("w", "fake", &[("objects", "- name: first\n")])
        .await?;
    let mut i = 0;
    publish_fresh(&env, "w", "w", &mut i).await??;
    let seen = |marker: &'static str| {
        let last = env.provider.requests().last().map(|r| r.attributes.clone());
        last.is_some_and(|a| a.contains(marker))
    };
    assert!(seen("first"));

    // A change reaches publishes once the watch delivers it.
    let api: Api<SecretProviderClass> = Api::namespaced(env.client.clone(), &env.ns);
    let mut class = api.get("w").await?;
    class.metadata.managed_fields = None;
    class
        .spec
        .parameters
        .insert("objects".into(), "- name: second\n".into());
    api.replace("w", &Default::default(), &class).await?;
    for _ in 0..50 {
        publish_fresh(&env, "w", "w", &mut i).await??;
        if seen("second") {
            break;
        }
    }
    assert!(seen("second"), "the changed class never reached a publish");

    // A deleted class fails publishes once the watch delivers the delete.
    api.delete("w", &Default::default()).await?;
    let mut last = None;
    for _ in 0..50 {
        match publish_fresh(&env, "w", "w", &mut i).await? {
            Ok(()) => continue,
            Err(status) => {
                last = Some(status);
                break;
            }
        }
    }
    let status = last.expect("publishes kept succeeding after the class was deleted");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(
        status
            .message()
            .contains("failed to get secretproviderclass"),
        "{}",
        status.message()
    );
    Ok(())
}

/// The driver's state directory.
fn state_dir(env: &Env) -> std::path::PathBuf {
    env.kubelet_root.join("plugins/csi-secrets-store/state")
}

/// The inode of the driver's record of `pod`'s volume (a new one per write).
fn record_inode(env: &Env, pod: &Pod) -> anyhow::Result<u64> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    Ok(std::fs::metadata(state_dir(env).join(format!("{uid}_secrets.json")))?.ino())
}

/// How many of the driver's records say their status is pending: written
/// with the record, not cleared by a rewrite of its own once the status is
/// written (the driver keeps that in memory and folds it into the next
/// write).
fn pending_records(env: &Env) -> anyhow::Result<usize> {
    let dir = state_dir(env);
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        n += usize::from(text.contains("\"statusPending\""));
    }
    Ok(n)
}

/// Waits for a driver log line about `pod`'s volume containing `text`.
async fn wait_log(env: &Env, pod: &Pod, text: &str) -> anyhow::Result<String> {
    let target = env.target(pod).display().to_string();
    secrets_store_testkit::wait_for(
        text,
        common::SYNC_TIMEOUT,
        Duration::from_millis(20),
        || {
            let log = env.driver.log();
            let line = log
                .lines()
                .find(|l| l.contains(text) && l.contains(&target))
                .map(str::to_string);
            async move { Ok(line) }
        },
    )
    .await
    .inspect_err(|_| eprintln!("driver log:\n{}", env.driver.log()))
}

/// A quota of zero SecretProviderClassPodStatus objects in the namespace:
/// every create is refused. The quota admission reads the quota's status,
/// which no controller computes on this control plane, so it is set here.
async fn refuse_statuses(env: &Env) -> anyhow::Result<Api<ResourceQuota>> {
    let api: Api<ResourceQuota> = Api::namespaced(env.client.clone(), &env.ns);
    let count = "count/secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io";
    let zero = || Some([(count.to_string(), Quantity("0".into()))].into());
    let mut quota = ResourceQuota::default();
    quota.metadata.name = Some("no-status".into());
    quota.spec = Some(ResourceQuotaSpec {
        hard: zero(),
        ..Default::default()
    });
    let mut quota = api.create(&PostParams::default(), &quota).await?;
    quota.status = Some(ResourceQuotaStatus {
        hard: zero(),
        used: zero(),
    });
    api.replace_status("no-status", &PostParams::default(), &quota)
        .await?;
    Ok(api)
}

// Two workers: `DriverProcess::stop` blocks its thread until the driver
// exits, and the driver drains the kubelet simulator's connection first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_write_is_retried_dropped_by_unpublish_and_finished_after_a_restart()
-> anyhow::Result<()> {
    // As deployed: the state directory on the driver's own tmpfs.
    let mut env = Env::start(&["--state-dir-tmpfs=true"]).await?;
    assert_eq!(mount_type(&state_dir(&env)).as_deref(), Some("tmpfs"));
    env.spc("st", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("f", b"v", 0o644)], &[("f", "1")]));
    let statuses: Api<SecretProviderClassPodStatus> = Api::namespaced(env.client.clone(), &env.ns);
    let name = |pod: &str| format!("{pod}-{}-st", env.ns);
    let written = |s: &SecretProviderClassPodStatus| {
        s.status.as_ref().is_some_and(|s| {
            s.mounted
                && s.objects
                    .iter()
                    .map(|o| (&*o.id, &*o.version))
                    .eq([("f", "1")])
        })
    };

    // Refused writes: the publishes succeed, the writes are retried.
    let quota = refuse_statuses(&env).await?;
    let kept = env.pod("kept", "st").await?;
    let gone = env.pod("gone", "st").await?;
    env.publish(&kept).await??;
    env.publish(&gone).await??;
    assert_eq!(pending_records(&env)?, 2);
    let line = wait_log(&env, &gone, "status write failed; retrying").await?;
    assert!(line.contains("forbidden"), "{line}");
    // Unpublish drops the pending write; the other one lands once allowed.
    env.kubelet.unpublish(&gone, "secrets").await??;
    wait_log(
        &env,
        &gone,
        "pending status write dropped: volume unpublished",
    )
    .await?;
    let record = record_inode(&env, &kept)?;
    quota.delete("no-status", &Default::default()).await?;
    let kept_status = env.wait_status(&name("kept"), written).await?;
    assert!(statuses.get_opt(&name("gone")).await?.is_none());
    // One record write per publish: the written status is not recorded by
    // a rewrite (the record still says pending until its next write).
    assert_eq!(record_inode(&env, &kept)?, record);

    // The driver dies with a write pending: the next start lists this
    // node's statuses once, writes the missing one and leaves the other.
    let quota = refuse_statuses(&env).await?;
    let late = env.pod("late", "st").await?;
    env.publish(&late).await??;
    wait_log(&env, &late, "status write failed; retrying").await?;
    assert_eq!(pending_records(&env)?, 2);
    env.driver.kill9_and_restart().await?;
    wait_log(&env, &late, "status write pending from before the restart").await?;
    quota.delete("no-status", &Default::default()).await?;
    env.wait_status(&name("late"), written).await?;
    assert!(statuses.get_opt(&name("gone")).await?.is_none());
    let kept_target = env.target(&kept).display().to_string();
    assert!(
        !env.driver
            .log()
            .lines()
            .any(|l| l.contains("pending from before") && l.contains(&kept_target)),
        "a status the listing showed written is not rewritten"
    );
    let now = statuses.get(&name("kept")).await?;
    assert_eq!(
        now.metadata.resource_version,
        kept_status.metadata.resource_version
    );
    // The records outlived the kill on the tmpfs; a clean stop with no
    // volume left unmounts it.
    env.kubelet.unpublish(&kept, "secrets").await??;
    env.kubelet.unpublish(&late, "secrets").await??;
    assert!(env.driver.stop()?.success());
    assert_eq!(mount_type(&state_dir(&env)), None);
    Ok(())
}
