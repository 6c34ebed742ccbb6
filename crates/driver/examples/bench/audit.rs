//! API server requests per client, from the control plane's audit log
//! (JSON lines, `Metadata` level). Each driver runs as its own service
//! account, so `user.username` tells whose request it was.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

#[derive(serde::Deserialize)]
struct Event {
    #[serde(rename = "auditID")]
    id: String,
    stage: String,
    verb: String,
    user: User,
    #[serde(rename = "objectRef")]
    object: Option<ObjectRef>,
    #[serde(rename = "requestReceivedTimestamp")]
    received: Option<String>,
    #[serde(rename = "stageTimestamp")]
    stage_at: Option<String>,
}

#[derive(serde::Deserialize)]
struct User {
    username: String,
}

#[derive(serde::Deserialize)]
struct ObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
}

/// Counts of one client's requests.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Requests by `verb resource[/subresource]`.
    pub by_kind: BTreeMap<String, u64>,
    /// Requests by the second they were received (Unix seconds).
    pub by_second: BTreeMap<i64, u64>,
    /// Time the API server spent on them (received to complete; watches
    /// excluded), milliseconds by `verb resource`.
    pub server_ms: BTreeMap<String, f64>,
}

impl Counts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    /// What `self` has beyond `before` (an earlier snapshot).
    pub fn since(&self, before: &Counts) -> Counts {
        fn minus<K: Ord + Clone>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>) -> BTreeMap<K, u64> {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        }
        let server_ms = self
            .server_ms
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v - before.server_ms.get(k).copied().unwrap_or(0.0),
                )
            })
            .filter(|(_, v)| *v > 0.0)
            .collect();
        Counts {
            by_kind: minus(&self.by_kind, &before.by_kind),
            by_second: minus(&self.by_second, &before.by_second),
            server_ms,
        }
    }
}

/// A reader that follows the audit log.
pub struct Audit {
    path: PathBuf,
    offset: u64,
    partial: String,
    open_watches: HashMap<String, String>,
    counts: HashMap<String, Counts>,
}

impl Audit {
    /// Follows the log at `path` from its start.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: String::new(),
            open_watches: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&mut self) -> anyhow::Result<()> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        self.offset += file.read_to_string(&mut text)? as u64;
        self.partial.push_str(&text);
        let complete = match self.partial.rfind('\n') {
            Some(i) => self.partial.drain(..=i).collect::<String>(),
            None => return Ok(()),
        };
        for line in complete.lines().filter(|l| !l.is_empty()) {
            let event: Event = serde_json::from_str(line)?;
            self.record(event);
        }
        Ok(())
    }

    fn record(&mut self, e: Event) {
        let counted = match (e.verb.as_str(), e.stage.as_str()) {
            ("watch", "ResponseStarted") => {
                self.open_watches.insert(e.id, e.user.username.clone());
                true
            }
            // A watch that ended; counted here only if it never started.
            ("watch", _) => self.open_watches.remove(&e.id).is_none(),
            (_, "ResponseComplete" | "Panic") => true,
            _ => false,
        };
        if !counted {
            return;
        }
        let object = e.object.as_ref();
        let resource = object.and_then(|o| o.resource.clone()).unwrap_or_default();
        let kind = match object.and_then(|o| o.subresource.as_deref()) {
            Some(sub) => format!("{} {resource}/{sub}", e.verb),
            None => format!("{} {resource}", e.verb),
        };
        let received = e.received.as_deref().and_then(unix_seconds);
        let took = match (received, e.stage_at.as_deref().and_then(unix_seconds)) {
            (Some(a), Some(b)) if e.verb != "watch" => (b - a) * 1e3,
            _ => 0.0,
        };
        let counts = self.counts.entry(e.user.username).or_default();
        *counts.server_ms.entry(kind.clone()).or_default() += took;
        *counts.by_kind.entry(kind).or_default() += 1;
        let second = received.map(|s| s.floor() as i64).unwrap_or(0);
        *counts.by_second.entry(second).or_default() += 1;
    }

    /// Everything `user` sent so far.
    pub fn counts(&self, user: &str) -> Counts {
        self.counts.get(user).cloned().unwrap_or_default()
    }

    /// Watches `user` holds open now.
    pub fn watches(&self, user: &str) -> usize {
        self.open_watches.values().filter(|u| *u == user).count()
    }
}

/// Unix seconds of an RFC 3339 UTC timestamp (`2026-12-01T18:02:01.123456Z`).
fn unix_seconds(t: &str) -> Option<f64> {
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|v| v.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut c = time.trim_end_matches('Z').split(':');
    let (h, min) = (
        c.next()?.parse::<i64>().ok()?,
        c.next()?.parse::<i64>().ok()?,
    );
    let s = c.next()?.parse::<f64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + s)
}
