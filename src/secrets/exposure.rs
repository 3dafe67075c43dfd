//! Where secrets are exposed: the credential values a request carried (as needles for the leak
//! gate), and credentials in requests and answers masked before anything is stored (the leak
//! check of a whole interaction is `leak_check.rs`).


use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::model::encodings::{
    embedded_inflated, from_latin1_text, from_utf16, inflate, inflate_layers, is_text_like,
    is_zlib, utf16_order,
};
use crate::model::headers::is_credential;
use crate::model::interaction::{Body, Interaction, RecordedRequest};
use crate::secrets::leak::Needle;
use crate::secrets::pseudonym::PseudonymKey;

/// Authentication parameters whose values are keys or proofs of one: an AK/SK signature's
/// `Access`, `Signature` and `Credential` (AWS v4), Digest's `response` and `cnonce`, OAuth 1's
/// `oauth_signature` and `oauth_token`.
const SECRET_AUTH_PARAMS: [&str; 7] = [
    "access",
    "signature",
    "credential",
    "response",
    "cnonce",
    "oauth_signature",
    "oauth_token",
];

/// Credential values a request carried, as needles for the leak gate: each credential header's
/// whole value, plus the secret parts inside it: the access key and signature of an AK/SK
/// `Authorization` (not its `SignedHeaders` list, which names ordinary headers), the credential
/// of a `Bearer`/`Basic` one, the parameters [`SECRET_AUTH_PARAMS`] names however they are
/// written, both halves of an `ACCESS_KEY:SIGNATURE` one, and each cookie value.
pub fn credential_needles(headers: &hyper::HeaderMap) -> Vec<Needle> {
    let mut needles = Vec::new();
    for (name, value) in headers {
        if !is_credential(name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let label = format!("credential header {name}");
        let mut push = |v: &str| {
            let v = v.trim();
            if !v.is_empty() {
                needles.push(Needle {
                    label: label.clone(),
                    value: v.to_owned(),
                });
            }
        };
        push(value);
        match name.as_str() {
            "authorization" | "proxy-authorization" => {
                let (scheme, rest) = value.split_once(' ').unwrap_or(("", value));
                push(rest);
                // Authentication parameters, however written (`SDK-HMAC-SHA256 Access=…,
                // Signature=…`, lower-case, spaces around `=`, quoted; Digest's `response`):
                // the values that are keys or proofs of one.
                for (k, v) in rest.split(',').filter_map(|p| p.split_once('=')) {
                    let k = k.trim().rsplit(' ').next().unwrap_or_default();
                    if SECRET_AUTH_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                        let v = v.trim().trim_matches('"');
                        push(v);
                        // A credential scope (`Credential=AK/20261207/cn-north-4/ims`, as the
                        // derived V11-HMAC-SHA256 and AWS SigV4 write it): its access key alone.
                        if k.eq_ignore_ascii_case("credential")
                            && let Some((access, _)) = v.split_once('/')
                        {
                            push(access);
                        }
                    }
                }
                // `ACCESS_KEY:SIGNATURE` (Huawei OBS, AWS v2 style): each half alone.
                if let Some((access, signature)) = rest.trim().split_once(':')
                    && !access.contains(['=', ',', ' ', '"'])
                {
                    for half in [access, signature] {
                        if half.trim().len() >= 6 {
                            push(half);
                        }
                    }
                }
                // Basic carries `user:password` in base64: the decoded pair and the password
                // alone are secrets too.
                if scheme.eq_ignore_ascii_case("basic")
                    && let Ok(decoded) =
                        base64::engine::general_purpose::STANDARD.decode(rest.trim())
                    && let Ok(pair) = String::from_utf8(decoded)
                {
                    push(&pair);
                    if let Some((_, password)) = pair.split_once(':') {
                        push(password);
                    }
                }
            }
            "cookie" => rest_values(value, ';').for_each(push),
            // Each cookie's value: the first pair's, whole (a value may hold a comma), and
            // that of each cookie folded into the line after a comma (`a=1, sid=…; Path=/`, as
            // some servers and proxies join them).
            "set-cookie" => {
                rest_values(value, ';').take(1).for_each(&mut push);
                folded_cookies(value).for_each(push);
            }
            _ => {}
        }
    }
    needles
}

/// The interaction with every credential outside the named headers masked (see
/// [`crate::model::credentials`]): credential query and path parameters, request-body fields and
/// multipart parts hold [`PLACEHOLDER`](crate::model::credentials::PLACEHOLDER), so do the
/// secrets an answer body hands out (`credential.secret`, `credential.securitytoken`, ...), the access key ids of its
/// `credential` objects are replaced by their pseudonyms under `access_key` (left as they are
/// without one: an answer that was through the gate already holds pseudonyms), and the recorded
/// origin has no user information. Returns the masked copy and the real values as needles for
/// the leak gate, or `None` when there is nothing to mask.
pub fn mask_credentials(
    interaction: &Interaction,
    access_key: Option<&PseudonymKey>,
) -> Option<Masked> {
    let unmaskable = unmaskable_credentials(interaction, access_key);
    mask_credentials_besides(interaction, access_key, unmaskable)
}

/// What [`mask_credentials`] made of an interaction.
pub struct Masked {
    /// The interaction with its credentials masked.
    pub interaction: Interaction,
    /// The real values masked, as needles for the leak gate.
    pub needles: Vec<Needle>,
    /// Of those, the secrets the answer's body hands out (`credential.secret`,
    /// `securitytoken`, a token's `id`, an application credential's `secret`), not the access
    /// key ids it names: a later exchange of the same client may carry them anywhere (see
    /// [`crate::secrets::issued`]).
    pub handed_out: Vec<Needle>,
}

/// [`mask_credentials`] with its [`unmaskable_credentials`] already found (the leak gate looks
/// for them first).
pub(crate) fn mask_credentials_besides(
    interaction: &Interaction,
    access_key: Option<&PseudonymKey>,
    unmaskable: Vec<crate::model::credentials::Found>,
) -> Option<Masked> {
    use crate::model::credentials::{Found, mask_body, mask_path, mask_query, userinfo_of};
    let request = &interaction.request;
    let path = mask_path(&request.path);
    // The access key id a path names (`…/credentials/OS-EC2/{access}`) is stored as its
    // pseudonym, as the answer that handed it out is (see `model::access_keys`).
    let key_in_path = access_key.and_then(|key| {
        let path = path.as_ref().map_or(request.path.as_str(), |(masked, _)| masked);
        let (pseudonymised, id) = crate::model::access_keys::pseudonymised_in_path(path, |v| key.pseudonym(v))?;
        Some((pseudonymised, key.pseudonym(&id), id))
    });
    let query = request.query.as_deref().and_then(mask_query);
    let content_type = crate::model::headers::value_of(&request.headers, "content-type");
    let (request_kept, answer_kept) = kept_as_they_are(interaction);
    let body = match &request.body {
        None => None,
        _ if request_kept => None,
        Some(body) => mask_body(&body.to_bytes().ok()?, content_type),
    };
    let compressed = unmaskable;
    let answer = match answer_kept {
        true => None,
        false => mask_answer(&interaction.response.body, access_key),
    };
    let userinfo = userinfo_of(&interaction.response.upstream);
    // URLs in header values (`Location`, `Link`, `Referer`) with credentials in them.
    let urls_in_headers = request
        .headers
        .iter()
        .chain(&interaction.response.headers)
        .any(|(_, value)| crate::model::params::mask_header_value(value).is_some());
    if path.is_none()
        && key_in_path.is_none()
        && query.is_none()
        && body.is_none()
        && answer.is_none()
        && userinfo.is_none()
        && !urls_in_headers
        && compressed.is_empty()
    {
        return None;
    }
    let mut out = interaction.clone();
    let mut found: Vec<Found> = compressed;
    if urls_in_headers {
        let headers = out.request.headers.iter_mut().chain(out.response.headers.iter_mut());
        for (name, value) in headers {
            if let Some((masked, values)) = crate::model::params::mask_header_value(value) {
                *value = masked;
                found.extend(values.into_iter().map(|f| Found {
                    label: format!("{} (header {name})", f.label),
                    value: f.value,
                }));
            }
        }
    }
    if let Some((masked, values)) = path {
        out.request.path = masked;
        found.extend(values);
    }
    if let Some((masked, values)) = query {
        out.request.query = Some(masked);
        found.extend(values);
    }
    if let Some((masked, values)) = body {
        out.request.body = Body::from_bytes(&masked);
        found.extend(values);
    }
    let mut handed_out = Vec::new();
    if let Some((masked, values)) = answer {
        out.response.body = Some(masked);
        let secrets = values.iter().filter(|f| !f.label.starts_with("access key id") && !f.value.is_empty());
        handed_out.extend(secrets.map(|f| Needle {
            label: f.label.clone(),
            value: f.value.clone(),
        }));
        found.extend(values);
    }
    if let Some((pseudonymised, pseudonym, id)) = key_in_path {
        out.request.path = pseudonymised;
        // Wherever the answer repeats it (an error naming the key, a `Location`), the same.
        if let Some(body) = replaced_in_body(&out.response.body, &id, &pseudonym) {
            out.response.body = Some(body);
        }
        for (_, value) in &mut out.response.headers {
            if value.contains(&id) {
                *value = value.replace(&id, &pseudonym);
            }
        }
        // A short id is replaced but not looked for: it would match by chance.
        if id.len() >= 8 {
            found.push(Found {
                label: "access key id (request path)".to_owned(),
                value: id,
            });
        }
    }
    if let Some((upstream, userinfo)) = userinfo {
        out.response.upstream = upstream;
        let label = "user information of the upstream URL".to_owned();
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(Found {
                label: label.clone(),
                value: decode_userinfo(password),
            });
        }
        found.push(Found {
            label,
            value: decode_userinfo(&userinfo),
        });
    }
    let needles = found
        .into_iter()
        .filter(|f| !f.value.is_empty())
        .map(|f| Needle {
            label: f.label,
            value: f.value,
        })
        .collect();
    Some(Masked {
        interaction: out,
        needles,
        handed_out,
    })
}

/// `body` with every `real` replaced by `pseudonym` (of its length and classes of characters,
/// so JSON stays JSON); `None` when it holds none.
fn replaced_in_body(body: &Option<Body>, real: &str, pseudonym: &str) -> Option<Body> {
    let bytes = body.as_ref()?.to_bytes().ok()?;
    Body::from_bytes(&crate::model::replaced_all(&bytes, real.as_bytes(), pseudonym.as_bytes())?)
}

/// A JSON answer body with the credentials it hands out masked (see
/// [`crate::model::answer_secrets::mask_answer_json`]), and what was masked; `None` when there is
/// nothing to mask. A JSON body stays JSON in its style (compact or Python's); text that parses
/// as JSON is re-serialised compact.
fn mask_answer(
    body: &Option<Body>,
    access_key: Option<&PseudonymKey>,
) -> Option<(Body, Vec<crate::model::credentials::Found>)> {
    // Whether a text body could name a secret: looked at once, for both readings below.
    let may_name = match body {
        Some(Body::Text(text)) => crate::model::answer_secrets::may_name_answer_secrets(text),
        _ => true,
    };
    if let Some(masked) = mask_answer_json_body(body, access_key, may_name) {
        return Some(masked);
    }
    // Text that is not JSON as it stands: JSON after a byte-order mark, or a form
    // (`access_token=…&expires_in=…`, as OAuth token endpoints answer).
    let Some(Body::Text(text)) = body else {
        return None;
    };
    crate::model::answer_secrets::mask_answer_text_known(text, may_name)
        .map(|(masked, found)| (Body::Text(masked), found))
}

/// [`mask_answer`] of a JSON body; `may_name` is [`may_name_answer_secrets`] of a text body.
///
/// [`may_name_answer_secrets`]: crate::model::answer_secrets::may_name_answer_secrets
fn mask_answer_json_body(
    body: &Option<Body>,
    access_key: Option<&PseudonymKey>,
    may_name: bool,
) -> Option<(Body, Vec<crate::model::credentials::Found>)> {
    let body = body.as_ref()?;
    // A text body (an answer stored verbatim, or JSON that does not round-trip) is read as
    // JSON only when its bytes could name a field masking acts on, and then in the style
    // `Body::from_bytes` finds, so masking keeps Python-style JSON in its style.
    let readable;
    let body = match body {
        Body::Text(_) if !may_name => return None,
        Body::Text(text) => {
            readable = Body::from_bytes(text.as_bytes())?;
            &readable
        }
        body => body,
    };
    let mut json = match body {
        Body::Text(text) => serde_json::from_str::<Value>(text).ok()?,
        body => {
            let json = body.json()?;
            if !crate::model::answer_secrets::may_hold_answer_secrets(json) {
                return None;
            }
            json.clone()
        }
    };
    let pseudonym = |value: &str| match access_key {
        Some(key) => key.pseudonym(value),
        None => value.to_owned(),
    };
    let found = crate::model::answer_secrets::mask_answer_json(&mut json, &pseudonym);
    if found.is_empty() {
        return None;
    }
    Some((body.json_in_same_style(&json)?, found))
}

fn decode_userinfo(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// The value of each cookie a `Set-Cookie` line folds in after its first, with commas.
fn folded_cookies(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').skip(1).filter_map(|part| {
        let (name, value) = part.split(';').next()?.split_once('=')?;
        let name = name.trim();
        // Only `token=value` starts a cookie: an `Expires` date's comma (`Wed, 21 Oct 2015 …`)
        // does not.
        let is_token = !name.is_empty()
            && !name.contains(|c: char| c.is_whitespace() || "()<>@,;:\\\"/[]?={}".contains(c));
        is_token.then_some(value)
    })
}

/// The values of `k=v` pairs separated by `separator`.
fn rest_values(text: &str, separator: char) -> impl Iterator<Item = &str> {
    text.split(separator)
        .filter_map(|p| p.split_once('=').map(|(_, v)| v))
}

/// Whether the request's body and the answer's are kept as they are, never rewritten field by
/// field: binary (base64) bodies, but for multipart ones, whose parts can be; and bodies typed
/// as files (`holds_file_bytes`: an image uploaded or downloaded keeps its checksum).
fn kept_as_they_are(interaction: &Interaction) -> (bool, bool) {
    use crate::model::headers::holds_file_bytes;
    let request = &interaction.request;
    let content_type = crate::model::headers::value_of(&request.headers, "content-type");
    let multipart = crate::model::multipart::boundary(content_type).is_some();
    let request_kept = holds_file_bytes(&request.headers)
        || matches!(request.body, Some(Body::Base64(_))) && !multipart;
    (request_kept, holds_file_bytes(&interaction.response.headers))
}

/// Credentials in bodies kept as they are ([`kept_as_they_are`]), read as the text they stand
/// for ([`innermost`]: compressed, UTF-16, Latin-1) or are: a client that gzips its sign-in, a
/// Latin-1 one, a file holding a password. They cannot be masked there and still match what the
/// client sends (or keep a file's checksum), so such an exchange is never stored, whatever the
/// length of the value (the leak gate refuses it by these, not only by finding them).
pub(crate) fn unmaskable_credentials(
    interaction: &Interaction,
    access_key: Option<&PseudonymKey>,
) -> Vec<crate::model::credentials::Found> {
    use crate::model::credentials::mask_body;
    let (request_kept, answer_kept) = kept_as_they_are(interaction);
    let request = &interaction.request;
    let content_type = crate::model::headers::value_of(&request.headers, "content-type");
    let mut found = Vec::new();
    if request_kept {
        // Bytes that are text (a file typed so) as they are; binary ones only through `innermost`.
        let text = !matches!(request.body, Some(Body::Base64(_)));
        let as_it_is = (crate::model::interaction::body_bytes(&request.body).ok()).filter(|_| text);
        let readings = innermost(&request.body).into_iter().chain(as_it_is.map(|b| b.to_vec()));
        // A file's type says nothing of what it holds (`application/octet-stream` carrying
        // `password=…`): read as untyped text too.
        // And as a script or cloud-config (an image's or a user-data file's `chpasswd` input),
        // as base64 text in a JSON field is read.
        let read = |bytes: &[u8]| {
            (mask_body(bytes, content_type).or_else(|| mask_body(bytes, None)))
                .or_else(|| script_credentials(bytes, "request"))
        };
        if let Some((_, values)) = readings.filter_map(|bytes| read(&bytes)).next() {
            found.extend(values);
        }
    }
    // A compressed stream inside the request's body (`base64(gzip({"password": …}))` in a form
    // or JSON field): what it holds cannot be masked in place.
    if found.is_empty()
        && let Ok(bytes) = crate::model::interaction::body_bytes(&request.body)
        && !bytes.is_empty()
    {
        let inner = embedded_inflated(&bytes);
        if let Some((_, values)) = inner.iter().find_map(|inner| mask_body(inner, None)) {
            found.extend(values);
        }
    }
    // What an answer hands out, inside a layer its `Content-Encoding` does not declare, in
    // UTF-16 or Latin-1, or in a file.
    let answer = &interaction.response.body;
    let inner = innermost(answer).map(|inner| Body::from_bytes(&inner));
    let readings = inner.into_iter().chain(answer_kept.then(|| answer.clone()));
    if let Some((_, values)) = readings.filter_map(|body| mask_answer(&body, access_key)).next() {
        found.extend(values);
    }
    // A file an answer brings (an image's data: a cloud-config or a script setting passwords).
    if answer_kept && let Some(values) = file_script_credentials(answer, "answer") {
        found.extend(values);
    }
    found
}

/// [`script_credentials`] of a file body, read as the text it is or stands for ([`innermost`]).
/// Binary bytes (`Body::Base64`) only through `innermost`: an image is no text, and decoding its
/// base64 only to find that would cost as much as the image.
pub(crate) fn file_script_credentials(body: &Option<Body>, whose: &str) -> Option<Vec<crate::model::credentials::Found>> {
    let as_it_is = match body {
        Some(Body::Text(text)) => Some(text.as_bytes().to_vec()),
        _ => None,
    };
    let readings = innermost(body).into_iter().chain(as_it_is);
    readings.filter_map(|bytes| script_credentials(&bytes, whose)).map(|(_, found)| found).next()
}

/// The passwords of a script's or a cloud-config's `chpasswd` and `passwd --stdin` input, and
/// a cloud-config's YAML secret lines, in a file's `bytes` read as text (see
/// `model::base64_text`), in the `whose` body: a file cannot be masked in place, so these
/// refuse the exchange. YAML `name: value` lines are read only in a cloud-config (its first
/// line `#cloud-config`): in any other file (a manifest's `secretName: db-creds`) they are
/// data. A value that is a shell variable or a template (`$P`, `${P}`, `{{ p }}`) is no password.
pub(crate) fn script_credentials(bytes: &[u8], whose: &str) -> Option<(Vec<u8>, Vec<crate::model::credentials::Found>)> {
    use crate::model::credentials::is_credential_name;
    let text = std::str::from_utf8(bytes).ok()?;
    let cloud_config = text.trim_start_matches('\u{feff}').starts_with("#cloud-config");
    let is_secret = |name: &str| cloud_config && is_credential_name(name);
    let label = |name: &str| format!("credential {name} of a script or cloud-config in the {whose} body");
    let (masked, found) = crate::model::base64_text::mask_script_lines(text, &is_secret, &label)?;
    let placeholder = |value: &str| value.starts_with('$') || value.contains("{{");
    let found: Vec<_> = found.into_iter().filter(|f| !placeholder(f.value.trim())).collect();
    (!found.is_empty()).then(|| (masked.into_bytes(), found))
}

/// What `body` stands for when it cannot be read as it is: the bytes inside every gzip or zlib
/// layer (at most four), UTF-16 text as UTF-8, text in Latin-1 as UTF-8
/// ([`from_latin1_text`]: one byte that is not UTF-8 makes a body bytes, whose fields the
/// masking never reads). `None` when it is none of these (most bodies: looked at by their first
/// bytes, not copied).
pub(crate) fn innermost(body: &Option<Body>) -> Option<Vec<u8>> {
    let bytes = match body.as_ref()? {
        Body::Json(_) | Body::JsonPython(_) => return None,
        // Text never starts with gzip's magic; zlib's and UTF-16's it may.
        Body::Text(text) if !may_be_encoded(text.as_bytes()) => return None,
        // Its first bytes decoded alone first: a large download is not copied to be looked at.
        Body::Base64(b64) => {
            let head = base64::engine::general_purpose::STANDARD
                .decode(b64.get(..b64.len().min(64))?)
                .ok()?;
            if !(head.starts_with(&[0x1f, 0x8b]) || may_be_encoded(&head) || is_text_like(&head)) {
                return None;
            }
            body.as_ref()?.to_bytes().ok()?
        }
        Body::Text(_) => body.as_ref()?.to_bytes().ok()?,
    };
    let read = |bytes: &[u8]| from_utf16(bytes).or_else(|| from_latin1_text(bytes));
    match inflate_layers(&bytes) {
        Some(inner) => Some(read(&inner).unwrap_or(inner)),
        None => read(&bytes),
    }
}

/// Whether `bytes` start as zlib or UTF-16 do (gzip's magic is never text).
fn may_be_encoded(bytes: &[u8]) -> bool {
    is_zlib(bytes) || utf16_order(bytes).is_some()
}

/// A `Content-Encoding` of a request body that the leak gate cannot read through (`zstd`, `br`,
/// `compress`: anything but `gzip`, `x-gzip`, `deflate` and `identity`), or `None`. Such a body
/// may carry a password no check can see, so it is not stored.
pub(crate) fn unreadable_request_coding(request: &RecordedRequest) -> Option<String> {
    let codings = crate::model::encodings::codings(
        (request.headers.iter())
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-encoding"))
            .map(|(_, value)| value),
    );
    // Most requests: no coding, and the body is not looked at.
    if codings.is_empty() {
        return None;
    }
    let body = crate::model::interaction::body_bytes(&request.body).ok()?;
    if body.is_empty() {
        return None;
    }
    if let Some(unknown) = crate::model::encodings::unreadable(&codings) {
        return Some(unknown.clone());
    }
    // `deflate` as some clients send it: raw DEFLATE, without the zlib header the gate reads.
    inflate(&body)
        .is_none()
        .then(|| format!("{} (not gzip or zlib bytes: raw DEFLATE?)", codings.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_of_a_comma_folded_set_cookie_is_a_needle_but_not_an_expires_date() {
        let mut headers = hyper::HeaderMap::new();
        let line = "a=1, sid=FoldedSecret9; Path=/, b=Other77; Expires=Wed, 21 Oct 2015 07:28:00 GMT";
        headers.insert("set-cookie", line.parse().unwrap());
        let values: Vec<String> = credential_needles(&headers).into_iter().map(|n| n.value).collect();
        for cookie in ["FoldedSecret9", "Other77"] {
            assert!(values.iter().any(|v| v == cookie), "{cookie} not in {values:?}");
        }
        // The whole line is a needle too; no part of the date is one of its own.
        assert!(!values.iter().any(|v| v != line && v.contains("Oct")), "{values:?}");
    }

    #[test]
    fn the_access_key_of_a_credential_scope_is_a_needle_of_its_own() {
        for line in [
            "V11-HMAC-SHA256 Credential=V11AKDUMMYVALUE77665544/20261207/cn-north-4/ims, SignedHeaders=host;x-sdk-date, Signature=ab12",
            "AWS4-HMAC-SHA256 Credential=V11AKDUMMYVALUE77665544/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=cd34",
        ] {
            let mut headers = hyper::HeaderMap::new();
            headers.insert("authorization", line.parse().unwrap());
            let values: Vec<String> = credential_needles(&headers).into_iter().map(|n| n.value).collect();
            assert!(values.iter().any(|v| v == "V11AKDUMMYVALUE77665544"), "{values:?}");
        }
    }

    use crate::model::fixtures::answering;

    #[test]
    fn an_answer_that_is_a_form_or_json_after_a_byte_order_mark_has_its_secrets_masked() {
        for (answer, masked) in [
            ("access_token=a-1&expires_in=3600", "access_token=REDACTED&expires_in=3600"),
            ("\u{feff}{\"password\":\"a-1\"}", "\u{feff}{\"password\":\"REDACTED\"}"),
        ] {
            let Masked { interaction: out, needles, .. } = mask_credentials(&answering(answer), None).unwrap();
            let body = crate::model::interaction::body_bytes(&out.response.body).unwrap();
            assert_eq!(String::from_utf8_lossy(&body), masked, "{answer}");
            assert!(needles.iter().any(|n| n.value == "a-1"), "{answer}");
        }
        assert!(mask_credentials(&answering("a=1&b=2"), None).is_none());
    }
}
