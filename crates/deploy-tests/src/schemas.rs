//! kubeconform schemas made offline from the API server's own OpenAPI v2
//! document (no schema repository is reachable here), for exactly the kinds
//! a test renders.
//!
//! Each kind gets a standalone JSON Schema file named as kubeconform looks
//! it up (`<kind>-<group>-<version>.json`, lowercase, the group cut at its
//! first dot, no group for the core API), holding the definitions it
//! reaches. OpenAPI's Kubernetes formats become JSON Schema: `int-or-string`
//! accepts a string or an integer, a `Quantity` a string or a number. Objects
//! with declared properties refuse unknown ones (strict, as kubeconform's
//! `-strict` schemas), so a misspelt field fails validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};

/// The kubeconform `-schema-location` template for a directory written by
/// [`write`].
pub fn location(dir: &Path) -> String {
    format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        dir.display()
    )
}

/// Fetches `/openapi/v2` from the API server.
pub async fn fetch_openapi(client: &kube::Client) -> anyhow::Result<Value> {
    let req = http::Request::get("/openapi/v2").body(Vec::new())?;
    Ok(serde_json::from_str(&client.request_text(req).await?)?)
}

/// Writes one schema per `(apiVersion, kind)` into `dir`. Fails for a kind
/// the API server does not serve.
pub fn write(
    openapi: &Value,
    kinds: &BTreeSet<(String, String)>,
    dir: &Path,
) -> anyhow::Result<()> {
    let defs = openapi["definitions"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("OpenAPI document has no definitions"))?;
    for (api_version, kind) in kinds {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version.as_str()),
        };
        let root = find_definition(defs, group, version, kind)
            .ok_or_else(|| anyhow::anyhow!("the API server serves no {api_version} {kind}"))?;
        let mut reached = BTreeMap::new();
        collect(defs, root, &mut reached);
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$ref": format!("#/definitions/{root}"),
            "definitions": reached,
        });
        let suffix = match group.split('.').next().filter(|g| !g.is_empty()) {
            Some(g) => format!("-{g}-{version}"),
            None => format!("-{version}"),
        };
        let file = dir.join(format!("{}{suffix}.json", kind.to_lowercase()));
        std::fs::write(file, serde_json::to_vec(&schema)?)?;
    }
    Ok(())
}

fn find_definition<'a>(
    defs: &'a Map<String, Value>,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<&'a str> {
    defs.iter().find_map(|(name, def)| {
        def["x-kubernetes-group-version-kind"]
            .as_array()?
            .iter()
            .any(|gvk| gvk["group"] == group && gvk["version"] == version && gvk["kind"] == kind)
            .then_some(name.as_str())
    })
}

/// Adds `name` and every definition it references, converted.
fn collect(defs: &Map<String, Value>, name: &str, out: &mut BTreeMap<String, Value>) {
    if out.contains_key(name) {
        return;
    }
    let Some(def) = defs.get(name) else { return };
    let mut refs = BTreeSet::new();
    let converted = convert(def, name.ends_with(".api.resource.Quantity"), &mut refs);
    out.insert(name.to_string(), converted);
    for r in refs {
        collect(defs, &r, out);
    }
}

fn convert(node: &Value, quantity: bool, refs: &mut BTreeSet<String>) -> Value {
    match node {
        Value::Object(map) => {
            if quantity {
                return json!({"oneOf": [{"type": "string"}, {"type": "number"}]});
            }
            if map.get("format").and_then(Value::as_str) == Some("int-or-string") {
                return json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
            }
            let mut out = Map::new();
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str().and_then(|r| r.strip_prefix("#/definitions/")) {
                        refs.insert(r.to_string());
                    }
                    out.insert(k.clone(), v.clone());
                } else if k == "properties" {
                    let props = v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(p, s)| (p.clone(), convert(s, false, refs)))
                        .collect();
                    out.insert(k.clone(), Value::Object(props));
                } else if k == "description" || k.starts_with("x-kubernetes-") {
                    continue;
                } else {
                    out.insert(k.clone(), convert(v, false, refs));
                }
            }
            let open = map.contains_key("additionalProperties")
                || map.contains_key("x-kubernetes-preserve-unknown-fields");
            if map.contains_key("properties") && !open {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| convert(v, false, refs)).collect())
        }
        other => other.clone(),
    }
}
