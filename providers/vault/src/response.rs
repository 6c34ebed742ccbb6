//! Vault's answer to a read, decoded as the Vault Go API's `ParseSecret`
//! decodes it, and the file contents upstream writes from it: the whole
//! answer re-encoded as Go's `encoding/json` would, or one key of its data.
//!
//! Go's encoder sorts map keys (so does `serde_json`'s map here) and
//! escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; those
//! characters only ever appear inside strings in JSON text, so replacing
//! them after encoding gives Go's bytes. Numbers differ in one way: Go
//! keeps a number's text (`1.50`), `serde_json` re-prints a float in its
//! shortest form (`1.5`) — noted in COMPATIBILITY.md.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::params::Encoding;

/// Vault's response envelope (the Go API's `Secret`), fields in Go's order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct VaultSecret {
    /// `request_id`.
    pub request_id: String,
    /// `lease_id`.
    pub lease_id: String,
    /// `lease_duration` in seconds.
    pub lease_duration: i64,
    /// `renewable`.
    pub renewable: bool,
    /// `data`: the secret (a KV v2 answer nests it under `data.data`).
    pub data: Option<Map<String, Value>>,
    /// `warnings`.
    pub warnings: Option<Vec<String>>,
    /// `auth` (only when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Value>,
    /// `wrap_info` (only when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_info: Option<Value>,
    /// `mount_type` (only when set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_type: String,
}

/// Why an answer or a value could not be used. No variant carries secret
/// text: decoder messages are reduced to their position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The body is not a Vault JSON answer.
    #[error("the answer is not a Vault response (line {line} column {column})")]
    Decode {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The body holds only `errors` next to other data.
    #[error("{0}")]
    Errors(String),
    /// `secretKey` names no key of the data.
    #[error("key {0:?} does not exist at the secret path")]
    MissingKey(String),
    /// The value is not valid base64.
    #[error("illegal base64 data at input byte {0}")]
    Base64(usize),
    /// The value is not valid hex.
    #[error("invalid hex data at input byte {0}")]
    Hex(usize),
}

fn decode_error(e: &serde_json::Error) -> ContentError {
    ContentError::Decode {
        line: e.line(),
        column: e.column(),
    }
}

/// Decodes a read answer as `ParseSecret`: an empty body is `None`; an
/// answer with none of the standard fields set becomes the data itself.
pub fn parse(body: &[u8]) -> Result<Option<VaultSecret>, ContentError> {
    if body.is_empty() {
        return Ok(None);
    }
    let secret: VaultSecret = serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
    if secret != VaultSecret::default() {
        return Ok(Some(secret));
    }
    let raw: Map<String, Value> = serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
    match raw.get("errors") {
        Some(_) if raw.len() == 1 => return Ok(None),
        Some(errors) => {
            return Err(ContentError::Errors(crate::client::one_line(
                &go_json(errors),
                512,
            )));
        }
        None => {}
    }
    Ok(Some(VaultSecret {
        data: (!raw.is_empty()).then_some(raw),
        ..secret
    }))
}

/// `value` encoded as Go's `encoding/json` encodes it.
pub fn go_json(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The value of `key` in the data (in `data.data` when that is a map, as
/// KV v2 answers are): a string as is, anything else as JSON.
pub fn key_from_data(data: &Map<String, Value>, key: &str) -> Result<Vec<u8>, ContentError> {
    let inner = match data.get("data") {
        Some(Value::Object(m)) => m,
        _ => data,
    };
    match inner.get(key) {
        None => Err(ContentError::MissingKey(key.to_string())),
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v) => Ok(go_json(v).into_bytes()),
    }
}

/// Decodes an extracted value as `encoding` says.
pub fn decode(value: Vec<u8>, encoding: Encoding) -> Result<Vec<u8>, ContentError> {
    match encoding {
        Encoding::Utf8 => Ok(value),
        Encoding::Base64 => decode_base64(&value),
        Encoding::Hex => decode_hex(&value),
    }
}

/// Go's `base64.StdEncoding.DecodeString`: padding required, CR and LF
/// skipped.
fn decode_base64(value: &[u8]) -> Result<Vec<u8>, ContentError> {
    let clean: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _) => ContentError::Base64(at),
            base64::DecodeError::InvalidLastSymbol(at, _) => ContentError::Base64(at),
            _ => ContentError::Base64(clean.len()),
        })
}

fn decode_hex(value: &[u8]) -> Result<Vec<u8>, ContentError> {
    let nibble = |i: usize| -> Result<u8, ContentError> {
        match value[i] {
            b @ b'0'..=b'9' => Ok(b - b'0'),
            b @ b'a'..=b'f' => Ok(b - b'a' + 10),
            b @ b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err(ContentError::Hex(i)),
        }
    };
    let mut out = Vec::with_capacity(value.len() / 2);
    for i in (0..value.len()).step_by(2) {
        let hi = nibble(i)?;
        if i + 1 == value.len() {
            return Err(ContentError::Hex(i + 1));
        }
        out.push(hi << 4 | nibble(i + 1)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_parse_secret() {
        assert_eq!(parse(b""), Ok(None));
        let s = parse(br#"{"request_id":"r","data":{"data":{"a":"1"}},"mount_type":"kv"}"#)
            .expect("parse")
            .expect("some");
        assert_eq!(s.request_id, "r");
        assert_eq!(s.mount_type, "kv");
        // No standard field: the body is the data.
        let raw = parse(br#"{"keys":["a"]}"#).expect("raw").expect("some");
        assert_eq!(raw.data.expect("data")["keys"], serde_json::json!(["a"]));
        assert_eq!(parse(br#"{"errors":[]}"#), Ok(None));
        assert_eq!(
            parse(br#"{"errors":["x"],"k":1}"#),
            Err(ContentError::Errors(r#"["x"]"#.into()))
        );
        let err = parse(br#"{"data":"secret-canary"}"#).expect_err("not a map");
        assert!(!err.to_string().contains("canary"), "{err}");
    }

    #[test]
    fn whole_response_json_is_gos() {
        let s = VaultSecret {
            data: Some(
                serde_json::from_str(r#"{"b":"<&>","a":{"z":1,"y":[true,null]}}"#).expect("map"),
            ),
            ..VaultSecret::default()
        };
        assert_eq!(
            go_json(&s),
            r#"{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":{"a":{"y":[true,null],"z":1},"b":"\u003c\u0026\u003e"},"warnings":null}"#
        );
    }

    #[test]
    fn keys_come_from_the_kv2_envelope_or_the_data() {
        let v2: Map<String, Value> = serde_json::from_str(
            r#"{"data":{"s":"x","n":10,"o":{"b":1,"a":2},"l":[6,"x",true]},"metadata":{}}"#,
        )
        .expect("v2");
        let get = |k| key_from_data(&v2, k).map(|b| String::from_utf8(b).expect("utf8"));
        assert_eq!(get("s").as_deref(), Ok("x"));
        assert_eq!(get("n").as_deref(), Ok("10"));
        assert_eq!(get("o").as_deref(), Ok(r#"{"a":2,"b":1}"#));
        assert_eq!(get("l").as_deref(), Ok(r#"[6,"x",true]"#));
        assert_eq!(
            get("metadata").expect_err("not in data.data").to_string(),
            "key \"metadata\" does not exist at the secret path"
        );
        let v1: Map<String, Value> = serde_json::from_str(r#"{"data":"top","k":"v"}"#).expect("v1");
        assert_eq!(key_from_data(&v1, "data"), Ok(b"top".to_vec()));
        assert_eq!(key_from_data(&v1, "k"), Ok(b"v".to_vec()));
    }

    #[test]
    fn decodings_and_their_errors() {
        assert_eq!(
            decode(b"aGk=\n".to_vec(), Encoding::Base64),
            Ok(b"hi".to_vec())
        );
        assert_eq!(decode(b"6869".to_vec(), Encoding::Hex), Ok(b"hi".to_vec()));
        assert_eq!(decode(b"x".to_vec(), Encoding::Utf8), Ok(b"x".to_vec()));
        assert_eq!(
            decode(b"a!==".to_vec(), Encoding::Base64),
            Err(ContentError::Base64(1))
        );
        assert_eq!(
            decode(b"68g9".to_vec(), Encoding::Hex),
            Err(ContentError::Hex(2))
        );
        assert_eq!(
            decode(b"686".to_vec(), Encoding::Hex),
            Err(ContentError::Hex(3))
        );
    }
}
