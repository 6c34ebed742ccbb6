//! The `objects` parameter: a YAML list of objects.
//!
//! The list is deserialized straight into the provider's type, so scalars
//! are read as that type expects. A missing or mistyped field is reported
//! with its line and the position and name of the object at fault. Parsing
//! is panic-free and bounded (serde-saphyr), since the YAML comes from
//! users.
//!
//! Fields the type does not know are a choice of the caller
//! ([`Strictness`]): upstream providers ignore them (Go's JSON decoding), so
//! a provider accepts them and reports them ([`Parsed::unknown`]) for one
//! warning; a standalone validator rejects them. They are found by
//! comparing each entry with the type serialized back, so the provider's
//! type must serialize every field it reads (no `skip_serializing`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::Spanned;

/// Errors parsing `objects`.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The text is not a YAML list.
    #[error("objects is not a valid YAML list: {0}")]
    Yaml(String),
    /// One entry does not match the provider's object type.
    #[error("object {index}{name}: {message}")]
    Object {
        /// Position in the list, from 0.
        index: usize,
        /// ` ("<name>")` when the entry has a name, else empty.
        name: String,
        /// What is wrong, with its line and column when known.
        message: String,
    },
}

/// What to do with fields the provider's type does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Accept them, as upstream providers do; they are listed in
    /// [`Parsed::unknown`].
    Lenient,
    /// Reject the first one, naming it and its object.
    Strict,
}

/// A field of an entry that the provider's type does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Position of the entry in the list, from 0.
    pub index: usize,
    /// The entry's name, if it has one.
    pub object: Option<String>,
    /// Path of the field inside the entry, e.g. `bogus` or
    /// `jmesPath[0].extra`.
    pub field: String,
}

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object {}", self.index)?;
        if let Some(n) = &self.object {
            write!(f, " ({n:?})")?;
        }
        // A YAML key can span lines: escape it so it cannot forge log lines.
        write!(f, ": {}", self.field.escape_debug())
    }
}

/// The parsed list and the fields that were ignored.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The entries.
    pub objects: Vec<T>,
    /// Unknown fields (empty in [`Strictness::Strict`] mode).
    pub unknown: Vec<UnknownField>,
}

/// Parses a YAML list into `T`s; `name_field` names an entry in messages.
pub fn parse<T: DeserializeOwned + Serialize>(
    yaml: &str,
    name_field: &str,
    strictness: Strictness,
) -> Result<Parsed<T>, ObjectsError> {
    if yaml.trim().is_empty() {
        return Ok(Parsed {
            objects: Vec::new(),
            unknown: Vec::new(),
        });
    }
    let objects = match serde_saphyr::from_str::<Option<Vec<T>>>(yaml) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return Err(locate(yaml, name_field, &e)),
    };
    let raw: Vec<Value> = serde_saphyr::from_str::<Option<Vec<Value>>>(yaml)
        .map_err(|e| ObjectsError::Yaml(first_line(&e)))?
        .unwrap_or_default();
    let mut unknown = Vec::new();
    for (index, (typed, raw)) in objects.iter().zip(&raw).enumerate() {
        let known = serde_json::to_value(typed).unwrap_or(Value::Null);
        let mut fields = Vec::new();
        extra_fields(raw, &known, "", &mut fields);
        let object = name_of(raw, name_field);
        unknown.extend(fields.into_iter().map(|field| UnknownField {
            index,
            object: object.clone(),
            field,
        }));
    }
    if strictness == Strictness::Strict
        && let Some(u) = unknown.first()
    {
        return Err(ObjectsError::Object {
            index: u.index,
            name: u
                .object
                .as_ref()
                .map(|n| format!(" ({n:?})"))
                .unwrap_or_default(),
            message: format!("unknown field `{}`", u.field.escape_debug()),
        });
    }
    Ok(Parsed { objects, unknown })
}

/// Keys of `raw` (recursively, through maps and lists) that `known` lacks.
fn extra_fields(raw: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (raw, known) {
        (Value::Object(r), Value::Object(k)) => {
            for (key, value) in r {
                match k.get(key) {
                    None => out.push(join(key)),
                    Some(kv) => extra_fields(value, kv, &join(key), out),
                }
            }
        }
        (Value::Array(r), Value::Array(k)) => {
            for (i, (rv, kv)) in r.iter().zip(k).enumerate() {
                extra_fields(rv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn name_of(entry: &Value, name_field: &str) -> Option<String> {
    match entry.get(name_field) {
        Some(Value::String(n)) => Some(n.clone()),
        _ => None,
    }
}

fn first_line(err: &serde_saphyr::Error) -> String {
    // Only the first line: the rest is a source snippet.
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// Turns a typed-parse error into one naming the entry at fault, found from
/// each entry's start line.
fn locate(yaml: &str, name_field: &str, err: &serde_saphyr::Error) -> ObjectsError {
    let message = first_line(err);
    let Ok(entries) = serde_saphyr::from_str::<Vec<Spanned<Value>>>(yaml) else {
        return ObjectsError::Yaml(message);
    };
    let Some(line) = err.location().map(|l| l.line()) else {
        return ObjectsError::Yaml(message);
    };
    let Some((index, entry)) = entries
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.referenced.line() <= line)
    else {
        return ObjectsError::Yaml(message);
    };
    if !entry.value.is_object() {
        return ObjectsError::Yaml(message);
    }
    ObjectsError::Object {
        index,
        name: name_of(&entry.value, name_field)
            .map(|n| format!(" ({n:?})"))
            .unwrap_or_default(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Obj {
        object_name: String,
        #[serde(default)]
        object_alias: String,
        #[serde(default)]
        jmes_path: Vec<Jmes>,
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Jmes {
        path: String,
    }

    fn lenient(yaml: &str) -> Result<Parsed<Obj>, ObjectsError> {
        parse(yaml, "objectName", Strictness::Lenient)
    }

    #[test]
    fn parses_a_list() {
        // Scalars are read as the type expects (no YAML 1.1 booleans).
        let v = lenient("- objectName: n\n  objectAlias: 1\n").expect("scalars");
        assert_eq!(
            (
                v.objects[0].object_name.as_str(),
                v.objects[0].object_alias.as_str()
            ),
            ("n", "1")
        );
        let v = lenient("- objectName: a\n  objectAlias: b\n- objectName: \"c\"\n").expect("parse");
        assert_eq!(v.objects.len(), 2);
        assert_eq!(v.objects[0].object_alias, "b");
        assert_eq!(v.objects[1].object_name, "c");
        assert!(v.unknown.is_empty());
        assert!(lenient("").expect("empty").objects.is_empty());
    }

    /// Found by fuzz/fuzz_targets/objects_yaml.rs.
    #[test]
    fn unknown_field_names_are_one_line() {
        let yaml = format!(
            "- {{objectName: a, objectAliasjectName|\n:N{}-%\n   }}\n",
            "\r".repeat(41)
        );
        let err = parse::<Obj>(&yaml, "objectName", Strictness::Strict).expect_err("unknown field");
        assert!(!err.to_string().contains(['\n', '\r']), "{err:?}");
        let parsed = lenient(&yaml).expect("lenient");
        assert!(!parsed.unknown.is_empty());
        assert!(
            parsed
                .unknown
                .iter()
                .all(|u| !u.to_string().contains(['\n', '\r']))
        );
    }

    #[test]
    fn unknown_fields_are_listed_or_rejected() {
        let yaml = "- objectName: a\n  bogus: 1\n- objectAlias: x\n  objectName: b\n  jmesPath:\n    - {path: p, extra: 2}\n";
        let v = lenient(yaml).expect("lenient");
        assert_eq!(v.objects.len(), 2);
        let listed: Vec<String> = v.unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            listed,
            [
                "object 0 (\"a\"): bogus",
                "object 1 (\"b\"): jmesPath[0].extra"
            ]
        );
        let err = parse::<Obj>(yaml, "objectName", Strictness::Strict)
            .expect_err("strict")
            .to_string();
        assert_eq!(err, "object 0 (\"a\"): unknown field `bogus`");
        assert!(parse::<Obj>("- objectName: a\n", "objectName", Strictness::Strict).is_ok());
    }

    #[test]
    fn errors_name_the_object() {
        let cases = [
            (
                "- objectAlias: x\n",
                "object 0: line 1 column 3: missing field `objectName`",
            ),
            (
                "- {objectName: a}\n- {objectName: [1]}\n",
                "object 1: line 2 column 16: expected string scalar",
            ),
            ("objectName: a\n", "objects is not a valid YAML list"),
            (
                "- objectName: a\n  objectName: b\n",
                "objects is not a valid YAML list",
            ),
            ("- [unclosed\n", "objects is not a valid YAML list"),
        ];
        for (yaml, want) in cases {
            let err = lenient(yaml).expect_err(yaml).to_string();
            assert!(err.starts_with(want), "{yaml:?}: {err}");
        }
    }
}
