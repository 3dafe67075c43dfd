//! The optional HTTPS listener (`--tls-cert`/`--tls-key`): loads a PEM certificate chain and its
//! private key into a rustls server config that offers HTTP/2 and HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// The acceptor for `cert` (PEM chain, leaf first) and `key` (PEM private key: PKCS#8, PKCS#1 or
/// SEC1). Errors name the flag and the file.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| bad("--tls-cert", cert, &reason(e, "certificate")))?;
    if certs.is_empty() {
        return Err(bad(
            "--tls-cert",
            cert,
            "no PEM certificate found in the file",
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad("--tls-key", key, &reason(e, "private key")))?;
    // One crypto provider, chosen explicitly: rustls panics at `builder()` when two are linked.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            Error::Config(format!(
                "--tls-cert {} and --tls-key {} cannot be used together: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn reason(error: pem::Error, item: &str) -> String {
    match error {
        pem::Error::NoItemsFound => format!("no PEM {item} found in the file"),
        pem::Error::Io(e) => e.to_string(),
        other => format!("not a valid PEM file: {other}"),
    }
}

fn bad(flag: &str, path: &Path, reason: &str) -> Error {
    Error::Config(format!("{flag} {}: {reason}", path.display()))
}
