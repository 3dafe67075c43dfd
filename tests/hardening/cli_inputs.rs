//! Hostile values for the flags that name files and URLs, and hostile ends of the output: each
//! is refused by name (exit 1 or 2) or ends quietly, never with a panic, and nothing the user
//! named is lost.

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use crate::util::*;

/// A store holding the shipped cassettes, at `dir/s`.
fn imported_store(dir: &Path) {
    shipped_cassettes(dir);
    let (code, err) = run(&["import", "--store", "s", "cassettes"], dir);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn har_export_refuses_an_out_that_is_a_fifo_or_a_socket_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    imported_store(dir.path());
    let fifo = dir.path().join("pipe.har");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    let socket = dir.path().join("socket.har");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (out, kind) in [("pipe.har", "a FIFO"), ("socket.har", "a socket")] {
        let (code, err) = run(
            &["export", "--store", "s", "--format", "har", "--out", out],
            dir.path(),
        );
        assert_eq!(code, 1, "{out}: {err}");
        assert!(
            err.contains(&format!("--out {out}: is {kind}")),
            "{out}: {err}"
        );
        assert!(!err.contains("exported"), "{out}: {err}");
    }
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket(), "the socket was replaced");
    // No temporary file left behind either, and a regular file is still replaced.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    std::fs::write(dir.path().join("old.har"), "old").unwrap();
    let (code, err) = run(
        &[
            "export", "--store", "s", "--format", "har", "--out", "old.har",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(dir.path().join("old.har"))
            .unwrap()
            .contains("\"log\"")
    );
}
