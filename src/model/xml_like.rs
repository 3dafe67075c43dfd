//! Credentials in XML bodies: `<password>…</password>` in a request, `<SecretAccessKey>` and
//! `<SessionToken>` in an answer (STS-style and OBS-style APIs answer in XML), and attributes
//! such as `<auth password="…">`.
//!
//! Read lexically, like [`crate::model::json_like`]: no parser, every byte that is not a
//! credential's text kept as it was. An element is masked when its local name (without a
//! namespace prefix) is a credential's and it holds only text (or one CDATA section); an
//! attribute when its local name is. Elements holding other elements are left to the elements
//! inside them, but for a SAML assertion (`Assertion`, `EncryptedAssertion`): a bearer
//! credential whole, its content is masked up to its end tag. A name and value pair is read as
//! JSON's `{"key": "password", "value": …}` is: the `value` attribute and the text of an element
//! whose `key` or `name` attribute names a credential (`<entry key="password">…</entry>`,
//! `<param name="secret" value="…"/>`), and a `<Value>` right after a `<Name>` or `<Key>`
//! naming one (`<Parameter><Name>password</Name><Value>…</Value></Parameter>`; CloudFormation's
//! `<ParameterKey>` and `<ParameterValue>`): the names JSON's pairs use.

use crate::model::credentials::{Found, PLACEHOLDER};

/// Whether `text` reads as XML: its first non-blank character (after a byte-order mark) is `<`.
pub(crate) fn looks_like_xml(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').trim_start().starts_with('<')
}

/// `text` with the text of every element, and the value of every attribute, whose local name
/// `is_secret` accepts replaced by `REDACTED`, and what was replaced, each labelled by
/// `label(name)`. `None` when nothing was.
pub(crate) fn mask_elements(
    text: &str,
    is_secret: &dyn Fn(&str) -> bool,
    label: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<Found>)> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    // Bytes up to `copied` are in `out` already.
    let mut copied = 0usize;
    let mut replace = |out: &mut String, copied: &mut usize, range: std::ops::Range<usize>, name: &str| {
        let value = &text[range.clone()];
        if value.trim().is_empty() || value.trim() == PLACEHOLDER {
            return;
        }
        out.push_str(&text[*copied..range.start]);
        out.push_str(PLACEHOLDER);
        *copied = range.end;
        found.push(Found {
            label: label(name),
            value: value.trim().to_owned(),
        });
    };
    let mut at = 0usize;
    let mut unclosed_assertion = false;
    // Set by a `<Name>` element naming a credential, for the element that follows it.
    let mut value_named = false;
    while let Some(open) = memchr::memchr(b'<', &bytes[at..]).map(|i| at + i) {
        at = open + 1;
        // Only start tags: not `</`, `<?`, `<!` (comments, CDATA, doctype).
        let name_end = name_end(bytes, at);
        if name_end == at {
            continue;
        }
        let name = local(&text[at..name_end]);
        // The element after a `<Name>password</Name>` is that name's value when it is a
        // `<Value>` (AWS-style and SSM-style parameter lists).
        let named_before = std::mem::take(&mut value_named);
        // Attributes, up to the tag's end: each one's local name and where its value is.
        let mut attrs: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        let mut i = name_end;
        let mut closed = false;
        while i < bytes.len() {
            match bytes[i] {
                b'>' => {
                    closed = true;
                    break;
                }
                b if is_name_byte(b) => {
                    let attr_end = name_end_of_attr(bytes, i);
                    let attr = local(&text[i..attr_end]);
                    let mut j = attr_end;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if bytes.get(j) != Some(&b'=') {
                        i = attr_end.max(i + 1);
                        continue;
                    }
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let Some(&quote) = bytes.get(j).filter(|q| matches!(q, b'"' | b'\'')) else {
                        i = j;
                        continue;
                    };
                    let Some(end) = memchr::memchr(quote, &bytes[j + 1..]).map(|e| j + 1 + e)
                    else {
                        break;
                    };
                    attrs.push((attr, j + 1..end));
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
        // A name and value pair in attributes (`<entry key="password">…</entry>`, `<add
        // key="Password" value="…"/>`, `<param name="secret" value="…"/>`): the `value`
        // attribute and the element's text hold the named credential's value. The attributes
        // read are masked also when the tag is cut short (`<auth password="…"`).
        let pair_named = attrs.iter().any(|(attr, range)| {
            is_pair_name(attr) && is_secret(text[range.clone()].trim())
        });
        for (attr, range) in attrs {
            if is_secret(attr) || pair_named && is_pair_value(attr) {
                replace(&mut out, &mut copied, range, attr);
            }
        }
        if !closed {
            break;
        }
        at = i + 1;
        if bytes[i - 1] == b'/' {
            continue;
        }
        // A `<Name>` or `<Key>` naming a credential: the `<Value>` after it is its value.
        if is_pair_name(name) && !pair_named {
            let end = memchr::memchr(b'<', &bytes[at..]).map_or(bytes.len(), |e| at + e);
            value_named = bytes[end..].starts_with(b"</") && is_secret(text[at..end].trim());
            continue;
        }
        // A SAML assertion is a bearer credential whole (Keystone's K2K `saml2` answer, the ECP
        // envelope a client posts on to the service provider): its content is masked, elements
        // and all, up to its own end tag.
        if matches!(name, "Assertion" | "EncryptedAssertion") && !unclosed_assertion {
            match end_tag(text, at, &text[open + 1..name_end]) {
                Some(end) => {
                    let name = name.to_owned();
                    replace(&mut out, &mut copied, at..end, &name);
                    at = end;
                    continue;
                }
                // Malformed: no later assertion is looked for either (each look would read
                // the rest of the text again).
                None => unclosed_assertion = true,
            }
        }
        let pair_value = named_before && is_pair_value(name);
        if !(is_secret(name) || pair_named || pair_value) {
            continue;
        }
        // The element's text: up to the next `<`, or one CDATA section; then its end tag.
        let (content, after) = if bytes[at..].starts_with(b"<![CDATA[") {
            let start = at + 9;
            match memchr::memmem::find(&bytes[start..], b"]]>") {
                Some(e) => (start..start + e, start + e + 3),
                None => break,
            }
        } else {
            let end = memchr::memchr(b'<', &bytes[at..]).map_or(bytes.len(), |e| at + e);
            (at..end, end)
        };
        if bytes[after..].starts_with(b"</") {
            let name = name.to_owned();
            replace(&mut out, &mut copied, content, &name);
            at = after;
        }
    }
    if found.is_empty() {
        return None;
    }
    out.push_str(&text[copied..]);
    Some((out, found))
}

/// Where the end tag of the element `qualified` whose content starts at `from` begins: the first
/// `</qualified>` (the name followed by `>` or white space, so not `</saml:AssertionIDRef>`) past
/// as many more `<qualified ...>` start tags as were opened inside it (one that closes itself,
/// `<saml:Assertion ID="b"/>`, opens nothing). One pass over the tags after `from`.
fn end_tag(text: &str, from: usize, qualified: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let ends_name = |rest: &str| rest.starts_with(|c: char| c == '>' || c == '/' || c.is_ascii_whitespace());
    let mut depth = 0usize;
    let mut at = from;
    while let Some(open) = memchr::memchr(b'<', &bytes[at..]).map(|i| at + i) {
        // `<` is one byte: the text after it starts on a character boundary.
        let rest = &text[open + 1..];
        if let Some(after) = rest.strip_prefix('/').and_then(|r| r.strip_prefix(qualified)) {
            if ends_name(after) && !after.starts_with('/') {
                match depth {
                    0 => return Some(open),
                    _ => depth -= 1,
                }
            }
        } else if let Some(after) = rest.strip_prefix(qualified)
            && ends_name(after)
        {
            let tag_end = memchr::memchr(b'>', after.as_bytes())?;
            if !after[..tag_end].ends_with('/') {
                depth += 1;
            }
        }
        at = open + 1;
    }
    None
}

/// Whether an attribute or element names the value beside it (`key="password"`,
/// `<Name>password</Name>`, CloudFormation's `<ParameterKey>`), as a JSON object's field does
/// ([`crate::model::credentials::PAIR_NAMES`]), in any letter case.
fn is_pair_name(name: &str) -> bool {
    crate::model::credentials::PAIR_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Whether an attribute or element holds the value a pair names (`value="…"`, `<Value>`,
/// `<ParameterValue>`; [`crate::model::credentials::PAIR_VALUES`]), in any letter case.
fn is_pair_value(name: &str) -> bool {
    crate::model::credentials::PAIR_VALUES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// A name's local part: what follows its namespace prefix (`wsse:Password` → `Password`).
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// Where the element name starting at `at` ends (`at` itself when none starts there).
fn name_end(bytes: &[u8], at: usize) -> usize {
    let starts = bytes
        .get(at)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b >= 0x80);
    if !starts {
        return at;
    }
    name_end_of_attr(bytes, at)
}

fn name_end_of_attr(bytes: &[u8], at: usize) -> usize {
    let mut end = at;
    while end < bytes.len() && is_name_byte(bytes[end]) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> bool {
        crate::model::credentials::is_credential_name(name)
    }

    fn mask(text: &str) -> Option<(String, Vec<Found>)> {
        mask_elements(text, &secret, &|n| format!("field {n}"))
    }

    #[test]
    fn credential_elements_and_attributes_are_masked_and_the_rest_kept_byte_for_byte() {
        let body = r#"<?xml version="1.0"?><auth kind="pw" token='t-123'><user>u</user><wsse:Password Type="x">pw-456</wsse:Password><SessionToken><![CDATA[st-789]]></SessionToken><empty/><password></password></auth>"#;
        let (masked, found) = mask(body).unwrap();
        assert_eq!(
            masked,
            r#"<?xml version="1.0"?><auth kind="pw" token='REDACTED'><user>u</user><wsse:Password Type="x">REDACTED</wsse:Password><SessionToken><![CDATA[REDACTED]]></SessionToken><empty/><password></password></auth>"#
        );
        let values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["t-123", "pw-456", "st-789"]);
    }

    #[test]
    fn a_name_and_value_pair_naming_a_credential_has_its_value_masked() {
        let cases = [
            (r#"<r><entry key="password">pv-1</entry><entry key="user">kept-1</entry></r>"#,
             r#"<r><entry key="password">REDACTED</entry><entry key="user">kept-1</entry></r>"#),
            (r#"<c><add value="pv-2" Key="Password"/><add key="Region" value="kept-2"/></c>"#,
             r#"<c><add value="REDACTED" Key="Password"/><add key="Region" value="kept-2"/></c>"#),
            (r#"<p><param name="secret" value='pv-3'/><property name='db_password' value="pv-4"></property></p>"#,
             r#"<p><param name="secret" value='REDACTED'/><property name='db_password' value="REDACTED"></property></p>"#),
            ("<Parameters><Parameter><Name>password</Name><Value>pv-5</Value></Parameter>              <Parameter><Name>Region</Name><Value>kept-5</Value></Parameter>              <Parameter><ns:Key> api_key </ns:Key><ns:Value><![CDATA[pv-6]]></ns:Value></Parameter></Parameters>",
             "<Parameters><Parameter><Name>password</Name><Value>REDACTED</Value></Parameter>              <Parameter><Name>Region</Name><Value>kept-5</Value></Parameter>              <Parameter><ns:Key> api_key </ns:Key><ns:Value><![CDATA[REDACTED]]></ns:Value></Parameter></Parameters>"),
        ];
        for (body, expected) in cases {
            let (masked, found) = mask(body).unwrap();
            assert_eq!(masked, expected);
            assert!(found.iter().all(|f| f.value.starts_with("pv-")), "{found:?}");
        }
        // CloudFormation's parameters, and a tag cut short after a credential attribute.
        let (masked, _) = mask("<P><ParameterKey>DBPassword</ParameterKey><ParameterValue>pv-8</ParameterValue></P>").unwrap();
        assert_eq!(masked, "<P><ParameterKey>DBPassword</ParameterKey><ParameterValue>REDACTED</ParameterValue></P>");
        // An element whose name is a pair's (`property`) named by its attribute: its text.
        let (masked, _) = mask(r#"<p><property name="password">pv-12</property></p>"#).unwrap();
        assert_eq!(masked, r#"<p><property name="password">REDACTED</property></p>"#);
        for (cut, expected) in [
            (r#"<auth password="pv-9""#, r#"<auth password="REDACTED""#),
            (r#"<x><add key="token" value="pv-10" "#, r#"<x><add key="token" value="REDACTED" "#),
            (r#"<auth password="pv-11" user="u"#, r#"<auth password="REDACTED" user="u"#),
        ] {
            assert_eq!(mask(cut).unwrap().0, expected);
        }
        // A `<Value>` not right after the name is its own; a name that is no credential's
        // masks nothing.
        assert!(mask("<p><Name>password</Name><Other>o</Other><Value>kept-7</Value></p>").is_none());
        assert!(mask(r#"<p><entry key="image_name">kept-8</entry><Name>owner</Name><Value>kept-9</Value></p>"#).is_none());
    }

    #[test]
    fn a_saml_assertion_is_masked_whole_whatever_it_holds() {
        let body = r#"<samlp:Response ID="r1"><saml:Issuer>idp</saml:Issuer><saml:Assertion ID="a1"><saml:Subject><saml:NameID>bob</saml:NameID></saml:Subject><ds:Signature><ds:SignatureValue>SamlSig-1</ds:SignatureValue></ds:Signature></saml:Assertion><saml:AssertionIDRef>x</saml:AssertionIDRef></samlp:Response>"#;
        let (masked, found) = mask(body).unwrap();
        assert_eq!(
            masked,
            r#"<samlp:Response ID="r1"><saml:Issuer>idp</saml:Issuer><saml:Assertion ID="a1">REDACTED</saml:Assertion><saml:AssertionIDRef>x</saml:AssertionIDRef></samlp:Response>"#
        );
        assert!(found[0].value.contains("SamlSig-1"), "{found:?}");
        // Nested assertions (in `Advice`) end at the outer one's end tag; one never closed is
        // left alone.
        let nested = "<Assertion><Advice><Assertion>in</Assertion></Advice>s-2</Assertion><x/>";
        assert_eq!(mask(nested).unwrap().0, "<Assertion>REDACTED</Assertion><x/>");
        assert!(mask("<Assertion><a>open").is_none());
        // A reference to another assertion inside it is no end tag, and an assertion that
        // closes itself opens nothing.
        for inside in [
            "<saml:Advice><saml:AssertionIDRef>r1</saml:AssertionIDRef></saml:Advice>",
            r#"<saml:Advice><saml:Assertion ID="b"/></saml:Advice>"#,
            "<saml:Advice><saml:Assertion\n/></saml:Advice>",
        ] {
            let body = format!(
                r#"<saml:Assertion ID="a">{inside}<saml:NameID>bob-77</saml:NameID></saml:Assertion ><y/>"#
            );
            let (masked, _) = mask(&body).unwrap();
            assert_eq!(masked, r#"<saml:Assertion ID="a">REDACTED</saml:Assertion ><y/>"#, "{inside}");
        }
    }

    #[test]
    fn megabytes_of_assertions_closed_or_never_closed_are_masked_or_left_alone() {
        // Each unclosed start tag looking for its end tag again would be quadratic (a few MiB
        // of them held a worker for minutes); after the first one none is looked for again.
        let body = "<Assertion>".repeat(400_000);
        assert!(mask(&body).is_none());
        let many = "<Assertion>x</Assertion>".repeat(100_000);
        assert_eq!(mask(&many).unwrap().1.len(), 100_000);
    }

    #[test]
    fn a_credential_element_holding_elements_is_left_to_them_and_odd_text_never_panics() {
        let nested = "<credentials><AccessKeyId>AK1</AccessKeyId><SecretAccessKey>SK2</SecretAccessKey></credentials>";
        let (masked, found) = mask(nested).unwrap();
        assert!(masked.starts_with("<credentials><AccessKeyId>"), "{masked}");
        assert!(masked.ends_with("<SecretAccessKey>REDACTED</SecretAccessKey></credentials>"));
        assert!(found.iter().any(|f| f.value == "SK2"));
        for odd in ["<", "<a", "<a b=", "<a b='x", "<password>x", "<password><![CDATA[x", "<<>>", "<é password='x'>", "<!-- <password>c</password> -->"] {
            let _ = mask(odd);
        }
        assert!(mask("<image><name>n</name><size>1</size></image>").is_none());
        assert!(looks_like_xml("\u{feff}  <a/>") && !looks_like_xml("{\"a\":1}"));
    }
}
