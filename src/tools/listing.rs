//! `ims-vcr ls` and `ims-vcr show`: what a store or cassette folder holds, for people (a table,
//! pretty answers) and for scripts (`--json`).

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::interaction::Body;
use crate::model::recording::Recording;

/// One line per recorded request.
fn rows(recordings: &[Recording]) -> Vec<Value> {
    let mut rows: Vec<Value> = recordings
        .iter()
        .map(|r| {
            let first = &r.answers[0];
            let statuses: Vec<u16> = r.answers.iter().map(|a| a.response.status).collect();
            json!({
                "key": r.key.hex()[..12],
                "method": first.request.method,
                "path": match &first.request.query {
                    Some(q) => format!("{}?{q}", first.request.path),
                    None => first.request.path.clone(),
                },
                "answers": r.answers.len(),
                "statuses": statuses,
                "recorded_at": first.response.recorded_at,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (a["path"].as_str(), a["method"].as_str()).cmp(&(b["path"].as_str(), b["method"].as_str()))
    });
    rows
}

/// Prints the table (or JSON) of recorded requests.
pub fn ls(recordings: &[Recording], as_json: bool) -> Result<()> {
    let rows = rows(recordings);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
        return Ok(());
    }
    let statuses = |row: &Value| {
        row["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let width = rows
        .iter()
        .map(|r| r["path"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(4)
        .clamp(4, 80);
    println!(
        "{:<12}  {:<7}  {:<width$}  {:>7}  {:<12}  RECORDED-AT",
        "KEY", "METHOD", "PATH", "ANSWERS", "STATUSES"
    );
    for row in &rows {
        println!(
            "{:<12}  {:<7}  {:<width$}  {:>7}  {:<12}  {}",
            row["key"].as_str().unwrap_or(""),
            row["method"].as_str().unwrap_or(""),
            row["path"].as_str().unwrap_or(""),
            row["answers"].as_u64().unwrap_or(0),
            statuses(row),
            row["recorded_at"].as_str().unwrap_or(""),
        );
    }
    let answers = recordings.iter().map(|r| r.answers.len()).sum::<usize>();
    eprintln!(
        "{}, {}",
        crate::model::count(rows.len(), "request", "requests"),
        crate::model::count(answers, "answer", "answers")
    );
    Ok(())
}

/// Prints every answer of the request `wanted` names: a key prefix, `METHOD /path?query`, or a
/// path (when only one method was recorded for it). `ls` is the command that lists the same
/// recordings, for the hint when nothing or several match.
pub fn show(recordings: &[Recording], wanted: &str, ls: &str) -> Result<()> {
    let wanted = wanted.trim();
    let matches: Vec<&Recording> = recordings
        .iter()
        .filter(|r| {
            let line = r.key.request_line();
            let path = line.split_once(' ').map_or(line, |(_, p)| p);
            r.key.hex().starts_with(&wanted.to_ascii_lowercase())
                || line == wanted
                || path == wanted
                || path.split('?').next() == Some(wanted)
        })
        .collect();
    let recording = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Config(format!(
                "show {wanted:?}: no recorded request matches; `{ls}` lists them"
            )));
        }
        many => {
            let lines: Vec<&str> = many.iter().map(|r| r.key.request_line()).collect();
            return Err(Error::Config(format!(
                "show {wanted:?}: {} requests match ({}); use the key from `{ls}`",
                many.len(),
                lines.join(", ")
            )));
        }
    };
    println!(
        "{}  (key {})",
        recording.key.request_line(),
        &recording.key.hex()[..12]
    );
    for (i, answer) in recording.answers.iter().enumerate() {
        let response = &answer.response;
        println!(
            "\n--- answer {} of {}: {} (recorded {} from {}, {} ms)",
            i + 1,
            recording.answers.len(),
            response.status,
            response.recorded_at,
            response.upstream,
            response.latency_ms
        );
        for (name, value) in &response.headers {
            println!("{name}: {value}");
        }
        match &response.body {
            Some(Body::Json(value)) => println!(
                "\n{}",
                serde_json::to_string_pretty(value).expect("a JSON value serialises")
            ),
            Some(Body::Text(text)) => println!("\n{text}"),
            Some(Body::Base64(b64)) => println!("\n(binary body, base64) {b64}"),
            None => {}
        }
    }
    Ok(())
}
