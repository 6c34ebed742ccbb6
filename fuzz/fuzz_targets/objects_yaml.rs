//! The provider SDK's strict `objects` YAML parser on arbitrary text.
//!
//! Invariants: blank text is an empty list; parsing is deterministic; an
//! error is one line without the `error: ` prefix, and an error that names
//! an object names one that exists (index below the number of entries, and
//! ` ("<name>")` only when that entry has a string name); a parsed list
//! written back as JSON (a YAML subset) parses to the same list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_store_provider_sdk::objects::{ObjectsError, parse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Nested {
    path: String,
    #[serde(default)]
    object_alias: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Obj {
    object_name: String,
    #[serde(default)]
    object_alias: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    jmes_path: Vec<Nested>,
}

fn check_error(yaml: &str, err: &ObjectsError) {
    let text = err.to_string();
    assert!(!text.contains('\n'), "multi-line error {text:?}");
    match err {
        ObjectsError::Yaml(m) => assert!(!m.starts_with("error: "), "{m:?}"),
        ObjectsError::Object { index, name, message } => {
            assert!(!message.starts_with("error: "), "{message:?}");
            let entries: Vec<serde_json::Value> =
                serde_saphyr::from_str(yaml).expect("an error naming an object needs a list");
            assert!(*index < entries.len(), "index {index} of {}", entries.len());
            let has_name = entries[*index]
                .get("objectName")
                .is_some_and(serde_json::Value::is_string);
            assert_eq!(!name.is_empty(), has_name, "name {name:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse::<Obj>(yaml, "objectName");
    let again = parse::<Obj>(yaml, "objectName");
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "parsing is not deterministic"
    );
    match first {
        Ok(list) => {
            if yaml.trim().is_empty() {
                assert!(list.is_empty());
            }
            let json = serde_json::to_string(&list).expect("json");
            let back = parse::<Obj>(&json, "objectName").expect("JSON of a parsed list parses");
            assert_eq!(back, list, "round trip through {json}");
        }
        Err(e) => {
            assert!(!yaml.trim().is_empty(), "blank text refused: {e}");
            check_error(yaml, &e);
        }
    }
});
