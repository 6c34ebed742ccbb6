//! File names: path translation of object names and validation of the
//! relative paths a provider returns.

/// How `/` in an object name is handled when it becomes a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTranslation {
    /// Replace every `/` with this character.
    Replace(char),
    /// Keep `/` (nested files); a leading `/` is dropped.
    Off,
}

/// Errors in paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The `pathTranslation` parameter is neither `False` nor one character.
    #[error("pathTranslation must be either 'False' or a single character string")]
    Translation,
    /// The path is empty.
    #[error("file path must not be empty")]
    Empty,
    /// The path is absolute.
    #[error("file path must be relative: {0}")]
    Absolute(String),
    /// The path has a `..` element.
    #[error("path can not contain ../: {0}")]
    Traversal(String),
    /// The path is not in clean form (`.` elements, `//` or a trailing `/`).
    #[error("file path is not clean: {0}")]
    NotClean(String),
    /// The driver's writer refuses the path (too long, too deep, NUL, or a
    /// first element starting with `..`, which the writer reserves).
    #[error("file path {path} is refused: {reason}")]
    Refused {
        /// The path as given.
        path: String,
        /// Why the writer refuses it.
        reason: &'static str,
    },
}

impl PathTranslation {
    /// Parses the `pathTranslation` parameter: empty means `_`, any case of
    /// `false` means off, otherwise a single character.
    pub fn parse(param: Option<&str>) -> Result<Self, PathError> {
        let param = param.unwrap_or_default();
        if param.is_empty() {
            return Ok(Self::Replace('_'));
        }
        if param.eq_ignore_ascii_case("false") {
            return Ok(Self::Off);
        }
        let mut chars = param.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Self::Replace(c)),
            _ => Err(PathError::Translation),
        }
    }

    /// The file name for an object name or alias.
    pub fn apply(self, name: &str) -> String {
        match self {
            Self::Replace(c) => name.replace('/', &c.to_string()),
            Self::Off => name.strip_prefix('/').unwrap_or(name).to_string(),
        }
    }
}

/// Checks that `path` is a payload path the driver will write: the
/// writer's rule ([`secrets_store_atomic_writer::validate_path`], the one
/// owner of it), with upstream's messages for the cases upstream names.
pub fn validate(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute(path.into()));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(PathError::Traversal(path.into()));
    }
    match secrets_store_atomic_writer::validate_path(path) {
        Ok(()) => Ok(()),
        Err(secrets_store_atomic_writer::Error::InvalidPath { reason, .. })
            if reason.contains("'.'") || reason.contains("empty element") =>
        {
            Err(PathError::NotClean(path.into()))
        }
        Err(secrets_store_atomic_writer::Error::InvalidPath { reason, .. }) => {
            Err(PathError::Refused {
                path: path.into(),
                reason,
            })
        }
        Err(_) => Err(PathError::Refused {
            path: path.into(),
            reason: "not a valid payload path",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_parameter() {
        assert_eq!(
            PathTranslation::parse(None),
            Ok(PathTranslation::Replace('_'))
        );
        assert_eq!(
            PathTranslation::parse(Some("")),
            Ok(PathTranslation::Replace('_'))
        );
        assert_eq!(
            PathTranslation::parse(Some("FaLsE")),
            Ok(PathTranslation::Off)
        );
        assert_eq!(
            PathTranslation::parse(Some("-")),
            Ok(PathTranslation::Replace('-'))
        );
        assert_eq!(
            PathTranslation::parse(Some("ü")),
            Ok(PathTranslation::Replace('ü'))
        );
        assert_eq!(
            PathTranslation::parse(Some("ab")),
            Err(PathError::Translation)
        );
    }

    #[test]
    fn translation_applies() {
        assert_eq!(
            PathTranslation::Replace('_').apply("My/Path/Secret"),
            "My_Path_Secret"
        );
        assert_eq!(PathTranslation::Off.apply("/My/Path"), "My/Path");
    }

    #[test]
    fn validation_only_rejects_what_the_writer_refuses() {
        for ok in ["a", "a/bc/d", "ab/c", "foo/ab", "a..b", "a/..b/c"] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute("/etc/passwd".into())),
            ("..", PathError::Traversal("..".into())),
            ("../x", PathError::Traversal("../x".into())),
            ("a/../../x", PathError::Traversal("a/../../x".into())),
            ("a/..", PathError::Traversal("a/..".into())),
            ("./a", PathError::NotClean("./a".into())),
            ("a//b", PathError::NotClean("a//b".into())),
            ("a/", PathError::NotClean("a/".into())),
            (
                "..a",
                PathError::Refused {
                    path: "..a".into(),
                    reason: "starts with '..'",
                },
            ),
            (
                "a\0b",
                PathError::Refused {
                    path: "a\0b".into(),
                    reason: "contains NUL",
                },
            ),
        ];
        for (p, e) in bad {
            assert_eq!(validate(p), Err(e), "{p}");
        }
    }
}
