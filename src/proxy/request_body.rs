//! Reading a request's body: within `--max-body` (`413`) and without pausing longer than
//! `--header-read-timeout` (`408`).

use super::*;

impl Proxy {
    /// Reads a request body within `--header-read-timeout` (408) and `--max-body` (413). A body
    /// left unread ends the connection, so the answer says `Connection: close` (HTTP/1), or a
    /// client sends its next request on it (Python's `http.client`: `RemoteDisconnected`).
    pub(super) async fn read_body(
        &self,
        body: Incoming,
        version: hyper::Version,
    ) -> Result<Bytes, Response<Full<Bytes>>> {
        self.read_body_within_limits(body).await.map_err(|mut refused| {
            closing(&mut refused, version);
            refused
        })
    }

    async fn read_body_within_limits(
        &self,
        body: Incoming,
    ) -> Result<Bytes, Response<Full<Bytes>>> {
        let too_large = || {
            let max = self.settings.max_body;
            // The limit is the serving proxy's, not saved with the recordings: an upload
            // recorded under a larger one needs it when replayed too.
            let msg = format!(
                "request body is larger than {max} bytes (--max-body; a recording made with a \
                 larger --max-body needs the same flag to replay)"
            );
            error_response(StatusCode::PAYLOAD_TOO_LARGE, "IMS_VCR.BODY_TOO_LARGE", &msg, json!({}))
        };
        // A declared length over the cap is refused before any of the body is read, so a client
        // that sent `Expect: 100-continue` is not asked to upload it.
        if hyper::body::Body::size_hint(&body).lower() > self.settings.max_body as u64 {
            return Err(too_large());
        }
        // The timeout is a pause's, not the whole body's (as nginx's `client_body_timeout`): an
        // image uploaded slower than its size over the timeout still arrives, and a client
        // that stops sending is refused.
        let mut body = Limited::new(body, self.settings.max_body);
        let mut chunks = Chunks::default();
        let collected = loop {
            let frame = tokio::time::timeout(self.settings.body_read_timeout, body.frame());
            match frame.await {
                Err(_) => {
                    let msg = format!(
                        "the request body stopped arriving: no bytes of it for {} s \
                         (--header-read-timeout)",
                        self.settings.body_read_timeout.as_secs_f64()
                    );
                    return Err(error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        "IMS_VCR.BODY_TIMEOUT",
                        &msg,
                        json!({}),
                    ));
                }
                Ok(None) => break Ok(chunks.joined()),
                Ok(Some(Ok(frame))) => chunks.push(frame.into_data().unwrap_or_default()),
                Ok(Some(Err(e))) => break Err(e),
            }
        };
        collected.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else {
                let msg = format!("could not read the request body: {e}");
                error_response(
                    StatusCode::BAD_REQUEST,
                    "IMS_VCR.BAD_REQUEST",
                    &msg,
                    json!({}),
                )
            }
        })
    }
}

/// A body's chunks as they arrive: the first kept as it came (most bodies are one chunk: no
/// copy), the others copied into one buffer, so a body trickled a byte at a time takes its own
/// size, not a read buffer per byte (hyper hands each read out of its own buffer).
#[derive(Default)]
struct Chunks {
    first: Bytes,
    rest: Option<bytes::BytesMut>,
}

impl Chunks {
    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        match &mut self.rest {
            Some(rest) => rest.extend_from_slice(&chunk),
            None if self.first.is_empty() => self.first = chunk,
            None => {
                let mut rest = bytes::BytesMut::with_capacity(2 * (self.first.len() + chunk.len()));
                rest.extend_from_slice(&self.first);
                rest.extend_from_slice(&chunk);
                self.rest = Some(rest);
            }
        }
    }

    fn joined(self) -> Bytes {
        match self.rest {
            Some(rest) => rest.freeze(),
            None => self.first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_in_order_and_one_chunk_is_kept_as_it_came() {
        let one = Bytes::from_static(b"whole");
        let mut chunks = Chunks::default();
        chunks.push(one.clone());
        chunks.push(Bytes::new());
        let joined = chunks.joined();
        assert_eq!(joined.as_ptr(), one.as_ptr(), "no copy");
        let mut chunks = Chunks::default();
        for part in ["a", "", "bc", "d", "efg"] {
            chunks.push(Bytes::from(part));
        }
        assert_eq!(chunks.joined(), Bytes::from_static(b"abcdefg"));
        assert!(Chunks::default().joined().is_empty());
    }
}
