//! Keys and certificates for a test control plane, and TLS identities for
//! test servers that answer under real endpoint names, generated in-process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// Files written by [`write`].
pub(crate) struct Pki {
    /// CA certificate (PEM) that signed the serving certificate.
    pub ca_cert: PathBuf,
    /// API server serving certificate and key (PEM).
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// Service-account token signing key (ECDSA P-256, PKCS#8 PEM).
    pub sa_key: PathBuf,
    /// Its public key (PEM), for verifying tokens.
    pub sa_pub: PathBuf,
}

/// A fresh CA.
fn ca() -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "secrets-store testkit CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(
        ca_params,
        KeyPair::generate()?,
    )?)
}

/// A leaf certificate for some names and the CA that signed it (PEM).
pub struct TlsIdentity {
    /// The CA certificate (what clients trust, e.g. via `SSL_CERT_FILE`).
    pub ca_pem: String,
    /// The leaf certificate.
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

/// A fresh CA and a leaf for `names` (DNS names or IP addresses) signed by
/// it, for a test server that must answer under real endpoint names.
pub fn tls_identity(names: &[String]) -> anyhow::Result<TlsIdentity> {
    let ca = ca()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "secrets-store test server");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(TlsIdentity {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Generates a CA, a serving certificate for `sans` (DNS names and IPs) and
/// a service-account signing key into `dir`.
pub(crate) fn write(dir: &Path, sans: Vec<String>) -> anyhow::Result<Pki> {
    std::fs::create_dir_all(dir)?;
    let ca = ca()?;

    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;

    let sa_key = KeyPair::generate()?;
    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
    };
    let write = |p: &Path, s: String| {
        std::fs::write(p, s).with_context(|| format!("writing {}", p.display()))
    };
    write(&pki.ca_cert, ca.pem())?;
    write(&pki.serving_cert, cert.pem())?;
    write(&pki.serving_key, key.serialize_pem())?;
    write(&pki.sa_key, sa_key.serialize_pem())?;
    write(&pki.sa_pub, sa_key.public_key_pem())?;
    Ok(pki)
}
