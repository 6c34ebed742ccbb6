//! A mounter that records mounts in memory, for unit tests of the publish
//! modes that run without root. Failures can be injected per operation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Error, Mounter, TmpfsOptions};
use crate::target::Target;

/// Records mounts; `mount_tmpfs` can be told to fail.
#[derive(Debug, Default)]
pub struct FakeMounter {
    mounts: Mutex<BTreeMap<PathBuf, TmpfsOptions>>,
    fail_mount: Mutex<bool>,
}

impl FakeMounter {
    /// Makes every following `mount_tmpfs` fail (or succeed again).
    pub fn fail_mounts(&self, fail: bool) {
        *self.fail_mount.lock().unwrap_or_else(|p| p.into_inner()) = fail;
    }

    /// The options of the tmpfs mounted on `target`, if any.
    pub fn mounted(&self, target: &Target) -> Option<TmpfsOptions> {
        self.lock().get(target.path()).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, TmpfsOptions>> {
        self.mounts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Mounter for FakeMounter {
    fn mount_tmpfs(&self, target: &Target, options: TmpfsOptions) -> Result<(), Error> {
        if *self.fail_mount.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(Error::Mount {
                target: target.path().display().to_string(),
                source: std::io::Error::other("injected failure"),
            });
        }
        target.open()?;
        self.lock().insert(target.path().to_path_buf(), options);
        Ok(())
    }

    fn unmount(&self, target: &Target) -> Result<(), Error> {
        match self.lock().remove(target.path()) {
            Some(_) => Ok(()),
            None => Err(Error::Unmount {
                target: target.path().display().to_string(),
                source: std::io::Error::other("not mounted"),
            }),
        }
    }

    fn is_mounted(&self, target: &Target) -> Result<bool, Error> {
        Ok(self.lock().contains_key(target.path()))
    }
}
