//! Trust boundaries of the driver, against the real API server: what a pod
//! can write never chooses a target, a pod, a class or a service account;
//! targets must be kubelet's; volumes are bounded; the per-class interval
//! has a floor; metrics count what really happened.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Env, assert_untouched, http_get, parse_metrics};
use k8s_openapi::api::core::v1::Pod;
use secrets_store_testkit::fake_provider::Behavior;
use secrets_store_testkit::{TokenOptions, wait_for};
use tonic::Code;

/// Every entry under `dir` (not following links): path → (kind, bytes or
/// link target, mtime).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (String, Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readdir").flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let (kind, body) = if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&path).expect("readlink");
                ("link", to.display().to_string().into_bytes())
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else if meta.is_file() {
                ("file", std::fs::read(&path).expect("read"))
            } else {
                ("other", Vec::new())
            };
            out.insert(path, (kind.to_string(), body, meta.mtime()));
        }
    }
    out
}

fn mount_tmpfs(at: &Path) {
    std::fs::create_dir_all(at).expect("mkdir");
    nix::mount::mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount tmpfs (tests run as root)");
}

/// A pod-owned tmpfs (memory emptyDir) and a CSI-shaped tmpfs the driver
/// never published, both holding an older driver's marker and state files
/// naming another pod, class and service account, plus links out.
fn plant_lookalikes(env: &Env, pod_uid: &str, victim: &Path) -> Vec<PathBuf> {
    let root = &env.kubelet_root;
    let dirs = vec![
        root.join(format!(
            "pods/{pod_uid}/volumes/kubernetes.io~empty-dir/cache"
        )),
        root.join(format!(
            "pods/{pod_uid}/volumes/kubernetes.io~csi/forged/mount"
        )),
    ];
    let forged = serde_json::json!({
        "volume_id": "csi-forged", "readonly": true, "mount_group": 0,
        "context": {
            "csi.storage.k8s.io/pod.name": "victim",
            "csi.storage.k8s.io/pod.namespace": "kube-system",
            "csi.storage.k8s.io/pod.uid": "00000000-0000-0000-0000-000000000000",
            "csi.storage.k8s.io/serviceAccount.name": "admin",
            "secretProviderClass": "other-namespace-class"
        }
    });
    for dir in &dirs {
        mount_tmpfs(dir);
        std::fs::write(dir.join("..secrets-store-published"), "").expect("marker");
        std::fs::write(dir.join("..secrets-store-volume.json"), forged.to_string()).expect("state");
        std::os::unix::fs::symlink(victim, dir.join("..data")).expect("link");
        std::os::unix::fs::symlink(victim.join("precious"), dir.join("file")).expect("link");
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
    }
    dirs
}

/// The driver with `flags`, the class `spc` (provider `fake`), the
/// provider answering file `a` = `contents` (version 1), and a pod `pod`
/// mounting the class.
async fn env_with_pod(flags: &[&str], contents: &[u8], pod: &str) -> anyhow::Result<(Env, Pod)> {
    let env = Env::start(flags).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("a", contents, 0o644)], &[("a", "1")]));
    let pod = env.pod(pod, "spc").await?;
    Ok((env, pod))
}

/// A publish request for the pod's `secrets` volume, sent to `target`.
async fn publish_at(
    env: &Env,
    pod: &Pod,
    target: &str,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let mut req = env
        .kubelet
        .publish_request(pod, "secrets", &TokenOptions::default())
        .await?;
    req.target_path = target.into();
    Ok(env.kubelet.send_publish(req).await.map(drop))
}

#[tokio::test]
async fn lookalike_volumes_are_never_written_deleted_followed_or_believed() -> anyhow::Result<()> {
    let (env, pod) = env_with_pod(
        &[
            "--enable-secret-rotation=true",
            "--enable-refresh-loop=true",
            "--rotation-poll-interval=1s",
            "--min-rotation-poll-interval=0s",
        ],
        b"real",
        "real",
    )
    .await?;
    env.publish(&pod).await??;
    let victim = tempfile::tempdir()?;
    std::fs::write(victim.path().join("precious"), "keep me")?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let planted = plant_lookalikes(&env, &uid, victim.path());
    let before: Vec<_> = planted.iter().map(|d| snapshot(d)).collect();
    let victim_before = snapshot(victim.path());

    // Let the refresh loop make several passes over this node.
    let start = env.provider.requests().len();
    wait_for(
        "three refresh-loop passes",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let n = env.provider.requests().len();
            async move { Ok((n >= start + 3).then_some(())) }
        },
    )
    .await?;

    for (dir, snap) in planted.iter().zip(&before) {
        assert_eq!(&snapshot(dir), snap, "{} was changed", dir.display());
    }
    assert_eq!(
        snapshot(victim.path()),
        victim_before,
        "a link was followed"
    );
    for req in env.provider.requests() {
        let attrs: BTreeMap<String, String> = serde_json::from_str(&req.attributes)?;
        assert_eq!(attrs["csi.storage.k8s.io/pod.name"], "real");
        assert_eq!(attrs["csi.storage.k8s.io/serviceAccount.name"], "default");
        assert_eq!(attrs["secretProviderClass"], "spc");
        assert!(
            req.target_path
                .ends_with("/volumes/kubernetes.io~csi/secrets/mount"),
            "{}",
            req.target_path
        );
    }
    // Nothing extra appears inside the user's volume.
    let names: Vec<_> = std::fs::read_dir(env.target(&pod))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let mut names = names
        .into_iter()
        .filter(|n| !n.starts_with("..20"))
        .collect::<Vec<_>>();
    names.sort();
    assert_eq!(names, ["..data", "a"]);
    for dir in &planted {
        nix::mount::umount(dir.as_path())?;
    }
    Ok(())
}

#[tokio::test]
async fn targets_outside_kubelets_csi_shape_or_through_links_are_refused() -> anyhow::Result<()> {
    let (env, pod) = env_with_pod(&[], b"x", "p").await?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let outside = tempfile::tempdir()?;
    let emptydir = env
        .kubelet_root
        .join(format!("pods/{uid}/volumes/kubernetes.io~empty-dir/data"));
    std::fs::create_dir_all(&emptydir)?;
    for target in [
        outside.path().join("mount"),
        emptydir.clone(),
        env.kubelet_root.join(format!(
            "pods/{uid}/volumes/kubernetes.io~csi/secrets/mount/../../x/mount"
        )),
    ] {
        let status = publish_at(&env, &pod, &target.display().to_string())
            .await?
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status
                .message()
                .contains("is not a kubelet CSI volume path"),
            "{}",
            status.message()
        );
        assert!(!target.join("..data").exists());
    }
    assert_eq!(
        std::fs::read_dir(outside.path())?.count(),
        0,
        "nothing created outside"
    );
    assert_eq!(common::mount_type(&emptydir), None);

    // A symlinked component: the pod's CSI volume directory points elsewhere.
    let target = env.target(&pod);
    let vol_dir = target.parent().expect("parent").to_path_buf();
    let req = env
        .kubelet
        .publish_request(&pod, "secrets", &TokenOptions::default())
        .await?;
    std::fs::remove_dir_all(&vol_dir)?;
    std::os::unix::fs::symlink(outside.path(), &vol_dir)?;
    let status = env.kubelet.send_publish(req).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(
        status.message().contains("symbolic link"),
        "{}",
        status.message()
    );
    assert_eq!(
        std::fs::read_dir(outside.path())?.count(),
        0,
        "nothing created through the link"
    );
    // Unpublish through the link is refused the same way and deletes nothing.
    std::fs::create_dir(outside.path().join("mount"))?;
    std::fs::write(outside.path().join("mount/keep"), "x")?;
    let status = env
        .kubelet
        .unpublish(&pod, "secrets")
        .await?
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(outside.path().join("mount/keep").exists());
    Ok(())
}

#[tokio::test]
async fn a_full_volume_fails_the_refresh_and_keeps_the_last_good_content() -> anyhow::Result<()> {
    // 1 MiB responses: the tmpfs gets size = 2 × 1 MiB + 1 MiB.
    let (env, pod) = env_with_pod(
        &[
            "--max-call-recv-msg-size=1048576",
            "--enable-secret-rotation=true",
            "--rotation-poll-interval=0s",
        ],
        b"good",
        "full",
    )
    .await?;
    env.publish(&pod).await??;
    let target = env.target(&pod);
    let stat = nix::sys::statvfs::statvfs(&target)?;
    assert_eq!(stat.blocks() * stat.fragment_size(), 3 << 20, "tmpfs size=");
    // A provider that writes into the target itself (legacy style) fills it.
    let filler = vec![0u8; (3 << 20) - (600 << 10)];
    std::fs::write(target.join("filler"), &filler)?;
    env.provider.set(Behavior::files(
        &[("a", &vec![b'n'; 900 << 10], 0o644)],
        &[("a", "2")],
    ));
    env.publish(&pod).await??; // kubelet sees success; the refresh failed
    assert_eq!(std::fs::read(target.join("a"))?, b"good");
    let log = env.driver.log();
    assert!(
        log.contains("refresh failed, keeping the current content"),
        "{log}"
    );
    assert!(log.contains("No space left on device"), "{log}");
    // Room again: the next refresh succeeds.
    std::fs::remove_file(target.join("filler"))?;
    env.publish(&pod).await??;
    assert_eq!(std::fs::read(target.join("a"))?.len(), 900 << 10);
    env.kubelet.unpublish(&pod, "secrets").await??;
    assert_untouched(&target);
    Ok(())
}

#[tokio::test]
async fn the_class_interval_cannot_go_below_the_operator_floor() -> anyhow::Result<()> {
    let (env, pod) = env_with_pod(
        &[
            "--enable-secret-rotation=true",
            "--rotation-poll-interval=1h",
            "--min-rotation-poll-interval=1h",
        ],
        b"1",
        "floor",
    )
    .await?;
    let api: kube::Api<secrets_store_crds::v1::SecretProviderClass> =
        kube::Api::namespaced(env.client.clone(), &env.ns);
    let patch = serde_json::json!({"metadata": {"annotations": {
        "secrets-store.csi.k8s.io/rotation-poll-interval": "1ms"}}});
    api.patch(
        "spc",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    env.publish(&pod).await??;
    tokio::time::sleep(Duration::from_millis(50)).await; // well past the 1ms annotation
    for _ in 0..3 {
        env.publish(&pod).await??;
    }
    assert_eq!(env.provider.requests().len(), 1, "the floor (1h) holds");
    Ok(())
}

/// A metric, labels its samples must include, their sum, and why (if
/// the figure needs a word).
type Sample = (
    &'static str,
    &'static [(&'static str, &'static str)],
    f64,
    &'static str,
);

/// Sum of a metric's samples whose labels include `want`.
fn metric(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    parse_metrics(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_count_what_happened_a_refresh_is_not_a_publish() -> anyhow::Result<()> {
    let (env, p1) = env_with_pod(
        &[
            "--enable-secret-rotation=true",
            "--rotation-poll-interval=0s",
        ],
        b"1",
        "m1",
    )
    .await?;
    let p2 = env.pod("m2", "spc").await?;
    env.publish(&p1).await??;
    env.publish(&p2).await??;
    // A refresh that changes content, one that changes nothing, one that fails.
    env.provider
        .set(Behavior::files(&[("a", b"2", 0o644)], &[("a", "2")]));
    env.publish(&p1).await??;
    env.publish(&p1).await??;
    env.provider
        .set(Behavior::Fail(Code::Internal, "backend down".into()));
    env.publish(&p1).await??;
    // A missing class and an invalid request.
    let p3 = env.pod("m3", "absent").await?;
    env.publish(&p3).await?.expect_err("no class");
    publish_at(&env, &p2, "/tmp/elsewhere/mount")
        .await?
        .expect_err("invalid");
    env.kubelet.unpublish(&p1, "secrets").await??;
    env.kubelet.unpublish(&p2, "secrets").await??;

    let (_, text) = http_get(&env.metrics_url()?).await?;
    const FAKE: &[(&str, &str)] = &[("provider", "fake")];
    let want: [Sample; 8] = [
        ("node_publish_total", FAKE, 2.0, ""),
        ("rotation_reconcile_total", &[("rotated", "true")], 1.0, ""),
        ("rotation_reconcile_total", &[("rotated", "false")], 1.0, ""),
        (
            "rotation_reconcile_error_total",
            &[("error_type", "GRPCProviderError")],
            1.0,
            "",
        ),
        (
            "node_publish_error_total",
            &[("error_type", "SecretProviderClassNotFound")],
            1.0,
            "",
        ),
        (
            "node_publish_error_total",
            &[("error_type", "InvalidRequest")],
            1.0,
            "",
        ),
        (
            "node_publish_error_total",
            FAKE,
            0.0,
            "a hidden refresh failure is not a publish error",
        ),
        ("node_unpublish_total", &[], 2.0, ""),
    ];
    for (name, labels, value, why) in want {
        assert_eq!(
            metric(&text, name, labels),
            value,
            "{name} {labels:?} {why}: {text}"
        );
    }
    Ok(())
}
