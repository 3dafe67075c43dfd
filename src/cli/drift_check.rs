//! `ims-vcr drift`: the recordings against the live endpoint, with the token from the
//! environment, stopped cleanly by a CI job's timeout.

use super::*;

pub(super) async fn drift(args: DriftArgs, config: &Config) -> Result<()> {
    let routes = upstream_routes(&args.upstream)?;
    let token = drift_token()?;
    if routes.iter().all(|(_, r)| r.credentials.is_none()) && token.is_none() {
        tracing::warn!(
            "neither AK/SK (HUAWEICLOUD_SDK_AK/_SK) nor {} is set: requests go unauthenticated, \
             and a real endpoint answers 401",
            drift::ENV_TOKEN
        );
    }
    let routes = Routes::new(&routes)?;
    let (recordings, source) = match Source::choose(args.store, args.cassettes, config)? {
        Source::Store(dir, _) => {
            // Load, then release the lock at once: drift never writes to the store.
            (
                readable_recordings(&dir)?,
                format!("--store {}", dir.display()),
            )
        }
        Source::Cassettes(dir, _) => {
            let (recordings, _rules) = cassette::read_dir(existing(&dir, "--cassettes")?)?;
            (recordings, format!("--cassettes {}", dir.display()))
        }
    };
    if recordings.is_empty() {
        return Err(Error::Config(format!(
            "{source}: no recordings, nothing to check"
        )));
    }
    let ignore = IgnoreRules::default().with_fields(args.ignore_fields);
    let sends = if args.unsafe_methods {
        drift::Sends::All
    } else {
        drift::Sends::SafeOnly
    };
    // A stop signal (what a CI job's timeout sends) ends the check with what it found so far.
    let mut signals = super::signals::Signals::install();
    let mut drifts = Vec::with_capacity(recordings.len());
    let stopped = tokio::select! {
        () = drift::run_into(&mut drifts, &recordings, &routes, &ignore, token.as_ref(), sends) => None,
        signal = signals.recv() => Some(signal),
    };
    output::report(&drift::render(&drifts))?;
    let breaking: usize = drifts.iter().map(drift::RequestDrift::breaking).sum();
    let unchecked = match stopped {
        Some(signal) => Some(format!(
            "stopped by signal {signal} after {} of {} requests; the others were not checked",
            drifts.len(),
            recordings.len()
        )),
        None => drift::unchecked_summary(&drifts),
    };
    if breaking > 0 {
        // A breaking change found is news about the API, whatever else could not be checked.
        let also = unchecked.map(|u| format!(" ({u})")).unwrap_or_default();
        return Err(Error::Verdict(format!(
            "drift found {breaking} breaking change{} against {}{also}",
            if breaking == 1 { "" } else { "s" },
            routes.origins().join(", ")
        )));
    }
    match unchecked {
        Some(why) => Err(Error::Unchecked(format!(
            "{why} ({})",
            routes.origins().join(", ")
        ))),
        None => Ok(()),
    }
}

/// `X-Auth-Token` for drift from `IMS_VCR_DRIFT_TOKEN` (tokens are never stored; unset or empty
/// means none). Marked sensitive so it is never logged.
pub(super) fn drift_token() -> Result<Option<HeaderValue>> {
    let Some(raw) = std::env::var_os(drift::ENV_TOKEN).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let mut value = raw
        .to_str()
        .and_then(|v| HeaderValue::from_str(v).ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "{} contains characters that cannot be sent in an HTTP header",
                drift::ENV_TOKEN
            ))
        })?;
    value.set_sensitive(true);
    Ok(Some(value))
}
