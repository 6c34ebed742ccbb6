//! A structural check of an object against a CRD's OpenAPI v3 schema, the
//! way the API server with strict field validation (`kubectl apply
//! --validate=strict`) judges it: types, required fields and unknown fields,
//! each reported with its field path.
//!
//! Only what the SecretProviderClass schemas use is interpreted (`type`,
//! `properties`, `additionalProperties`, `items`, `required`,
//! `x-kubernetes-preserve-unknown-fields`). `null` is accepted anywhere, as
//! the API server prunes it. `metadata` is checked against the fields of
//! ObjectMeta.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// ObjectMeta fields a manifest may carry.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

/// One schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `spec.parameters.objects` or `spec.secretObjects[0].data`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks `value` against `schema`; every violation is returned.
pub fn check(value: &Value, schema: &JSONSchemaProps) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(value, schema, "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    let key = key.escape_debug();
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn type_matches(value: &Value, ty: &str) -> bool {
    match (ty, value) {
        ("object", Value::Object(_)) | ("array", Value::Array(_)) => true,
        ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_)) => true,
        _ => false,
    }
}

fn expected(ty: &str) -> &str {
    match ty {
        "object" => "a map",
        "array" => "a list",
        "string" => "a string",
        "boolean" => "a boolean",
        "integer" => "an integer",
        other => other,
    }
}

fn walk(value: &Value, schema: &JSONSchemaProps, path: &str, out: &mut Vec<Violation>) {
    if value.is_null() {
        return;
    }
    if let Some(ty) = schema.type_.as_deref()
        && !type_matches(value, ty)
    {
        let hint = match (ty, value) {
            ("string", Value::Bool(_) | Value::Number(_)) => " (quote the value)",
            _ => "",
        };
        out.push(Violation {
            field: path.to_string(),
            reason: format!("expected {}, found {}{hint}", expected(ty), kind_of(value)),
        });
        return;
    }
    match value {
        Value::Object(map) => walk_map(map, schema, path, out),
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn walk_map(
    map: &serde_json::Map<String, Value>,
    schema: &JSONSchemaProps,
    path: &str,
    out: &mut Vec<Violation>,
) {
    for name in schema.required.iter().flatten() {
        if map.get(name).is_none_or(Value::is_null) {
            out.push(Violation {
                field: join(path, name),
                reason: "required field is missing".into(),
            });
        }
    }
    if path == "metadata" {
        return metadata(map, out);
    }
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    for (key, v) in map {
        let field = join(path, key);
        if let Some(sub) = schema.properties.as_ref().and_then(|p| p.get(key)) {
            walk(v, sub, &field, out);
            continue;
        }
        match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(sub)) => walk(v, sub, &field, out),
            Some(JSONSchemaPropsOrBool::Bool(true)) => {}
            _ if preserve => {}
            _ => out.push(Violation {
                field,
                reason: unknown(schema),
            }),
        }
    }
}

fn unknown(schema: &JSONSchemaProps) -> String {
    let known: Vec<&str> = schema
        .properties
        .iter()
        .flat_map(|p| p.keys().map(String::as_str))
        .collect();
    format!("unknown field (known: {})", known.join(", "))
}

fn string_map(v: &Value, field: &str, out: &mut Vec<Violation>) {
    let Value::Object(m) = v else {
        if !v.is_null() {
            out.push(Violation {
                field: field.into(),
                reason: format!("expected a map, found {}", kind_of(v)),
            });
        }
        return;
    };
    for (k, v) in m {
        if !v.is_string() && !v.is_null() {
            out.push(Violation {
                field: join(field, k),
                reason: format!("expected a string, found {} (quote the value)", kind_of(v)),
            });
        }
    }
}

fn metadata(map: &serde_json::Map<String, Value>, out: &mut Vec<Violation>) {
    for (key, v) in map {
        let field = join("metadata", key);
        match key.as_str() {
            "labels" | "annotations" => string_map(v, &field, out),
            "name" | "namespace" | "generateName" if !v.is_string() && !v.is_null() => {
                out.push(Violation {
                    field,
                    reason: format!("expected a string, found {}", kind_of(v)),
                })
            }
            k if OBJECT_META.contains(&k) => {}
            _ => out.push(Violation {
                field,
                reason: "unknown field in metadata".into(),
            }),
        }
    }
    match map.get("name").filter(|v| !v.is_null()).map(Value::as_str) {
        Some(None) => {} // not a string: reported above
        None | Some(Some("")) => out.push(Violation {
            field: "metadata.name".into(),
            reason: "required field is missing".into(),
        }),
        Some(Some(name)) if !dns_subdomain(name) => out.push(Violation {
            field: "metadata.name".into(),
            reason: format!(
                "{:?} is not a valid name (lowercase letters, digits, '-' and '.', at most 253, starting and ending alphanumeric)",
                name.escape_debug().to_string()
            ),
        }),
        Some(Some(_)) => {}
    }
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn dns_subdomain(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| alnum(b) || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}
