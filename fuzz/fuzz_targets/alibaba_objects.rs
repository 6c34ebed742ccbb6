//! The Alibaba provider's `objects` parameter: YAML plus path translation.
//!
//! Invariants on success: at least one object; every name is non-empty;
//! every file (object and jmesPath) passes the SDK's path rule and is a
//! relative path of normal components with no `..`; files are unique;
//! with a translation character other than `/` no file has a `/`; pinned
//! versions only on KMS objects; unknown fields (reported in lenient mode,
//! refused in strict mode) belong to a parsed object. Errors render without
//! panicking.
#![no_main]

use std::collections::BTreeSet;
use std::path::{Component, Path};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use secrets_store_provider_alibabacloud::objects::{ObjectType, parse};
use secrets_store_provider_sdk::objects::Strictness;
use secrets_store_provider_sdk::path::{self, PathTranslation};

#[derive(Arbitrary, Debug)]
struct Input {
    translation: Option<char>,
    strict: bool,
    yaml: String,
}

fn check_file(file: &str, translation: PathTranslation) {
    assert_eq!(path::validate(file), Ok(()), "{file:?}");
    let p = Path::new(file);
    assert!(p.is_relative(), "{file:?}");
    assert!(
        p.components().all(|c| matches!(c, Component::Normal(_))),
        "{file:?}"
    );
    assert!(!file.split('/').any(|e| e == ".."), "{file:?}");
    if let PathTranslation::Replace(c) = translation
        && c != '/'
    {
        assert!(!file.contains('/'), "{file:?} with translation {c:?}");
    }
}

fuzz_target!(|input: Input| {
    let translation = match input.translation {
        Some(c) => PathTranslation::Replace(c),
        None => PathTranslation::Off,
    };
    let strictness = if input.strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let parsed = match parse(&input.yaml, translation, strictness) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let objects = &parsed.objects;
    assert!(!objects.is_empty(), "an empty list was accepted");
    for u in &parsed.unknown {
        assert!(!input.strict, "strict mode kept {u}");
        assert!(u.index < objects.len(), "{u}");
    }
    let mut files = BTreeSet::new();
    for o in objects {
        assert!(!o.name.is_empty());
        if o.kind == ObjectType::Oos {
            assert!(o.version_id.is_none() && o.version_stage.is_none());
        }
        for file in std::iter::once(&o.file).chain(o.jmes.iter().map(|(_, f)| f)) {
            check_file(file, translation);
            assert!(files.insert(file.clone()), "file {file:?} twice");
        }
    }
});
