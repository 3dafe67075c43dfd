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
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        // An encrypted key is a key, just not one rustls reads without its passphrase.
        let encrypted = memchr::memmem::find(&key_pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----").is_some()
            || memchr::memmem::find(&key_pem, b"Proc-Type: 4,ENCRYPTED").is_some();
        // An old-style one (`Proc-Type: 4,ENCRYPTED` in an RSA section) fails as base64.
        match encrypted {
            true => bad(
                "--tls-key",
                key,
                "the private key is encrypted (a passphrase protects it), which ims-vcr cannot \
                 read; decrypt it first (`openssl pkey -in KEY -out PLAIN.pem`)",
            ),
            false => bad("--tls-key", key, &reason(e, "private key")),
        }
    })?;
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
        // Named as text: the error's own words give the marker as a list of byte values.
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "not a valid PEM file: its {:?} section has no END line (is the file cut short?)",
            String::from_utf8_lossy(&end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "not a valid PEM file: a section's first line is not a BEGIN line ({:?})",
            String::from_utf8_lossy(&line)
        ),
        other => format!("not a valid PEM file: {other}"),
    }
}

fn bad(flag: &str, path: &Path, reason: &str) -> Error {
    Error::Config(format!("{flag} {}: {reason}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate and its key, as PEM.
    fn pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    fn refused(cert: &str, key: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        match acceptor(&cert_path, &key_path) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_good_pair_is_accepted() {
        let (cert, key) = pair();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c"), cert).unwrap();
        std::fs::write(dir.path().join("k"), key).unwrap();
        assert!(acceptor(&dir.path().join("c"), &dir.path().join("k")).is_ok());
    }

    #[test]
    fn an_encrypted_key_and_a_cut_certificate_are_said_to_be_so() {
        let (cert, key) = pair();
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = refused(&cert, encrypted);
        assert!(e.contains("--tls-key") && e.contains("encrypted"), "{e}");
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
        let e = refused(&cert, legacy);
        assert!(e.contains("--tls-key") && e.contains("encrypted"), "{e}");
        let cut = &cert[..cert.len() / 2];
        let e = refused(cut, &key);
        assert!(e.contains("--tls-cert") && e.contains("\"CERTIFICATE\" section has no END"), "{e}");
        assert!(!e.contains("[45, 45"), "the marker as text, not bytes: {e}");
    }
}
