//! Outbound TLS of an HTTP destination: which servers it trusts and which
//! client certificate it shows.
//!
//! `tls = { ca_file = "ca.pem" }` adds a CA bundle to the system's roots
//! (a destination behind a private CA still works after its certificate is
//! renewed by a public one, and vice versa); `ca_only = true` trusts the
//! bundle alone, so a certificate from any public CA is refused.
//! `client_cert` + `client_key` present a client certificate (mTLS).
//! Files are read when the config loads, so a missing or malformed file is
//! a config error naming it, not a failure at the first delivery.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `tls = { ... }` on an `http` destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of CA certificates trusted for this destination, on top of
    /// the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Trust `ca_file` only, not the system's roots (pins the destination
    /// to a private CA).
    #[serde(default)]
    pub ca_only: bool,
    /// PEM certificate chain presented to the destination (leaf first).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

impl TlsConfig {
    /// Makes relative paths absolute with `resolve` (the config's folder).
    pub fn resolve_paths(&mut self, resolve: impl Fn(&Path) -> PathBuf) {
        for p in [
            &mut self.ca_file,
            &mut self.client_cert,
            &mut self.client_key,
        ]
        .into_iter()
        .flatten()
        {
            *p = resolve(p);
        }
    }

    /// Reads every file and checks the combination, without the system's
    /// roots: what `Config::validate` runs.
    pub fn check(&self) -> Result<(), String> {
        client_config(Some(self), false).map(|_| ())
    }
}

/// The rustls client config of a destination, and how many roots it trusts.
/// `with_system_roots` is false only for checking the files.
pub fn client_config(
    tls: Option<&TlsConfig>,
    with_system_roots: bool,
) -> Result<(rustls::ClientConfig, usize), String> {
    let default = TlsConfig::default();
    let tls = tls.unwrap_or(&default);
    if tls.ca_only && tls.ca_file.is_none() {
        return Err("ca_only = true needs a ca_file".to_owned());
    }
    let mut roots = RootCertStore::empty();
    if with_system_roots && !tls.ca_only {
        // Unreadable entries in the system store are skipped, as curl does;
        // a destination that needs them fails its handshake visibly.
        roots.add_parsable_certificates(system_roots().iter().cloned());
    }
    if let Some(path) = &tls.ca_file {
        let certs = read_certs(path, "ca_file")?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "ca_file {}: a certificate cannot be used as a trust anchor: {e}",
                    path.display()
                )
            })?;
        }
    }
    let root_count = roots.len();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS set-up: {e}"))?
    .with_root_certificates(roots);
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_cert")?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("client_key {}: {}", key.display(), pem_error(&e)))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                format!(
                    "client_cert {} with client_key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err("client_cert needs a client_key".to_owned()),
        (None, Some(_)) => return Err("client_key needs a client_cert".to_owned()),
    };
    Ok((config, root_count))
}

/// The system's root certificates, read once per process: every https
/// destination needs them, and reading the store takes a while.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the expected kind in the file".to_owned()
        }
        other => format!("not valid PEM: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    fn ca_and_client(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params
            .self_signed(&ca_key)
            .unwrap_or_else(|e| panic!("{e}"));
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let issuer = rcgen::Issuer::new(params, ca_key);
        let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"))
            .signed_by(&key, &issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            write(dir, "ca.pem", &ca.pem()),
            write(dir, "client.pem", &cert.pem()),
            write(dir, "client.key", &key.serialize_pem()),
        )
    }

    #[test]
    fn ca_and_client_certificate_load() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (ca, cert, key) = ca_and_client(dir.path());
        let tls = TlsConfig {
            ca_file: Some(ca),
            ca_only: true,
            client_cert: Some(cert),
            client_key: Some(key),
        };
        let (config, roots) = client_config(Some(&tls), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(roots, 1, "ca_only trusts the bundle alone");
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn file_errors_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (ca, cert, key) = ca_and_client(dir.path());
        let missing = dir.path().join("nope.pem");
        let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
        let cases = [
            (
                TlsConfig {
                    ca_file: Some(missing.clone()),
                    ..Default::default()
                },
                format!("ca_file {}", missing.display()),
            ),
            (
                TlsConfig {
                    ca_file: Some(garbage.clone()),
                    ..Default::default()
                },
                format!("ca_file {}: no PEM certificate", garbage.display()),
            ),
            (
                TlsConfig {
                    client_cert: Some(cert.clone()),
                    client_key: Some(ca.clone()),
                    ..Default::default()
                },
                format!("client_key {}", ca.display()),
            ),
            (
                TlsConfig {
                    client_cert: Some(cert.clone()),
                    ..Default::default()
                },
                "client_cert needs a client_key".to_owned(),
            ),
            (
                TlsConfig {
                    ca_only: true,
                    ..Default::default()
                },
                "ca_only = true needs a ca_file".to_owned(),
            ),
        ];
        for (tls, want) in cases {
            let err = tls.check().expect_err(&want);
            assert!(err.contains(&want), "{err:?} should contain {want:?}");
        }
        // A key that does not belong to the certificate.
        let other = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let wrong_key = write(dir.path(), "other.key", &other.serialize_pem());
        let err = TlsConfig {
            client_cert: Some(cert),
            client_key: Some(wrong_key),
            ..Default::default()
        }
        .check()
        .expect_err("mismatched key");
        assert!(
            err.contains("client_cert") && err.contains("other.key"),
            "{err}"
        );
        let _ = key;
    }
}
