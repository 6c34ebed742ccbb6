//! Bounded read-back of a target, safe against whatever else shares the
//! filesystem.
//!
//! Every open is relative to an already opened directory (`openat`) with
//! `O_NOFOLLOW`, so no symlink anywhere below the target is followed, and
//! only regular files are read (FIFOs, devices and sockets are skipped, so
//! nothing can block the reader). The total of names and contents read is
//! capped by the caller's limit, and nesting by [`MAX_DEPTH`].

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::{DATA_DIR_LINK, Error, MAX_PATH_LEN, Result};

/// Deepest directory nesting [`read`] descends into.
pub const MAX_DEPTH: usize = 64;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

/// Reads the files a target shows, relative path → bytes: the directory
/// `..data` points to when there is one (content of [`crate::AtomicWriter`]),
/// else the target itself. Entries whose first path element starts with
/// `..` are skipped. Symlinks and special files are skipped, never followed.
/// More than `limit` bytes (names plus contents) is [`Error::TooLarge`].
pub fn read(target: &Path, limit: usize) -> Result<BTreeMap<String, Vec<u8>>> {
    let errno = |op| move |e: Errno| io(op, target, e);
    let root = nix::fcntl::open(target, DIR_FLAGS, Mode::empty()).map_err(errno("open"))?;
    let dir = match readlinkat(&root, DATA_DIR_LINK) {
        Ok(name) => {
            let name = data_dir_name(target, &name)?;
            openat(&root, name, DIR_FLAGS, Mode::empty()).map_err(errno("open ..data of"))?
        }
        Err(Errno::ENOENT) => root,
        Err(e) => return Err(io("readlink ..data of", target, e)),
    };
    let mut reader = Reader {
        target,
        budget: limit,
        limit,
        out: BTreeMap::new(),
    };
    reader.walk(dir, "", 0)?;
    Ok(reader.out)
}

/// `..data` must name a sibling directory of the writer's (`..<stamp>`).
pub(crate) fn data_dir_name<'a>(target: &Path, name: &'a std::ffi::OsString) -> Result<&'a OsStr> {
    let bytes = name.as_bytes();
    if bytes.len() > 2 && bytes.starts_with(b"..") && !bytes.contains(&b'/') {
        Ok(name.as_os_str())
    } else {
        Err(Error::InvalidPath {
            path: target.join(DATA_DIR_LINK).display().to_string(),
            reason: "does not link to a data directory of the writer",
        })
    }
}

fn io(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

struct Reader<'a> {
    target: &'a Path,
    budget: usize,
    limit: usize,
    out: BTreeMap<String, Vec<u8>>,
}

impl Reader<'_> {
    fn walk(&mut self, fd: OwnedFd, prefix: &str, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(Error::InvalidPath {
                path: prefix.to_string(),
                reason: "nested deeper than 64 directories",
            });
        }
        let mut dir = Dir::from_fd(fd).map_err(|e| io("readdir", self.target, e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io("readdir", self.target, e))?;
            let name = entry.file_name();
            let skip = matches!(name.to_bytes(), b"." | b"..")
                || (depth == 0 && name.to_bytes().starts_with(b".."));
            if !skip {
                names.push(name.to_owned());
            }
        }
        for name in names {
            let rel = match prefix {
                "" => name.to_string_lossy().into_owned(),
                p => format!("{p}/{}", name.to_string_lossy()),
            };
            self.charge(rel.len())?;
            if rel.len() > MAX_PATH_LEN {
                return Err(Error::InvalidPath {
                    path: rel,
                    reason: "longer than 4096 bytes",
                });
            }
            self.entry(&dir, &name, rel, depth)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &Dir, name: &CStr, rel: String, depth: usize) -> Result<()> {
        let at = |e| io("stat", &self.target.join(&rel), e);
        let stat = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(at)?;
        let file_type = kind(&stat);
        if file_type == SFlag::S_IFDIR {
            let fd = openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(at)?;
            return self.walk(fd, &rel, depth + 1);
        }
        if file_type != SFlag::S_IFREG {
            return Ok(());
        }
        let fd = openat(dir, name, FILE_FLAGS, Mode::empty()).map_err(at)?;
        // Swapped for something else since the stat: skip it.
        let again = nix::sys::stat::fstat(&fd).map_err(at)?;
        if kind(&again) != SFlag::S_IFREG {
            return Ok(());
        }
        let contents = self.read_file(fd, &rel)?;
        self.out.insert(rel, contents);
        Ok(())
    }

    fn read_file(&mut self, fd: OwnedFd, rel: &str) -> Result<Vec<u8>> {
        let mut contents = Vec::new();
        std::fs::File::from(fd)
            .take(self.budget as u64 + 1)
            .read_to_end(&mut contents)
            .map_err(|source| Error::Io {
                op: "read",
                path: self.target.join(rel),
                source,
            })?;
        self.charge(contents.len())?;
        Ok(contents)
    }

    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.budget = self
            .budget
            .checked_sub(bytes)
            .ok_or(Error::TooLarge { limit: self.limit })?;
        Ok(())
    }
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}
