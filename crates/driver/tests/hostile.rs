//! Hostile or broken input gets a clear error, the right gRPC code, and
//! leaves nothing behind: no mount, no directory, no partial files.

mod common;

use common::{Env, assert_untouched};
use secrets_store_proto::provider::v1alpha1 as api;
use secrets_store_testkit::fake_provider::Behavior;
use tonic::Code;

/// Publishes pod `name` (SPC `spc`) and expects `code` and a message
/// containing `message`; the target must be untouched.
async fn expect_failure(
    env: &Env,
    name: &str,
    spc: &str,
    code: Code,
    message: &str,
) -> anyhow::Result<()> {
    let pod = env.pod(name, spc).await?;
    let status = env.publish(&pod).await?.expect_err("publish must fail");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().contains(message),
        "message {:?} lacks {message:?}",
        status.message()
    );
    assert_untouched(&env.target(&pod));
    Ok(())
}

async fn with_files(files: &[(&str, &[u8], i32)]) -> anyhow::Result<Env> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider.set(Behavior::files(files, &[("obj", "1")]));
    Ok(env)
}

#[tokio::test]
async fn absolute_file_path() -> anyhow::Result<()> {
    let env = with_files(&[("ok", b"a", 0o644), ("/etc/evil", b"x", 0o644)]).await?;
    expect_failure(
        &env,
        "abs",
        "spc",
        Code::Internal,
        "invalid file path \"/etc/evil\": absolute",
    )
    .await
}

#[tokio::test]
async fn dot_dot_in_file_path() -> anyhow::Result<()> {
    let env = with_files(&[("a/../../../escape", b"x", 0o644)]).await?;
    expect_failure(
        &env,
        "dotdot",
        "spc",
        Code::Internal,
        "contains a '..' element",
    )
    .await
}

#[tokio::test]
async fn path_into_the_writers_own_entries() -> anyhow::Result<()> {
    // `..data/x` would write through the writer's own symlink.
    let env = with_files(&[("..data/x", b"x", 0o644)]).await?;
    expect_failure(&env, "datalink", "spc", Code::Internal, "starts with '..'").await
}

#[tokio::test]
async fn file_that_is_also_a_directory() -> anyhow::Result<()> {
    let env = with_files(&[("a", b"x", 0o644), ("a/b", b"y", 0o644)]).await?;
    expect_failure(
        &env,
        "conflict",
        "spc",
        Code::Internal,
        "is both a file and a directory",
    )
    .await
}

#[tokio::test]
async fn duplicate_file_paths() -> anyhow::Result<()> {
    let env = with_files(&[("same", b"1", 0o644), ("same", b"2", 0o644)]).await?;
    expect_failure(
        &env,
        "dup",
        "spc",
        Code::Internal,
        "duplicate file path \"same\"",
    )
    .await
}

#[tokio::test]
async fn mode_outside_0777() -> anyhow::Result<()> {
    let env = with_files(&[("setuid", b"x", 0o4755)]).await?;
    expect_failure(&env, "mode", "spc", Code::Internal, "invalid mode 0o4755").await?;
    env.provider
        .set(Behavior::files(&[("neg", b"x", -1)], &[("obj", "1")]));
    expect_failure(
        &env,
        "negmode",
        "spc",
        Code::Internal,
        "must be within 0o777",
    )
    .await
}

#[tokio::test]
async fn response_over_the_size_limit() -> anyhow::Result<()> {
    let env = Env::start(&["--max-call-recv-msg-size=4096"]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    let big = vec![b'x'; 8192];
    env.provider
        .set(Behavior::files(&[("big", &big, 0o644)], &[("obj", "1")]));
    expect_failure(
        &env,
        "big",
        "spc",
        Code::ResourceExhausted,
        "raise --max-call-recv-msg-size",
    )
    .await
}

#[tokio::test]
async fn missing_object_versions() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider
        .set(Behavior::files(&[("f", b"x", 0o644)], &[]));
    expect_failure(
        &env,
        "nover",
        "spc",
        Code::Internal,
        "missing object versions",
    )
    .await
}

#[tokio::test]
async fn provider_error_code() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider.set(Behavior::Respond(api::MountResponse {
        object_version: vec![],
        error: Some(api::Error {
            code: "SecretNotFound".into(),
        }),
        files: vec![],
    }));
    expect_failure(
        &env,
        "code",
        "spc",
        Code::FailedPrecondition,
        "mount request failed with provider error code SecretNotFound",
    )
    .await
}

#[tokio::test]
async fn provider_that_hangs() -> anyhow::Result<()> {
    let env = Env::start(&["--provider-timeout=1s"]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider.set(Behavior::Hang);
    expect_failure(
        &env,
        "hang",
        "spc",
        Code::DeadlineExceeded,
        "did not answer within 1s",
    )
    .await
}

#[tokio::test]
async fn provider_that_crashed() -> anyhow::Result<()> {
    let mut env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    env.provider.crash();
    // The socket file is still there; nobody listens.
    assert!(env.provider.socket().exists());
    expect_failure(
        &env,
        "crash",
        "spc",
        Code::Unavailable,
        "error connecting to provider \"fake\"",
    )
    .await
}

#[tokio::test]
async fn provider_that_is_missing() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "nosuchprovider", &[("objects", "x")])
        .await?;
    expect_failure(
        &env,
        "missing",
        "spc",
        Code::Unavailable,
        "provider not found: provider \"nosuchprovider\"",
    )
    .await
}

#[tokio::test]
async fn provider_name_that_is_a_path() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "../../tmp/evil", &[("objects", "x")])
        .await?;
    expect_failure(
        &env,
        "badname",
        "spc",
        Code::InvalidArgument,
        "invalid provider: provider \"../../tmp/evil\"",
    )
    .await
}

#[tokio::test]
async fn class_without_parameters() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[]).await?;
    let msg = format!("parameters not set in {}/spc", env.ns);
    expect_failure(&env, "noparams", "spc", Code::InvalidArgument, &msg).await
}

#[tokio::test]
async fn class_that_does_not_exist() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    // Upstream's troubleshooting text, matched by its e2e tests.
    let msg = format!(
        "failed to get secretproviderclass {}/absent, error:",
        env.ns
    );
    expect_failure(&env, "nospc", "absent", Code::NotFound, &msg).await?;
    expect_failure(
        &env,
        "nospc2",
        "absent",
        Code::NotFound,
        "\"absent\" not found",
    )
    .await
}

#[tokio::test]
async fn volume_that_is_not_read_only() -> anyhow::Result<()> {
    let env = Env::start(&[]).await?;
    env.spc("spc", "fake", &[("objects", "x")]).await?;
    let mut spec = secrets_store_testkit::TestPod::new(&env.ns, "rw", "spc");
    spec.volumes[0].read_only = false;
    let pod = env.kubelet.create_pod(&spec).await?;
    let status = env.publish(&pod).await?.expect_err("must fail");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "Readonly is not true in request");
    assert_untouched(&env.target(&pod));
    Ok(())
}

#[tokio::test]
async fn api_server_that_is_down() -> anyhow::Result<()> {
    // A kubeconfig pointing at a closed port.
    let dir = tempfile::tempdir()?;
    let cp = secrets_store_testkit::ControlPlane::shared().await?;
    let port = secrets_store_testkit::process::free_port()?;
    let text = std::fs::read_to_string(cp.kubeconfig())?
        .replace(cp.url(), &format!("https://127.0.0.1:{port}"));
    let kubeconfig = dir.path().join("down");
    std::fs::write(&kubeconfig, text)?;
    let env = Env::start_with_kubeconfig(&[], Some(&kubeconfig)).await?;
    let msg = format!("failed to get secretproviderclass {}/spc, error:", env.ns);
    expect_failure(&env, "down", "spc", Code::Unavailable, &msg).await
}
