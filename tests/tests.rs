//! Integration tests: the proxy in-process and the `ims-vcr` binary, against a fake IMS upstream
//! speaking real TLS on loopback. Nothing here reaches a network beyond 127.0.0.1.

// Shared harness: the fake IMS upstream, HTTP helpers, proxy starters.
mod util;

// Record through the proxy, then replay with the upstream gone.
mod record_replay;
// Upstream failures: 502 with a reason, nothing stored.
mod upstream_failures;
// Credentials never reach the store or a cassette.
mod credentials;
// Export/import: determinism, validation, path safety.
mod cassettes;
// The binary as a user runs it: listening line, signals, kill -9, errors.
mod cli;
// The shipped sample cassettes are a real recording of the stand-in.
mod samples;
// AK/SK re-signing and absolute-URL hygiene.
mod signing;
// The signature-verifying gateway against the SDK's vectors and tampered requests.
mod verifier;
// Redaction, the leak gate and `verify`.
mod redaction;
// Modes, single-flight, sequences, match rules, verdicts, control API, latency and faults.
mod modes;
// Auto mode's coalesced misses: waiters replay the stored answer, never another client's live one.
mod coalescing;
// Hardening, one theme a file under tests/hardening/.
mod hardening {
    // kill -9 of the recorder under load: every answered request survives.
    mod crash;
    // Stores held by another process, damaged stores and cassettes: refused by name.
    mod damage;
    // Oversized, stalling, malformed, pipelined and vanishing clients.
    mod hostile_clients;
    // Upstreams that drip, never end, reset, talk garbage or present bad certificates.
    mod hostile_upstreams;
    // Secrets never reach logs or answers.
    mod secrets;
    // The control API refuses DNS rebinding and cross-site requests from a browser.
    mod control;
    // Loopback by default, and the optional TLS listener.
    mod listener;
    // Flags naming files and URLs with hostile values; a closed or full stdout and stderr.
    mod cli_inputs;
}
// The official Python clients (huaweicloudsdkims, openstacksdk) through record and replay.
mod interop;
// The Python wheel (maturin `bin`), its pytest plugin under pytest-xdist, the pre-commit hook.
mod python_plugin;
// ls, show, completions, HAR export/import.
mod ecosystem;
// Drift: recorded answers against the live endpoint.
mod drift;
// Sessions: per-test recordings, cursors, listeners and verdicts in one proxy.
mod sessions;
// `ims-vcr run -- CMD`: modes, exit statuses, signals, --verify-replay.
mod run_command;
// Several upstreams behind one listener: routes by path prefix.
mod routes;
// Binary bodies byte for byte and HEAD lengths, in every mode.
mod answer_bytes;
// --max-answer-body: answers over the cap refused naming the flag, served once it is raised.
mod answer_cap;
// Identity traffic: tokens, sign-in secrets and handed-out keys never stored; placeholder tokens.
mod identity;
// Properties over generated inputs (cassette round trip, keys, redaction, pseudonyms, bodies).
mod properties;
// Second hardening round: positional queries, trailing bytes, symlinks, odd paths, latency, credentials outside headers, escapes, verify --deny.
mod hardening_round2;
// Third hardening round: match rules from files, gate misses, redaction by content, pack and journal integrity, deep JSON, 1xx.
mod hardening_round3;
// What trips a new user in the first hour (one test per trap, for every command of its kind).
mod first_hour;
// The CI recipes of docs/guide.md, run as written.
mod recipes;
