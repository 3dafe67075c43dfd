//! HAR files are user input (`import FILE.har`): any bytes must give recordings or an error
//! naming the entry, never a panic, and whatever imports must export and import back to the
//! same recordings.
#![no_main]

use std::path::Path;

use ims_vcr::formats::har::{from_har, to_har};
use ims_vcr::model::key::MatchRules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = MatchRules::default();
    let Ok(recordings) = from_har(Path::new("fuzz.har"), data, &rules, None) else {
        return;
    };
    let exported = to_har(&recordings).to_string();
    let back = from_har(Path::new("fuzz.har"), exported.as_bytes(), &rules, None)
        .expect("an exported HAR imports");
    assert_eq!(
        back, recordings,
        "HAR export -> import changed the recordings"
    );
});
