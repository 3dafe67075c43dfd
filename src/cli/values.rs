//! The checks of flag values clap runs as it parses (`value_parser = …`): a number or a mode
//! by its own `FromStr`, and values that must name something.

/// A value read by its type's own `FromStr`; clap shows its error with the flag.
pub(super) fn parse<T: std::str::FromStr<Err = String>>(
    text: &str,
) -> std::result::Result<T, String> {
    text.parse()
}

/// A size in bytes (`--max-body`, `--max-answer-body`): a whole number, said so when it is not
/// one (a negative number, a unit, a fraction), where `usize`'s own error reads "invalid digit
/// found in string".
pub(super) fn bytes(text: &str) -> std::result::Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::PosOverflow => {
                format!("more bytes than this machine can count ({})", usize::MAX)
            }
            _ => "a size in bytes is a whole number, 0 or more, with no unit: 10485760 for 10 MiB"
                .to_owned(),
        })
}

/// `--sequence`'s values, listed (so the help and shell completions offer them).
pub(super) fn sequences()
-> impl clap::builder::TypedValueParser<Value = crate::replay::tape::Sequence> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["repeat-last", "cycle", "strict"]).map(|policy| {
        policy
            .parse::<crate::replay::tape::Sequence>()
            .expect("a listed policy")
    })
}

/// The value of a flag that names something (a field, header, query parameter, pattern, route,
/// token or denied value): an empty one names nothing, and would otherwise be taken silently
/// (or, as a control token, match an empty header), so it is a usage error naming the flag.
pub(super) fn non_empty(text: &str) -> std::result::Result<String, String> {
    if text.is_empty() {
        Err("an empty value names nothing; leave the flag out instead".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// A name (a field, header or parameter): not empty, nor only white space (a cassette holding
/// one is refused, so it is never recorded).
pub(super) fn non_blank(text: &str) -> std::result::Result<String, String> {
    if text.trim().is_empty() {
        Err(
            "an empty value names nothing, nor does a blank name; leave the flag out instead"
                .to_owned(),
        )
    } else {
        Ok(text.to_owned())
    }
}
