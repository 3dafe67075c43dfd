//! Request bodies have their credentials masked before anything is stored (`mask_body`, and
//! through it `mask_credentials`): whatever the bytes and the content type, it must not panic,
//! masking what it masked must change nothing, and a secret planted under a credential name, in
//! a shape the code says it masks (JSON fields at any depth, pairs and patches; form pairs under
//! a form's type, none or `text/plain`; XML elements, attributes and name/value pairs, but under
//! a form's type; multipart parts, typed or sniffed; assignment and `"name": value` lines of
//! text, but under a form's type), must not stay raw in what comes out, and must be among what
//! was found.
#![no_main]

use arbitrary::Arbitrary;
use ims_vcr::model::credentials::{Found, is_credential_name, is_form, mask_body, mask_json};
use ims_vcr::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use ims_vcr::secrets::exposure::mask_credentials;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Names that `is_credential_name` accepts (checked on every run), in the spellings bodies use.
const NAMES: &[&str] = &[
    "password",
    "Password",
    "new_password",
    "adminPass",
    "admin_pass",
    "passwd",
    "pwd",
    "pw",
    "root_pwd",
    "db_pass",
    "OS_PASSWORD",
    "secret",
    "client_secret",
    "SecretAccessKey",
    "secret_key",
    "token",
    "access_token",
    "X-Auth-Token",
    "x_auth_token",
    "refresh_token",
    "id_token",
    "SecurityToken",
    "SessionToken",
    "api_key",
    "apikey",
    "X-Api-Key",
    "access_key",
    "AccessKeyId",
    "ak",
    "sk",
    "Signature",
    "X-Amz-Signature",
    "sig",
    "private_key",
    "passphrase",
    "passcode",
    "session_id",
    "JSESSIONID",
    "credentials",
    "authorization",
    "signing_key",
    "jwt",
    "otp",
    "assertion",
    "SAMLResponse",
    "adminPwd",
    "temp_url_key_2",
    "auth[token]",
    "data[access_token]",
    "token[]",
    "code_verifier",
    "hw_ak_sk",
];
/// The fields naming a pair's name and holding its value (`PAIR_NAMES`, `PAIR_VALUES` of
/// `model::credentials`), in the cases XML writes them.
const PAIR_NAMES: &[&str] = &[
    "key",
    "name",
    "Key",
    "Name",
    "k",
    "ParameterKey",
    "property",
    "NAME",
];
const PAIR_VALUES: &[&str] = &["value", "Value", "v", "ParameterValue", "val", "VALUE"];

/// Part of a value under a credential name: other text, or the planted secret.
#[derive(Arbitrary, Debug)]
enum Piece {
    Lit(String),
    Secret,
}

#[derive(Arbitrary, Debug)]
enum Ct {
    /// The shape's own type (`application/json`, a form's, `application/xml`, multipart with
    /// its boundary, `text/plain`).
    Right,
    Missing,
    TextPlain,
    Json,
    Xml,
    Csv,
    Form,
    MultipartNoBoundary,
    MultipartWrongBoundary,
    Any(String),
}

// ---- JSON -----------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<Entry>),
    /// `{"key": "password", "value": …}` (any of the pair's field names).
    Pair(u8, u8, u8, CredValue),
    /// `{"op": "replace", "path": "/a/password", "value": …}`.
    Patch(String, u8, CredValue),
}

#[derive(Arbitrary, Debug)]
enum Entry {
    Plain(String, Json),
    Cred(u8, CredValue),
}

/// What a credential field holds: text with the secret, a list of such, or an object whose
/// `id`, `key` or `value` holds it (Keystone's `"token": {"id": …}`).
#[derive(Arbitrary, Debug)]
enum CredValue {
    Str(Vec<Piece>),
    Array(Vec<CredValue>),
    Object(u8, Box<CredValue>, Vec<Entry>),
}

// ---- forms ----------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum FormPair {
    Plain(String, String),
    Cred(u8, Vec<Piece>),
}

#[derive(Arbitrary, Debug)]
struct Form {
    pairs: Vec<FormPair>,
    /// Between pairs: `&`, `\n` or `\r\n` (a form a line).
    separators: Vec<u8>,
}

// ---- XML ------------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Attr {
    Plain(String, String),
    Cred(bool, u8, Vec<Piece>),
}

#[derive(Arbitrary, Debug)]
enum Xml {
    Text(String),
    Elem(String, Vec<Attr>, Vec<Xml>),
    /// `<password>…</password>` (`<ns:password>`, CDATA or not), text only.
    Cred {
        prefix: bool,
        name: u8,
        attrs: Vec<Attr>,
        cdata: bool,
        value: Vec<Piece>,
    },
    /// `<entry key="password">…</entry>`, `<add key="Password" value="…"/>`.
    AttrPair {
        elem: String,
        key: u8,
        cred: u8,
        value_attr: Option<u8>,
        value_first: bool,
        text: Option<(bool, Vec<Piece>)>,
        value: Vec<Piece>,
    },
    /// `<Name>password</Name><Value>…</Value>` (`<ParameterKey>`, `<ParameterValue>`).
    ElemPair {
        prefix: bool,
        name: u8,
        cred: u8,
        value: u8,
        space: bool,
        cdata: bool,
        secret: Vec<Piece>,
    },
}

// ---- multipart ------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Part {
    Cred {
        name: u8,
        rfc5987: bool,
        typed: bool,
        value: Vec<Piece>,
    },
    Plain(String, String),
    Raw(String, Vec<u8>),
    Json(String, bool, Json),
    Form(String, bool, Form),
    Xml(String, bool, Vec<Xml>),
    Text(String, bool, Text),
}

#[derive(Arbitrary, Debug)]
struct Multipart {
    boundary: String,
    quoted: bool,
    crlf: bool,
    parts: Vec<Part>,
}

// ---- text -----------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Line {
    /// `export NAME = "…"` (env, properties and INI files).
    Assign {
        export: bool,
        name: u8,
        spaces: bool,
        quote: u8,
        value: Vec<Piece>,
    },
    /// `"name": "…"`, `'name': '…'`, `name: value` (JSON no parser takes, YAML-ish text).
    Colon {
        name: u8,
        name_quote: u8,
        value_quote: u8,
        value: Vec<Piece>,
    },
    Comment(String),
    Section(String),
    Free(String),
    Blank,
}

#[derive(Arbitrary, Debug)]
struct Text {
    lines: Vec<Line>,
    ending: u8,
    braces: bool,
}

#[derive(Arbitrary, Debug)]
enum Shape {
    Json {
        json: Json,
        pretty: bool,
        bom: bool,
    },
    Form(Form),
    Xml {
        prolog: bool,
        root: String,
        children: Vec<Xml>,
    },
    Multipart(Multipart),
    Text(Text),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The secret: `ZQ` and 14 upper-case letters or digits made of these. Every other text is
    /// put in lower case, so it cannot hold the secret.
    secret: [u8; 14],
    shape: Shape,
    ct: Ct,
}

/// Which reading of `mask_body` a shape gets.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Form,
    Xml,
    Multipart,
    Text,
    Raw,
}

struct Build {
    secret: String,
    /// A secret was planted.
    planted: bool,
    /// The multipart boundary, if any.
    boundary: Option<String>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Lower-case text without line breaks, quotes, `<`, `&`, `=`, `:`, `#`, `;` or backslashes:
/// safe in a text line, an assignment's or a quoted value, a multipart part.
fn plain_text(s: &str) -> String {
    lower(s)
        .chars()
        .filter(|c| !c.is_control() && !"\"'<>&=:#;\\[]{},".contains(*c))
        .collect()
}

fn word(s: &str, fallback: &str) -> String {
    let w: String = lower(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    if w.is_empty() || w.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{fallback}{w}")
    } else {
        w
    }
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Names an element, an attribute or an assignment can have (`auth[token]` cannot).
fn names_where(ok: impl Fn(&str) -> bool) -> Vec<&'static str> {
    NAMES.iter().copied().filter(|n| ok(n)).collect()
}

fn xml_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphabetic())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Build {
    fn pieces(&mut self, pieces: &[Piece], lit: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Lit(s) => out.push_str(&lit(s)),
                Piece::Secret => {
                    out.push_str(&self.secret);
                    self.planted = true;
                }
            }
        }
        out
    }

    /// Pieces with the secret in them for sure (a value must not be empty to be masked).
    fn value(&mut self, pieces: &[Piece], lit: impl Fn(&str) -> String) -> String {
        let mut out = self.pieces(pieces, lit);
        if !out.contains(&self.secret) {
            out.push_str(&self.secret);
            self.planted = true;
        }
        out
    }

    // JSON

    fn json(&mut self, json: &Json, depth: usize) -> Value {
        if depth > 24 {
            return Value::Null;
        }
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(n) => Value::from(*n),
            Json::Str(s) => Value::String(lower(s)),
            Json::Array(items) => items.iter().map(|i| self.json(i, depth + 1)).collect(),
            Json::Object(entries) => Value::Object(self.entries(entries, depth + 1)),
            Json::Pair(name, cred, value, v) => {
                let mut map = Map::new();
                map.insert(
                    pick(&PAIR_NAMES[..7], *name).to_owned(),
                    Value::String(pick(NAMES, *cred).to_owned()),
                );
                map.insert(
                    pick(&PAIR_VALUES[..5], *value).to_owned(),
                    self.cred_value(v, depth + 1),
                );
                Value::Object(map)
            }
            Json::Patch(prefix, cred, v) => {
                let mut map = Map::new();
                map.insert("op".to_owned(), Value::String("replace".to_owned()));
                let path = format!("/{}/{}", word(prefix, "m"), pick(NAMES, *cred));
                map.insert("path".to_owned(), Value::String(path));
                map.insert("value".to_owned(), self.cred_value(v, depth + 1));
                Value::Object(map)
            }
        }
    }

    fn entries(&mut self, entries: &[Entry], depth: usize) -> Map<String, Value> {
        let mut map = Map::new();
        for entry in entries {
            let (name, value) = match entry {
                Entry::Plain(name, json) => (lower(name), self.json(json, depth)),
                Entry::Cred(name, v) => (pick(NAMES, *name).to_owned(), self.cred_value(v, depth)),
            };
            map.insert(name, value);
        }
        map
    }

    fn cred_value(&mut self, v: &CredValue, depth: usize) -> Value {
        if depth > 24 {
            return Value::String(self.secret.clone());
        }
        match v {
            CredValue::Str(pieces) => Value::String(self.value(pieces, lower)),
            CredValue::Array(items) => items
                .iter()
                .map(|i| self.cred_value(i, depth + 1))
                .collect(),
            CredValue::Object(field, inner, rest) => {
                let mut map = self.entries(rest, depth + 1);
                // An object under `id`/`key`/`value` is searched for names of its own, not
                // masked: wrapped in a list, it is.
                let value = match self.cred_value(inner, depth + 1) {
                    Value::Object(o) => Value::Array(vec![Value::Object(o)]),
                    other => other,
                };
                map.insert(pick(&["id", "key", "value"], *field).to_owned(), value);
                Value::Object(map)
            }
        }
    }

    // forms

    fn form(&mut self, form: &Form) -> String {
        let names = names_where(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.~[]".contains(&b))
        });
        let mut out = String::new();
        for (i, pair) in form.pairs.iter().enumerate() {
            if i > 0 {
                out.push_str(match form.separators.get(i).copied().unwrap_or(0) % 4 {
                    1 => "\n",
                    2 => "\r\n",
                    _ => "&",
                });
            }
            match pair {
                FormPair::Plain(name, value) => {
                    let name = percent(&lower(name));
                    out.push_str(if name.is_empty() { "n" } else { &name });
                    out.push('=');
                    out.push_str(&percent(&lower(value)));
                }
                FormPair::Cred(name, pieces) => {
                    out.push_str(pick(&names, *name));
                    out.push('=');
                    let value = self.value(pieces, |s| percent(&lower(s)));
                    out.push_str(&value);
                }
            }
        }
        out
    }

    // XML

    fn attrs(&mut self, attrs: &[Attr], out: &mut String) {
        let names = names_where(xml_name);
        for attr in attrs {
            match attr {
                Attr::Plain(name, value) => {
                    out.push_str(&format!(
                        " {}=\"{}\"",
                        word(name, "a"),
                        xml_escape(&lower(value))
                    ));
                }
                Attr::Cred(single, name, pieces) => {
                    let q = if *single { '\'' } else { '"' };
                    let value = self.value(pieces, |s| xml_escape(&lower(s)));
                    out.push_str(&format!(" {}={q}{value}{q}", pick(&names, *name)));
                }
            }
        }
    }

    fn xml(&mut self, xml: &Xml, depth: usize, out: &mut String) {
        if depth > 16 {
            return;
        }
        let names = names_where(xml_name);
        let text = |s: &str| xml_escape(&lower(s));
        match xml {
            Xml::Text(s) => out.push_str(&text(s)),
            Xml::Elem(name, attrs, children) => {
                let name = word(name, "e");
                out.push_str(&format!("<{name}"));
                self.attrs(attrs, out);
                out.push('>');
                for child in children {
                    self.xml(child, depth + 1, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            Xml::Cred {
                prefix,
                name,
                attrs,
                cdata,
                value,
            } => {
                let name = format!(
                    "{}{}",
                    if *prefix { "ns:" } else { "" },
                    pick(&names, *name)
                );
                out.push_str(&format!("<{name}"));
                self.attrs(attrs, out);
                out.push('>');
                let value = self.value(value, text);
                match cdata {
                    true => out.push_str(&format!("<![CDATA[{value}]]>")),
                    false => out.push_str(&value),
                }
                out.push_str(&format!("</{name}>"));
            }
            Xml::AttrPair {
                elem,
                key,
                cred,
                value_attr,
                value_first,
                text: inner,
                value,
            } => {
                let elem = word(elem, "entry");
                let key = format!(" {}=\"{}\"", pick(PAIR_NAMES, *key), pick(NAMES, *cred));
                let value = value_attr.map(|v| {
                    let value = self.value(value, text);
                    format!(" {}=\"{value}\"", pick(PAIR_VALUES, v))
                });
                let value = value.unwrap_or_default();
                let attrs = if *value_first {
                    format!("{value}{key}")
                } else {
                    format!("{key}{value}")
                };
                match inner {
                    None => out.push_str(&format!("<{elem}{attrs}/>")),
                    Some((cdata, pieces)) => {
                        let t = self.value(pieces, text);
                        let t = if *cdata {
                            format!("<![CDATA[{t}]]>")
                        } else {
                            t
                        };
                        out.push_str(&format!("<{elem}{attrs}>{t}</{elem}>"));
                    }
                }
            }
            Xml::ElemPair {
                prefix,
                name,
                cred,
                value,
                space,
                cdata,
                secret,
            } => {
                let ns = if *prefix { "p:" } else { "" };
                let name = format!("{ns}{}", pick(PAIR_NAMES, *name));
                let value = format!("{ns}{}", pick(PAIR_VALUES, *value));
                let cred = pick(&names, *cred);
                let s = if *space { " " } else { "" };
                let v = self.value(secret, text);
                let v = if *cdata {
                    format!("<![CDATA[{v}]]>")
                } else {
                    v
                };
                out.push_str(&format!(
                    "<{name}>{s}{cred}{s}</{name}>{s}<{value}>{v}</{value}>"
                ));
            }
        }
    }

    fn xml_doc(&mut self, prolog: bool, root: &str, children: &[Xml]) -> String {
        let mut out = String::new();
        if prolog {
            out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        }
        let root = word(root, "r");
        out.push_str(&format!("<{root}>"));
        for child in children {
            self.xml(child, 1, &mut out);
        }
        out.push_str(&format!("</{root}>"));
        out
    }

    // text

    fn text(&mut self, text: &Text) -> String {
        let ending = match text.ending % 3 {
            0 => "\n",
            1 => "\r\n",
            _ => "\r",
        };
        let assign = names_where(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
        let bare = names_where(|n| {
            n.starts_with(|c: char| c.is_ascii_alphabetic())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        });
        let mut out = String::new();
        if text.braces {
            out.push('{');
            out.push_str(ending);
        }
        for line in &text.lines {
            match line {
                Line::Assign {
                    export,
                    name,
                    spaces,
                    quote,
                    value,
                } => {
                    let value = self.value(value, plain_text);
                    let q = match quote % 3 {
                        0 => "",
                        1 => "\"",
                        _ => "'",
                    };
                    let eq = if *spaces { " = " } else { "=" };
                    let export = if *export { "export " } else { "" };
                    out.push_str(&format!(
                        "{export}{}{eq}{q}{value}{q}",
                        pick(&assign, *name)
                    ));
                }
                Line::Colon {
                    name,
                    name_quote,
                    value_quote,
                    value,
                } => {
                    let name = match name_quote % 3 {
                        0 => pick(&bare, *name).to_owned(),
                        1 => format!("\"{}\"", pick(NAMES, *name)),
                        _ => format!("'{}'", pick(NAMES, *name)),
                    };
                    let value = match value_quote % 3 {
                        // A bare value ends at a space or a comma: letters and digits only.
                        0 => self.value(value, |s| {
                            lower(s)
                                .chars()
                                .filter(char::is_ascii_alphanumeric)
                                .collect()
                        }),
                        1 => format!("\"{}\"", self.value(value, plain_text)),
                        _ => format!("'{}'", self.value(value, plain_text)),
                    };
                    out.push_str(&format!("{name}: {value},"));
                }
                Line::Comment(s) => out.push_str(&format!("# {}", plain_text(s))),
                Line::Section(s) => out.push_str(&format!("[{}]", word(s, "s"))),
                Line::Free(s) => out.push_str(&plain_text(s)),
                Line::Blank => {}
            }
            out.push_str(ending);
        }
        if text.braces {
            out.push_str("\"n\": NaN}");
            out.push_str(ending);
        }
        out
    }

    // multipart

    fn multipart(&mut self, m: &Multipart) -> String {
        let tail: String = lower(&m.boundary)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(*c))
            .take(60)
            .collect();
        let boundary = format!("Q{}", tail.trim_end());
        self.boundary = Some(boundary.clone());
        let nl = if m.crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        for part in &m.parts {
            out.push_str(&format!("--{boundary}{nl}"));
            let (disposition, content_type, content) = match part {
                Part::Cred {
                    name,
                    rfc5987,
                    typed,
                    value,
                } => {
                    let name = pick(NAMES, *name);
                    let disposition = match rfc5987 {
                        true => format!("name*=UTF-8''{}", percent(name)),
                        false => format!("name=\"{name}\""),
                    };
                    let value = self.value(value, plain_text);
                    (disposition, typed.then(|| "text/plain".to_owned()), value)
                }
                Part::Plain(name, value) => (
                    format!("name=\"{}\"", word(name, "f")),
                    None,
                    plain_text(value),
                ),
                Part::Raw(name, bytes) => {
                    // No line breaks: no delimiter inside. Lower case: no secret.
                    let text: String = String::from_utf8_lossy(bytes)
                        .chars()
                        .map(|c| {
                            if c == '\r' || c == '\n' {
                                ' '
                            } else {
                                c.to_ascii_lowercase()
                            }
                        })
                        .collect();
                    (
                        format!(
                            "name=\"{}\"; filename=\"{}.bin\"",
                            word(name, "f"),
                            word(name, "f")
                        ),
                        Some("application/octet-stream".to_owned()),
                        text,
                    )
                }
                Part::Json(name, typed, json) => {
                    let v = self.json(json, 1);
                    (
                        format!("name=\"{}\"", word(name, "meta")),
                        typed.then(|| "application/json".to_owned()),
                        v.to_string(),
                    )
                }
                Part::Form(name, typed, form) => {
                    let f = self.form(form);
                    (
                        format!("name=\"{}\"", word(name, "form")),
                        typed.then(|| "application/x-www-form-urlencoded".to_owned()),
                        f,
                    )
                }
                Part::Xml(name, typed, children) => {
                    let x = self.xml_doc(false, "doc", children);
                    (
                        format!("name=\"{}\"", word(name, "xml")),
                        typed.then(|| "application/xml".to_owned()),
                        x,
                    )
                }
                Part::Text(name, typed, text) => {
                    let t = self.text(text);
                    (
                        format!("name=\"{}\"", word(name, "env")),
                        typed.then(|| "text/plain".to_owned()),
                        t,
                    )
                }
            };
            out.push_str(&format!(
                "Content-Disposition: form-data; {disposition}{nl}"
            ));
            if let Some(t) = content_type {
                out.push_str(&format!("Content-Type: {t}{nl}"));
            }
            out.push_str(nl);
            out.push_str(&content);
            out.push_str(nl);
        }
        out.push_str(&format!("--{boundary}--{nl}"));
        out
    }
}

/// Whether `content_type` names `text/plain` (what `mask_body` reads a form-like body under).
fn plain(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/plain"))
    })
}

/// Whether `mask_body` promises to mask a secret planted in a body of `kind` under
/// `content_type`: JSON under any type; a form under a form's type, `text/plain` or none; XML
/// and text under any type but a form's (or a multipart type whose boundary the body holds);
/// multipart under its own type or, read by its bytes, any other.
fn promised(kind: Kind, content_type: Option<&str>, body: &[u8], ours: Option<&str>) -> bool {
    let declared = ims_vcr::model::multipart::boundary(content_type)
        .filter(|b| Some(*b) != ours)
        .filter(|b| contains(body, format!("--{b}").as_bytes()));
    match kind {
        Kind::Json => true,
        Kind::Form => declared.is_none() && (is_form(content_type) || plain(content_type)),
        Kind::Xml | Kind::Text => declared.is_none() && !is_form(content_type),
        Kind::Multipart => declared.is_none(),
        Kind::Raw => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- the checks -------------------------------------------------------------------------------

/// `mask_body` of what it masked finds nothing, or gives the same bytes back.
fn masking_is_idempotent(masked: &[u8], content_type: Option<&str>) {
    if let Some((again, found)) = mask_body(masked, content_type) {
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(masked),
            "masking the masked body again changed it (content type {content_type:?}; found again: {:?})",
            found
                .iter()
                .map(|f| (&f.label, &f.value))
                .collect::<Vec<_>>()
        );
    }
}

/// A planted secret is not raw in the masked body and is among what was found.
fn secret_is_masked(
    body: &[u8],
    content_type: Option<&str>,
    secret: &str,
    out: Option<&(Vec<u8>, Vec<Found>)>,
) {
    let Some((masked, found)) = out else {
        panic!(
            "the secret was not masked at all (content type {content_type:?}):\n{}",
            String::from_utf8_lossy(body)
        );
    };
    assert!(
        !contains(masked, secret.as_bytes()),
        "the secret {secret} is still raw (content type {content_type:?}):\nbody:   {}\nmasked: {}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(masked)
    );
    assert!(
        found.iter().any(|f| f.value.contains(secret)),
        "the secret {secret} was masked but is not among what was found (content type {content_type:?}): {found:?}\nbody: {}",
        String::from_utf8_lossy(body)
    );
}

/// `mask_credentials` of an interaction carrying the body: the stored request body does not
/// hold the secret, and it is among the needles.
fn interaction_is_masked(body: &[u8], content_type: Option<&str>, secret: &str) {
    let interaction = Interaction {
        request: RecordedRequest {
            method: "POST".into(),
            path: "/v3/auth/tokens".into(),
            query: None,
            headers: content_type
                .map(|t| ("content-type".to_owned(), t.to_owned()))
                .into_iter()
                .collect(),
            body: Body::from_bytes(body),
            session: None,
        },
        response: RecordedResponse {
            status: 201,
            headers: Vec::new(),
            body: None,
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        },
        redaction: None,
    };
    let masked =
        mask_credentials(&interaction, None).expect("a request body with a credential is masked");
    let stored = masked
        .interaction
        .request
        .body
        .as_ref()
        .expect("a body")
        .to_bytes()
        .expect("a body decodes");
    assert!(
        !contains(&stored, secret.as_bytes()),
        "mask_credentials stored the secret raw: {}",
        String::from_utf8_lossy(&stored)
    );
    assert!(
        masked.needles.iter().any(|n| n.value.contains(secret)),
        "the secret is no needle"
    );
}

fuzz_target!(|input: Input| {
    for name in NAMES {
        assert!(
            is_credential_name(name),
            "{name} is no credential name: fix NAMES"
        );
    }
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let secret: String = "ZQ"
        .chars()
        .chain(
            input
                .secret
                .iter()
                .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()])),
        )
        .collect();
    let mut build = Build {
        secret: secret.clone(),
        planted: false,
        boundary: None,
    };
    let (kind, body, right) = match &input.shape {
        Shape::Json { json, pretty, bom } => {
            let value = build.json(json, 0);
            // `mask_json` on the value itself: masked, and masking again finds nothing.
            let mut direct = value.clone();
            let found = mask_json(&mut direct);
            assert!(
                mask_json(&mut direct.clone()).is_empty(),
                "mask_json found more the second time: {direct}"
            );
            if value.to_string().contains(&secret) {
                assert!(
                    !direct.to_string().contains(&secret),
                    "mask_json left the secret: {direct}"
                );
                assert!(found.iter().any(|f| f.value.contains(&secret)));
            }
            let mut bytes = if *bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            match pretty {
                true => {
                    bytes.extend(serde_json::to_vec_pretty(&value).expect("a value serialises"))
                }
                false => bytes.extend(serde_json::to_vec(&value).expect("a value serialises")),
            }
            (Kind::Json, bytes, "application/json".to_owned())
        }
        Shape::Form(form) => (
            Kind::Form,
            build.form(form).into_bytes(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        Shape::Xml {
            prolog,
            root,
            children,
        } => (
            Kind::Xml,
            build.xml_doc(*prolog, root, children).into_bytes(),
            "application/xml".to_owned(),
        ),
        Shape::Multipart(m) => {
            let body = build.multipart(m).into_bytes();
            let b = build.boundary.clone().unwrap_or_default();
            let declared = if m.quoted {
                format!("multipart/form-data; boundary=\"{b}\"")
            } else {
                format!("multipart/form-data; boundary={b}")
            };
            (Kind::Multipart, body, declared)
        }
        Shape::Text(text) => (
            Kind::Text,
            build.text(text).into_bytes(),
            "text/plain".to_owned(),
        ),
        Shape::Raw(bytes) => (
            Kind::Raw,
            bytes.clone(),
            "application/octet-stream".to_owned(),
        ),
    };
    let content_type: Option<String> = match &input.ct {
        Ct::Right => Some(right),
        Ct::Missing => None,
        Ct::TextPlain => Some("text/plain; charset=utf-8".to_owned()),
        Ct::Json => Some("application/json".to_owned()),
        Ct::Xml => Some("text/xml".to_owned()),
        Ct::Csv => Some("text/csv".to_owned()),
        Ct::Form => Some("application/x-www-form-urlencoded; charset=UTF-8".to_owned()),
        Ct::MultipartNoBoundary => Some("multipart/form-data".to_owned()),
        Ct::MultipartWrongBoundary => Some("multipart/mixed; boundary=Wrong-Bound".to_owned()),
        Ct::Any(t) => Some(t.clone()),
    };
    let content_type = content_type.as_deref();

    // (a) never panics; (b) idempotent.
    let out = mask_body(&body, content_type);
    if let Some((masked, _)) = &out {
        masking_is_idempotent(masked, content_type);
    }

    // (c) a planted secret, where masking is promised, is masked.
    // (A later field of the same name may have replaced the one holding it: look at the body.)
    let planted = build.planted && contains(&body, secret.as_bytes());
    if planted && promised(kind, content_type, &body, build.boundary.as_deref()) {
        // Nested parts are read as their own types say, each promised as a body's own would be.
        secret_is_masked(&body, content_type, &secret, out.as_ref());
        // A file's type (`application/octet-stream`, `image/png`) keeps a body as it is.
        let file = ims_vcr::model::headers::holds_file_bytes(
            &content_type
                .map(|t| ("content-type".to_owned(), t.to_owned()))
                .into_iter()
                .collect::<Vec<_>>(),
        );
        if !file {
            interaction_is_masked(&body, content_type, &secret);
        }
    }
});
