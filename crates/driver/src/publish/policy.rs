//! When a mounted volume is due for a refresh: the class's interval
//! (annotation, floored at `--min-rotation-poll-interval`, else
//! `--rotation-poll-interval`) or a changed refresh trigger.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::spc::ProviderClass;
use crate::volume::VolumeRecord;

/// SecretProviderClass annotation: minimum refresh interval for volumes of
/// this class (Go duration), overriding `--rotation-poll-interval`; never
/// below `--min-rotation-poll-interval`.
pub const REFRESH_INTERVAL_ANNOTATION: &str = "secrets-store.csi.k8s.io/rotation-poll-interval";
/// SecretProviderClass annotation: any change of its value makes the next
/// republish refresh at once, whatever the interval.
pub const REFRESH_TRIGGER_ANNOTATION: &str = "secrets-store.csi.k8s.io/refresh-trigger";

/// Operator settings.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// `--rotation-poll-interval`.
    pub default: Duration,
    /// `--min-rotation-poll-interval`.
    pub floor: Duration,
}

/// The refresh policy of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Minimum time between two refreshes.
    pub interval: Duration,
    /// The class's refresh trigger.
    pub trigger: String,
}

impl RefreshPolicy {
    /// The policy of `class`.
    pub fn of(class: &ProviderClass, intervals: Intervals) -> Self {
        let annotations = class.object.metadata.annotations.as_ref();
        let get = |key| annotations.and_then(|a| a.get(key));
        let interval = get(REFRESH_INTERVAL_ANNOTATION)
            .and_then(|v| match crate::config::parse_duration(v) {
                Ok(d) => Some(d.max(intervals.floor)),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring annotation {REFRESH_INTERVAL_ANNOTATION}");
                    None
                }
            })
            .unwrap_or(intervals.default);
        Self {
            interval,
            trigger: get(REFRESH_TRIGGER_ANNOTATION).cloned().unwrap_or_default(),
        }
    }

    /// Due when the trigger changed since the last refresh or the interval
    /// has passed since it.
    pub fn due(&self, record: &VolumeRecord, now: u64) -> bool {
        record.trigger != self.trigger
            || Duration::from_millis(now.saturating_sub(record.refreshed_at_ms)) >= self.interval
    }
}

/// Milliseconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_store_crds::v1::{SecretProviderClass, SecretProviderClassSpec};

    fn class(annotations: &[(&str, &str)]) -> ProviderClass {
        let mut object = SecretProviderClass::new("c", SecretProviderClassSpec::default());
        object.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        ProviderClass {
            name: "c".into(),
            provider: crate::provider::ProviderName::new("p").expect("name"),
            parameters: Default::default(),
            object,
        }
    }

    const INTERVALS: Intervals = Intervals {
        default: Duration::from_secs(120),
        floor: Duration::from_secs(30),
    };

    #[test]
    fn annotation_overrides_the_flag_but_not_the_floor() {
        let p = |v| RefreshPolicy::of(&class(&[(REFRESH_INTERVAL_ANNOTATION, v)]), INTERVALS);
        assert_eq!(p("1m").interval, Duration::from_secs(60));
        assert_eq!(p("1s").interval, Duration::from_secs(30), "floored");
        assert_eq!(p("0").interval, Duration::from_secs(30), "floored");
        assert_eq!(p("nonsense").interval, Duration::from_secs(120));
        assert_eq!(
            RefreshPolicy::of(&class(&[]), INTERVALS).interval,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn due_after_the_interval_or_a_new_trigger() {
        let mut record = crate::volume::tests_support::record("/t");
        record.refreshed_at_ms = 1_000_000;
        let policy = RefreshPolicy::of(&class(&[]), INTERVALS);
        assert!(!policy.due(&record, 1_119_999));
        assert!(policy.due(&record, 1_120_000));
        let triggered = RefreshPolicy::of(&class(&[(REFRESH_TRIGGER_ANNOTATION, "x")]), INTERVALS);
        assert!(triggered.due(&record, 1_000_001));
    }
}
