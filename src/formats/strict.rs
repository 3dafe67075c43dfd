//! What a hand-edited cassette may not do although serde would let it: name a field this
//! ims-vcr does not know (a misspelt `bodyy` would be dropped, and the answer replayed without
//! its body), or give one key twice in an object (JSON readers keep one of the two, so what a
//! reviewer reads, or what `verify` checks, may not be what is replayed). ims-vcr never writes
//! either, so both are refused by name, with the line and column.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

/// `bytes` deserialized as `T`, refusing fields `T` does not know. The error names the field
/// (`answers[0].status`; `.` for the document) and says what is wrong with it.
pub(crate) fn from_slice_known<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut unknown = None;
    let mut note = |path: serde_ignored::Path<'_>| {
        unknown.get_or_insert_with(|| field_of(&path));
    };
    let ignoring = serde_ignored::Deserializer::new(&mut deserializer, &mut note);
    let value: T = serde_path_to_error::deserialize(ignoring)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))?;
    if let Some(field) = unknown {
        return Err((
            field,
            "is not a field of a cassette (format 1): misspelt, or written by another tool? \
             Remove or rename it"
                .to_owned(),
        ));
    }
    // A cassette is one document: bytes after it (a second document, a truncated paste) mean
    // the file is not what it seems, and silently reading only its first part would hide that.
    deserializer.end().map_err(|e| {
        (
            ".".to_owned(),
            format!("unexpected content after the JSON document ({e})"),
        )
    })?;
    Ok(value)
}

/// serde_ignored's path (`answers.0.bodyy`) written as serde_path_to_error writes one
/// (`answers[0].bodyy`), so every message names a field the same way.
fn field_of(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_of(parent)),
        Path::Map { parent, key } => match field_of(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            field_of(parent)
        }
    }
}

/// An error naming the first key given twice in one object of the JSON document `bytes`, with
/// its line and column; `Ok` when there is none (or the bytes are not JSON: the reader says
/// why).
pub(crate) fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match NoDuplicates.deserialize(&mut deserializer) {
        Err(e) if e.is_data() => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Walks any JSON value, failing at the second occurrence of a key in one object.
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!(
                    "the key {key:?} appears twice in one object: JSON readers keep only one of \
                     the two, so what a reviewer reads may not be what is replayed; keep one"
                )));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_in_any_object_is_named_with_its_line_even_when_escaped() {
        let twice = b"{\"a\": {\"body\": {\"json\": {\"secret\": \"x\",\n \"secret\": \"REDACTED\"}}}}";
        let e = refuse_duplicate_keys(twice).unwrap_err();
        assert!(e.contains("\"secret\" appears twice") && e.contains("line 2"), "{e}");
        // The same key spelt with an escape is the same key to every reader.
        let escaped = br#"[1, {"k": 1, "\u006b": 2}]"#;
        assert!(refuse_duplicate_keys(escaped).is_err());
        for fine in [&br#"{"a": {"k": 1}, "b": {"k": 2}, "n": 1.50}"#[..], b"[]", b"not json"] {
            assert_eq!(refuse_duplicate_keys(fine), Ok(()));
        }
    }

    #[test]
    fn a_field_no_cassette_has_is_named_as_serde_path_to_error_names_fields() {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[allow(dead_code)]
            status: u16,
        }
        #[derive(serde::Deserialize)]
        struct File {
            #[allow(dead_code)]
            answers: Vec<Answer>,
        }
        let (field, reason) =
            from_slice_known::<File>(br#"{"answers": [{"status": 200}, {"status": 200, "bodyy": 1}]}"#)
                .err()
                .unwrap();
        assert_eq!(field, "answers[1].bodyy");
        assert!(reason.contains("not a field of a cassette"), "{reason}");
        let (field, _) = from_slice_known::<File>(br#"{"answers": [{"status": "x"}]}"#)
            .err()
            .unwrap();
        assert_eq!(field, "answers[0].status");
        assert!(from_slice_known::<File>(br#"{"answers": []} {}"#).is_err());
    }
}
