//! Store format 3 (and later) from format 2: the log moved from sled's `log` tree to its own file.

use super::*;

/// Moves a format-2 store's log from sled's `log` tree to the log's file, as any ims-vcr that reads
/// the file opens it. The groups are copied in order into the emptied file and synced; then the
/// store is marked with this ims-vcr's format, the tree emptied and sled flushed. Until the mark is
/// in sled the file is not the log, so an open after a crash before it copies again; one after it
/// only empties the tree.
pub(super) fn adopt_log_tree(
    path: &Path,
    db: &sled::Db,
    meta: &sled::Tree,
    format: Option<u32>,
    file: &LogFile,
) -> Result<()> {
    let store_err = |e| store_error(path, e);
    let log_err = |e| Error::io(file.path(), e);
    let tree = db.open_tree("log").map_err(store_err)?;
    if tree.is_empty() {
        return Ok(());
    }
    // Marked format 3 or later already (by this ims-vcr or one of format 3): the file was whole
    // and synced before that mark, and the tree's emptying (key by key) was cut short.
    if format.is_some_and(|f| f >= 3) {
        tree.clear().map_err(store_err)?;
        return db.flush().map(drop).map_err(store_err);
    }
    file.clear().map_err(log_err)?;
    let mut at = 0;
    let mut groups = 0;
    // A group under a key of another shape is copied too: what it holds is read (and named
    // when it is no records) as any group is.
    for group in tree.iter().values() {
        at = file.append(at, &group.map_err(store_err)?).map_err(log_err)?;
        groups += 1;
    }
    file.sync().map_err(log_err)?;
    meta.insert("format", &STORE_FORMAT.to_be_bytes())
        .map_err(store_err)?;
    meta.insert(LOG_END_KEY, &at.to_be_bytes())
        .map_err(store_err)?;
    tree.clear().map_err(store_err)?;
    db.flush().map_err(store_err)?;
    tracing::info!(
        store = %path.display(),
        groups,
        bytes = at,
        "moved the store's log from sled to its own file (store format {STORE_FORMAT})"
    );
    Ok(())
}
