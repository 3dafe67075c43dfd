//! Which values a [`Redactor`] knows an interaction holds: those other interactions taught it
//! (store-wide redaction), and in what a redaction with this key already stamped, the real values
//! it met before it knew them (found by their pseudonyms).

use super::*;

impl Redactor {
    /// The remembered values long enough to be replaced as substrings (see
    /// [`replace_occurrences`]) that `interaction` holds somewhere, with their labels.
    pub(super) fn known_in(&self, interaction: &Interaction) -> Values {
        // What this key redacted already holds pseudonyms: redacting it again changes nothing
        // (a remembered value may even spell a pseudonym's encoded form by chance), but for the
        // real values it was recorded with before they were known (`record --redact` learns a
        // user id from a sign-in answer; a request made before it kept the id raw).
        if interaction.redaction.is_some() {
            return self.raw_ids_in(interaction);
        }
        let known = self.known.lock().expect("no code panics while holding the known values");
        if known.is_empty() {
            return Values::new();
        }
        // Binary bodies are scanned as bytes below, not as their base64 (a large download would
        // be serialised again for nothing).
        let (request, response) = (&interaction.request.body, &interaction.response.body);
        let binary = |body: &Option<Body>| matches!(body, Some(Body::Base64(_)));
        let text = match binary(request) || binary(response) {
            false => serde_json::to_string(interaction),
            true => {
                let (req, resp) = (&interaction.request, &interaction.response);
                let (req_text, resp_text) = ((!binary(request)).then_some(request), (!binary(response)).then_some(response));
                let parts = (&req.path, &req.query, &req.headers, req_text);
                serde_json::to_string(&(parts, &resp.headers, resp_text, &resp.upstream))
            }
        }
        .expect("an interaction serialises");
        // A binary body (an image file uploaded or downloaded) is kept byte for byte, never
        // rewritten: a value found in its bytes joins the leak gate's needles, so the gate
        // refuses to store it rather than let base64 hide a real owner id in a shared cassette.
        // So is a body typed as a file whose bytes are text (`holds_file_bytes`): any value it
        // holds is in `text` above, and joins the needles the same way.
        let binaries: Vec<bytes::Bytes> = [&interaction.request.body, &interaction.response.body]
            .into_iter()
            .filter(|body| matches!(body, Some(Body::Base64(_))))
            .filter_map(|body| crate::model::interaction::body_bytes(body).ok())
            .collect();
        known
            .iter()
            .filter(|(value, _)| {
                value.len() >= MIN_NEEDLE_LEN
                    && (appears(&text, value)
                        || (is_id_like(value) && (binaries.iter())
                            .any(|bytes| memchr::memmem::find(bytes, value.as_bytes()).is_some())))
            })
            .map(|(v, l)| (v.clone(), l.clone()))
            .collect()
    }

    /// The id-like values in a redacted `interaction` whose pseudonyms other redacted
    /// interactions hold under the policy's names (as [`Redactor::learn`] gathered them): real
    /// values a redaction left because it did not know them yet. `record --redact` learns a
    /// user or domain id from a sign-in's answer, so a request recorded before the sign-in (a
    /// test that ran first, a session in parallel) keeps it raw in a field no policy name
    /// selects; `export --redact` finds it here by its pseudonym, without the store ever holding
    /// the real value where the policy named it.
    fn raw_ids_in(&self, interaction: &Interaction) -> Values {
        let pseudonyms = self.pseudonyms.lock().expect("no code panics while holding the pseudonyms");
        if pseudonyms.is_empty() {
            return Values::new();
        }
        let Ok(text) = serde_json::to_string(interaction) else {
            return Values::new();
        };
        text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .flat_map(id_candidates)
            .filter(|token| is_id_like(token) && !pseudonyms.contains(*token))
            .filter(|token| pseudonyms.contains(&self.key.pseudonym(token)))
            .map(|token| {
                let label = "a value whose pseudonym a redacted field holds".to_owned();
                (token.to_owned(), label)
            })
            .collect()
    }
}

/// The ids a run of hex digits and dashes may be or hold: itself, without dashes at its ends
/// (`-0a1b…`), each piece between dashes (`vol-0a1b…f9-data`), and each UUID in it
/// (8-4-4-4-12 hex digits).
fn id_candidates(run: &str) -> Vec<&str> {
    let mut candidates = vec![run, run.trim_matches('-')];
    candidates.extend(run.split('-').filter(|piece| piece.len() >= 16));
    let bytes = run.as_bytes();
    let uuid_at = |i: usize| {
        bytes.get(i..i + 36).is_some_and(|w| {
            w.iter().enumerate().all(|(k, &b)| match k {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
        })
    };
    candidates.extend((0..bytes.len()).filter(|&i| uuid_at(i)).map(|i| &run[i..i + 36]));
    candidates.dedup();
    candidates
}
