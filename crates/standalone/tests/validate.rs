//! `secrets-store validate`: one file per class of mistake, all checked in
//! one run of the binary; each file's line must carry the precise message,
//! and the run exits 1.

use std::path::Path;
use std::process::Command;

const HEAD: &str = "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n";

fn ali(name: &str, params: &str) -> String {
    format!(
        "{HEAD}metadata:\n  name: {name}\nspec:\n  provider: alibabacloud\n  parameters:\n{params}"
    )
}

fn vault(name: &str, params: &str) -> String {
    format!("{HEAD}metadata:\n  name: {name}\nspec:\n  provider: vault\n  parameters:\n{params}")
}

/// (file name, content, expected line: `<file>: <this>`).
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let objects = |yaml: &str| {
        let indented: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
        format!("    objects: |\n{indented}")
    };
    vec![
        (
            "ok-v1.yaml",
            ali(
                "db",
                &objects(
                    "- objectName: db\n  jmesPath:\n    - path: user\n      objectAlias: user",
                ),
            ),
            r#"SecretProviderClass "db": ok"#,
        ),
        (
            "ok-v1alpha1.yaml",
            ali("old", &objects("- objectName: db")).replace("/v1\n", "/v1alpha1\n"),
            r#"SecretProviderClass "old": ok"#,
        ),
        (
            "other-provider.yaml",
            format!(
                "{HEAD}metadata:\n  name: g\nspec:\n  provider: gcp\n  parameters:\n    secrets: x\n"
            ),
            r#"SecretProviderClass "g": ok (schema only: provider "gcp" is not one of ours"#,
        ),
        (
            "syntax.yaml",
            format!("{HEAD}metadata:\n  name: s\nspec: [unclosed\n"),
            "invalid YAML",
        ),
        (
            "version.yaml",
            ali("v", &objects("- objectName: db")).replace("/v1\n", "/v2\n"),
            r#"SecretProviderClass "v": apiVersion: expected secrets-store.csi.x-k8s.io/v1 or secrets-store.csi.x-k8s.io/v1alpha1, found "secrets-store.csi.x-k8s.io/v2""#,
        ),
        (
            "type.yaml",
            ali("t", "    usePodServiceAccountToken: true\n"),
            r#"SecretProviderClass "t": spec.parameters.usePodServiceAccountToken: expected a string, found a boolean (quote the value)"#,
        ),
        (
            "unknown-spec-field.yaml",
            ali("u", &objects("- objectName: db")) + "  secretObject: []\n",
            r#"SecretProviderClass "u": spec.secretObject: unknown field (known: parameters, provider, secretObjects)"#,
        ),
        (
            "unknown-metadata-field.yaml",
            ali("m", &objects("- objectName: db")).replace("  name: m\n", "  name: m\n  nmae: x\n"),
            r#"SecretProviderClass "m": metadata.nmae: unknown field in metadata"#,
        ),
        (
            "no-name.yaml",
            format!("{HEAD}metadata: {{}}\nspec:\n  provider: alibabacloud\n"),
            "document 1: metadata.name: required field is missing",
        ),
        (
            "no-provider.yaml",
            format!("{HEAD}metadata:\n  name: p\nspec:\n  parameters:\n    a: b\n"),
            r#"SecretProviderClass "p": spec.provider: provider not set in default/p"#,
        ),
        (
            "no-parameters.yaml",
            format!(
                "{HEAD}metadata:\n  name: np\n  namespace: prod\nspec:\n  provider: alibabacloud\n"
            ),
            r#"SecretProviderClass "np": spec.parameters: parameters not set in prod/np"#,
        ),
        (
            "unknown-parameter.yaml",
            ali(
                "up",
                &(objects("- objectName: db") + "    regoin: cn-hangzhou\n"),
            ),
            r#"SecretProviderClass "up": spec.parameters.regoin: unknown parameter (known: objects, pathTranslation, region, usePodServiceAccountToken)"#,
        ),
        (
            "objects-yaml.yaml",
            ali("oy", &objects("- objectName: [db")),
            r#"SecretProviderClass "oy": spec.parameters.objects: failed to load SecretProviderClass: objects is not a valid YAML list"#,
        ),
        (
            "objects-unknown-field.yaml",
            ali("ou", &objects("- objectName: db\n  objectAliass: x")),
            "SecretProviderClass \"ou\": spec.parameters.objects: failed to load SecretProviderClass: object 0 (\"db\"): unknown field `objectAliass`",
        ),
        (
            "objects-missing-name.yaml",
            ali("nn", &objects("- objectAlias: x")),
            r#"SecretProviderClass "nn": spec.parameters.objects: object name must be specified"#,
        ),
        (
            "bad-path.yaml",
            ali(
                "bp",
                &(objects("- objectName: db\n  objectAlias: a/../../etc")
                    + "    pathTranslation: \"False\"\n"),
            ),
            r#"SecretProviderClass "bp": spec.parameters.objects: path can not contain ../: a/../../etc"#,
        ),
        (
            "duplicate-files.yaml",
            ali(
                "dup",
                &objects(
                    "- objectName: a\n  objectAlias: same\n- objectName: b\n  objectAlias: same",
                ),
            ),
            r#"SecretProviderClass "dup": spec.parameters.objects: duplicate object alias: same"#,
        ),
        (
            "bad-region.yaml",
            ali(
                "r",
                &(objects("- objectName: db") + "    region: \"cn hangzhou/x\"\n"),
            ),
            r#"SecretProviderClass "r": spec.parameters.region: "#,
        ),
        (
            "vault-ok.yaml",
            vault(
                "v-ok",
                &(objects("- objectName: db\n  secretPath: secret/data/db\n  secretKey: pw")
                    + "    roleName: app\n"),
            ),
            r#"SecretProviderClass "v-ok": ok"#,
        ),
        (
            "vault-no-role.yaml",
            vault(
                "v-role",
                &objects("- objectName: db\n  secretPath: secret/data/db"),
            ),
            r#"SecretProviderClass "v-role": spec.parameters.roleName: missing 'roleName' in SecretProviderClass definition"#,
        ),
        (
            "vault-unknown-field.yaml",
            vault(
                "v-field",
                &(objects("- objectName: db\n  secretPath: secret/data/db\n  secretKeyy: pw")
                    + "    roleName: app\n"),
            ),
            r#"SecretProviderClass "v-field": spec.parameters.objects: unknown field in objects: object 0 ("db"): secretKeyy"#,
        ),
        (
            "vault-unknown-parameter.yaml",
            vault(
                "v-param",
                &(objects("- objectName: db\n  secretPath: secret/data/db")
                    + "    roleName: app\n    vaultAddr: http://x\n"),
            ),
            r#"SecretProviderClass "v-param": spec.parameters.vaultAddr: unknown parameter "vaultAddr""#,
        ),
        (
            "vault-bad-path.yaml",
            vault(
                "v-path",
                &(objects("- objectName: ../escape\n  secretPath: secret/data/db")
                    + "    roleName: app\n"),
            ),
            r#"SecretProviderClass "v-path": spec.parameters.objects: object "../escape": "#,
        ),
        (
            "vault-duplicates.yaml",
            vault(
                "v-dup",
                &(objects("- objectName: db\n  secretPath: a\n- objectName: db\n  secretPath: b")
                    + "    roleName: app\n"),
            ),
            r#"SecretProviderClass "v-dup": spec.parameters.objects: each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: db"#,
        ),
        (
            "aws-ok.yaml",
            ali(
                "aws",
                &objects("- objectName: db\n  objectType: secretsmanager"),
            )
            .replace("provider: alibabacloud", "provider: aws"),
            r#"SecretProviderClass "aws": ok"#,
        ),
        (
            "aws-objects-unknown-field.yaml",
            ali(
                "awsu",
                &objects("- objectName: db\n  objectType: secretsmanager\n  objectAliass: x"),
            )
            .replace("provider: alibabacloud", "provider: aws"),
            "SecretProviderClass \"awsu\": spec.parameters.objects: Failed to load SecretProviderClass: object 0 (\"db\"): unknown field `objectAliass`",
        ),
        (
            "not-a-class.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n".to_string(),
            "no SecretProviderClass in the file",
        ),
    ]
}

#[test]
fn every_class_of_mistake_is_named_with_file_and_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = cases();
    let mut args = Vec::new();
    for (name, content, _) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        args.push(path);
    }
    args.push(dir.path().join("missing.yaml"));
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-store"))
        .arg("validate")
        .args(&args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let file = |name: &str| dir.path().join(name).display().to_string();
    for (name, _, want) in &cases {
        let expected = format!("{}: {want}", file(name));
        assert!(
            stdout.lines().any(|l| l.starts_with(&expected)),
            "{name}: want a line starting with\n  {expected}\ngot:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(
            "{}: cannot read: No such file",
            file("missing.yaml")
        )),
        "{stdout}"
    );
    assert!(stdout.contains("23 problem(s) in 25 class(es)"), "{stdout}");
    Ok(())
}

#[test]
fn a_valid_file_exits_zero_and_quiet_prints_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ok.yaml");
    let two = format!(
        "{}---\n{}",
        ali("a", "    objects: \"- objectName: a\"\n"),
        ali("b", "    objects: \"- objectName: b\"\n")
    );
    std::fs::write(&path, two)?;
    let run = |quiet: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-store"));
        c.arg("validate").arg(&path);
        if quiet {
            c.arg("--quiet");
        }
        c.output()
    };
    let out = run(false)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": ok")).count(),
        2,
        "{stdout}"
    );
    let out = run(true)?;
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(Path::new(&path).exists());
    Ok(())
}
