//! The checked-in CRDs are what the types generate, and their schemas match
//! upstream's CRDs (v1.6.0): same group, names, scope, versions with their
//! served/storage/deprecation flags, and the same fields with the same types.

use std::collections::BTreeMap;
use std::path::Path;

use secrets_store_crds::crd;
use secrets_store_testkit::tools::go_module_dir;
use serde_json::Value;

fn deploy_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds"))
}

#[test]
fn checked_in_crds_are_up_to_date() -> anyhow::Result<()> {
    for c in crd::all()? {
        let path = deploy_dir().join(crd::file_name(&c));
        let on_disk = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        assert!(
            on_disk == crd::to_yaml(&c)?,
            "{} is stale: run `cargo run -p secrets-store-crds --bin crdgen`",
            path.display()
        );
    }
    Ok(())
}

/// Everything that defines a CRD's API, without descriptions: a flat map
/// from a path to its value, e.g. `versions.v1.schema.spec.provider` →
/// `string`.
fn shape(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let spec = &doc["spec"];
    for key in ["group", "scope"] {
        out.insert(key.to_string(), spec[key].to_string());
    }
    for key in [
        "kind",
        "listKind",
        "plural",
        "singular",
        "shortNames",
        "categories",
    ] {
        out.insert(format!("names.{key}"), spec["names"][key].to_string());
    }
    for v in spec["versions"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        for key in [
            "served",
            "storage",
            "deprecated",
            "deprecationWarning",
            "subresources",
            "additionalPrinterColumns",
        ] {
            let val = match &v[key] {
                Value::Bool(false) if key == "deprecated" => Value::Null,
                other => other.clone(),
            };
            out.insert(format!("versions.{name}.{key}"), val.to_string());
        }
        walk(
            &format!("versions.{name}.schema"),
            &v["schema"]["openAPIV3Schema"],
            &mut out,
        );
    }
    out
}

fn walk(path: &str, schema: &Value, out: &mut BTreeMap<String, String>) {
    out.insert(format!("{path}:type"), schema["type"].to_string());
    for key in [
        "required",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "enum",
        "format",
    ] {
        if !schema[key].is_null() {
            out.insert(format!("{path}:{key}"), schema[key].to_string());
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            walk(&format!("{path}.{k}"), v, out);
        }
    }
    if !schema["items"].is_null() {
        walk(&format!("{path}[]"), &schema["items"], out);
    }
    if let Some(extra) = schema["additionalProperties"].as_object() {
        walk(&format!("{path}{{}}"), &Value::Object(extra.clone()), out);
    }
}

#[test]
fn crds_match_upstream_v1_6_0() -> anyhow::Result<()> {
    let module = go_module_dir("sigs.k8s.io/secrets-store-csi-driver", "v1.6.0")?;
    for c in crd::all()? {
        let file = crd::file_name(&c);
        let upstream_yaml = std::fs::read_to_string(module.join("deploy").join(&file))?;
        let upstream: Value = serde_yaml::from_str(&upstream_yaml)?;
        let ours = serde_json::to_value(&c)?;
        let diffs = diff(&ours, &upstream);
        assert!(
            diffs.is_empty(),
            "{file} differs from upstream:\n{}",
            diffs.join("\n")
        );
        assert!(
            shape(&ours).len() > 30,
            "{file}: too little compared: {:?}",
            shape(&ours)
        );
    }
    Ok(())
}

fn diff(ours: &Value, upstream: &Value) -> Vec<String> {
    let (a, b) = (shape(ours), shape(upstream));
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: ours {:?}, upstream {:?}", a.get(k), b.get(k)))
        .collect()
}

#[test]
fn the_comparison_catches_a_changed_type_and_a_missing_field() -> anyhow::Result<()> {
    let good = serde_json::to_value(crd::secret_provider_class()?)?;
    let mut bad = good.clone();
    let spec = &mut bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    spec["provider"]["type"] = Value::from("integer");
    spec.as_object_mut()
        .expect("properties")
        .remove("secretObjects");
    let diffs = diff(&bad, &good);
    assert!(
        diffs
            .iter()
            .any(|d| d.starts_with("versions.v1.schema.spec.provider:type")),
        "{diffs:?}"
    );
    assert!(
        diffs
            .iter()
            .any(|d| d.starts_with("versions.v1.schema.spec.secretObjects[].secretName:type")),
        "{diffs:?}"
    );
    Ok(())
}
