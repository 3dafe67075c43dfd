//! Graceful shutdown of a listener's connections: what hyper-util's `GracefulShutdown` does (on
//! shutdown, each connection is told to finish its in-flight requests and close; shutdown waits
//! until every watcher is gone), with a cheaper check per poll.
//!
//! hyper-util's watcher awaits a `watch::Receiver::changed` with every poll of the connection,
//! which takes the channel's waiter lock each time: about 200 instructions per replayed
//! request, more than hashing its tape digest. Here a poll reads one flag and registers the
//! task's waker with one compare-and-swap; the lock is taken once per connection (to list its
//! waker) and at shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

/// A hyper connection that can be asked to finish its in-flight requests and close.
pub(super) trait GracefulConnection: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S, E> GracefulConnection for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// State shared by a listener's [`GracefulShutdown`] and its [`Watcher`]s.
#[derive(Debug, Default)]
struct Shared {
    shutting_down: AtomicBool,
    /// The waker of each live watcher's connection, by watcher id. Locked when a watcher is made
    /// or dropped, and at shutdown; never on a poll.
    watchers: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    next_id: AtomicU64,
    /// Notified when the last watcher is dropped.
    drained: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicWaker>>> {
        self.watchers
            .lock()
            .expect("no code panics while holding the graceful-shutdown lock")
    }
}

/// Signals shutdown to the connections of one listener and waits for them.
#[derive(Debug, Default)]
pub(super) struct GracefulShutdown {
    shared: Arc<Shared>,
}

impl GracefulShutdown {
    pub(super) fn new() -> GracefulShutdown {
        GracefulShutdown::default()
    }

    /// A watcher for one connection; shutdown waits until it is dropped (with the future
    /// [`Watcher::watch`] made of it, or unused).
    pub(super) fn watcher(&self) -> Watcher {
        let waker = Arc::new(AtomicWaker::new());
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.lock().insert(id, waker.clone());
        Watcher {
            id,
            waker,
            shared: self.shared.clone(),
        }
    }

    /// Asks every watched connection to finish its in-flight requests and close, and resolves
    /// once every watcher is dropped.
    pub(super) async fn shutdown(self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        for waker in self.shared.lock().values() {
            waker.wake();
        }
        loop {
            let drained = self.shared.drained.notified();
            if self.shared.lock().is_empty() {
                return;
            }
            drained.await;
        }
    }
}

/// One connection's part in a listener's graceful shutdown.
#[derive(Debug)]
pub(super) struct Watcher {
    id: u64,
    waker: Arc<AtomicWaker>,
    shared: Arc<Shared>,
}

impl Watcher {
    /// `conn`, asked to shut down gracefully once shutdown starts; the watcher lives as long
    /// as the returned future.
    pub(super) fn watch<C: GracefulConnection>(self, conn: C) -> Watched<C> {
        Watched {
            conn,
            watcher: self,
            asked: false,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut watchers = self.shared.lock();
        watchers.remove(&self.id);
        if watchers.is_empty() {
            // `notify_one` keeps a permit should shutdown not be waiting yet.
            self.shared.drained.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection under graceful shutdown (see [`Watcher::watch`]).
    pub(super) struct Watched<C> {
        #[pin]
        conn: C,
        watcher: Watcher,
        // Shutdown was seen and passed on to the connection.
        asked: bool,
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.asked {
            let shared = &this.watcher.shared;
            if !shared.shutting_down.load(Ordering::SeqCst) {
                this.watcher.waker.register(cx.waker());
            }
            // Checked again after registering: shutdown may have woken the old waker between.
            if shared.shutting_down.load(Ordering::SeqCst) {
                *this.asked = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection that ends once asked to shut down.
    struct Conn {
        asked: Arc<AtomicBool>,
    }

    impl Future for Conn {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.asked.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl GracefulConnection for Conn {
        fn graceful_shutdown(self: Pin<&mut Self>) {
            self.asked.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn shutdown_asks_every_watched_connection_and_waits_for_every_watcher() {
        let graceful = GracefulShutdown::new();
        let asked = Arc::new(AtomicBool::new(false));
        let watched = tokio::spawn(graceful.watcher().watch(Conn {
            asked: asked.clone(),
        }));
        // A watcher not yet watching (a connection still being opened) is waited for too.
        let pending = graceful.watcher();
        tokio::task::yield_now().await;
        let mut shutdown = tokio::spawn(graceful.shutdown());
        watched.await.unwrap();
        assert!(asked.load(Ordering::SeqCst));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut shutdown)
                .await
                .is_err(),
            "waits for the unused watcher"
        );
        drop(pending);
        shutdown.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_without_connections_returns_at_once() {
        GracefulShutdown::new().shutdown().await;
        let graceful = GracefulShutdown::new();
        drop(graceful.watcher());
        graceful.shutdown().await;
    }
}
