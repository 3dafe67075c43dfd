//! `ims-vcr ls` and `ims-vcr show`: what a store or cassette folder holds, for people (a table,
//! pretty answers) and for scripts (`--json`).

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::interaction::{Body, RecordedRequest};
use crate::model::recording::Recording;
use crate::tools::{escape_controls, escape_json_text};

/// The path and query as `ls` lists them: as recorded, not canonically encoded
/// (`sort=name:asc,status:desc`, not `name%3Aasc%2Cstatus%3Adesc`).
fn listed_path(request: &RecordedRequest) -> String {
    match &request.query {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.clone(),
    }
}

/// The header lines of a key's canonical form (`x-project-id: p1`): the headers the match rules
/// read, and a conditional request's; two recordings of one path may differ only there.
fn matched_headers(recording: &Recording) -> Vec<&str> {
    (recording.key.canonical().lines().skip(1))
        .filter(|line| !line.starts_with("body sha256:") && !line.starts_with("session: "))
        .collect()
}

/// The PATH cell of `ls`: the path and query, and the matched headers in brackets.
fn path_cell(row: &Value) -> String {
    let path = row["path"].as_str().unwrap_or("");
    match row["headers"].as_array() {
        Some(headers) => {
            let headers: Vec<&str> = headers.iter().filter_map(Value::as_str).collect();
            escape_controls(&format!("{path} [{}]", headers.join("; "))).into_owned()
        }
        None => escape_controls(path).into_owned(),
    }
}

/// One line per recorded request.
fn rows(recordings: &[Recording]) -> Vec<Value> {
    let mut rows: Vec<Value> = recordings
        .iter()
        .map(|r| {
            let first = &r.answers[0];
            let statuses: Vec<u16> = r.answers.iter().map(|a| a.response.status).collect();
            let mut row = json!({
                "key": r.key.hex()[..12],
                "session": r.key.session(),
                "method": first.request.method,
                "path": listed_path(&first.request),
                "answers": r.answers.len(),
                "statuses": statuses,
                "recorded_at": first.response.recorded_at,
            });
            let headers = matched_headers(r);
            if !headers.is_empty() {
                row["headers"] = json!(headers);
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| {
        (a["session"].as_str(), a["path"].as_str(), a["method"].as_str()).cmp(&(
            b["session"].as_str(),
            b["path"].as_str(),
            b["method"].as_str(),
        ))
    });
    rows
}

/// The table (or JSON) of recorded requests, for standard output, and the count line for
/// standard error (`3 requests, 4 answers`; none with JSON).
pub fn ls(recordings: &[Recording], as_json: bool) -> (String, Option<String>) {
    use std::fmt::Write as _;
    let rows = rows(recordings);
    if as_json {
        let json = serde_json::to_string_pretty(&rows).expect("rows serialise");
        return (format!("{}\n", escape_json_text(&json)), None);
    }
    let statuses = |row: &Value| {
        let codes: Vec<u64> = row["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        run_lengths(&codes)
    };
    let statuses_width = rows
        .iter()
        .map(|r| statuses(r).len())
        .max()
        .unwrap_or(0)
        .max("STATUSES".len());
    let width = rows
        .iter()
        .map(|r| path_cell(r).len())
        .max()
        .unwrap_or(4)
        .clamp(4, 80);
    // The SESSION column appears only when a recording is in a named session, so a store
    // without sessions lists as it always did.
    let sessions = rows
        .iter()
        .filter_map(|r| r["session"].as_str())
        .map(|s| s.len())
        .max();
    let session_column = |row: Option<&Value>| match (sessions, row) {
        (None, _) => String::new(),
        (Some(w), None) => format!("{:<w$}  ", "SESSION", w = w.max(7)),
        (Some(w), Some(row)) => format!(
            "{:<w$}  ",
            escape_controls(row["session"].as_str().unwrap_or("-")),
            w = w.max(7)
        ),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{:<12}  {:<7}  {:<width$}  {:>7}  {:<statuses_width$}  RECORDED-AT",
        session_column(None),
        "KEY",
        "METHOD",
        "PATH",
        "ANSWERS",
        "STATUSES"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "{}{:<12}  {:<7}  {:<width$}  {:>7}  {:<statuses_width$}  {}",
            session_column(Some(row)),
            escape_controls(row["key"].as_str().unwrap_or("")),
            escape_controls(row["method"].as_str().unwrap_or("")),
            path_cell(row),
            row["answers"].as_u64().unwrap_or(0),
            statuses(row),
            escape_controls(row["recorded_at"].as_str().unwrap_or("")),
        );
    }
    let answers = recordings.iter().map(|r| r.answers.len()).sum::<usize>();
    let counts = format!(
        "{}, {}\n",
        crate::model::count(rows.len(), "request", "requests"),
        crate::model::count(answers, "answer", "answers")
    );
    (out, Some(counts))
}

/// The statuses of a request's answers in order, a run of one status written once with its
/// count (`200x3,404`), so a polled request with many answers keeps the table's columns.
fn run_lengths(codes: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let run = codes[i..].iter().take_while(|&&c| c == codes[i]).count();
        out.push(match run {
            1 => codes[i].to_string(),
            n => format!("{}x{n}", codes[i]),
        });
        i += run;
    }
    out.join(",")
}

/// `wanted` (`METHOD /path?query`, or a path) as a request key writes its request line, and
/// whether it named the method (a path alone is keyed as a `GET`'s); `None` when it is neither.
fn canonical_line(wanted: &str) -> Option<(bool, String)> {
    let (with_method, method, target) = match wanted.split_once(' ') {
        Some((method, target)) => (true, method, target.trim_start()),
        None => (false, "GET", wanted),
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    if !path.starts_with('/') {
        return None;
    }
    let request = crate::model::interaction::RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers: Vec::new(),
        body: None,
        session: None,
    };
    let key = crate::model::key::RequestKey::of_recorded(&crate::model::key::MatchRules::default(), &request).ok()?;
    Some((with_method, key.request_line().to_owned()))
}

/// What `show` prints: every answer of the request `wanted` names: a key prefix, `METHOD /path?query`, or a
/// path (when only one method was recorded for it). With `session`, only that session's
/// recordings are considered (`""`: the default session's). `ls` is the command that lists the
/// same recordings, for the hint when nothing or several match.
pub fn show(recordings: &[Recording], wanted: &str, session: Option<&str>, ls: &str) -> Result<String> {
    let wanted = wanted.trim();
    // The request line as a request key reads it (`a+b` as `a%20b`, `%c3%bc` as `%C3%BC`, the
    // query's names in order), as replay would match it.
    let canonical = canonical_line(wanted);
    let matches: Vec<&Recording> = recordings
        .iter()
        .filter(|r| session.is_none_or(|s| r.key.session().unwrap_or("") == s))
        .filter(|r| {
            let line = r.key.request_line();
            let path = line.split_once(' ').map_or(line, |(_, p)| p);
            // As `ls` lists it too.
            let recorded = r.answers.first().map(|a| listed_path(&a.request));
            let as_listed = recorded.as_deref().is_some_and(|recorded| {
                let method = line.split(' ').next().unwrap_or_default();
                recorded == wanted || wanted.strip_prefix(method).map(str::trim_start) == Some(recorded)
            });
            let canonically = canonical.as_ref().is_some_and(|(with_method, c)| match with_method {
                true => line == c,
                false => c.split_once(' ').is_some_and(|(_, p)| p == path || path.split('?').next() == Some(p)),
            });
            r.key.hex().starts_with(&wanted.to_ascii_lowercase())
                || line == wanted
                || canonically
                || path == wanted
                || path.split('?').next() == Some(wanted)
                || as_listed
        })
        .collect();
    let recording = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::NoMatch(format!(
                "show {wanted:?}: no recorded request matches; `{ls}` lists them"
            )));
        }
        many => {
            // Each told apart: its key, and what besides the line keys it (matched headers).
            let lines: Vec<String> = many
                .iter()
                .map(|r| {
                    let headers = matched_headers(r);
                    let mut line = format!("{} [key {}]", r.key.request_line(), &r.key.hex()[..12]);
                    if !headers.is_empty() {
                        line.push_str(&format!(" with {}", headers.join("; ")));
                    }
                    if let Some(s) = r.key.session() {
                        line.push_str(&format!(" (session {s})"));
                    }
                    line
                })
                .map(|line| escape_controls(&line).into_owned())
                .collect();
            return Err(Error::NoMatch(format!(
                "show {wanted:?}: {} requests match ({}); use the key from `{ls}`",
                many.len(),
                lines.join(", ")
            )));
        }
    };
    Ok(render_show(recording))
}

/// What `show` prints for one recording, every recorded string escaped (see [`escape_controls`]).
fn render_show(recording: &Recording) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  (key {})",
        escape_controls(recording.key.request_line()),
        &recording.key.hex()[..12]
    );
    for (i, answer) in recording.answers.iter().enumerate() {
        let response = &answer.response;
        let _ = writeln!(
            out,
            "\n--- answer {} of {}: {} (recorded {} from {}, {} ms)",
            i + 1,
            recording.answers.len(),
            response.status,
            escape_controls(&response.recorded_at),
            escape_controls(&response.upstream),
            response.latency_ms
        );
        for (name, value) in &response.headers {
            let _ = writeln!(out, "{}: {}", escape_controls(name), escape_controls(value));
        }
        match &response.body {
            Some(Body::Json(value) | Body::JsonPython(value)) => {
                let pretty = serde_json::to_string_pretty(value).expect("a JSON value serialises");
                let _ = writeln!(out, "\n{}", escape_json_text(&pretty));
            }
            Some(Body::Text(text)) => match serde_json::from_str::<Value>(text) {
                // JSON stored as text to keep its exact bytes (Python's `", "` separators, say)
                // is still shown as readable JSON; the cassette keeps the bytes.
                Ok(value) if value.is_object() || value.is_array() => {
                    let pretty =
                        serde_json::to_string_pretty(&value).expect("a JSON value serialises");
                    let _ = writeln!(out, "\n{}", escape_json_text(&pretty));
                }
                _ => {
                    let _ = writeln!(out, "\n{}", escape_controls(text));
                }
            },
            Some(Body::Base64(b64)) => {
                let _ = writeln!(out, "\n(binary body, base64) {}", escape_controls(b64));
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn statuses_are_listed_in_order_with_runs_counted() {
        assert_eq!(run_lengths(&[]), "");
        assert_eq!(run_lengths(&[200]), "200");
        assert_eq!(run_lengths(&[202, 200, 200, 200, 404, 200]), "202,200x3,404,200");
    }

    /// Recordings of one line that differ in a matched header are told apart by it in `ls`,
    /// and `show`'s refusal names each with its key and header.
    #[test]
    fn recordings_told_apart_by_a_matched_header_show_it() {
        let rules = crate::model::key::MatchRules {
            match_headers: vec!["x-project-id".into()],
            ..Default::default()
        };
        let recordings: Vec<Recording> = ["p1", "p2"]
            .into_iter()
            .map(|project| {
                let mut request = fixtures::get("/v2/images");
                request.headers = vec![("x-project-id".into(), project.into())];
                let mut recording = fixtures::recording_of(request.clone(), &["active"]);
                recording.key = crate::model::key::RequestKey::of_recorded(&rules, &request).unwrap();
                recording
            })
            .collect();
        let (table, _) = ls(&recordings, false);
        assert!(table.contains("/v2/images [x-project-id: p1]"), "{table}");
        assert!(table.contains("/v2/images [x-project-id: p2]"), "{table}");
        let (json, _) = ls(&recordings, true);
        assert!(json.contains("\"x-project-id: p2\""), "{json}");
        let refused = show(&recordings, "/v2/images", None, "ims-vcr ls").unwrap_err().to_string();
        for r in &recordings {
            assert!(refused.contains(&r.key.hex()[..12]), "{refused}");
        }
        assert!(refused.contains("with x-project-id: p1"), "{refused}");
    }

    #[test]
    fn show_finds_a_request_by_the_line_ls_prints() {
        let mut request = fixtures::get("/v2/images");
        request.query = Some("sort=name:asc,status:desc".into());
        let recordings = [fixtures::recording_of(request, &["active"])];
        let canonical = recordings[0].key.request_line().to_owned();
        assert_ne!(canonical, "GET /v2/images?sort=name:asc,status:desc");
        for wanted in [
            canonical.as_str(),
            "GET /v2/images?sort=name:asc,status:desc",
            "/v2/images?sort=name:asc,status:desc",
            "/v2/images",
        ] {
            assert!(show(&recordings, wanted, None, "ls").is_ok(), "{wanted}");
        }
        assert!(show(&recordings, "POST /v2/images?sort=name:asc,status:desc", None, "ls").is_err());
        // Spelled as replay would match it, not as recorded: a space as `+`, hex in lower case,
        // the names in another order.
        let mut request = fixtures::get("/v2/images");
        request.query = Some("name=a%20b&tag=%C3%BC".into());
        let recordings = [fixtures::recording_of(request, &["active"])];
        for wanted in ["GET /v2/images?tag=%c3%bc&name=a+b", "/v2/images?name=a+b&tag=%C3%BC"] {
            assert!(show(&recordings, wanted, None, "ls").is_ok(), "{wanted}");
        }
        assert!(show(&recordings, "GET /v2/images?name=a+c&tag=%C3%BC", None, "ls").is_err());
    }

    #[test]
    fn show_prints_json_stored_as_text_readably_one_field_per_line() {
        // Uneven spacing: neither compact nor Python's style, so stored as text to keep the bytes.
        let mut recording = fixtures::recording_of(fixtures::get("/v2/images/x"), &["active"]);
        recording.answers[0].response.body =
            Body::from_bytes(br#"{"id": "x",  "status": "active", "tags": ["a", "b"]}"#);
        assert!(matches!(
            recording.answers[0].response.body,
            Some(Body::Text(_))
        ));
        let shown = render_show(&recording);
        assert!(shown.contains("\n  \"status\": \"active\",\n"), "{shown}");
        // Python's style is stored as JSON and shown the same way.
        recording.answers[0].response.body =
            Body::from_bytes(br#"{"id": "x", "status": "active", "tags": ["a", "b"]}"#);
        assert!(matches!(
            recording.answers[0].response.body,
            Some(Body::JsonPython(_))
        ));
        assert!(render_show(&recording).contains("\n  \"status\": \"active\",\n"));
        // Text that is not JSON is printed as it is.
        recording.answers[0].response.body = Body::from_bytes(b"plain words");
        assert!(render_show(&recording).contains("\nplain words\n"));
    }
}
