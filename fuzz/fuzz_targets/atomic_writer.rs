//! Payload paths and modes, then real writes into a scratch directory.
//!
//! Each input is a sequence of steps: plant an entry in the target (a file,
//! a directory, or a symlink pointing at the `outside` sibling, inside the
//! target or into `..data`, as a provider writing into the target itself or
//! a pod with a writable volume could), or insert files into a `Payload`
//! and write it with `AtomicWriter`.
//!
//! Invariants:
//! - `Payload::insert` accepts exactly the paths of the independent oracle
//!   (`payload_path_ok`), modes within `0..=0o777`, no duplicate and no
//!   file that is also a directory of another; accepted paths are relative,
//!   only normal components, first element not `..`-prefixed;
//! - a write never changes anything outside the target: the `outside`
//!   sibling (a canary file and directory) is byte-for-byte unchanged and
//!   nothing appears next to it;
//! - a successful write leaves exactly the payload readable through
//!   `..data` (bytes and modes), `..data` names one data directory, and
//!   every top-level entry is a link `..data/<name>`.
#![no_main]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use secrets_store_atomic_writer::{AtomicWriter, DATA_DIR_LINK, Error, Ownership, Payload, read};
use secrets_store_fuzz::{assert_contained, payload_path_ok, scratch_dir, snapshot};

#[derive(Arbitrary, Debug)]
enum Mode {
    Bits(u16),
    Raw(i64),
}

impl Mode {
    fn value(&self) -> i64 {
        match self {
            Self::Bits(b) => i64::from(b % 0o2000),
            Self::Raw(r) => *r,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct File {
    path: String,
    contents: Vec<u8>,
    mode: Mode,
}

/// Where a planted symlink points; always somewhere under the scratch root.
#[derive(Arbitrary, Debug)]
enum LinkTo {
    OutsideRelative(String),
    OutsideAbsolute(String),
    Inside(String),
    DataDir(String),
}

/// A planted entry's name: the writer's own names, or any.
#[derive(Arbitrary, Debug)]
enum Name {
    Data,
    DataTmp,
    Other(String),
}

impl Name {
    fn get(&self) -> Option<&str> {
        match self {
            Self::Data => Some(DATA_DIR_LINK),
            Self::DataTmp => Some("..data_tmp"),
            Self::Other(n) => element(n),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    PlantFile(Name, Vec<u8>),
    PlantDir(Name),
    PlantLink(Name, LinkTo),
    Write(Vec<File>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    group: Option<u16>,
    steps: Vec<Step>,
}

/// A single path element (planted names are top-level entries only).
fn element(name: &str) -> Option<&str> {
    let bad = name.is_empty() || name == "." || name == ".." || name.len() > 255;
    (!bad && !name.contains(['/', '\0'])).then_some(name)
}

/// Letters and digits only, so a link text cannot climb out of the root.
fn tame(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect()
}

struct Scratch {
    base: PathBuf,
    root: PathBuf,
    target: PathBuf,
    outside: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let base = scratch_dir("aw");
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("r");
        let target = root.join("target");
        let outside = root.join("outside");
        std::fs::create_dir_all(&target).expect("target");
        std::fs::create_dir_all(outside.join("sub")).expect("outside");
        std::fs::write(outside.join("canary"), b"outside-canary").expect("canary");
        std::fs::write(outside.join("sub/file"), b"outside-sub").expect("canary");
        Self {
            base,
            root,
            target,
            outside,
        }
    }

    fn plant(&self, step: &Step) {
        // Failures (a name already there) are fine: the state stays hostile.
        let _ = match step {
            Step::PlantFile(name, contents) => match name.get() {
                // create_new: never through a planted symlink.
                Some(n) => std::fs::File::create_new(self.target.join(n))
                    .and_then(|mut f| f.write_all(contents)),
                None => Ok(()),
            },
            Step::PlantDir(name) => match name.get() {
                Some(n) => std::fs::create_dir(self.target.join(n)),
                None => Ok(()),
            },
            Step::PlantLink(name, to) => match name.get() {
                Some(n) => {
                    let text = match to {
                        LinkTo::OutsideRelative(t) => PathBuf::from("../outside").join(tame(t)),
                        LinkTo::OutsideAbsolute(t) => self.outside.join(tame(t)),
                        LinkTo::Inside(t) => PathBuf::from(tame(t)),
                        LinkTo::DataDir(t) => Path::new(DATA_DIR_LINK).join(tame(t)),
                    };
                    std::os::unix::fs::symlink(text, self.target.join(n))
                }
                None => Ok(()),
            },
            Step::Write(_) => Ok(()),
        };
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Inserts files into a payload, checking each answer against the oracle.
fn build_payload(files: &[File]) -> Payload {
    let mut payload = Payload::new();
    let mut accepted: Vec<String> = Vec::new();
    for f in files {
        let mode = f.mode.value();
        let result = payload.insert(&f.path, f.contents.clone(), mode);
        let path_ok = payload_path_ok(&f.path);
        let mode_ok = (0..=0o777).contains(&mode);
        let duplicate = accepted.iter().any(|a| *a == f.path);
        let conflict = accepted.iter().any(|a| {
            f.path.starts_with(&format!("{a}/")) || a.starts_with(&format!("{}/", f.path))
        });
        match result {
            Ok(()) => {
                assert!(path_ok, "accepted invalid path {:?}", f.path);
                assert!(mode_ok, "accepted mode {mode:#o}");
                assert!(!duplicate && !conflict, "accepted clashing {:?}", f.path);
                assert_contained(&f.path, "Payload::insert");
                accepted.push(f.path.clone());
            }
            Err(Error::InvalidPath { .. }) => assert!(!path_ok, "refused {:?}", f.path),
            Err(Error::InvalidMode { .. }) => assert!(path_ok && !mode_ok),
            Err(Error::DuplicatePath(_)) => assert!(path_ok && mode_ok && duplicate),
            Err(Error::FileDirConflict(_)) => assert!(path_ok && mode_ok && conflict),
            Err(e) => panic!("insert failed with {e}"),
        }
    }
    assert_eq!(payload.len(), accepted.len());
    payload
}

/// What a successful write must leave in the target.
fn check_written(target: &Path, payload: &Payload, group: Option<u32>) {
    let want: BTreeMap<String, Vec<u8>> = payload
        .files()
        .iter()
        .map(|(k, v)| (k.clone(), v.contents.clone()))
        .collect();
    let got = read(target, usize::MAX).expect("read back a successful write");
    assert_eq!(got, want, "content read back differs from the payload");
    let data = std::fs::read_link(target.join(DATA_DIR_LINK)).expect("..data link");
    let data_name = data.to_str().expect("utf-8 data dir");
    assert!(
        data_name.starts_with("..") && !data_name.contains('/'),
        "..data points to {data:?}"
    );
    for (path, file) in payload.files() {
        let top = path.split('/').next().unwrap_or(path);
        let link = std::fs::read_link(target.join(top)).expect("top-level link");
        assert_eq!(link, Path::new(DATA_DIR_LINK).join(top), "link of {top:?}");
        let on_disk = std::fs::symlink_metadata(target.join(data_name).join(path))
            .expect("written file")
            .permissions()
            .mode()
            & 0o777;
        let want_mode = file.mode | if group.is_some() { 0o040 } else { 0 };
        assert_eq!(on_disk, want_mode, "mode of {path:?}");
    }
}

fuzz_target!(|input: Input| {
    let writes = input
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Write(_)))
        .count();
    if input.steps.len() > 8 || writes == 0 {
        return;
    }
    let scratch = Scratch::new();
    let outside_before = snapshot(&scratch.outside);
    let group = input.group.map(u32::from);
    let writer = AtomicWriter::new(&scratch.target).with_ownership(Ownership { group });
    for step in &input.steps {
        let Step::Write(files) = step else {
            scratch.plant(step);
            continue;
        };
        if files.len() > 16 {
            return;
        }
        let payload = build_payload(files);
        let result = writer.write(&payload);
        assert_eq!(
            snapshot(&scratch.outside),
            outside_before,
            "a write changed the outside directory ({result:?})"
        );
        let names: Vec<_> = std::fs::read_dir(&scratch.root)
            .expect("root")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "entries next to the target: {names:?}");
        if result.is_ok() {
            check_written(&scratch.target, &payload, group);
        }
    }
});
