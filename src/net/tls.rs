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
    let cert_pem = read_bounded("--tls-cert", cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("--tls-cert", cert, &reason(e, "certificate")))?;
    if certs.is_empty() {
        return Err(bad(
            "--tls-cert",
            cert,
            "no PEM certificate found in the file",
        ));
    }
    let key_pem = read_bounded("--tls-key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
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

/// Largest PEM file read (16 MiB, as for every input file the command line names): a chain or
/// key is a few KiB, and a file that never ends (`/dev/zero`) must not exhaust memory.
const MAX_PEM_FILE: u64 = 16 * 1024 * 1024;

/// The bytes of `path` (named by `flag`), refused beyond [`MAX_PEM_FILE`].
fn read_bounded(flag: &str, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| bad(flag, path, &e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(bad(
            flag,
            path,
            &format!("larger than {} MiB; not a PEM file", MAX_PEM_FILE >> 20),
        ));
    }
    Ok(bytes)
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
