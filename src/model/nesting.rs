//! How deep credential masking reads a body inside a body (a multipart part, what an encoded
//! part holds): each level is read by calling [`mask_body`] again, so the depth is counted per
//! thread and bounded, never chosen by a request's bytes.

#[cfg(doc)]
use crate::model::credentials::{PLACEHOLDER, mask_body};

/// How many bodies deep [`mask_body`] reads: a multipart part is read as a body of its own, and
/// so is what an encoded part (base64, gzip) holds, so a body of parts of parts calls it once a
/// level. A client nests one or two (a `multipart/mixed` inside a form-data part); past this, a
/// body is hostile, and a part that deep is masked whole (replaced by [`PLACEHOLDER`]) rather
/// than read: never stored raw, and never read by a recursion the request's bytes choose.
pub(crate) const MAX_NESTED_BODIES: usize = 8;

thread_local! {
    /// The [`mask_body`] calls running on this thread, outermost first.
    static NESTED_BODIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One [`mask_body`] call counted in [`NESTED_BODIES`] while it runs (also when it unwinds).
pub(crate) struct Nesting;

impl Nesting {
    /// `None` when [`MAX_NESTED_BODIES`] calls are running already.
    pub(crate) fn enter() -> Option<Nesting> {
        let depth = NESTED_BODIES.get();
        (depth < MAX_NESTED_BODIES).then(|| {
            NESTED_BODIES.set(depth + 1);
            Nesting
        })
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        NESTED_BODIES.set(NESTED_BODIES.get() - 1);
    }
}
