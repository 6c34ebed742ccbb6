//! Writes a set of files into a directory so that readers see either the
//! whole old set or the whole new set, never a mix: the layout kubelet uses
//! for Secret and ConfigMap volumes, and the upstream driver for CSI volumes.
//!
//! ```text
//! <target>/..2026_11_23_08_00_00.123456789   the current content (a real dir)
//! <target>/..data -> ..2026_11_23_08_00_00.123456789
//! <target>/<name> -> ..data/<name>            one link per top-level entry
//! ```
//!
//! A write builds a new timestamped directory, points `..data_tmp` at it and
//! renames that over `..data` (one atomic `rename(2)`), then removes links
//! and the directory that are no longer used. Content identical to what is
//! there (paths, bytes and modes) is not rewritten.
//!
//! Every path is validated first ([`validate_path`]): relative, no `..`
//! element, no empty or `.` element, nothing starting with `..` at the top
//! (those names are the writer's own), bounded lengths. Files are only ever
//! created inside a directory this writer just made, with `O_NOFOLLOW`
//! semantics (`create_new`), so no path can escape the target through a
//! symlink. [`read`] reads a target back without following any symlink,
//! within a byte limit. This crate knows nothing of protos or Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod read;
pub use read::{MAX_DEPTH, read};

/// Name of the link to the current data directory.
pub const DATA_DIR_LINK: &str = "..data";
const DATA_DIR_TMP_LINK: &str = "..data_tmp";
/// Longest accepted path, bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest accepted path element, bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a payload was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path breaks the rules of [`validate_path`].
    #[error("invalid file path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two files have the same path.
    #[error("duplicate file path {0:?}")]
    DuplicatePath(String),
    /// One path is a file and also a directory of another path.
    #[error("file path {0:?} is both a file and a directory")]
    FileDirConflict(String),
    /// A mode has bits outside 0o777.
    #[error("invalid mode {mode:#o} for {path:?}: must be within 0o777")]
    InvalidMode {
        /// The path.
        path: String,
        /// The mode given.
        mode: i64,
    },
    /// A read-back found more than its limit.
    #[error("content exceeds the read limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One file to write.
#[derive(Clone, PartialEq, Eq)]
pub struct FileData {
    /// Content (secret material: never printed by `Debug`).
    pub contents: Vec<u8>,
    /// Permission bits, within `0o777`.
    pub mode: u32,
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field(
                "contents",
                &format_args!("[{} bytes redacted]", self.contents.len()),
            )
            .field("mode", &format_args!("{:#o}", self.mode))
            .finish()
    }
}

/// A validated set of files, by relative path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    files: BTreeMap<String, FileData>,
}

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file after validating its path and mode; a path given twice,
    /// or a file that is also another file's directory, is refused.
    pub fn insert(&mut self, path: &str, contents: Vec<u8>, mode: i64) -> Result<()> {
        validate_path(path)?;
        if !(0..=0o777).contains(&mode) {
            return Err(Error::InvalidMode {
                path: path.to_string(),
                mode,
            });
        }
        if self.files.contains_key(path) {
            return Err(Error::DuplicatePath(path.to_string()));
        }
        // `a` and `a/b` cannot both be files.
        let as_dir = format!("{path}/");
        if self
            .files
            .range(as_dir.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&as_dir))
        {
            return Err(Error::FileDirConflict(path.to_string()));
        }
        let mut prefix = String::new();
        for element in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, d)| d)
            .unwrap_or(&[])
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(element);
            if self.files.contains_key(&prefix) {
                return Err(Error::FileDirConflict(prefix));
            }
        }
        self.files.insert(
            path.to_string(),
            FileData {
                contents,
                mode: mode as u32,
            },
        );
        Ok(())
    }

    /// The files, by path.
    pub fn files(&self) -> &BTreeMap<String, FileData> {
        &self.files
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total size of all contents, bytes.
    pub fn total_bytes(&self) -> usize {
        self.files.values().map(|f| f.contents.len()).sum()
    }

    fn top_level(&self) -> BTreeSet<&str> {
        self.files
            .keys()
            .map(|p| p.split('/').next().unwrap_or(p))
            .collect()
    }
}

/// Checks a payload path: non-empty, relative, at most [`MAX_PATH_LEN`]
/// bytes, at most [`MAX_DEPTH`] elements separated by single `/` (what
/// [`read`] descends), each non-empty, not `.` or `..`,
/// at most [`MAX_NAME_LEN`] bytes, no NUL; the first element must not start
/// with `..` (reserved for the writer's own entries).
pub fn validate_path(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("longer than 4096 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    if path.contains('\0') {
        return bad("contains NUL");
    }
    // What is written must read back: [`read`] descends at most MAX_DEPTH.
    if path.split('/').count() > MAX_DEPTH {
        return bad("more than 64 elements");
    }
    for (i, element) in path.split('/').enumerate() {
        match element {
            "" => return bad("empty element (leading, trailing or double '/')"),
            "." => return bad("contains a '.' element"),
            ".." => return bad("contains a '..' element"),
            e if e.len() > MAX_NAME_LEN => return bad("element longer than 255 bytes"),
            e if i == 0 && e.starts_with("..") => return bad("starts with '..'"),
            _ => {}
        }
    }
    Ok(())
}

/// What a [`AtomicWriter::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The content was identical; nothing was touched.
    Unchanged,
    /// A new data directory was swapped in.
    Written,
}

/// Ownership applied to everything written (kubelet's fsGroup semantics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Group that owns directories and files; files also get group read.
    pub group: Option<u32>,
}

/// Writes payloads into one target directory.
#[derive(Debug, Clone)]
pub struct AtomicWriter {
    target: PathBuf,
    ownership: Ownership,
}

impl AtomicWriter {
    /// A writer for `target`, which must exist.
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            ownership: Ownership::default(),
        }
    }

    /// Applies `ownership` to what is written.
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Makes the target hold exactly `payload`, atomically.
    pub fn write(&self, payload: &Payload) -> Result<Outcome> {
        let current = self.current_dir()?;
        if let Some(dir) = &current
            && same_content(dir, payload, self.group_read())?
        {
            return Ok(Outcome::Unchanged);
        }
        let new_dir = self.new_data_dir()?;
        if let Err(e) = self.fill(&new_dir, payload) {
            let _ = std::fs::remove_dir_all(&new_dir);
            return Err(e);
        }
        self.link_top_level(payload)?;
        let name = new_dir.file_name().map(PathBuf::from).unwrap_or_default();
        let tmp = self.target.join(DATA_DIR_TMP_LINK);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).map_err(io("symlink", &tmp))?;
        let data = self.target.join(DATA_DIR_LINK);
        std::fs::rename(&tmp, &data).map_err(io("rename", &data))?;
        self.remove_stale_links(payload)?;
        if let Some(old) = current {
            std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
        Ok(Outcome::Written)
    }

    /// The directory `..data` points to, if it is one of this writer's: a
    /// `..<stamp>` sibling that is a real directory. A link anywhere else
    /// (out of the target, to a symlink) is not ours: it is neither read nor
    /// removed, and the swap replaces it.
    fn current_dir(&self) -> Result<Option<PathBuf>> {
        let link = self.target.join(DATA_DIR_LINK);
        let name = match std::fs::read_link(&link) {
            Ok(name) => name.into_os_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("readlink", &link)(e)),
        };
        let Ok(name) = read::data_dir_name(&self.target, &name) else {
            return Ok(None);
        };
        let dir = self.target.join(name);
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        Ok(ours.then_some(dir))
    }

    fn new_data_dir(&self) -> Result<PathBuf> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = utc_stamp(now.as_secs());
        for attempt in 0u32..100 {
            let dir = self
                .target
                .join(format!("..{stamp}.{:09}{attempt:02}", now.subsec_nanos()));
            match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
                Ok(()) => {
                    self.own(&dir, 0o755)?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("mkdir", &dir)(e)),
            }
        }
        Err(Error::Io {
            op: "mkdir",
            path: self.target.clone(),
            source: std::io::Error::other("no free data directory name"),
        })
    }

    fn fill(&self, dir: &Path, payload: &Payload) -> Result<()> {
        for (rel, file) in payload.files() {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                let mut cur = dir.to_path_buf();
                for element in parent
                    .strip_prefix(dir)
                    .unwrap_or(Path::new(""))
                    .components()
                {
                    cur.push(element);
                    match std::fs::DirBuilder::new().mode(0o755).create(&cur) {
                        Ok(()) => self.own(&cur, 0o755)?,
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io("mkdir", &cur)(e)),
                    }
                }
            }
            // create_new never follows a symlink and never reuses a file.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io("create", &path))?;
            f.write_all(&file.contents).map_err(io("write", &path))?;
            drop(f);
            self.own(&path, file.mode)?;
        }
        Ok(())
    }

    /// The bit files get when a group owns the volume.
    fn group_read(&self) -> u32 {
        if self.ownership.group.is_some() {
            0o040
        } else {
            0
        }
    }

    /// Sets the mode (plus group read when a group owns the volume) and the group.
    fn own(&self, path: &Path, mode: u32) -> Result<()> {
        let mode = match self.ownership.group {
            Some(_) if path.is_dir() => mode | 0o050,
            Some(_) => mode | 0o040,
            None => mode,
        };
        if let Some(gid) = self.ownership.group {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| io("chown", path)(e.into()))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io("chmod", path))
    }

    fn link_top_level(&self, payload: &Payload) -> Result<()> {
        for name in payload.top_level() {
            let link = self.target.join(name);
            let want = Path::new(DATA_DIR_LINK).join(name);
            match std::fs::symlink_metadata(&link) {
                Ok(m) if m.file_type().is_symlink() => {
                    if std::fs::read_link(&link).map_err(io("readlink", &link))? == want {
                        continue;
                    }
                    std::fs::remove_file(&link).map_err(io("remove", &link))?;
                }
                // Left by a provider that wrote into the target itself.
                Ok(m) if m.is_dir() => {
                    std::fs::remove_dir_all(&link).map_err(io("remove", &link))?
                }
                Ok(_) => std::fs::remove_file(&link).map_err(io("remove", &link))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("stat", &link)(e)),
            }
            std::os::unix::fs::symlink(&want, &link).map_err(io("symlink", &link))?;
        }
        Ok(())
    }

    fn remove_stale_links(&self, payload: &Payload) -> Result<()> {
        let keep = payload.top_level();
        let entries = std::fs::read_dir(&self.target).map_err(io("readdir", &self.target))?;
        for entry in entries {
            let entry = entry.map_err(io("readdir", &self.target))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("..") || keep.contains(name.as_ref()) {
                continue;
            }
            let is_our_link = std::fs::read_link(entry.path())
                .map(|t| t.starts_with(DATA_DIR_LINK))
                .unwrap_or(false);
            if is_our_link {
                std::fs::remove_file(entry.path()).map_err(io("remove", &entry.path()))?;
            }
        }
        Ok(())
    }
}

/// Whether `dir` holds exactly the files of `payload` (paths, bytes, and
/// modes with the `group_read` bit [`AtomicWriter::own`] adds).
fn same_content(dir: &Path, payload: &Payload, group_read: u32) -> Result<bool> {
    let existing = read_dir_files(dir)?;
    if existing.len() != payload.len() {
        return Ok(false);
    }
    for (path, want) in payload.files() {
        match existing.get(path) {
            Some((contents, mode))
                if *contents == want.contents && mode & 0o777 == want.mode | group_read => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn read_dir_files(dir: &Path) -> Result<BTreeMap<String, (Vec<u8>, u32)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("readdir", &d))? {
            let entry = entry.map_err(io("readdir", &d))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(io("stat", &path))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let contents = std::fs::read(&path).map_err(io("read", &path))?;
                out.insert(rel, (contents, meta.permissions().mode()));
            }
        }
    }
    Ok(out)
}

/// Whether `target` holds content written by [`AtomicWriter`].
pub fn has_data(target: &Path) -> bool {
    std::fs::read_link(target.join(DATA_DIR_LINK)).is_ok()
}

/// `YYYY_MM_DD_HH_MM_SS` in UTC for a Unix time.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
