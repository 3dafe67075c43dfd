//! Request keys decide what replay serves: any method, path, query and body must give a key
//! without panicking; the canonical request line must be a fixed point (building the key again
//! from its parts gives the same canonical form); and the order of differently named query pairs
//! must not matter (a repeated name's values keep their order).
#![no_main]

use arbitrary::Arbitrary;
use ims_vcr::model::key::{MatchRules, RequestKey};
use libfuzzer_sys::fuzz_target;

/// The checks `tests/properties.rs` runs too.
#[path = "../../tests/util/oracle.rs"]
mod oracle;

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    path: String,
    query: Option<String>,
    body: Vec<u8>,
    ignore_query: Vec<String>,
    /// Drives the permutation of the query pairs.
    shuffle: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let rules = MatchRules {
        match_headers: vec![],
        ignore_query: input.ignore_query,
        volatile: Default::default(),
        shift_time: Vec::new(),
    };
    let key = |method: &str, path: &str, query: Option<&str>, body: &[u8]| {
        RequestKey::new(&rules, method, path, query, |_| vec![], body)
    };
    let first = key(
        &input.method,
        &input.path,
        input.query.as_deref(),
        &input.body,
    );

    // The request line splits back into its parts only for what hyper can deliver: a method
    // that is a token and a path with neither `?` nor line breaks.
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let path_ok = !input.path.contains(['?', '\r', '\n']);
    if is_token(&input.method) && path_ok {
        oracle::canonical_form_is_a_fixed_point(&rules, &first, &input.body);
    }

    if let Some(query) = &input.query {
        let mut pairs: Vec<&str> = query.split('&').collect();
        // A deterministic permutation driven by the input (Fisher–Yates).
        for i in (1..pairs.len()).rev() {
            let r = usize::from(input.shuffle.get(i).copied().unwrap_or(0));
            pairs.swap(i, r % (i + 1));
        }
        // Only differently named pairs may move: a repeated name's values are positional
        // (Glance pairs `sort_key` and `sort_dir` by position). Put each name's pairs back in
        // their original order.
        let name = |pair: &str| {
            // The decoded name, as the canonical form re-encodes it.
            let alone = RequestKey::new(
                &MatchRules::default(),
                "GET",
                "/",
                Some(pair),
                |_| vec![],
                b"",
            );
            let line = alone.request_line().to_owned();
            line.split_once('?')
                .map(|(_, q)| q.split_once('=').map_or(q, |(n, _)| n).to_owned())
        };
        let mut queues: std::collections::HashMap<_, std::collections::VecDeque<&str>> =
            std::collections::HashMap::new();
        for pair in query.split('&') {
            queues.entry(name(pair)).or_default().push_back(pair);
        }
        let pairs: Vec<&str> = pairs
            .iter()
            .map(|pair| {
                queues
                    .get_mut(&name(pair))
                    .and_then(std::collections::VecDeque::pop_front)
                    .expect("a permutation holds the same pairs")
            })
            .collect();
        let shuffled = pairs.join("&");
        let other = key(&input.method, &input.path, Some(&shuffled), &input.body);
        oracle::same_key(
            &other,
            &first,
            &format!("query order changed the key: {query:?} vs {shuffled:?}"),
        );
    }
});
