//! The one wrapper for values that must never reach a log: service-account
//! tokens, the CSI `secrets` map, provider credentials, file contents.
//!
//! [`Redacted`] prints `[redacted]` through `Debug` and `Display`, so a
//! `{:?}` of any struct holding one is safe; the value is read with
//! [`Redacted::expose`] where it is really needed. With the `serde` feature
//! it (de)serializes as the bare value: that is for wire encodings (the
//! service-account-token JSON), never for logs.
//!
//! Hand-written `Debug` impls of foreign types (generated protobuf
//! messages) use [`REDACTED`] so every redaction reads the same.

use std::fmt;

/// What every redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// Holds a secret value; `Debug` and `Display` print `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Redacted<T>(pub T);

impl<T> Redacted<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value, for the code that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize> serde::Serialize for Redacted<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Redacted<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_print_the_value() {
        let r = Redacted::new("canary-value".to_string());
        assert_eq!(
            format!("{r:?} {r} {r:#?}"),
            "[redacted] [redacted] [redacted]"
        );
        assert_eq!(r.expose(), "canary-value");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            name: &'static str,
            token: Redacted<String>,
        }
        let h = Holder {
            name: "visible",
            token: "canary-token".to_string().into(),
        };
        let dbg = format!("{h:?}");
        assert_eq!(dbg, r#"Holder { name: "visible", token: [redacted] }"#);
        assert_eq!(h.token.into_inner(), "canary-token");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_carries_the_bare_value() {
        let r: Redacted<String> = serde_json::from_str(r#""jwt""#).expect("decode");
        assert_eq!(r.expose(), "jwt");
        assert_eq!(serde_json::to_string(&r).expect("encode"), r#""jwt""#);
    }
}
