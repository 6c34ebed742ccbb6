//! The `objects` parameter: a YAML list of objects, parsed strictly.
//!
//! The list is deserialized straight into the provider's type (which should
//! use `deny_unknown_fields`), so scalars are read as that type expects. An
//! unknown, missing or mistyped field is reported with its line and the
//! position and name of the object at fault. Parsing is panic-free and
//! bounded (serde-saphyr), since the YAML comes from users.

use serde::de::DeserializeOwned;
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
        /// What is wrong, with its line and column.
        message: String,
    },
}

/// Parses a YAML list into `T`s; `name_field` names an entry in errors.
pub fn parse<T: DeserializeOwned>(yaml: &str, name_field: &str) -> Result<Vec<T>, ObjectsError> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let err = match serde_saphyr::from_str::<Option<Vec<T>>>(yaml) {
        Ok(v) => return Ok(v.unwrap_or_default()),
        Err(e) => e,
    };
    // Only the first line: the rest is a source snippet.
    let message = err.to_string();
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    // Find the entry the error is in, from each entry's start line.
    let entries = serde_saphyr::from_str::<Vec<Spanned<serde_json::Value>>>(yaml)
        .map_err(|_| ObjectsError::Yaml(message.clone()))?;
    let Some(line) = err.location().map(|l| l.line()) else {
        return Err(ObjectsError::Yaml(message));
    };
    let Some((index, entry)) = entries
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.referenced.line() <= line)
    else {
        return Err(ObjectsError::Yaml(message));
    };
    if !entry.value.is_object() {
        return Err(ObjectsError::Yaml(message));
    }
    let name = match entry.value.get(name_field) {
        Some(serde_json::Value::String(n)) => format!(" ({n:?})"),
        _ => String::new(),
    };
    Err(ObjectsError::Object {
        index,
        name,
        message,
    })
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
        // Scalars are read as the type expects (no YAML 1.1 booleans).
        let v: Vec<Obj> =
            parse("- objectName: n\n  objectAlias: 1\n", "objectName").expect("scalars");
        assert_eq!(
            (v[0].object_name.as_str(), v[0].object_alias.as_str()),
            ("n", "1")
        );
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
                "object 1 (\"b\"): line 3 column 3: unknown field `objectAliass`",
            ),
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
            let err = parse::<Obj>(yaml, "objectName")
                .expect_err(yaml)
                .to_string();
            assert!(err.starts_with(want), "{yaml:?}: {err}");
        }
    }
}
