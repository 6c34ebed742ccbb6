//! The driver's trusted volume state: one [`VolumeRecord`] per published
//! volume, in a directory only the driver writes (`--state-dir`, on the
//! host, outside every pod volume). Pods never see or touch it; what the
//! refresh loop and secret sync know about a volume (pod, class, service
//! account, group, refresh time, trigger) comes from here, never from files
//! on a tmpfs. Records are written atomically (temporary file, `rename`),
//! read without following links and with a size bound.
//!
//! A record is not `fsync`ed: it describes a tmpfs mount, and both end at
//! the same events. A driver crash loses neither (the page cache outlives
//! the process, `rename` is atomic); a power loss or reboot loses the mount
//! itself, and a record whose target is no longer a mount point is
//! ignored (the next publish is a first publish). The sync cost 1–10 ms of
//! disk flush on every publish and refresh (BENCHMARKS.md).
//!
//! A fill writes its record once ([`Store::save_fill`]), and not at all
//! when a refresh changed nothing a restart needs: what the driver learns
//! after that (the status object written, a newer refresh time) is kept in
//! memory ([`memo`]) and folded into what [`Store::load`] and
//! [`Store::list`] return and into the next write.

mod memo;
mod record;
mod tmpfs;

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use secrets_store_crds::v1::SecretProviderClassObject;

pub use tmpfs::Backing;

pub use record::{MAX_RECORD_BYTES, Phase, PodInfo, RECORD_VERSION, RecordError, VolumeRecord};

use crate::target::{Rules, Target};

/// State directory errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call on the state directory failed.
    #[error("volume state {path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operation.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// A stored record cannot be used.
    #[error("volume state {path}: {source}")]
    Record {
        /// The file.
        path: String,
        /// Cause.
        source: RecordError,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        path: path.display().to_string(),
        op,
        source,
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Serialises writes with their memo changes.
    lock: Arc<Mutex<()>>,
    memos: Arc<memo::Memos>,
}

impl Store {
    /// Opens (creating, `0700`) the state directory. It must be a real
    /// directory, not a link.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io("mkdir", &dir))?;
        let meta = std::fs::symlink_metadata(&dir).map_err(io("stat", &dir))?;
        if !meta.is_dir() {
            return Err(io("stat", &dir)(std::io::Error::other(
                "not a directory (links are refused)",
            )));
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("chmod", &dir))?;
        Ok(Self {
            dir,
            lock: Arc::default(),
            memos: Arc::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, target: &Target) -> PathBuf {
        self.dir.join(format!("{}.json", target.key()))
    }

    /// The record of `target`, if any, as this process knows it (see
    /// [`memo`]). A record naming another target is refused.
    pub fn load(&self, target: &Target) -> Result<Option<VolumeRecord>, Error> {
        let path = self.path(target);
        let Some(mut record) = read_record(&path)? else {
            return Ok(None);
        };
        if Path::new(&record.target) != target.path() {
            return Err(Error::Record {
                path: path.display().to_string(),
                source: RecordError::WrongTarget,
            });
        }
        self.memos.apply(&target.key(), &mut record);
        Ok(Some(record))
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `record` for `target`, atomically.
    pub fn save(&self, target: &Target, record: &VolumeRecord) -> Result<(), Error> {
        let _held = self.locked();
        self.write(target, record)?;
        self.memos.stored(&target.key());
        Ok(())
    }

    /// Stores the record of a fill: its pending status is dropped when the
    /// status object already holds it, and nothing is written when it
    /// differs from `previous` (the record [`Store::load`] returned before
    /// the fill) only in the refresh time. Returns whether the status is
    /// still to be written.
    pub fn save_fill(
        &self,
        target: &Target,
        mut record: VolumeRecord,
        previous: Option<&VolumeRecord>,
    ) -> Result<bool, Error> {
        let key = target.key();
        let _held = self.locked();
        self.memos.apply(&key, &mut record);
        let pending = record.status_pending.is_some();
        if previous.is_some_and(|p| memo::same_but_time(p, &record)) {
            self.memos.refreshed(&key, record.refreshed_at_ms);
            return Ok(pending);
        }
        self.write(target, &record)?;
        self.memos.stored(&key);
        Ok(pending)
    }

    /// The status object of `target` holds `objects` (sorted): written by
    /// this process, or, with `found_at_start`, listed at start (then an
    /// entry this process wrote meanwhile wins).
    pub fn status_held(
        &self,
        target: &Target,
        objects: Vec<SecretProviderClassObject>,
        found_at_start: bool,
    ) {
        self.memos.status(&target.key(), objects, found_at_start);
    }

    fn write(&self, target: &Target, record: &VolumeRecord) -> Result<(), Error> {
        self.write_key(&target.key(), record)
    }

    fn write_key(&self, key: &str, record: &VolumeRecord) -> Result<(), Error> {
        let path = self.dir.join(format!("{key}.json"));
        let tmp = self.dir.join(format!(".{key}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(&record.encode())
            .map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// Forgets `target`; a missing record is fine.
    pub fn remove(&self, target: &Target) -> Result<(), Error> {
        let path = self.path(target);
        let _held = self.locked();
        self.memos.forget(&target.key());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    /// Every stored record whose target still has kubelet's shape under
    /// `rules`, with its target. Unusable entries are logged and skipped.
    pub fn list(&self, rules: &Rules) -> Result<Vec<(Target, VolumeRecord)>, Error> {
        let mut out = Vec::new();
        for path in self.record_files()? {
            let loaded = read_record(&path).and_then(|r| {
                let record =
                    r.ok_or_else(|| io("read", &path)(std::io::ErrorKind::NotFound.into()))?;
                let target = rules
                    .parse(&record.target)
                    .map_err(|e| io("parse target", &path)(std::io::Error::other(e.to_string())))?;
                Ok((target, record))
            });
            match loaded {
                Ok((target, mut record)) if self.path(&target) == path => {
                    self.memos.apply(&target.key(), &mut record);
                    out.push((target, record))
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "volume record under the wrong name, skipped")
                }
                Err(e) => tracing::warn!(error = %e, "volume record skipped"),
            }
        }
        Ok(out)
    }

    /// The record files in the directory (`<key>.json`; hidden names such
    /// as the tmpfs marker are not records).
    fn record_files(&self) -> Result<Vec<PathBuf>, Error> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io("readdir", &self.dir))? {
            let path = entry.map_err(io("readdir", &self.dir))?.path();
            let visible = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'));
            if visible && path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
        Ok(out)
    }
}

/// Reads a record file without following links, bounded.
fn read_record(path: &Path) -> Result<Option<VolumeRecord>, Error> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    VolumeRecord::decode(&bytes)
        .map(Some)
        .map_err(|source| Error::Record {
            path: path.display().to_string(),
            source,
        })
}

/// Test records for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::record::tests::record;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_list_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(dir.path().join("kubelet"));
        let store = Store::open(dir.path().join("state")).expect("open");
        let t = rules.target("uid-1", "v").expect("target");
        assert_eq!(store.load(&t).expect("load"), None);
        let r = record::tests::record(&t.path().display().to_string());
        store.save(&t, &r).expect("save");
        assert_eq!(store.load(&t).expect("load"), Some(r.clone()));
        let mode = std::fs::metadata(store.dir())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(store.list(&rules).expect("list"), vec![(t.clone(), r)]);
        store.remove(&t).expect("remove");
        assert_eq!(store.load(&t).expect("load"), None);
        store.remove(&t).expect("missing is fine");
    }

    #[test]
    fn links_and_misnamed_records_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(dir.path().join("kubelet"));
        let store = Store::open(dir.path().join("state")).expect("open");
        let t = rules.target("uid-1", "v").expect("target");
        let other = rules.target("uid-2", "v").expect("target");
        let r = record::tests::record(&other.path().display().to_string());
        store.save(&t, &r).expect("save");
        assert!(store.load(&t).is_err(), "a record for another target");
        assert!(store.list(&rules).expect("list").is_empty());
        std::fs::remove_file(store.path(&t)).expect("rm");
        let outside = dir.path().join("outside.json");
        std::fs::write(&outside, r.encode()).expect("write");
        std::os::unix::fs::symlink(&outside, store.path(&t)).expect("symlink");
        assert!(store.load(&t).is_err(), "links are not followed");
    }

    #[test]
    fn a_fill_is_written_once_and_not_at_all_when_only_its_time_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(dir.path().join("kubelet"));
        let store = Store::open(dir.path().join("state")).expect("open");
        let t = rules.target("uid-1", "v").expect("target");
        let objects = vec![SecretProviderClassObject {
            id: "a".into(),
            version: "1".into(),
        }];
        let mut first = record::tests::record(&t.path().display().to_string());
        first.status_pending = Some(objects.clone());
        assert!(store.save_fill(&t, first.clone(), None).expect("save"));
        let disk = || read_record(&store.path(&t)).expect("read").expect("some");
        // The status is written: known in memory, not rewritten.
        store.status_held(&t, objects.clone(), false);
        let loaded = store.load(&t).expect("load").expect("some");
        assert_eq!(loaded.status_pending, None);
        assert_eq!(disk(), first);
        // A refresh that changed nothing stored writes nothing.
        let mut refresh = first.clone();
        refresh.refreshed_at_ms += 5000;
        assert!(
            !store
                .save_fill(&t, refresh.clone(), Some(&loaded))
                .expect("save")
        );
        assert_eq!(disk(), first);
        let loaded = store.load(&t).expect("load").expect("some");
        assert_eq!(loaded.refreshed_at_ms, refresh.refreshed_at_ms);
        assert_eq!(store.list(&rules).expect("list")[0].1, loaded);
        // A change is written, with the status it holds folded in.
        let mut changed = refresh.clone();
        changed.trigger = "new".into();
        assert!(
            !store
                .save_fill(&t, changed.clone(), Some(&loaded))
                .expect("save")
        );
        changed.status_pending = None;
        assert_eq!(disk(), changed);
        // A restart knows only what is stored; removal forgets the memo.
        let again = Store::open(store.dir()).expect("open");
        assert_eq!(again.load(&t).expect("load"), Some(changed));
        store.remove(&t).expect("remove");
        assert!(store.save_fill(&t, first.clone(), None).expect("save"));
        assert_eq!(store.load(&t).expect("load"), Some(first));
    }
}
