//! Offline commands that return values: drift, JSON diff, verify, listing; and the escaping of
//! what they print from recordings or a live answer.

pub mod diff;
pub mod drift;
pub mod listing;
pub mod verify;

/// True for a character that must not reach a terminal as it is: control characters (C0, DEL
/// and C1, which start escape sequences: `ESC [`, the single-byte CSI `U+009B`, OSC titles)
/// other than line feed and tab, and the bidirectional overrides and isolates that make a
/// terminal show text in another order than it is (`U+202A`..`U+202E`, `U+2066`..`U+2069`).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t'))
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character (see [`is_unsafe`]) written visibly: `\x1b`, `\r`,
/// `\u{9b}`. Recordings hold whatever an upstream or a cassette author sent; `ls` and `show`
/// print them to a terminal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !text.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// JSON text (as serde_json writes it) with the unsafe characters it leaves raw (DEL, C1,
/// bidirectional controls: it escapes only `U+0000`..`U+001F`) written as `\uXXXX` escapes, so
/// the output is the same JSON document and safe on a terminal. Such characters can only occur
/// inside strings, where the escape means the same character.
pub fn escape_json_text(json: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !json.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe(c) && !matches!(c, '\r') {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_visibly_and_line_breaks_and_tabs_kept() {
        let hostile = "a\u{1b}]0;title\u{7}b\u{9b}31m\r\nc\td\u{7f}\u{202e}e\u{0}";
        let shown = escape_controls(hostile);
        assert_eq!(
            shown,
            "a\\x1b]0;title\\x07b\\u{9b}31m\\r\nc\td\\x7f\\u{202e}e\\x00"
        );
        assert!(!shown.chars().any(is_unsafe));
        assert!(matches!(
            escape_controls("plain\ntext"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escaped_json_text_is_the_same_document_without_raw_control_characters() {
        let value = serde_json::json!({"n\u{9b}": "a\u{7f}b\u{1b}c\u{2066}", "ok": [1, "x\ny"]});
        let text = serde_json::to_string_pretty(&value).unwrap();
        assert!(text.chars().any(is_unsafe));
        let escaped = escape_json_text(&text);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn verify_findings_and_the_drift_report_escape_what_they_print() {
        let finding = verify::Finding {
            file: "c\u{1b}[2J.json".into(),
            location: "/answers/0/body/json/k\u{9b}".into(),
            problem: "contains x".into(),
        };
        assert!(!finding.to_string().chars().any(is_unsafe), "{finding}");
        let report = drift::render(&[drift::RequestDrift {
            request: "GET /v2/images/\u{1b}]0;x\u{7}".into(),
            changes: vec![],
            unchecked: Some(drift::Unchecked::Unreachable(
                "upstream said \u{9b}31m".into(),
            )),
            skipped: None,
        }]);
        assert!(!report.chars().any(is_unsafe), "{report}");
    }
}
