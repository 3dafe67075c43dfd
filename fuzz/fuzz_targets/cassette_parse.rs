//! Cassette files are user input (`import`, `replay --cassettes`): any bytes must give a
//! recording or an error, never a panic, and whatever parses must render and parse back to the
//! same recording and rules, and render to the same bytes again.
#![no_main]

use std::path::Path;

use ims_vcr::formats::cassette::{parse, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    let Ok((recording, rules)) = parse(path, data) else {
        return;
    };
    let rendered = render(&recording, &rules);
    let (again, again_rules) = parse(path, &rendered).unwrap_or_else(|e| {
        panic!(
            "a rendered cassette does not parse: {e}\n{}",
            String::from_utf8_lossy(&rendered)
        )
    });
    assert_eq!(again, recording, "render → parse changed the recording");
    assert_eq!(again_rules, rules, "render → parse changed the match rules");
    assert_eq!(
        render(&again, &again_rules),
        rendered,
        "rendering is not deterministic"
    );
});
