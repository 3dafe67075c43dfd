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
// Redaction, the leak gate and `verify`.
mod redaction;
// Modes, single-flight, sequences, match rules, verdicts, control API, latency and faults.
mod modes;
// Faults, hostile clients and upstreams, kill -9 under load, damaged stores, TLS listener.
mod hardening;
// The official Python clients (huaweicloudsdkims, openstacksdk) through record and replay.
mod interop;
// ls, show, completions, HAR export/import.
mod ecosystem;
// Drift: recorded answers against the live endpoint.
mod drift;
// Properties over generated inputs (cassette round trip, keys, redaction, pseudonyms, bodies).
mod properties;
// What trips a new user in the first hour (one test per trap, for every command of its kind).
mod first_hour;
