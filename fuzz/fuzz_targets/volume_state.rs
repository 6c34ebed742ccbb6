//! The driver's saved volume record (`VolumeRecord::decode`), read from its
//! private state directory.
//!
//! Invariants: arbitrary bytes never panic the decoder; input over
//! `MAX_RECORD_BYTES` is refused; a record that decodes encodes to bytes
//! that decode to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_store_csi_driver::volume::{MAX_RECORD_BYTES, VolumeRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = VolumeRecord::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_RECORD_BYTES);
    let again = VolumeRecord::decode(&record.encode()).expect("an encoded record decodes");
    assert_eq!(again, record);
});
