//! HTTP Archive (HAR 1.2) export and import, so recordings open in browser devtools and HAR tools,
//! and a HAR captured elsewhere (devtools, mitmproxy, Polly.js) becomes a cassette set. Import
//! drops credentials and runs redaction and the leak gate like any other write.

use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::{Method, Uri};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::formats::validate::{validate_request, validate_response};
use crate::model::headers::{
    is_credential, is_hop_by_hop, is_volatile_request, keeps_upstream_length,
};
use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse, body_bytes};
use crate::model::key::MatchRules;
use crate::model::recording::{Recording, group_by_key};
use crate::model::redaction::RedactionStamp;
use crate::secrets::gate::{Gate, Refusal};
use crate::secrets::leak::Needle;
use crate::secrets::redact::{Redactor, credential_needles};

/// Origin used in HAR URLs for recordings that do not say where they came from.
const UNKNOWN_ORIGIN: &str = "http://ims-vcr.invalid";

/// The HAR 1.2 document for `recordings`, one entry per answer, in recorded order.
/// Whether `path` names a HAR file by its extension (`.har`, any case), as `import` tells one.
pub fn is_har_path(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("har"))
}

pub fn to_har(recordings: &[Recording]) -> Value {
    let entries: Vec<Value> = recordings
        .iter()
        .flat_map(|recording| recording.answers.iter().map(entry))
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "ims-vcr", "version": env!("CARGO_PKG_VERSION") },
            "entries": entries,
        }
    })
}

fn pairs(headers: &[(String, String)]) -> Vec<Value> {
    headers
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect()
}

fn entry(interaction: &Interaction) -> Value {
    let request = &interaction.request;
    let response = &interaction.response;
    let origin = if response.upstream.is_empty() {
        UNKNOWN_ORIGIN
    } else {
        &response.upstream
    };
    let query = request.query.as_deref().unwrap_or("");
    let url = if query.is_empty() {
        format!("{origin}{}", request.path)
    } else {
        format!("{origin}{}?{query}", request.path)
    };
    let query_string: Vec<Value> = form_urlencoded::parse(query.as_bytes())
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let request_body = body_bytes(&request.body).unwrap_or_default();
    let mut har_request = json!({
        "method": request.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": pairs(&request.headers),
        "queryString": query_string,
        "headersSize": -1,
        "bodySize": request_body.len(),
    });
    if !request_body.is_empty() {
        // Empty when the request had no `Content-Type`: import takes a type named here as the
        // request's, so naming one would add a header to it.
        let mime_type = crate::model::headers::value_of(&request.headers, "content-type").unwrap_or("");
        // HAR 1.2 gives `postData` no encoding, but bytes that are not UTF-8 cannot be `text`:
        // they are written base64 with `encoding`, as HAR does for response content (and as
        // HAR tools that keep binary request bodies do).
        har_request["postData"] = match std::str::from_utf8(&request_body) {
            Ok(text) => json!({ "mimeType": mime_type, "text": text }),
            Err(_) => json!({
                "mimeType": mime_type,
                "text": BASE64.encode(&request_body),
                "encoding": "base64",
            }),
        };
    }
    let body = body_bytes(&response.body).unwrap_or_default();
    let mut content = json!({
        "size": body.len(),
        "mimeType": crate::model::headers::value_of(&response.headers, "content-type").unwrap_or(""),
    });
    match std::str::from_utf8(&body) {
        Ok(text) => content["text"] = text.into(),
        Err(_) => {
            content["text"] = BASE64.encode(&body).into();
            content["encoding"] = "base64".into();
        }
    }
    let status_text = hyper::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut har_entry = json!({
        "startedDateTime": response.recorded_at,
        "time": response.latency_ms,
        "request": har_request,
        "response": {
            "status": response.status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": pairs(&response.headers),
            "content": content,
            "redirectURL": crate::model::headers::value_of(&response.headers, "location").unwrap_or(""),
            "headersSize": -1,
            "bodySize": body.len(),
        },
        "cache": {},
        "timings": { "send": 0, "wait": response.latency_ms, "receive": 0 },
    });
    if let Some(extension) = extension(interaction) {
        har_entry[EXTENSION] = extension;
    }
    har_entry
}

/// The entry field (HAR allows custom fields whose names start with `_`) that keeps what HAR
/// has no place for, so an export imports back to the same recordings: the session, the
/// origins of the proxy's other routes that the answer mentions, and the redaction stamp.
const EXTENSION: &str = "_ims_vcr";

/// A HAR text field: a string, or nothing (absent or `null`: empty); another type is an error
/// naming `field`, not a body silently left empty.
fn text_of<'v>(value: &'v Value, field: &str) -> std::result::Result<&'v str, String> {
    match value {
        Value::Null => Ok(""),
        Value::String(text) => Ok(text),
        other => Err(format!("{field}: {} is not a string", shown_json(other))),
    }
}

/// `value` as JSON for a message, cut at 60 characters.
fn shown_json(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn extension(interaction: &Interaction) -> Option<Value> {
    let mut extension = serde_json::Map::new();
    if let Some(session) = &interaction.request.session {
        extension.insert("session".into(), session.as_str().into());
    }
    if !interaction.response.other_upstreams.is_empty() {
        extension.insert(
            "other_upstreams".into(),
            json!(interaction.response.other_upstreams),
        );
    }
    if let Some(stamp) = &interaction.redaction {
        extension.insert(
            "redaction".into(),
            serde_json::to_value(stamp).expect("a stamp serialises"),
        );
    }
    (!extension.is_empty()).then_some(Value::Object(extension))
}

/// What an entry's [`EXTENSION`] holds.
#[derive(Default)]
struct Extension {
    session: Option<String>,
    other_upstreams: Vec<String>,
    redaction: Option<RedactionStamp>,
}

/// What [`extension`] wrote: session, other origins, redaction stamp; each checked as a
/// cassette's would be.
fn read_extension(entry: &Value) -> std::result::Result<Extension, String> {
    let extension = &entry[EXTENSION];
    if extension.is_null() {
        return Ok(Extension::default());
    }
    let Some(fields) = extension.as_object() else {
        return Err(format!("{EXTENSION}: {extension} is not an object"));
    };
    // As a cassette's unknown field is: a misspelt `sesion` would merge a session's answers
    // into the default one's.
    if let Some(unknown) = fields.keys().find(|k| !["session", "other_upstreams", "redaction"].contains(&k.as_str())) {
        return Err(format!(
            "{EXTENSION}.{unknown}: is not a field of ims-vcr's HAR extension (session, \
             other_upstreams, redaction): misspelt, or written by another tool? Remove or rename it"
        ));
    }
    let session = match &extension["session"] {
        Value::Null => None,
        Value::String(name) => {
            crate::model::session::validate(name)
                .map_err(|why| format!("{EXTENSION}.session: {why}"))?;
            Some(name.clone())
        }
        other => return Err(format!("{EXTENSION}.session: {other} is not a string")),
    };
    let mut others = Vec::new();
    if let Some(list) = extension.get("other_upstreams") {
        for (i, origin) in list
            .as_array()
            .ok_or(format!("{EXTENSION}.other_upstreams: not a list"))?
            .iter()
            .enumerate()
        {
            let origin = origin
                .as_str()
                .ok_or(format!("{EXTENSION}.other_upstreams[{i}]: not a string"))?;
            let uri = Uri::from_str(origin)
                .map_err(|e| format!("{EXTENSION}.other_upstreams[{i}]: {e}"))?;
            if uri.scheme().is_none() || uri.authority().is_none() || uri.path().len() > 1 {
                return Err(format!(
                    "{EXTENSION}.other_upstreams[{i}]: {origin:?} is not an origin (scheme://host[:port])"
                ));
            }
            others.push(origin.to_owned());
        }
    }
    let stamp = match extension.get("redaction") {
        None | Some(Value::Null) => None,
        Some(stamp) => {
            let stamp = serde_json::from_value(stamp.clone())
                .map_err(|e| format!("{EXTENSION}.redaction: {e}"))?;
            // As a cassette's is checked: export would write one no reader takes.
            crate::formats::validate::validate_stamp(&stamp)
                .map_err(|e| format!("{EXTENSION}.redaction.{}", e.replacen('`', "", 1)))?;
            Some(stamp)
        }
    };
    Ok(Extension {
        session,
        other_upstreams: others,
        redaction: stamp,
    })
}

/// Reads a HAR file into recordings: credentials dropped, `redactor` applied when given, and the
/// leak gate run on every entry. All or nothing: any bad entry fails the whole import, naming
/// the file and the entry.
pub fn from_har(
    path: &Path,
    bytes: &[u8],
    rules: &MatchRules,
    redactor: Option<&Redactor>,
) -> Result<Vec<Recording>> {
    let bytes = crate::formats::cassette::without_bom(bytes);
    let har: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::cassette(path, format!("not JSON, which a HAR file is: {e}")))?;
    let entries = match &har["log"]["entries"] {
        Value::Array(entries) => entries,
        Value::Null => return Err(Error::cassette(path, "field `log.entries` is missing, which every HAR file has")),
        // Its kind only: what it holds may hold credentials.
        other => {
            let kind = match other {
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "true or false",
            };
            return Err(Error::cassette(
                path,
                format!("field `log.entries` is {kind}, where HAR 1.2 has a list"),
            ));
        }
    };
    // HAR entries come from outside: the access key ids their answers hand out are replaced
    // by pseudonyms (under the redaction key when redacting).
    let default_key = crate::secrets::pseudonym::PseudonymKey::from_lookup(|n| std::env::var(n).ok()).0;
    let key = redactor.map_or(&default_key, |r| r.key());
    let gate = Gate::new(redactor, rules).pseudonymising(key);
    let mut keyed = Vec::with_capacity(entries.len());
    for (i, raw) in entries.iter().enumerate() {
        let bad = |reason: String| Error::cassette(path, format!("log.entries[{i}].{reason}"));
        let (interaction, needles) = interaction(raw).map_err(bad)?;
        let passed = gate.pass(&interaction, needles).map_err(|r| match r {
            Refusal::Leak { label, encoding } => bad(format!(
                "refused: the value of {label} is still present ({encoding}) in the entry"
            )),
            Refusal::Key(e) => bad(format!("request: {e}")),
            Refusal::Redaction(e) => bad(e),
            unreadable @ Refusal::Unreadable(_) => bad(format!("request: {unreadable}")),
        })?;
        // What is stored must be what a cassette may hold: the same checks as a cassette file
        // (method, request target, header names and values, status, latency), run on the entry
        // as it will be written (credentials already dropped or masked).
        validate_request(&passed.interaction.request)
            .map_err(|r| bad(format!("request.{r}")))?;
        validate_response(&passed.interaction.response)
            .map_err(|r| bad(format!("response.{r}")))?;
        keyed.push((passed.key, passed.interaction.into_owned()));
    }
    Ok(group_by_key(keyed))
}

/// An entry's `startedDateTime` (empty when absent), refused as a cassette's `recorded_at` is
/// ([`check_recorded_at`](crate::replay::timeshift::check_recorded_at)).
fn started_date_time(entry: &Value) -> std::result::Result<String, String> {
    let text = entry["startedDateTime"].as_str().unwrap_or("");
    crate::replay::timeshift::check_recorded_at(text).map_err(|e| format!("startedDateTime: {e}"))?;
    Ok(text.to_owned())
}

/// One HAR entry as an interaction, and the credential values it carried.
fn interaction(entry: &Value) -> std::result::Result<(Interaction, Vec<Needle>), String> {
    let request = &entry["request"];
    let response = &entry["response"];
    // Missing, or there but not what HAR 1.2 has there: said which.
    let wrong = |field: &str, value: &Value, want: &str| match value {
        Value::Null => format!("{field}: missing"),
        other => format!("{field}: {} is not {want}", shown_json(other)),
    };
    let method = (request["method"].as_str())
        .ok_or_else(|| wrong("request.method", &request["method"], "a string"))?;
    let url = (request["url"].as_str()).ok_or_else(|| wrong("request.url", &request["url"], "a string"))?;
    let uri = Uri::from_str(url).map_err(|e| format!("request.url: {e}"))?;
    // Every header is checked before any is dropped, so a credential header with a value that
    // is not a header value is refused rather than silently left out of the leak gate's needles.
    // (HTTP/2 pseudo-headers such as `:authority` are devtools' notation; they are dropped.)
    let raw_headers =
        |v: &Value, what: &str| -> std::result::Result<Vec<(String, String)>, String> {
            v.as_array()
                .ok_or_else(|| wrong(&format!("{what}.headers"), v, "a list of {name, value} objects"))?
                .iter()
                .enumerate()
                .map(|(i, h)| match (h["name"].as_str(), h["value"].as_str()) {
                    (Some(n), Some(v)) => {
                        if !n.starts_with(':') {
                            hyper::header::HeaderName::from_bytes(n.as_bytes()).map_err(|_| {
                                format!("{what}.headers[{i}]: {n:?} is not a valid header name")
                            })?;
                            hyper::header::HeaderValue::from_str(v).map_err(|_| {
                                format!(
                                    "{what}.headers[{i}]: the value of {n:?} is not a valid header value"
                                )
                            })?;
                        }
                        Ok((n.to_ascii_lowercase(), v.to_owned()))
                    }
                    _ => Err(format!("{what}.headers[{i}]: lacks name or value")),
                })
                .collect()
        };
    let mut request_headers = raw_headers(&request["headers"], "request")?;
    let mut needles = credential_needles(&header_map(&request_headers));
    let keep_request = |n: &str| {
        !n.starts_with(':') && !is_credential(n) && !is_volatile_request(n) && !is_hop_by_hop(n)
    };
    let post_data = &request["postData"];
    // HAR 1.2's `postData.mimeType` is the body's type: a tool that leaves the header out of
    // `headers` still says it there, and the body is read by it (a multipart form's boundary,
    // which its credential parts are found by).
    if let Some(mime) = post_data["mimeType"].as_str().map(str::trim).filter(|m| !m.is_empty())
        && !request_headers.iter().any(|(n, _)| n == "content-type")
        && hyper::header::HeaderValue::from_str(mime).is_ok()
    {
        request_headers.push(("content-type".to_owned(), mime.to_owned()));
    }
    let mut request_body = text_of(&post_data["text"], "request.postData.text")?.as_bytes().to_vec();
    match &post_data["encoding"] {
        // Some tools write an empty encoding for plain text.
        Value::Null => {}
        encoding if encoding == "" => {}
        encoding if encoding == "base64" => {
            request_body = BASE64
                .decode(&request_body)
                .map_err(|e| format!("request.postData.text: invalid base64: {e}"))?;
        }
        other => {
            return Err(format!(
                "request.postData.encoding: {other} is not supported (only \"base64\")"
            ));
        }
    }
    // HAR 1.2 requires `content`; its `text` may be left out (no body, or not captured).
    if !response["content"].is_object() {
        return Err(format!("response.content: {} where HAR 1.2 requires an object", shown_json(&response["content"])));
    }
    let mut body = text_of(&response["content"]["text"], "response.content.text")?.as_bytes().to_vec();
    match &response["content"]["encoding"] {
        // Some tools write an empty encoding for plain text.
        Value::Null => {}
        encoding if encoding == "" => {}
        encoding if encoding == "base64" => {
            body = BASE64
                .decode(&body)
                .map_err(|e| format!("response.content.text: invalid base64: {e}"))?;
        }
        other => {
            return Err(format!(
                "response.content.encoding: {other} is not supported (only \"base64\")"
            ));
        }
    }
    let all_response_headers = raw_headers(&response["headers"], "response")?;
    // What the answer handed out in its credential headers (`X-Subject-Token`, `Set-Cookie`)
    // is looked for in the rest of the entry, as when recording live: a token echoed in the
    // answer's body refuses the entry.
    needles.extend(credential_needles(&header_map(&all_response_headers)));
    // The `Content-Encoding` is left out below, so bytes still encoded under it would be served
    // as they are, and the leak gate could not read inside them.
    crate::formats::validate::check_decoded_har(&all_response_headers, &body)
        .map_err(|e| format!("response.{e}"))?;
    // HAR content is already decoded, and the proxy frames what it serves, except the length
    // an answer to a `HEAD` gives (the size of what a `GET` brings), kept as when recorded live
    // ([`keeps_upstream_length`]) so an exported HAR imports back to the same answer.
    let keeps_length = method.parse::<Method>().is_ok_and(|method| {
        let mut map = hyper::HeaderMap::new();
        for (n, v) in &all_response_headers {
            if n == "content-encoding"
                && let Ok(v) = hyper::header::HeaderValue::from_str(v)
            {
                map.append(hyper::header::CONTENT_ENCODING, v);
            }
        }
        keeps_upstream_length(&method, &map)
    });
    let keep_response = |n: &str| {
        !n.starts_with(':')
            && !is_credential(n)
            && !is_hop_by_hop(n)
            && n != "content-encoding"
            // Not stored, as when recorded live: every served answer gets a fresh one.
            && n != "date"
            && (n != "content-length" || keeps_length)
    };
    let status = match &response["status"] {
        Value::Null => return Err("response.status: missing".into()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("response.status: {n} is not an HTTP status"))?,
        other => {
            return Err(format!(
                "response.status: {other} is not a number (an HTTP status such as 200)"
            ));
        }
    };
    // The stand-in origin an export gives an answer with none (a gap) reads back as none.
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::new(),
    };
    let origin = if origin == UNKNOWN_ORIGIN { String::new() } else { origin };
    let mut response_headers: Vec<(String, String)> = all_response_headers
        .iter()
        .filter(|(n, _)| keep_response(n))
        .cloned()
        .collect();
    // A token the answer carried is replayed as a placeholder, as when recorded live.
    response_headers.extend(crate::model::headers::placeholder_markers(
        all_response_headers.iter().map(|(name, _)| name.as_str()),
    ));
    let extension = read_extension(entry)?;
    let interaction = Interaction {
        request: RecordedRequest {
            method: method.to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().filter(|q| !q.is_empty()).map(str::to_owned),
            headers: request_headers
                .into_iter()
                .filter(|(n, _)| keep_request(n))
                .collect(),
            body: Body::from_bytes(&request_body),
            session: extension.session,
        },
        response: RecordedResponse {
            status,
            headers: response_headers,
            body: Body::from_bytes(&body),
            recorded_at: started_date_time(entry)?,
            // A negative time (`-1`, "not known", as HAR writes a timing it lacks) is none.
            latency_ms: match &entry["time"] {
                Value::Null => 0,
                // Past what a double holds (`1e309`): no number of milliseconds, not "none".
                Value::Number(time) => match time.as_f64() {
                    Some(t) => t.max(0.0).round() as u64,
                    None => return Err(format!("time: {time} is out of range for a number of milliseconds")),
                },
                other => return Err(format!("time: {} is not a number of milliseconds", shown_json(other))),
            },
            upstream: origin,
            other_upstreams: extension.other_upstreams,
        },
        redaction: extension.redaction,
    };
    Ok((interaction, needles))
}

/// An entry's headers (lower-case names) as a header map, for [`credential_needles`]; a pair
/// that is no header (refused earlier by the checks of names and values) is left out.
fn header_map(pairs: &[(String, String)]) -> hyper::HeaderMap {
    let mut map = hyper::HeaderMap::new();
    for (n, v) in pairs {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(n.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            map.append(n, v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::key::RequestKey;

    fn har_with(headers: Value, text: &str) -> Vec<u8> {
        json!({"log": {"version": "1.2", "creator": {"name": "devtools", "version": "1"}, "entries": [{
            "startedDateTime": "2026-11-27T00:00:00.000Z", "time": 12.6,
            "request": {"method": "GET", "url": "https://ims.example/v2/images/x?b=2&a=1", "httpVersion": "HTTP/2",
                        "cookies": [], "headers": headers, "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2", "cookies": [],
                         "headers": [{"name": "content-type", "value": "application/json"}, {"name": "content-encoding", "value": "gzip"}],
                         "content": {"size": text.len(), "mimeType": "application/json", "text": text},
                         "redirectURL": "", "headersSize": -1, "bodySize": -1},
            "cache": {}, "timings": {"send": 0, "wait": 12, "receive": 0}}]}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_devtools_har_becomes_a_recording_without_credentials() {
        let headers = json!([{"name": ":authority", "value": "ims.example"}, {"name": "X-Auth-Token", "value": "tok-secret-123"}, {"name": "X-Project-Id", "value": "p"}]);
        let recordings = from_har(
            Path::new("a.har"),
            &har_with(headers, r#"{"id":"x"}"#),
            &MatchRules::default(),
            None,
        )
        .unwrap();
        let answer = &recordings[0].answers[0];
        assert_eq!(recordings[0].key.request_line(), "GET /v2/images/x?a=1&b=2");
        assert_eq!(
            answer.request.headers,
            vec![("x-project-id".to_string(), "p".to_string())]
        );
        assert_eq!(
            answer.response.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(answer.response.latency_ms, 13);
        assert_eq!(answer.response.upstream, "https://ims.example");
    }

    #[test]
    fn a_har_whose_body_carries_the_token_is_refused_naming_the_entry() {
        let headers = json!([{"name": "X-Auth-Token", "value": "tok-secret-123"}]);
        let err = from_har(
            Path::new("a.har"),
            &har_with(headers, r#"{"echo":"tok-secret-123"}"#),
            &MatchRules::default(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a.har") && err.contains("log.entries[0]") && err.contains("x-auth-token"),
            "{err}"
        );
    }

    #[test]
    fn a_har_whose_answer_body_echoes_a_token_the_answer_handed_out_is_refused() {
        for (name, value, echoed) in [
            ("X-Subject-Token", "subject-token-4242", "subject-token-4242"),
            ("Set-Cookie", "sid=cookie-secret-4343; Path=/", "cookie-secret-4343"),
            ("Set-Cookie", "a=1, sid=folded-secret-4444; Path=/", "folded-secret-4444"),
        ] {
            let mut har: Value =
                serde_json::from_slice(&har_with(json!([]), &format!(r#"{{"echo":"{echoed}"}}"#)))
                    .unwrap();
            let headers = har["log"]["entries"][0]["response"]["headers"].as_array_mut().unwrap();
            headers.push(json!({"name": name, "value": value}));
            let err = from_har(
                Path::new("a.har"),
                har.to_string().as_bytes(),
                &MatchRules::default(),
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("log.entries[0]") && err.contains(&name.to_ascii_lowercase()),
                "{name}: {err}"
            );
            assert!(!err.contains(echoed), "{err}");
        }
    }

    #[test]
    fn export_then_import_gives_the_same_recordings() {
        let recordings = from_har(
            Path::new("a.har"),
            &har_with(json!([]), r#"{"id":"x"}"#),
            &MatchRules::default(),
            None,
        )
        .unwrap();
        let har = to_har(&recordings).to_string();
        let back = from_har(
            Path::new("b.har"),
            har.as_bytes(),
            &MatchRules::default(),
            None,
        )
        .unwrap();
        assert_eq!(back, recordings);
    }

    fn import(har: &Value) -> Result<Vec<Recording>> {
        from_har(
            Path::new("a.har"),
            har.to_string().as_bytes(),
            &MatchRules::default(),
            None,
        )
    }

    #[test]
    fn a_body_still_encoded_under_its_content_encoding_is_refused_and_a_bom_or_a_bad_status_named() {
        use std::io::Write as _;
        let secret = r#"{"credential":{"secret":"s3cr3tSecretKeyValue0123456789"}}"#;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(secret.as_bytes()).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(secret.as_bytes()).unwrap();
        for (encoding, bytes) in [("gzip", gzip.finish().unwrap()), ("deflate", zlib.finish().unwrap())] {
            let mut har: Value =
                serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
            let response = &mut har["log"]["entries"][0]["response"];
            response["headers"][1]["value"] = encoding.into();
            response["content"]["encoding"] = "base64".into();
            response["content"]["text"] = BASE64.encode(&bytes).into();
            let err = import(&har).unwrap_err().to_string();
            assert!(
                err.contains("a.har")
                    && err.contains("log.entries[0].response.headers[1]: content-encoding")
                    && err.contains("content.text holds the body decoded"),
                "{encoding}: {err}"
            );
        }
        // Decoded binary (an image served gzip-encoded) is what a HAR holds: kept as it is.
        let mut har: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        let image = [0x89, b'P', b'N', b'G', 0xff, 0x00, 0x80];
        har["log"]["entries"][0]["response"]["content"]["encoding"] = "base64".into();
        har["log"]["entries"][0]["response"]["content"]["text"] = BASE64.encode(image).into();
        let imported = import(&har).unwrap();
        let body = body_bytes(&imported[0].answers[0].response.body).unwrap();
        assert_eq!(body.as_ref(), &image);
        let mut har: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        har["log"]["entries"][0]["response"]["status"] = "404".into();
        let err = import(&har).unwrap_err().to_string();
        assert!(
            err.contains(r#"response.status: "404" is not a number"#),
            "{err}"
        );
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(har_with(json!([]), r#"{"id":"x"}"#));
        let recordings = from_har(Path::new("a.har"), &bom, &MatchRules::default(), None).unwrap();
        assert_eq!(recordings.len(), 1);
    }

    #[test]
    fn a_non_utf8_request_body_survives_a_har_round_trip() {
        let mut har: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        har["log"]["entries"][0]["request"]["method"] = "PUT".into();
        let recordings = import(&har).unwrap();
        let mut recording = recordings[0].clone();
        let binary = [0xff_u8, 0x00, 0x80, b'a', 0xc3];
        recording.answers[0].request.body = Body::from_bytes(&binary);
        recording.key = RequestKey::of_recorded(
            &MatchRules::default(),
            &recording.answers[0].request,
        )
        .unwrap();
        let exported = to_har(std::slice::from_ref(&recording));
        let post = &exported["log"]["entries"][0]["request"]["postData"];
        assert_eq!(post["encoding"], "base64", "{post}");
        let back = import(&exported).unwrap();
        assert_eq!(
            body_bytes(&back[0].answers[0].request.body).unwrap().as_ref(),
            &binary
        );
        assert_eq!(back, vec![recording]);
    }

    #[test]
    fn session_other_origins_and_redaction_stamp_survive_a_har_round_trip() {
        let plain = import(&serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap())
            .unwrap();
        assert!(
            !to_har(&plain)["log"]["entries"][0]
                .as_object()
                .unwrap()
                .contains_key(EXTENSION),
            "nothing to keep, no extension"
        );
        let mut recording = plain[0].clone();
        let answer = &mut recording.answers[0];
        answer.request.session = Some("team-a".into());
        answer.response.other_upstreams = vec!["https://iam.example".into()];
        answer.redaction = Some(RedactionStamp {
            policy: crate::model::redaction::RedactionPolicy::default(),
            key_fingerprint: "hmac-sha256:0123456789abcdef".into(),
            pseudonym_checks: Some(vec!["0a1b2c3d".into()]),
        });
        recording.key =
            RequestKey::of_recorded(&MatchRules::default(), &answer.request).unwrap();
        let exported = to_har(std::slice::from_ref(&recording));
        assert_eq!(exported["log"]["entries"][0][EXTENSION]["session"], "team-a");
        assert_eq!(import(&exported).unwrap(), vec![recording]);
        // Read like a cassette's: a bad session name or origin names the field.
        for (field, value, expected) in [
            ("session", json!("../x"), "_ims_vcr.session"),
            ("other_upstreams", json!(["https://h/path"]), "_ims_vcr.other_upstreams[0]"),
            ("other_upstreams", json!(["https://u:p@h"]), "upstream"),
            (
                "redaction",
                json!({"fields": [], "headers": [], "query": [], "key_fingerprint": "md5:forged"}),
                "_ims_vcr.redaction.key_fingerprint",
            ),
            ("sesion", json!("team-a"), "_ims_vcr.sesion: is not a field"),
        ] {
            let mut bad = exported.clone();
            bad["log"]["entries"][0][EXTENSION][field] = value;
            let err = import(&bad).unwrap_err().to_string();
            assert!(err.contains(expected), "{field}: {err}");
        }
    }

    #[test]
    fn a_har_entry_is_validated_like_a_cassette_naming_what_is_wrong() {
        let base: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            ("headers[0]", Box::new(|e| e["request"]["headers"] = json!([{"name": "x-trailing ", "value": "v"}]))),
            ("headers[0]", Box::new(|e| e["request"]["headers"] = json!([{"name": "x-nul\u{0}", "value": "v"}]))),
            ("headers[0]", Box::new(|e| e["request"]["headers"] = json!([{"name": "x-a", "value": "v\r\nInjected: 1"}]))),
            ("headers[0]", Box::new(|e| e["response"]["headers"] = json!([{"name": "bad name", "value": "v"}]))),
            ("method", Box::new(|e| e["request"]["method"] = "GE T".into())),
            ("status", Box::new(|e| e["response"]["status"] = 0.into())),
            ("status", Box::new(|e| e["response"]["status"] = 1000.into())),
            ("status", Box::new(|e| e["response"]["status"] = 70000.into())),
            ("latency_ms", Box::new(|e| e["time"] = 1e300.into())),
            ("time", Box::new(|e| e["time"] = "NaN".into())),
            ("time: 1e+309 is out of range", Box::new(|e| e["time"] = serde_json::from_str("1e309").unwrap())),
            ("time: -1e+400 is out of range", Box::new(|e| e["time"] = serde_json::from_str("-1e400").unwrap())),
            ("request.url: 5 is not a string", Box::new(|e| e["request"]["url"] = 5.into())),
            ("response.headers: {\"a\":\"b\"} is not a list", Box::new(|e| e["response"]["headers"] = json!({"a": "b"}))),
            ("response.content.text", Box::new(|e| e["response"]["content"]["text"] = 12345.into())),
            ("response.content.text", Box::new(|e| e["response"]["content"]["text"] = json!(["a"]))),
            ("response.content", Box::new(|e| {
                e["response"].as_object_mut().unwrap().remove("content");
            })),
            ("request.postData.text", Box::new(|e| e["request"]["postData"] = json!({"mimeType": "text/plain", "text": 5}))),
        ];
        for (field, change) in cases {
            let mut har = base.clone();
            change(&mut har["log"]["entries"][0]);
            let err = import(&har).unwrap_err().to_string();
            assert!(
                err.contains("a.har") && err.contains("log.entries[0]") && err.contains(field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn credentials_in_a_har_query_body_or_url_are_masked_and_never_stored() {
        let mut har: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        let entry = &mut har["log"]["entries"][0];
        entry["request"]["method"] = "POST".into();
        entry["request"]["url"] =
            "https://alice:url-pa55word-777@ims.example/v2/images?token=query-tok-4242&limit=1".into();
        entry["request"]["postData"] = json!({
            "mimeType": "application/json",
            "text": r#"{"name":"n","password":"body-pa55word-888"}"#,
        });
        let recordings = import(&har).unwrap();
        let text = serde_json::to_string(&recordings[0].answers).unwrap();
        for secret in ["url-pa55word-777", "query-tok-4242", "body-pa55word-888", "alice"] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
        let answer = &recordings[0].answers[0];
        assert_eq!(answer.request.query.as_deref(), Some("token=REDACTED&limit=1"));
        assert_eq!(answer.response.upstream, "https://ims.example");

        // A response echoing one of them is refused by the leak gate.
        let entry = &mut har["log"]["entries"][0];
        entry["response"]["content"]["text"] = r#"{"echo":"body-pa55word-888"}"#.into();
        let err = import(&har).unwrap_err().to_string();
        assert!(err.contains("log.entries[0]") && err.contains("password"), "{err}");
    }

    #[test]
    fn log_entries_that_are_no_list_are_named_by_their_kind() {
        let err = import(&json!({"log": {"entries": {"token": "not-shown-0042"}}})).unwrap_err().to_string();
        assert!(err.contains("`log.entries` is an object, where HAR 1.2 has a list"), "{err}");
        assert!(!err.contains("not-shown-0042"), "{err}");
        let err = import(&json!({"log": {}})).unwrap_err().to_string();
        assert!(err.contains("`log.entries` is missing"), "{err}");
    }

    /// A request whose type only `postData.mimeType` gives (no `Content-Type` in its headers) is
    /// read by it: a multipart form's password part is masked, and the type is stored.
    #[test]
    fn a_body_typed_only_by_its_post_data_mime_type_is_read_by_it() {
        let mut har: Value = serde_json::from_slice(&har_with(json!([]), r#"{"id":"x"}"#)).unwrap();
        let entry = &mut har["log"]["entries"][0];
        entry["request"]["method"] = "POST".into();
        entry["request"]["postData"] = json!({
            "mimeType": "multipart/form-data; boundary=\"q z\"",
            "text": "preamble\r\n--q z\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nmime-pa55word-31\r\n--q z--\r\n",
        });
        let recordings = import(&har).unwrap();
        let text = serde_json::to_string(&recordings[0].answers).unwrap();
        assert!(!text.contains("mime-pa55word-31"), "{text}");
        let request = &recordings[0].answers[0].request;
        let content_type = crate::model::headers::value_of(&request.headers, "content-type");
        assert_eq!(content_type, Some("multipart/form-data; boundary=\"q z\""));
    }
}
