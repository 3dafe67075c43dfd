//! Cassette files are user input (`import`, `replay --cassettes`): any bytes must give a
//! recording or an error, never a panic, and whatever parses must render and parse back to the
//! same recording and rules, and render to the same bytes again.
#![no_main]

use std::path::Path;

use ims_vcr::formats::cassette::parse;
use libfuzzer_sys::fuzz_target;

/// The checks `tests/properties.rs` runs too.
#[path = "../../tests/util/oracle.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| {
    let Ok((recording, rules)) = parse(Path::new("fuzz.json"), data) else {
        return;
    };
    oracle::cassette_round_trips(&recording, &rules);
});
