//! What differs between a recorded answer and a live one: the status, then JSON bodies field by
//! field (objects by key, arrays by index, each difference located by its JSON pointer), with
//! volatile fields' values left out. Pure; `drift.rs` does the requests and the report.

use std::fmt;

use serde_json::Value;

/// Field names whose values change on every call, ignored by default at any depth.
pub const DEFAULT_IGNORED_FIELDS: &[&str] = &["request_id", "x-request-id", "date"];

/// Name suffix of timestamp fields (`created_at`, `updated_at`, `deleted_at`, …), ignored by default.
pub const DEFAULT_IGNORED_SUFFIX: &str = "_at";

/// Rendered values are cut to this many characters.
const RENDER_CHARS: usize = 60;

/// Which JSON fields are volatile. An ignored field's *value* is not compared (nor anything below
/// it), but its presence and JSON type still are: a timestamp that disappears or turns into a
/// number is still a breaking change. Names match exactly, at any depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreRules {
    /// Exact field names.
    names: Vec<String>,
    /// Field-name suffixes.
    suffixes: Vec<String>,
}

impl Default for IgnoreRules {
    /// [`DEFAULT_IGNORED_FIELDS`] and every name ending in [`DEFAULT_IGNORED_SUFFIX`].
    fn default() -> Self {
        IgnoreRules::none()
            .with_fields(DEFAULT_IGNORED_FIELDS.iter().copied())
            .with_suffix(DEFAULT_IGNORED_SUFFIX)
    }
}

impl IgnoreRules {
    /// Rules that ignore nothing.
    pub fn none() -> Self {
        IgnoreRules {
            names: Vec::new(),
            suffixes: Vec::new(),
        }
    }

    /// Also ignores these field names (`--ignore-field`, a redaction stamp's fields).
    pub fn with_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }

    /// Also ignores every field whose name ends in `suffix`.
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffixes.push(suffix.into());
        self
    }

    /// True when the value of a field named `name`, directly inside the object that is (or is
    /// an element of) the value of field `parent`, is not compared: `name` is listed, or
    /// `parent.name` is (as a redaction policy names `projects.id`), or it ends in a suffix.
    pub fn ignores(&self, parent: Option<&str>, name: &str) -> bool {
        self.names.iter().any(|n| {
            n == name
                || n.split_once('.')
                    .is_some_and(|(p, field)| field == name && parent == Some(p))
        }) || self.suffixes.iter().any(|s| name.ends_with(s))
    }
}

/// What kind of difference a [`Change`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The HTTP status differs (bodies are then not compared: they describe different outcomes).
    Status,
    /// A field or array element only the live answer has.
    Added,
    /// A field or array element only the recording has.
    Removed,
    /// Same location, another JSON type (or JSON on one side only).
    ChangedType,
    /// Same location and type, another value.
    ChangedValue,
}

impl ChangeKind {
    /// The word used in the report.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Status => "status",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::ChangedType => "changed-type",
            ChangeKind::ChangedValue => "changed-value",
        }
    }
}

/// One difference between a recorded and a live answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// JSON pointer (RFC 6901) of the location; `""` is the whole body (and the status line).
    pub pointer: String,
    /// What changed.
    pub kind: ChangeKind,
    /// Short rendering of the recorded side (type and value); `None` when added.
    pub recorded: Option<String>,
    /// Short rendering of the live side; `None` when removed.
    pub live: Option<String>,
}

impl Change {
    /// A client written against the recording may fail on this: a status, a removed field or a
    /// changed type. Added fields and changed values are data, not contract.
    pub fn is_breaking(&self) -> bool {
        matches!(
            self.kind,
            ChangeKind::Status | ChangeKind::Removed | ChangeKind::ChangedType
        )
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.kind.label();
        let at = if self.pointer.is_empty() {
            "(body)"
        } else {
            &self.pointer
        };
        let was = self.recorded.as_deref().unwrap_or_default();
        let now = self.live.as_deref().unwrap_or_default();
        match self.kind {
            ChangeKind::Status => write!(f, "{label:<13} {was} → {now}"),
            ChangeKind::Removed => write!(f, "{label:<13} {at}  (was {was})"),
            ChangeKind::Added => write!(f, "{label:<13} {at}  (now {now})"),
            _ => write!(f, "{label:<13} {at}  ({was} → {now})"),
        }
    }
}

/// Compares a recorded answer with a live one: the status, then the bodies as JSON when both
/// parse (a token's roles, methods and catalog in any order: `align_token_lists`), otherwise
/// byte for byte (one change at `""`).
pub fn compare(
    recorded_status: u16,
    recorded_body: &[u8],
    live_status: u16,
    live_body: &[u8],
    ignore: &IgnoreRules,
) -> Vec<Change> {
    if recorded_status != live_status {
        let excerpt = preview(live_body);
        return vec![Change {
            pointer: String::new(),
            kind: ChangeKind::Status,
            recorded: Some(recorded_status.to_string()),
            live: Some(format!("{live_status} {excerpt}").trim_end().to_owned()),
        }];
    }
    let mut changes = Vec::new();
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    match (parse(recorded_body), parse(live_body)) {
        (Some(recorded), Some(mut live)) => {
            // A token's roles (catalog, methods) in another order are the same answer; a list
            // that changed is compared item by item as it came.
            crate::formats::unchanged::align_token_lists(&recorded, &mut live);
            diff("", None, &recorded, &live, false, ignore, &mut changes)
        }
        (recorded, live) if recorded_body != live_body => changes.push(Change {
            pointer: String::new(),
            kind: if recorded.is_some() != live.is_some() {
                ChangeKind::ChangedType
            } else {
                ChangeKind::ChangedValue
            },
            recorded: Some(render_body(recorded_body, recorded.as_ref())),
            live: Some(render_body(live_body, live.as_ref())),
        }),
        _ => {}
    }
    changes
}

/// Walks both documents in recorded order, then adds what only the live one has. `parent` is
/// the name of the field whose value (or an element of whose value) these are.
fn diff(
    at: &str,
    parent: Option<&str>,
    recorded: &Value,
    live: &Value,
    ignored: bool,
    ignore: &IgnoreRules,
    out: &mut Vec<Change>,
) {
    use ChangeKind::{Added, ChangedType, ChangedValue, Removed};
    let change = |pointer: String, kind, recorded: Option<&Value>, live: Option<&Value>| Change {
        pointer,
        kind,
        recorded: recorded.map(show),
        live: live.map(show),
    };
    if type_name(recorded) != type_name(live) {
        out.push(change(at.into(), ChangedType, Some(recorded), Some(live)));
        return;
    }
    if ignored {
        return;
    }
    // RFC 6901: `~` and `/` inside a key are escaped as `~0` and `~1`.
    let child = |key: &str| format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
    match (recorded, live) {
        (Value::Object(r), Value::Object(l)) => {
            for (key, rv) in r {
                match l.get(key) {
                    Some(lv) => diff(
                        &child(key),
                        Some(key),
                        rv,
                        lv,
                        ignore.ignores(parent, key),
                        ignore,
                        out,
                    ),
                    None => out.push(change(child(key), Removed, Some(rv), None)),
                }
            }
            for (key, lv) in l.iter().filter(|(k, _)| !r.contains_key(*k)) {
                out.push(change(child(key), Added, None, Some(lv)));
            }
        }
        (Value::Array(r), Value::Array(l)) => {
            for i in 0..r.len().max(l.len()) {
                let at = format!("{at}/{i}");
                match (r.get(i), l.get(i)) {
                    (Some(rv), Some(lv)) => diff(&at, parent, rv, lv, false, ignore, out),
                    (Some(rv), None) => out.push(change(at, Removed, Some(rv), None)),
                    (None, lv) => out.push(change(at, Added, None, lv)),
                }
            }
        }
        _ if recorded != live => {
            out.push(change(at.into(), ChangedValue, Some(recorded), Some(live)))
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `number 100`, `string "0"`, `object {"a":1,…}`, `null`.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        other => format!("{} {}", type_name(other), truncate(&other.to_string())),
    }
}

fn render_body(bytes: &[u8], json: Option<&Value>) -> String {
    match (json, std::str::from_utf8(bytes)) {
        (Some(value), _) => show(value),
        (None, _) if bytes.is_empty() => "empty body".to_owned(),
        (None, Ok(text)) => format!("text {}", truncate(&format!("{text:?}"))),
        (None, Err(_)) => format!("bytes ({} bytes)", bytes.len()),
    }
}

/// The start of a body on one line, whatever its layout (an HTML error page, pretty-printed
/// JSON).
pub(crate) fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(RENDER_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeKind::*;

    /// Each change as `pointer kind`, joined with `; `.
    fn changes(recorded: &str, live: &str, ignore: &IgnoreRules) -> String {
        let changes = compare(200, recorded.as_bytes(), 200, live.as_bytes(), ignore);
        let each: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {}", c.pointer, c.kind.label()))
            .collect();
        each.join("; ")
    }

    #[test]
    fn json_differences_are_classified_by_pointer() {
        let table = [
            (r#"{"a":1,"b":[]}"#, r#"{ "b" : [], "a" : 1 }"#, ""),
            (r#"{"min_disk":100}"#, "{}", "/min_disk removed"),
            (r#"{"size":0}"#, r#"{"size":"0"}"#, "/size changed-type"),
            (r#"{"name":"a"}"#, r#"{"name":"b"}"#, "/name changed-value"),
            ("{}", r#"{"new":true}"#, "/new added"),
            (r#"{"t":[1,2]}"#, r#"{"t":[1]}"#, "/t/1 removed"),
            (r#"{"t":[]}"#, r#"{"t":["x"]}"#, "/t/0 added"),
            (
                r#"{"a/b~":{"c":1}}"#,
                r#"{"a/b~":{"c":2}}"#,
                "/a~1b~0/c changed-value",
            ),
            (r#"{"v":null}"#, r#"{"v":0}"#, "/v changed-type"),
            // A token's roles in another order are no change; another role is, and so is
            // another order of a list elsewhere.
            (
                r#"{"token":{"roles":[{"name":"a"},{"name":"b"}]}}"#,
                r#"{"token":{"roles":[{"name":"b"},{"name":"a"}]}}"#,
                "",
            ),
            (
                r#"{"token":{"roles":[{"name":"a"},{"name":"b"}]}}"#,
                r#"{"token":{"roles":[{"name":"c"},{"name":"a"}]}}"#,
                "/token/roles/0/name changed-value; /token/roles/1/name changed-value",
            ),
            // A catalog in another order, its endpoints too, is no change; a service added
            // first is told as it came, not against a sorted order.
            (
                r#"{"token":{"catalog":[{"type":"image","endpoints":[{"i":"a"},{"i":"b"}]},{"type":"identity","endpoints":[]}]}}"#,
                r#"{"token":{"catalog":[{"type":"identity","endpoints":[]},{"type":"image","endpoints":[{"i":"b"},{"i":"a"}]}]}}"#,
                "",
            ),
            (
                r#"{"token":{"catalog":[{"type":"image"}]}}"#,
                r#"{"token":{"catalog":[{"type":"compute"},{"type":"image"}]}}"#,
                "/token/catalog/0/type changed-value; /token/catalog/1 added",
            ),
            (r#"{"images":[1,2]}"#, r#"{"images":[2,1]}"#, "/images/0 changed-value; /images/1 changed-value"),
            ("[1]", r#"{"a":1}"#, " changed-type"),
            (
                r#"{"x":1,"y":1}"#,
                r#"{"z":1,"y":2}"#,
                "/x removed; /y changed-value; /z added",
            ),
        ];
        for (recorded, live, expected) in table {
            let got = changes(recorded, live, &IgnoreRules::default());
            assert_eq!(got, expected, "{recorded} vs {live}");
        }
    }

    #[test]
    fn a_parent_dot_field_rule_ignores_the_field_only_inside_that_parent() {
        // How a redaction policy names IAM's project ids: `projects.id` (a bare `id` would
        // take every image id).
        let ignore = IgnoreRules::none().with_fields(["projects.id", "project.id"]);
        let table = [
            (
                r#"{"projects":[{"id":"p1","name":"a"}]}"#,
                r#"{"projects":[{"id":"p2","name":"a"}]}"#,
                "",
            ),
            (
                r#"{"token":{"project":{"id":"p1"}}}"#,
                r#"{"token":{"project":{"id":"p2"}}}"#,
                "",
            ),
            (r#"{"id":"i1"}"#, r#"{"id":"i2"}"#, "/id changed-value"),
            (
                r#"{"images":[{"id":"i1"}]}"#,
                r#"{"images":[{"id":"i2"}]}"#,
                "/images/0/id changed-value",
            ),
        ];
        for (recorded, live, expected) in table {
            assert_eq!(changes(recorded, live, &ignore), expected, "{recorded}");
        }
    }

    #[test]
    fn ignored_fields_skip_values_but_not_presence_or_type() {
        let table = [
            (r#"{"updated_at":"1"}"#, r#"{"updated_at":"2"}"#, ""),
            (
                r#"{"x":[{"deleted_at":"1"}]}"#,
                r#"{"x":[{"deleted_at":"2"}]}"#,
                "",
            ),
            (
                r#"{"request_id":"a","date":"b"}"#,
                r#"{"request_id":"c","date":"d"}"#,
                "",
            ),
            (r#"{"updated_at":"1"}"#, "{}", "/updated_at removed"),
            (
                r#"{"created_at":"1"}"#,
                r#"{"created_at":1}"#,
                "/created_at changed-type",
            ),
            (r#"{"at":"1"}"#, r#"{"at":"2"}"#, "/at changed-value"),
        ];
        for (recorded, live, expected) in table {
            let got = changes(recorded, live, &IgnoreRules::default());
            assert_eq!(got, expected, "{recorded} vs {live}");
        }
        let name = IgnoreRules::none().with_fields(["name"]);
        assert_eq!(
            changes(r#"{"o":{"name":{"a":1}}}"#, r#"{"o":{"name":{}}}"#, &name),
            ""
        );
        let got = changes(r#"{"updated_at":1}"#, r#"{"updated_at":2}"#, &name);
        assert_eq!(got, "/updated_at changed-value");
    }

    #[test]
    fn status_and_non_json_bodies_are_compared_whole() {
        let d = IgnoreRules::default();
        let status = compare(
            404,
            b"{}",
            401,
            b"{\n  \"error_code\": \"APIGW.0301\"\n}",
            &d,
        );
        let expected = r#"status        404 → 401 { "error_code": "APIGW.0301" }"#;
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].to_string(), expected);
        assert_eq!(changes("ok", "ko", &d), " changed-value");
        assert_eq!(changes("<html>", "{}", &d), " changed-type");
        assert_eq!(changes("", "", &d), "");
        assert!(compare(200, &[0xff], 200, &[0xff], &d).is_empty());
    }

    #[test]
    fn only_status_removed_and_changed_type_are_breaking() {
        let kinds = [Status, Removed, ChangedType, Added, ChangedValue];
        let breaking: Vec<bool> = kinds
            .into_iter()
            .map(|kind| {
                let (pointer, recorded, live) = (String::new(), None, None);
                Change {
                    pointer,
                    kind,
                    recorded,
                    live,
                }
                .is_breaking()
            })
            .collect();
        assert_eq!(breaking, [true, true, true, false, false]);
    }
}
