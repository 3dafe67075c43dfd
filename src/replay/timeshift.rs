//! Token time: a replayed identity answer says its token expires when it did at recording, which
//! may be long past. The timestamps of the named JSON fields (`expires_at`, `issued_at`, and the
//! `--shift-time` ones) are moved forward by the time since the answer was recorded, in the
//! format they came in (fractional digits and `Z` or offset kept), so a client sees a token as
//! fresh as it was when recorded.

use serde_json::Value;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Fields shifted in every answer, whatever the match rules say: Keystone's and IAM's token
/// times.
pub const DEFAULT_FIELDS: &[&str] = &["expires_at", "issued_at"];

/// A timestamp as written: `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM|)`; the format is kept to write it
/// back.
#[derive(Debug, PartialEq)]
struct Stamp {
    at: OffsetDateTime,
    /// Digits after the seconds' `.` (0: none).
    fraction_digits: usize,
    /// `Z`, `+08:00`, or empty (no zone: read and written as UTC).
    zone: String,
}

fn parse(text: &str) -> Option<Stamp> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    let mut fraction_digits = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        fraction_digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if fraction_digits == 0 || fraction_digits > 9 {
            return None;
        }
        let digits = &frac[..fraction_digits];
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - fraction_digits as u32);
        rest = &frac[fraction_digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => UtcOffset::UTC,
        zone => {
            let zb = zone.as_bytes();
            if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' {
                return None;
            }
            let (h, m) = (num_of(&zone[1..3])?, num_of(&zone[4..6])?);
            let sign = if zb[0] == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()?
        }
    };
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(Stamp {
        at: PrimitiveDateTime::new(date, clock).assume_offset(offset),
        fraction_digits,
        zone: rest.to_owned(),
    })
}

fn num_of(s: &str) -> Option<u32> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())?
}

fn format(stamp: &Stamp) -> String {
    let at = stamp.at;
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    if stamp.fraction_digits > 0 {
        let nanos = format!("{:09}", at.nanosecond());
        out.push('.');
        out.push_str(&nanos[..stamp.fraction_digits]);
    }
    out.push_str(&stamp.zone);
    out
}

/// `text` moved by `by`, in its own format; `None` when it is no timestamp.
pub fn shift(text: &str, by: Duration) -> Option<String> {
    let stamp = parse(text)?;
    let at = stamp.at.checked_add(by)?;
    Some(format(&Stamp { at, ..stamp }))
}

/// True when `body` may hold a timestamp (`DDDD-DD-DDTDD:`): a cheap test before parsing.
pub fn may_hold_timestamps(body: &[u8]) -> bool {
    body.windows(14).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[7] == b'-'
            && w[10] == b'T'
            && w[13] == b':'
    })
}

/// The names of the string fields of a JSON document that hold a timestamp, each once.
pub fn timestamp_fields(json: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (name, item) in map {
                    match item {
                        Value::String(s) if parse(s).is_some() => {
                            if !out.contains(name) {
                                out.push(name.clone());
                            }
                        }
                        other => walk(other, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out
}

/// Moves, in place, every timestamp string of a field for which `shifted(name)` is true, at any
/// depth, by `by`. Returns how many were moved.
pub fn shift_fields(json: &mut Value, shifted: &dyn Fn(&str) -> bool, by: Duration) -> usize {
    match json {
        Value::Object(map) => map
            .iter_mut()
            .map(|(name, item)| match item {
                Value::String(s) if shifted(name) => match shift(s, by) {
                    Some(moved) => {
                        *s = moved;
                        1
                    }
                    None => 0,
                },
                other => shift_fields(other, shifted, by),
            })
            .sum(),
        Value::Array(items) => items
            .iter_mut()
            .map(|i| shift_fields(i, shifted, by))
            .sum(),
        _ => 0,
    }
}

/// `recorded_at` of an answer (RFC 3339), if it parses.
pub fn recorded_at(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Checks a `recorded_at` read from a file (a cassette, a HAR's `startedDateTime`): replay
/// shifts an answer's dates by how long ago it was recorded, so a date it cannot read would
/// silently shift nothing, and one centuries off would shift by centuries. Empty means not
/// known (nothing is shifted).
pub fn check_recorded_at(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    // A day of clock skew between the machine that recorded and this one is allowed.
    let latest = time::OffsetDateTime::now_utc() + Duration::days(1);
    match recorded_at(text) {
        Some(at) if at > latest => Err(format!(
            "{text:?} is in the future; expected when the answer was recorded (replay moves the \
             answer's dates by the time since)"
        )),
        Some(at) if at.year() >= 1970 => Ok(()),
        Some(_) => Err(format!("{text:?} is before 1970; expected when the answer was recorded")),
        None => Err(format!(
            "{text:?} is not an RFC 3339 date-time, e.g. 2026-11-27T10:00:00Z"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_moves_in_its_own_format() {
        let ten_minutes = Duration::minutes(10);
        for (before, after) in [
            ("2026-12-02T15:04:05.000000Z", "2026-12-02T15:14:05.000000Z"),
            ("2026-12-02T23:55:00Z", "2026-12-03T00:05:00Z"),
            ("2026-12-02T15:04:05.123+08:00", "2026-12-02T15:14:05.123+08:00"),
            ("2026-12-31T23:59:59.5-05:30", "2027-01-01T00:09:59.5-05:30"),
            ("2026-12-02T15:04:05", "2026-12-02T15:14:05"),
        ] {
            assert_eq!(shift(before, ten_minutes).as_deref(), Some(after), "{before}");
        }
        for not in ["", "tomorrow", "2026-12-02", "2026-12-02T15:04:05.Z", "2026-13-02T15:04:05Z"] {
            assert_eq!(shift(not, ten_minutes), None, "{not}");
        }
    }

    #[test]
    fn named_fields_move_at_any_depth_and_others_stay() {
        let mut json = serde_json::json!({"token": {
            "expires_at": "2026-12-02T15:04:05.000000Z",
            "issued_at": "2026-12-02T14:04:05.000000Z",
            "user": {"password_expires_at": "2027-01-01T00:00:00.000000Z"},
            "audit": [{"valid_until": "2026-12-02T15:04:05Z", "name": "x"}],
        }});
        assert!(may_hold_timestamps(json.to_string().as_bytes()));
        assert!(!may_hold_timestamps(br#"{"id":"2026-12-02"}"#));
        let mut fields = timestamp_fields(&json);
        fields.sort();
        assert_eq!(fields, ["expires_at", "issued_at", "password_expires_at", "valid_until"]);
        let moved = shift_fields(
            &mut json,
            &|n| DEFAULT_FIELDS.contains(&n) || n == "valid_until",
            Duration::hours(1),
        );
        assert_eq!(moved, 3);
        assert_eq!(json["token"]["expires_at"], "2026-12-02T16:04:05.000000Z");
        assert_eq!(json["token"]["issued_at"], "2026-12-02T15:04:05.000000Z");
        assert_eq!(json["token"]["audit"][0]["valid_until"], "2026-12-02T16:04:05Z");
        assert_eq!(
            json["token"]["user"]["password_expires_at"],
            "2027-01-01T00:00:00.000000Z"
        );
    }
}
