//! TLS to the state database. The driver reads `sslmode` (`disable`, `prefer`: the default,
//! `require`) from the URL; annoform reads libpq's `sslrootcert` itself, so a server whose
//! certificate a private CA signed is trusted by naming that CA's PEM file in the URL:
//! `postgres://…/db?sslmode=verify-full&sslrootcert=/etc/ssl/team-ca.pem`. The server's
//! certificate is always verified, against the web's root certificates (the ones reqwest
//! trusts) and that file: libpq's `verify-ca`/`verify-full` are read as `require`, and unlike
//! libpq's `require`, an unverifiable certificate is refused, never used unchecked.

use crate::state::error::{Result, StateError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A state URL split into what the driver reads and the CA file annoform reads.
#[derive(Debug, PartialEq)]
pub struct TlsUrl {
    /// The URL for the driver: without `sslrootcert`, `verify-*` modes as `require`.
    pub url: String,
    /// `sslrootcert`: a PEM file of certificates to trust besides the web's roots.
    pub root_cert: Option<PathBuf>,
}

impl TlsUrl {
    /// Splits a URL (`postgres://…?k=v&…`) or a key/value string (`host=… k=v`).
    pub fn split(url: &str) -> TlsUrl {
        let mut root_cert = None;
        let mut keep = |pair: &str| -> Option<String> {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslrootcert" => {
                    root_cert = Some(PathBuf::from(percent_decoded(v)));
                    None
                }
                "sslmode" if matches!(v, "verify-ca" | "verify-full") => {
                    Some("sslmode=require".into())
                }
                _ => Some(pair.to_string()),
            }
        };
        let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            match url.split_once('?') {
                None => url.to_string(),
                Some((base, query)) => {
                    let query: Vec<String> = query.split('&').filter_map(&mut keep).collect();
                    match query.is_empty() {
                        true => base.to_string(),
                        false => format!("{base}?{}", query.join("&")),
                    }
                }
            }
        } else {
            let parts: Vec<String> = url.split_whitespace().filter_map(&mut keep).collect();
            parts.join(" ")
        };
        TlsUrl { url, root_cert }
    }
}

/// `%XX` sequences decoded (a path in a URL query may be percent-encoded).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TLS connector: the web's root certificates, plus those of `root_cert`.
pub fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let bad = |reason: String| {
            StateError::Settings(format!(
                "`sslrootcert` of the state URL ({}): {reason}; name a PEM file of the CA certificate that signed the server's",
                path.display()
            ))
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("not PEM certificates: {e:?}")))?;
        if certs.is_empty() {
            return Err(bad("it holds no certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate in it is not usable: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Whether a connection failed because the server's certificate could not be verified.
pub fn untrusted(e: &postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let rustls_error = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| c.downcast_ref::<rustls::Error>());
        if matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_file_is_taken_out_of_the_url_and_verify_modes_read_as_require() {
        let split = TlsUrl::split(
            "postgres://u:p@db:5432/team?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            split,
            TlsUrl {
                url: "postgres://u:p@db:5432/team?sslmode=require&connect_timeout=3".into(),
                root_cert: Some("/etc/ca.pem".into()),
            }
        );
        let split = TlsUrl::split("postgres://u:p@db/team?sslrootcert=/ca.pem");
        assert_eq!(split.url, "postgres://u:p@db/team");
        let split = TlsUrl::split("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem");
        assert_eq!(split.url, "host=db user=u sslmode=require");
        assert_eq!(split.root_cert, Some("/ca.pem".into()));
        let plain = "postgres://u:p@db/team?sslmode=disable";
        assert_eq!(TlsUrl::split(plain).url, plain);
        assert_eq!(TlsUrl::split(plain).root_cert, None);
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_settings_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = connector(Some(&missing)).err().unwrap().to_string();
        assert!(e.contains("nope.pem") && e.contains("cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = connector(Some(&empty)).err().unwrap().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
    }
}
