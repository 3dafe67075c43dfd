//! Files the user names as input besides recordings (`--config`, `--tls-cert`, `--tls-key`,
//! `--upstream-ca`, `--route-ca`, `--deny-file`): a regular file of at most
//! [`MAX_INPUT_FILE`] bytes, else an error naming the flag and the file. A device, FIFO or socket
//! has no size to check and may never end (`/dev/zero`, `<(yes)`): read whole it would exhaust
//! memory, so it is refused before anything reads it. (Cassettes and HAR files have their own
//! limits, in `formats`.)

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Largest settings, certificate, key or deny-list file read: 16 MiB, far beyond any real one
/// (a CA bundle of every public root is about 250 KiB).
pub(crate) const MAX_INPUT_FILE: u64 = 16 * 1024 * 1024;

/// Checks that `path`, named by `flag`, is a regular file (a symlink is followed) of at most
/// [`MAX_INPUT_FILE`] bytes. A missing or unreadable file is reported here too, naming `flag`.
pub(crate) fn check(flag: &str, path: &Path) -> Result<()> {
    let bad = |reason: String| Error::Config(format!("{flag} {}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.is_dir() {
        return Err(bad("is a folder, not a file".into()));
    }
    if !meta.is_file() {
        return Err(bad(format!(
            "is {}, not a regular file: it is read whole, and this one may never end; give a \
             file (at most {} MiB)",
            super::commands::special_file_kind(&meta.file_type()),
            MAX_INPUT_FILE >> 20
        )));
    }
    if meta.len() > MAX_INPUT_FILE {
        return Err(too_large(flag, path));
    }
    Ok(())
}

/// The text of `path`, named by `flag`, after [`check`]; read with a bound too, so a file that
/// grows meanwhile is refused as well.
pub(crate) fn read_text(flag: &str, path: &Path) -> Result<String> {
    let bytes = read_bytes(flag, path)?;
    String::from_utf8(bytes)
        .map_err(|e| Error::Config(format!("{flag} {}: not UTF-8 text ({e})", path.display())))
}

/// The bytes of `path`, named by `flag`, after [`check`]; read with a bound too, so a file that
/// grows meanwhile is refused as well.
fn read_bytes(flag: &str, path: &Path) -> Result<Vec<u8>> {
    check(flag, path)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_INPUT_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::Config(format!("{flag} {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(too_large(flag, path));
    }
    Ok(bytes)
}

/// Checks that the CA file `path` (given to `flag`) holds PEM certificates that can be
/// trusted, before any upstream client is built from it, so the error names the flag as the
/// user gave it: `shown` is the flag and its value (`--route-ca /v3=ca.pem`), not the
/// `--upstream-ca` the upstream client would name.
pub(crate) fn check_ca(flag: &str, shown: &str, path: &Path) -> Result<()> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let bytes = read_bytes(flag, path)?;
    let bad = |reason: String| Error::Config(format!("{shown}: {reason}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate found in the file".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

fn too_large(flag: &str, path: &Path) -> Error {
    Error::Config(format!(
        "{flag} {}: larger than {} MiB, the most ims-vcr reads from such a file",
        path.display(),
        MAX_INPUT_FILE >> 20
    ))
}
