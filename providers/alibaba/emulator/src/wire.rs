//! What every service shares on the wire: the error JSON, request ids,
//! timestamps, query and form decoding.

use std::time::SystemTime;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error answer: status, `Code`, `Message`.
pub(crate) struct ApiErr(pub StatusCode, pub &'static str, pub String);

impl ApiErr {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message.into(),
        )
    }

    /// `MissingParameter` for `name`.
    pub fn missing(name: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("{name} is mandatory for this action."),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.as_u16()
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let body = json!({"RequestId": request_id(), "HostId": "emulator", "Code": self.1, "Message": self.2, "Recommend": ""});
        (self.0, axum::Json(body)).into_response()
    }
}

/// A request id in Alibaba's format.
pub(crate) fn request_id() -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:012X}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u64(..) & 0xFFFF_FFFF_FFFF
    )
}

/// Random alphanumerics.
pub(crate) fn random_token(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn iso(t: SystemTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .unwrap_or_default()
}

/// Decodes `k=v&…` (query or form).
pub(crate) fn decode_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

/// Looks a parameter up.
pub(crate) fn param(params: &[(String, String)], k: &str) -> Option<String> {
    params
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.clone())
}

/// A header as text.
pub(crate) fn header<'a>(h: &'a HeaderMap, k: &str) -> Option<&'a str> {
    h.get(k).and_then(|v| v.to_str().ok())
}
