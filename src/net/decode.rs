//! An answer's body as its `Content-Encoding` says it was encoded: decoded (gzip and deflate,
//! in layers, capped), so what is served, stored and scanned by the leak gate is what it stands
//! for, never encoded bytes no check can read.

use std::io::Read as _;

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::CONTENT_ENCODING;

use crate::model::headers::remove_in_order;
use crate::net::upstream_error::UpstreamError;

/// Decodes `gzip`/`deflate` (in the order the encodings were applied, across every
/// `Content-Encoding` header) and drops `Content-Encoding`. An encoding the proxy cannot decode
/// is refused (`decode`): it asked for `gzip, deflate` only, and a body stored encoded would
/// hide its content from the leak gate.
pub(crate) fn decode_body(
    url: impl std::fmt::Display,
    headers: &mut HeaderMap,
    raw: Bytes,
    limit: usize,
) -> std::result::Result<Bytes, UpstreamError> {
    // No body is no body in any coding: an answer to a `HEAD` (or a `204`, a `304`) names the
    // coding a `GET`'s body would have.
    if raw.is_empty() {
        remove_in_order(headers, |name| name == CONTENT_ENCODING);
        return Ok(raw);
    }
    // Every header, in order: two `Content-Encoding: gzip` lines are two layers.
    let encodings = crate::model::encodings::codings(
        (headers.get_all(CONTENT_ENCODING).iter()).map(|v| String::from_utf8_lossy(v.as_bytes())),
    );
    if let Some(unknown) = crate::model::encodings::unreadable(&encodings) {
        return Err(UpstreamError::Decode {
            url: url.to_string(),
            encoding: unknown.clone(),
            cause: "ims-vcr asked for gzip or deflate and decodes only those".into(),
        });
    }
    if encodings.is_empty() {
        remove_in_order(headers, |name| name == CONTENT_ENCODING);
        return Ok(raw);
    }
    let mut body = raw.to_vec();
    for encoding in encodings.iter().rev() {
        body = decode_one(encoding, &body, limit).map_err(|cause| match cause {
            DecodeFailure::TooLarge => UpstreamError::TooLarge {
                url: url.to_string(),
                limit,
            },
            DecodeFailure::Invalid(cause) => UpstreamError::Decode {
                url: url.to_string(),
                encoding: encoding.clone(),
                cause,
            },
        })?;
    }
    // A digest of the encoded bytes no longer holds for the decoded body served and stored.
    remove_in_order(headers, |name| name == CONTENT_ENCODING || DIGESTS_OF_ENCODED.contains(&name.as_str()));
    Ok(Bytes::from(body))
}

/// Answer headers that hold a digest of the body as encoded (RFC 1864's `Content-MD5`, RFC
/// 9530's `Content-Digest` and `Repr-Digest`, RFC 3230's `Digest`): dropped with the encoding.
const DIGESTS_OF_ENCODED: [&str; 4] = ["content-md5", "content-digest", "repr-digest", "digest"];

enum DecodeFailure {
    TooLarge,
    Invalid(String),
}

fn decode_one(
    encoding: &str,
    data: &[u8],
    limit: usize,
) -> std::result::Result<Vec<u8>, DecodeFailure> {
    fn read_capped(
        reader: impl std::io::Read,
        limit: usize,
    ) -> std::result::Result<Vec<u8>, DecodeFailure> {
        let mut out = Vec::new();
        // Read one byte past the cap to tell "exactly at the cap" from "over it" (zip bombs).
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecodeFailure::Invalid(e.to_string()))?;
        if out.len() > limit {
            return Err(DecodeFailure::TooLarge);
        }
        Ok(out)
    }
    match encoding {
        "deflate" => {
            // "deflate" is zlib-wrapped by the RFC, but some servers send raw deflate.
            // A zlib stream over the cap is a bomb, not raw deflate: only a stream that does not
            // decode as zlib is tried again as raw deflate.
            match read_capped(flate2::read::ZlibDecoder::new(data), limit) {
                Err(DecodeFailure::Invalid(_)) => {
                    read_capped(flate2::read::DeflateDecoder::new(data), limit)
                }
                other => other,
            }
        }
        _ => {
            // Members one after another (RFC 1952 §2.2). Bytes after the last whole member that
            // start no other (a line feed some servers append) are left, as curl, browsers and
            // the `deflate` reading above leave them: a 502 for an answer every client reads
            // would stop the recording.
            let mut out = Vec::new();
            let mut rest = data;
            loop {
                let mut member = flate2::bufread::GzDecoder::new(rest);
                let room = (limit + 1).saturating_sub(out.len()) as u64;
                (&mut member)
                    .take(room)
                    .read_to_end(&mut out)
                    .map_err(|e| DecodeFailure::Invalid(e.to_string()))?;
                if out.len() > limit {
                    return Err(DecodeFailure::TooLarge);
                }
                rest = member.into_inner();
                if !rest.starts_with(&[0x1f, 0x8b]) {
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_bodies_are_decoded_and_the_header_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let body = decode_body("u", &mut headers, Bytes::from(gzip(b"{\"a\":1}")), 1024).unwrap();
        assert_eq!(body.as_ref(), b"{\"a\":1}");
        assert!(headers.get(CONTENT_ENCODING).is_none());
    }

    #[test]
    fn digests_of_the_encoded_bytes_go_with_the_encoding_and_stay_without_one() {
        let with_digests = |encoding: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(encoding) = encoding {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            for name in DIGESTS_OF_ENCODED {
                headers.insert(name, HeaderValue::from_static("sha-256=:x:"));
            }
            headers.insert("etag", HeaderValue::from_static("\"e1\""));
            headers
        };
        let mut decoded = with_digests(Some("gzip"));
        decode_body("u", &mut decoded, Bytes::from(gzip(b"{}")), 1024).unwrap();
        assert_eq!(decoded.keys().map(|n| n.as_str()).collect::<Vec<_>>(), ["etag"]);
        let mut plain = with_digests(None);
        decode_body("u", &mut plain, Bytes::from_static(b"{}"), 1024).unwrap();
        assert_eq!(plain.len(), 5);
    }

    #[test]
    fn bytes_after_a_whole_gzip_stream_are_left_and_members_are_read_in_turn() {
        let decoded = |body: Vec<u8>| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            decode_body("u", &mut headers, Bytes::from(body), 1024)
        };
        let trailing = [gzip(b"{\"a\":1}"), b"\n\n".to_vec()].concat();
        assert_eq!(decoded(trailing).unwrap().as_ref(), b"{\"a\":1}");
        let members = [gzip(b"{\"a\":"), gzip(b"1}"), b"\r\n".to_vec()].concat();
        assert_eq!(decoded(members).unwrap().as_ref(), b"{\"a\":1}");
        // A stream cut short, and a second member cut short, are still refused.
        let whole = gzip(b"{\"a\":1}");
        assert_eq!(decoded(whole[..whole.len() - 4].to_vec()).unwrap_err().kind(), "decode");
        let second = [gzip(b"{}"), whole[..whole.len() - 4].to_vec()].concat();
        assert_eq!(decoded(second).unwrap_err().kind(), "decode");
        // The cap counts every member.
        let big = [gzip(&[b'a'; 600]), gzip(&[b'b'; 600])].concat();
        assert_eq!(decoded(big).unwrap_err().kind(), "too-large");
    }

    #[test]
    fn an_empty_encoded_body_decodes_to_nothing() {
        // A `HEAD` answer (or a 204) says how a `GET`'s body would be encoded, and has none.
        for encoding in ["gzip", "deflate", "br"] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
            let body = decode_body("u", &mut headers, Bytes::new(), 1024).unwrap();
            assert!(body.is_empty(), "{encoding}");
            assert!(headers.get(CONTENT_ENCODING).is_none());
        }
    }

    #[test]
    fn decoded_bodies_over_the_cap_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let bomb = gzip(&vec![b'a'; 10_000]);
        let err = decode_body("u", &mut headers, Bytes::from(bomb), 100).unwrap_err();
        assert_eq!(err.kind(), "too-large");
    }

    #[test]
    fn unknown_encodings_are_refused_never_stored_encoded() {
        for value in ["br", "gzip, br", "zstd"] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(value));
            let err = decode_body("u", &mut headers, Bytes::from(gzip(b"xx")), 100).unwrap_err();
            assert_eq!(err.kind(), "decode", "{value}");
        }
    }

    #[test]
    fn every_content_encoding_header_is_a_layer_and_each_is_decoded() {
        let twice = gzip(&gzip(b"{\"token\":\"t\"}"));
        let mut headers = HeaderMap::new();
        headers.append(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.append(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let body = decode_body("u", &mut headers, Bytes::from(twice.clone()), 1024).unwrap();
        assert_eq!(body.as_ref(), b"{\"token\":\"t\"}");
        assert!(headers.get(CONTENT_ENCODING).is_none());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip, x-gzip"));
        let body = decode_body("u", &mut headers, Bytes::from(twice), 1024).unwrap();
        assert_eq!(body.as_ref(), b"{\"token\":\"t\"}");
    }

    #[test]
    fn a_deflate_bomb_is_too_large_not_a_decode_error() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&vec![0u8; 100_000]).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        raw.write_all(&vec![0u8; 100_000]).unwrap();
        let raw = raw.finish().unwrap();
        for (what, bomb) in [("zlib", zlib), ("raw deflate", raw)] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("deflate"));
            let err = decode_body("u", &mut headers, Bytes::from(bomb), 1000).unwrap_err();
            assert_eq!(err.kind(), "too-large", "{what}: {err}");
        }
    }

}
