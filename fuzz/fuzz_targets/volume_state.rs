//! The driver's saved volume state read back from disk.
//!
//! Invariants: arbitrary bytes never panic the reader; a record that loads
//! saves to JSON that loads to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_store_csi_driver::publish::{SavedVolume, VOLUME_FILE};
use secrets_store_fuzz::scratch_dir;

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir("vs");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join(VOLUME_FILE), data).expect("write state");
    if let Some(saved) = SavedVolume::load(&dir) {
        let json = serde_json::to_vec(&saved).expect("serialize");
        std::fs::write(dir.join(VOLUME_FILE), &json).expect("write state");
        let again = SavedVolume::load(&dir).expect("a saved record loads");
        assert_eq!(format!("{again:?}"), format!("{saved:?}"));
    }
});
