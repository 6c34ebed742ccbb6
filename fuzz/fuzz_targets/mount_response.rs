//! A provider's `MountResponse` as the driver receives it: arbitrary bytes
//! decoded with prost, then the driver's `publish::response::check`.
//!
//! Invariants: decoding never panics and re-encodes to an equal message;
//! `Debug` of the response never depends on file contents;
//! a response with an error code or without object versions is refused;
//! every file the driver accepts has a contained path and a mode within
//! `0..=0o777`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use secrets_store_csi_driver::publish::response::check;
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
    let no_versions = response.object_version.is_empty();
    let files = response.files.clone();
    let Ok(checked) = check(response) else {
        return;
    };
    assert!(
        !failed && !no_versions,
        "accepted a failed or version-less response"
    );
    assert_eq!(checked.payload.len(), files.len());
    for f in &files {
        assert!(payload_path_ok(&f.path), "accepted {:?}", f.path);
        assert_contained(&f.path, "response file");
        assert!((0..=0o777).contains(&f.mode), "accepted mode {:#o}", f.mode);
    }
});
