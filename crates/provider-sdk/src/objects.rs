//! The `objects` parameter: a YAML list of objects, parsed strictly.
//!
//! Each entry is deserialized on its own so that an unknown or missing field
//! (the provider's type should use `deny_unknown_fields`) is reported with
//! the position and name of the object at fault. Parsing is panic-free and
//! bounded (serde-saphyr), since the YAML comes from users.

use serde::de::DeserializeOwned;

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
        /// What is wrong.
        message: String,
    },
}

/// Parses a YAML list into `T`s; `name_field` names an entry in errors.
pub fn parse<T: DeserializeOwned>(yaml: &str, name_field: &str) -> Result<Vec<T>, ObjectsError> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let entries: Option<Vec<serde_json::Value>> =
        serde_saphyr::from_str(yaml).map_err(|e| ObjectsError::Yaml(e.to_string()))?;
    entries
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let name = match value.get(name_field).and_then(|v| v.as_str()) {
                Some(n) => format!(" ({n:?})"),
                None => String::new(),
            };
            serde_json::from_value(value).map_err(|e| ObjectsError::Object {
                index,
                name,
                message: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Obj {
        object_name: String,
        #[serde(default)]
        object_alias: String,
    }

    #[test]
    fn parses_a_list() {
        let v: Vec<Obj> = parse(
            "- objectName: a\n  objectAlias: b\n- objectName: \"c\"\n",
            "objectName",
        )
        .expect("parse");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].object_alias, "b");
        assert_eq!(v[1].object_name, "c");
        assert!(parse::<Obj>("", "objectName").expect("empty").is_empty());
    }

    #[test]
    fn errors_name_the_object() {
        let cases = [
            (
                "- objectName: a\n- objectName: b\n  objectAliass: x\n",
                "object 1 (\"b\"): unknown field `objectAliass`",
            ),
            ("- objectAlias: x\n", "object 0: missing field `objectName`"),
            ("- objectName: [1]\n", "object 0: invalid type"),
            ("objectName: a\n", "objects is not a valid YAML list"),
            (
                "- objectName: a\n  objectName: b\n",
                "objects is not a valid YAML list",
            ),
            ("- [unclosed\n", "objects is not a valid YAML list"),
        ];
        for (yaml, want) in cases {
            let err = parse::<Obj>(yaml, "objectName")
                .expect_err(yaml)
                .to_string();
            assert!(err.starts_with(want), "{yaml:?}: {err}");
        }
    }
}
