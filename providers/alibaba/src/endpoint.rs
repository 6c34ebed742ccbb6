//! Where signed requests may go.
//!
//! A request carries the access key id, the STS security token and a
//! signature, so its destination is policy, not input: a SecretProviderClass
//! (which a pod's author writes) may name a `kmsEndpoint`, but only an
//! HTTPS one of Alibaba Cloud's documented KMS shapes (`kms.<region>`,
//! `kms-vpc.<region>`, `<instance>.cryptoservice.kms`, all under
//! `.aliyuncs.com`) unless the operator allows more host suffixes; a
//! `region`, from wherever it comes, is a lowercase token before it is put
//! into a host name. Endpoints the operator sets by flag are trusted as
//! given (they may be plain HTTP for a local test service).

/// Domain of every Alibaba Cloud endpoint.
pub const ALIYUN_DOMAIN: &str = "aliyuncs.com";
/// Host suffix of dedicated KMS instance gateways.
pub const DEDICATED_KMS_SUFFIX: &str = "cryptoservice.kms.aliyuncs.com";

/// Endpoint errors; none sends a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a host, `host:port` or `http(s)://host[:port]`.
    #[error("invalid endpoint {0:?}")]
    Syntax(String),
    /// An SPC endpoint that is not HTTPS.
    #[error("kmsEndpoint {0:?} must use https")]
    NotHttps(String),
    /// An SPC endpoint outside the allowed shapes and suffixes.
    #[error(
        "kmsEndpoint {0:?} is not an Alibaba Cloud KMS endpoint (kms.<region>.aliyuncs.com, kms-vpc.<region>.aliyuncs.com or <instance>.cryptoservice.kms.aliyuncs.com)"
    )]
    NotAllowed(String),
    /// A region that is not a lowercase token.
    #[error("invalid region {0:?}: only a-z, 0-9 and - are allowed")]
    Region(String),
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (operator-set endpoints only).
    Http,
    /// HTTPS.
    Https,
}

/// A parsed endpoint: scheme, host and optional port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP literal, lower case.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a region (`^[a-z0-9-]+$`, at most 63 characters).
pub fn region(r: &str) -> Result<&str, EndpointError> {
    if is_token(r) {
        Ok(r)
    } else {
        Err(EndpointError::Region(r.chars().take(80).collect()))
    }
}

impl Endpoint {
    /// Parses `host`, `host:port` or `http(s)://host[:port][/]`; a bare
    /// host means HTTPS.
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        let bad = || EndpointError::Syntax(s.chars().take(200).collect());
        let (scheme, rest) = match s.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(_) => return Err(bad()),
            None => (Scheme::Https, s),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['.', '-'])
            && !host.contains("..");
        if !host_ok {
            return Err(bad());
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `https://kms-vpc.<region>.aliyuncs.com`.
    pub fn kms_vpc(region: &str) -> Self {
        Self::aliyun(format!("kms-vpc.{region}.{ALIYUN_DOMAIN}"))
    }

    /// `https://oos-vpc.<region>.aliyuncs.com`.
    pub fn oos_vpc(region: &str) -> Self {
        Self::aliyun(format!("oos-vpc.{region}.{ALIYUN_DOMAIN}"))
    }

    fn aliyun(host: String) -> Self {
        Self {
            scheme: Scheme::Https,
            host,
            port: None,
        }
    }

    /// `host[:port]`: the signed `host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The URL of `path_and_query` on this endpoint.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{self}{path_and_query}")
    }

    /// A dedicated KMS instance gateway, whose certificates chain to
    /// Alibaba's private KMS CAs instead of a public root.
    pub fn is_dedicated_kms(&self) -> bool {
        self.host.ends_with(&format!(".{DEDICATED_KMS_SUFFIX}"))
    }

    fn is_documented_kms(&self) -> bool {
        let Some(rest) = self.host.strip_suffix(&format!(".{ALIYUN_DOMAIN}")) else {
            return false;
        };
        let shaped = match rest.split_once('.') {
            Some(("kms" | "kms-vpc", r)) => is_token(r),
            Some((instance, "cryptoservice.kms")) => is_token(instance),
            _ => false,
        };
        shaped && self.port.is_none_or(|p| p == 443)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// What a SecretProviderClass may name as `kmsEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Extra host suffixes (`--allowed-endpoint-suffixes`): a host equal to
    /// one, or ending in `.` + one, is allowed (still HTTPS only).
    pub allowed_suffixes: Vec<String>,
}

impl EndpointPolicy {
    /// Parses and checks an SPC `kmsEndpoint`.
    pub fn spc_kms(&self, raw: &str) -> Result<Endpoint, EndpointError> {
        let e = Endpoint::parse(raw)?;
        if e.scheme != Scheme::Https {
            return Err(EndpointError::NotHttps(raw.chars().take(200).collect()));
        }
        let extra = self.allowed_suffixes.iter().any(|s| {
            let s = s.trim_start_matches('.').to_ascii_lowercase();
            !s.is_empty() && (e.host == s || e.host.ends_with(&format!(".{s}")))
        });
        if e.is_documented_kms() || extra {
            Ok(e)
        } else {
            Err(EndpointError::NotAllowed(raw.chars().take(200).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_urls() {
        let e = Endpoint::parse("kms-vpc.cn-hangzhou.aliyuncs.com").expect("host");
        assert_eq!(e.to_string(), "https://kms-vpc.cn-hangzhou.aliyuncs.com");
        let e = Endpoint::parse("http://127.0.0.1:8080/").expect("url");
        assert_eq!(
            (e.scheme, e.authority().as_str()),
            (Scheme::Http, "127.0.0.1:8080")
        );
        assert_eq!(
            Endpoint::parse("Kms.CN-x.aliyuncs.com:8443")
                .expect("port")
                .to_string(),
            "https://kms.cn-x.aliyuncs.com:8443"
        );
        for bad in [
            "", "ftp://x", "http://", "a/b", "a b", "h:x", "h:99999", "a?b", "a#b", "u@h", ".a",
            "a..b", "[::1]",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EndpointError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn spc_endpoints_follow_the_policy() {
        let strict = EndpointPolicy::default();
        for ok in [
            "kms.cn-hangzhou.aliyuncs.com",
            "kms-vpc.ap-southeast-1.aliyuncs.com",
            "https://kst-hzz62ee817bvyyr5x.cryptoservice.kms.aliyuncs.com",
            "kms.cn-hangzhou.aliyuncs.com:443",
        ] {
            assert!(strict.spc_kms(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("http://kms.cn-hangzhou.aliyuncs.com", "must use https"),
            ("evil.example", "is not an Alibaba Cloud KMS endpoint"),
            ("kms.cn-hangzhou.aliyuncs.com.evil.example", "is not an"),
            ("kms.cn-hangzhou.aliyuncs.com:8443", "is not an"),
            ("oss.cn-hangzhou.aliyuncs.com", "is not an"),
            ("kms.a.b.aliyuncs.com", "is not an"),
            ("127.0.0.1:1234", "is not an"),
            ("x.evil.example?", "invalid endpoint"),
        ];
        for (raw, want) in cases {
            let err = strict.spc_kms(raw).expect_err(raw).to_string();
            assert!(err.contains(want), "{raw}: {err}");
        }
        let wider = EndpointPolicy {
            allowed_suffixes: vec!["127.0.0.1".into(), ".kms.test".into()],
        };
        assert!(wider.spc_kms("127.0.0.1:1234").is_ok());
        assert!(wider.spc_kms("a.kms.test").is_ok());
        assert!(wider.spc_kms("akms.test").is_err());
        assert!(wider.spc_kms("http://127.0.0.1:1234").is_err());
    }

    #[test]
    fn regions_and_dedicated_hosts() {
        assert_eq!(region("cn-hangzhou"), Ok("cn-hangzhou"));
        let long = "a".repeat(64);
        for bad in ["", "x.evil.example?", "CN", "a/b", "a b", long.as_str()] {
            assert!(region(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Endpoint::kms_vpc("cn-x").to_string(),
            "https://kms-vpc.cn-x.aliyuncs.com"
        );
        assert!(
            Endpoint::parse("kst-1.cryptoservice.kms.aliyuncs.com")
                .expect("dedicated")
                .is_dedicated_kms()
        );
        assert!(!Endpoint::kms_vpc("cn-x").is_dedicated_kms());
    }
}
