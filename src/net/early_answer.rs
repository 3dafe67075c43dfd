//! An upstream connection's I/O that lets an answer sent before the request's body was read
//! through: an upstream that refuses an upload at once (`413`, a gateway's `401`) writes its
//! answer and closes without reading the body, and the proxy's next write of the body fails
//! (`ECONNRESET`, `EPIPE`). hyper's client then ends the exchange with that write's error, and
//! the answer waiting in the socket was never read: the client got a `502` saying the answer
//! was cut, in place of the upstream's `413`. curl and browsers read it.
//!
//! So once a write fails because the peer is gone, the rest of the request is dropped as if it
//! were written, and reading goes on: hyper reads the answer that is there (Linux hands over
//! what was received before the reset), or, when there is none, fails reading, which says the
//! connection closed with no answer. Nothing is sent after a failed write, and the connection
//! is not used again (the pool reads the shared flag).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// `I` with writes that fail because the peer is gone taken as done (see the module).
#[derive(Debug)]
pub(crate) struct EarlyAnswer<I> {
    inner: I,
    /// Set once a write failed because the peer is gone: nothing is written after it, and
    /// the pool, which holds it too, does not lend the connection again.
    peer_gone: Arc<AtomicBool>,
}

impl<I> EarlyAnswer<I> {
    /// `inner`, whose failed write sets `peer_gone`.
    pub(crate) fn new(inner: I, peer_gone: Arc<AtomicBool>) -> EarlyAnswer<I> {
        EarlyAnswer { inner, peer_gone }
    }

    fn gone(&self) -> bool {
        self.peer_gone.load(Ordering::Relaxed)
    }

    /// `written`, with a failure that says the peer is gone taken as `len` bytes written.
    fn noted(&mut self, written: Poll<io::Result<usize>>, len: usize) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                tracing::debug!(error = %e, "the upstream closed while the request was sent; reading its answer");
                self.peer_gone.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(len))
            }
            other => other,
        }
    }
}

/// True for the errors of a write to a peer that closed its connection.
fn peer_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

impl<I: Read + Unpin> Read for EarlyAnswer<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for EarlyAnswer<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.gone() {
            return Poll::Ready(Ok(buf.len()));
        }
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(written, buf.len())
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if self.gone() {
            return Poll::Ready(Ok(len));
        }
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.noted(written, len)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gone() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                self.peer_gone.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gone() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
