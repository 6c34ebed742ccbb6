//! What the driver knows about its volumes in memory only, so that a record
//! is rewritten only when something a restart needs has changed
//! (ARCHITECTURE.md, "Publish cost"):
//!
//! - the object versions the volume's SecretProviderClassPodStatus holds
//!   (written by this process, or found by the reconcile at start): a
//!   record's pending status equal to them is no longer pending, and the
//!   next write of the record drops it, instead of a rewrite of its own;
//! - a refresh time newer than the stored one, from a refresh that changed
//!   nothing else (after a restart the older stored time only makes the
//!   next refresh come sooner).
//!
//! Keyed by the target's key; forgotten with the record.

use std::collections::HashMap;
use std::sync::Mutex;

use secrets_store_crds::v1::SecretProviderClassObject;

use super::VolumeRecord;

/// One volume's memo.
#[derive(Debug, Default)]
struct Memo {
    /// Sorted object versions the status object holds.
    status: Option<Vec<SecretProviderClassObject>>,
    /// Unix time (ms) of a refresh not stored in the record.
    refreshed_at_ms: u64,
}

/// The memos of every volume.
#[derive(Debug, Default)]
pub(super) struct Memos {
    map: Mutex<HashMap<String, Memo>>,
}

impl Memos {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memo>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `record` as this process knows it: a pending status the status
    /// object already holds is dropped, a newer refresh time applied.
    pub(super) fn apply(&self, key: &str, record: &mut VolumeRecord) {
        let map = self.map();
        let Some(memo) = map.get(key) else {
            return;
        };
        if memo.status.is_some() && record.status_pending == memo.status {
            record.status_pending = None;
        }
        record.refreshed_at_ms = record.refreshed_at_ms.max(memo.refreshed_at_ms);
    }

    /// The status object holds `objects`. With `only_if_unknown`, an
    /// entry already there wins (it is newer than a listing at start).
    pub(super) fn status(
        &self,
        key: &str,
        objects: Vec<SecretProviderClassObject>,
        only_if_unknown: bool,
    ) {
        let mut map = self.map();
        let memo = map.entry(key.to_string()).or_default();
        if !(only_if_unknown && memo.status.is_some()) {
            memo.status = Some(objects);
        }
    }

    /// A refresh at `at_ms` that was not stored.
    pub(super) fn refreshed(&self, key: &str, at_ms: u64) {
        self.map()
            .entry(key.to_string())
            .or_default()
            .refreshed_at_ms = at_ms;
    }

    /// The record was stored: its refresh time is the newest.
    pub(super) fn stored(&self, key: &str) {
        let mut map = self.map();
        if let Some(memo) = map.get_mut(key) {
            memo.refreshed_at_ms = 0;
            if memo.status.is_none() {
                map.remove(key);
            }
        }
    }

    /// The record is gone.
    pub(super) fn forget(&self, key: &str) {
        self.map().remove(key);
    }
}

/// Whether storing `next` over `stored` would change nothing a restart
/// needs: they differ at most in the refresh time.
pub(super) fn same_but_time(stored: &VolumeRecord, next: &VolumeRecord) -> bool {
    let VolumeRecord {
        version,
        target,
        volume_id,
        pod,
        class,
        provider,
        mount_group,
        context,
        phase,
        refreshed_at_ms: _,
        trigger,
        status_pending,
    } = next;
    stored.version == *version
        && stored.target == *target
        && stored.volume_id == *volume_id
        && stored.pod == *pod
        && stored.class == *class
        && stored.provider == *provider
        && stored.mount_group == *mount_group
        && stored.context == *context
        && stored.phase == *phase
        && stored.trigger == *trigger
        && stored.status_pending == *status_pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::tests_support::record;

    fn objects(v: &str) -> Vec<SecretProviderClassObject> {
        vec![SecretProviderClassObject {
            id: "a".into(),
            version: v.into(),
        }]
    }

    #[test]
    fn a_held_status_is_not_pending_and_a_newer_refresh_time_applies() {
        let memos = Memos::default();
        let mut r = record("/t");
        r.status_pending = Some(objects("1"));
        r.refreshed_at_ms = 10;
        memos.status("k", objects("2"), false);
        memos.apply("k", &mut r);
        assert_eq!(r.status_pending, Some(objects("1")), "another version");
        memos.status("k", objects("1"), true);
        memos.apply("k", &mut r);
        assert_eq!(r.status_pending, Some(objects("1")), "a known entry wins");
        memos.status("k", objects("1"), false);
        memos.refreshed("k", 20);
        memos.apply("k", &mut r);
        assert_eq!((r.status_pending.as_ref(), r.refreshed_at_ms), (None, 20));
        memos.stored("k");
        let mut fresh = record("/t");
        fresh.refreshed_at_ms = 5;
        memos.apply("k", &mut fresh);
        assert_eq!(fresh.refreshed_at_ms, 5, "the stored time after a store");
        memos.forget("k");
        assert!(memos.map().is_empty());
    }

    #[test]
    fn only_the_refresh_time_may_differ() {
        let a = record("/t");
        let mut b = a.clone();
        b.refreshed_at_ms += 1000;
        assert!(same_but_time(&a, &b));
        b.trigger = "x".into();
        assert!(!same_but_time(&a, &b));
        let mut c = a.clone();
        c.status_pending = Some(objects("1"));
        assert!(!same_but_time(&a, &c));
    }
}
