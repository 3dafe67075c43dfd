//! Where commands find their recordings: the store and cassette folders from flags, then
//! `ims-vcr.toml`, then the defaults; and, for the commands that only read, which of the two a
//! user in this folder means.

use super::*;

/// `--store`, else `store` from the config, else the default.
pub(super) fn store_path(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.or_else(|| config.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

/// Where a reading command (`replay`, `ls`, `show`, `drift`) takes its recordings from.
#[derive(Debug)]
pub(super) enum Source {
    /// A store folder, and whether `--store` named it.
    Store(PathBuf, bool),
    /// A cassette folder, and whether `--cassettes` named it.
    Cassettes(PathBuf, bool),
}

impl Source {
    /// `--store` or `--cassettes` when given. Otherwise the cassette folder (`cassettes` in
    /// ims-vcr.toml, else `cassettes`) when there is one, else the store (`store` in
    /// ims-vcr.toml, else `.ims-vcr/store`) when there is one, which is what a first `record`
    /// leaves; the choice is logged. With neither, the error says what to do.
    pub(super) fn choose(
        store: Option<PathBuf>,
        cassettes: Option<PathBuf>,
        config: &Config,
    ) -> Result<Source> {
        match (store, cassettes) {
            (Some(store), _) => return Ok(Source::Store(store, true)),
            (None, Some(cassettes)) => return Ok(Source::Cassettes(cassettes, true)),
            (None, None) => {}
        }
        let (cassettes, store) = (cassettes_path(None, config), store_path(None, config));
        // Something by that name that is no folder (a file, a link to nothing) is said, not
        // passed over for the store: the user may well have meant it.
        if !cassettes.is_dir() && cassettes.symlink_metadata().is_ok() {
            let what = match cassettes.metadata() {
                Ok(_) => "it is not a folder",
                Err(_) => "it is a link to nothing",
            };
            return Err(Error::Config(format!(
                "{}: {what}, so there are no cassettes to read there; pass --cassettes DIR, or --store DIR to read a store",
                cassettes.display()
            )));
        }
        if cassettes.is_dir() {
            tracing::info!(
                "reading the cassettes in {} (neither --store nor --cassettes given)",
                cassettes.display()
            );
            Ok(Source::Cassettes(cassettes, false))
        } else if Store::is_at(&store) {
            tracing::info!(
                "reading the store {} (neither --store nor --cassettes given, and there is no {} folder)",
                store.display(),
                cassettes.display()
            );
            Ok(Source::Store(store, false))
        } else {
            // A path from the settings file is said to be from there: a typo in it is the
            // likeliest cause.
            let from = |set: bool, key: &str| match (set, &config.source) {
                (true, Some(file)) => format!(", `{key}` in {}", file.display()),
                _ => String::new(),
            };
            Err(Error::Config(format!(
                "nothing to read here: no cassette folder ({}{}) and no store ({}{}); record \
                 first (`ims-vcr record --upstream URL`), or pass --store DIR or --cassettes DIR",
                cassettes.display(),
                from(config.cassettes.is_some(), "cassettes"),
                store.display(),
                from(config.store.is_some(), "store"),
            )))
        }
    }

    /// The flags that name this source as the user gave them ("" for the default), for hints.
    pub(super) fn flags(&self) -> String {
        match self {
            Source::Store(dir, true) => format!("--store {}", dir.display()),
            Source::Cassettes(dir, true) => format!("--cassettes {}", dir.display()),
            _ => String::new(),
        }
    }
}

/// `--cassettes`, else `cassettes` from the config, else the default.
pub(super) fn cassettes_path(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.or_else(|| config.cassettes.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CASSETTES))
}
