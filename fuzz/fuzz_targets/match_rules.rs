//! Match rules are read from cassettes, stores and `ims-vcr.toml`: any JSON must give rules or an
//! error, never a panic; rules that validate never let a credential header into a request key,
//! and keying any request under them never panics.
#![no_main]

use ims_vcr::model::headers::is_credential;
use ims_vcr::model::key::{MatchRules, RequestKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let (rules, request) = data.split_at(split);
    let Ok(rules) = serde_json::from_slice::<MatchRules>(rules) else {
        return;
    };
    if rules.validate().is_err() {
        return;
    }
    assert!(
        !rules.match_headers.iter().any(|h| is_credential(h)),
        "validated rules match on a credential header: {rules:?}"
    );
    let text = String::from_utf8_lossy(&request[1..]);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    let key = RequestKey::new(
        &rules,
        "GET",
        path,
        Some(query),
        |name| {
            if name == "x-project-id" {
                vec!["p"]
            } else {
                vec![]
            }
        },
        request,
    );
    let _ = key.canonical();
});
