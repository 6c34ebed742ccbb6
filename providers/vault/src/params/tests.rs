use super::*;

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const ONE: &str = "- objectName: a\n  secretPath: secret/data/a\n";

#[test]
fn reads_every_parameter() {
    let p = Parameters::parse(
        &attrs(&[
            ("roleName", "r"),
            ("vaultAddress", "https://v:8200"),
            ("vaultNamespace", "ns1"),
            ("vaultCACertPath", "/ca.pem"),
            ("vaultCADirectory", "/cas"),
            ("vaultTLSServerName", "vault.local"),
            ("vaultTLSClientCertPath", "/c.pem"),
            ("vaultTLSClientKeyPath", "/k.pem"),
            ("vaultSkipTLSVerify", "1"),
            ("vaultAuthMountPath", "jwt"),
            ("audience", "aud"),
            (
                "objects",
                "- objectName: a\n  secretPath: pki/issue/r\n  secretKey: certificate\n  method: PUT\n  secretArgs:\n    common_name: x\n    ttl: 1h\n  filePermission: 0600\n  encoding: BASE64\n",
            ),
        ]),
        Strictness::Strict,
    )
    .expect("parse");
    assert_eq!(p.role_name, "r");
    assert_eq!(p.vault_address.as_deref(), Some("https://v:8200"));
    assert_eq!(p.vault_namespace.as_deref(), Some("ns1"));
    assert_eq!(
        p.tls,
        TlsSettings {
            ca_cert: Some("/ca.pem".into()),
            ca_directory: Some("/cas".into()),
            server_name: Some("vault.local".into()),
            client_cert: Some("/c.pem".into()),
            client_key: Some("/k.pem".into()),
            skip_verify: true,
        }
    );
    assert_eq!(p.auth_mount_path.as_deref(), Some("jwt"));
    assert_eq!(p.token_audience(), "aud");
    let o = &p.objects[0];
    assert_eq!((o.method(), o.file_permission.0), ("PUT", 0o600));
    assert_eq!(o.encoding(), Ok(Encoding::Base64));
    assert_eq!(
        serde_json::Value::Object(o.secret_args.clone().expect("args")),
        serde_json::json!({"common_name": "x", "ttl": "1h"})
    );
}

#[test]
fn file_permissions_read_like_yaml_v3() {
    for (text, want) in [
        ("0600", 0o600),
        ("0o640", 0o640),
        ("420", 420),
        ("0x1ff", 0o777),
        ("0", 0),
    ] {
        let yaml = format!("- objectName: a\n  filePermission: {text}\n");
        let p = Parameters::parse(
            &attrs(&[("roleName", "r"), ("objects", &yaml)]),
            Strictness::Lenient,
        )
        .expect(text);
        assert_eq!(p.objects[0].file_permission.0, want, "{text}");
    }
    let bad = Parameters::parse(
        &attrs(&[
            ("roleName", "r"),
            ("objects", "- objectName: a\n  filePermission: rw\n"),
        ]),
        Strictness::Lenient,
    )
    .expect_err("not a mode")
    .to_string();
    assert!(bad.starts_with("object 0 (\"a\"): "), "{bad}");
    assert_eq!(go_int("-0x10"), Some(-16));
    assert_eq!(go_int("1_000"), Some(1000));
    assert_eq!(go_int("08"), None);
}

#[test]
fn upstream_messages() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("vaultKubernetesMountPath", "a"),
                ("vaultAuthMountPath", "b"),
            ],
            "cannot set both vaultKubernetesMountPath and vaultAuthMountPath",
        ),
        (
            &[("vaultSkipTLSVerify", "yes")],
            "strconv.ParseBool: parsing \"yes\": invalid syntax",
        ),
        (
            &[("objects", ONE)],
            "missing 'roleName' in SecretProviderClass definition",
        ),
        (
            &[("roleName", "r")],
            "no secrets configured - the provider will not read any secret material",
        ),
        (
            &[
                ("roleName", "r"),
                (
                    "objects",
                    "- objectName: a\n- objectName: b\n- objectName: a\n- objectName: b\n",
                ),
            ],
            "each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: a, b",
        ),
        (
            &[("roleName", "r"), ("objects", "objectName: a")],
            "objects is not a valid YAML list",
        ),
    ];
    for (pairs, want) in cases {
        let err = Parameters::parse(&attrs(pairs), Strictness::Lenient)
            .expect_err(want)
            .to_string();
        assert!(err.starts_with(want), "{err}");
    }
    // Unknown object fields are ignored in a mount, and listed.
    let p = Parameters::parse(
        &attrs(&[
            ("roleName", "r"),
            ("objects", "- objectName: a\n  secretkey: typo\n"),
        ]),
        Strictness::Lenient,
    )
    .expect("lenient");
    assert_eq!(p.unknown.len(), 1);
    assert_eq!(p.token_audience(), DEFAULT_AUDIENCE);
}

#[test]
fn validation_is_strict_and_lists_every_problem() {
    assert_eq!(
        validate_parameters(&attrs(&[("roleName", "r"), ("objects", ONE)])),
        Ok(())
    );
    let objects = "- objectName: a\n  secretPath: s\n  secretkey: typo\n  encoding: utf-16\n\
                   - objectName: ../b\n  secretPath: s\n  method: FETCH\n  filePermission: 01777\n\
                   - objectName: c\n  encoding: hex\n- secretPath: s\n";
    let problems: Vec<String> = validate_parameters(&attrs(&[
        ("roleName", "r"),
        ("vaultAdress", "typo"),
        ("csi.storage.k8s.io/pod.name", "driver keys are fine"),
        ("objects", objects),
    ]))
    .expect_err("problems")
    .iter()
    .map(ToString::to_string)
    .collect();
    let want = [
        "unknown parameter \"vaultAdress\"",
        "unknown field in objects: object 0 (\"a\"): secretkey",
        "object \"a\": invalid encoding type. Should be utf-8, base64, or hex",
        "object \"../b\": ",
        "object \"../b\": method \"FETCH\" is not one of GET, PUT, POST, LIST, DELETE, PATCH",
        "object \"../b\": filePermission 0o1777 is not a mode between 0 and 0777",
        "object \"c\": missing secretPath",
        "object \"c\": encoding applies only with secretKey (the whole response is JSON)",
        "object 3: missing objectName",
    ];
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
    for (got, want) in problems.iter().zip(want) {
        assert!(got.starts_with(want), "{got} vs {want}");
    }
    let yaml =
        validate_parameters(&attrs(&[("roleName", "r"), ("objects", "- [")])).expect_err("yaml");
    assert!(
        yaml[0]
            .to_string()
            .starts_with("objects is not a valid YAML list")
    );
}
