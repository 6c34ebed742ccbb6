//! A provider's `MountResponse` as the driver receives it: arbitrary bytes
//! decoded with prost, then the checks the driver applies before writing.
//!
//! Invariants: decoding never panics and re-encodes to an equal message;
//! `Debug` of the response never depends on file contents;
//! a response with an error code or without object versions is refused;
//! every file the driver accepts has a contained path and a mode within
//! `0..=0o777`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use secrets_store_atomic_writer::Payload;
use secrets_store_fuzz::{assert_contained, payload_path_ok};
use secrets_store_proto::provider::v1alpha1 as api;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = api::MountResponse::decode(data) else {
        return;
    };
    let again = api::MountResponse::decode(response.encode_to_vec().as_slice())
        .expect("re-encoded response decodes");
    assert_eq!(again, response);
    let mut blank = response.clone();
    for f in &mut blank.files {
        f.contents = vec![0; f.contents.len()];
    }
    assert_eq!(
        format!("{response:?}"),
        format!("{blank:?}"),
        "Debug shows file contents"
    );
    let failed = response.error.as_ref().is_some_and(|e| !e.code.is_empty());
    if failed || response.object_version.is_empty() {
        return;
    }
    // The driver (crates/driver/src/publish.rs) turns the files into a
    // payload; until its check is a public function this mirrors that step.
    let mut payload = Payload::new();
    for f in &response.files {
        if payload
            .insert(&f.path, f.contents.clone(), i64::from(f.mode))
            .is_ok()
        {
            assert!(payload_path_ok(&f.path), "accepted {:?}", f.path);
            assert_contained(&f.path, "response file");
            assert!((0..=0o777).contains(&f.mode), "accepted mode {:#o}", f.mode);
        }
    }
});
