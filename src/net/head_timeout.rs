//! The header-read timeout of HTTP/1 connections, kept by one sweeper task for every connection
//! instead of a timer armed for every request head.
//!
//! hyper's own `header_read_timeout` registers a timer in tokio's wheel for each request head
//! read, which on a keep-alive connection is every request: measured, about a tenth of replay
//! throughput and most of the gap in its tail latency. Here a connection only stores, with one
//! atomic write each, when it started waiting for a request head and when a request started
//! being served; the sweeper wakes a few times per timeout period and closes the connections
//! that have waited longer than the timeout. So a connection is closed when, since it opened or
//! since its last answer was produced, no complete request head arrived within the timeout
//! (give or take one sweep, a tenth of the timeout): silent clients, heads sent in part or byte
//! by byte, and idle keep-alive connections alike. A request being served is never timed out
//! here, and every write that makes progress restarts the clock ([`Progress`]), so a client
//! slowly reading a long answer is not cut; one that stops reading altogether is, within
//! twice the stall limit (below).
//!
//! A write can stay blocked much longer than the timeout while the client still reads: the
//! kernel's send buffer grows to megabytes, and the socket is writable again only once a large
//! share of it has drained; and the client's kernel, whose receive buffer is megabytes too,
//! opens its window again only once a large share of that is free (so that it is not
//! advertised a few bytes at a time). At a few hundred KB/s either takes seconds, at tens of
//! KB/s a minute: the queue stands still meanwhile, though the client reads steadily. So a
//! connection whose answer is still in its send queue has [`stall_limit`] (two minutes, or the
//! timeout when longer: nginx's `send_timeout` is one) without a write getting through, not
//! the head timeout; then the sweeper looks at how much of the answer the client has not taken
//! yet (`SIOCOUTQ`, [`Waiting::unsent`]): when that changed since its last look, the client is
//! reading, and the wait restarts. A client that stops reading with bytes still queued is cut
//! after at most twice the stall limit (the first look only notes the count).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// `waiting_since` while a request is being served.
const SERVING: u64 = u64::MAX;

/// The sweeper and the connections it watches.
#[derive(Debug)]
pub struct HeadTimeout {
    timeout: Duration,
    /// How long an answer may stay in the send queue with no write getting through before the
    /// sweeper looks at whether the client is taking it ([`stall_limit`]).
    stall: Duration,
    /// Milliseconds since `epoch`, updated by the sweeper (a clock that costs one atomic load).
    now_ms: AtomicU64,
    epoch: Instant,
    watched: Mutex<HashMap<u64, Arc<Waiting>>>,
    next_id: AtomicU64,
}

/// One connection's state, shared with the sweeper.
#[derive(Debug)]
pub struct Waiting {
    /// When (ms since the epoch) the connection started waiting for a request head, or
    /// [`SERVING`].
    waiting_since: AtomicU64,
    /// Set by the sweeper once the wait ran out; never cleared (the connection is closed).
    expired: AtomicBool,
    /// The connection task, woken when `expired` is set. [`Watch::expired`] is polled with the
    /// connection on every wake-up, that is several times per request: registering a waker is
    /// one compare-and-swap, where a `Notify` took its waiter list's lock on every poll.
    waker: AtomicWaker,
    /// The connection's socket while its I/O is alive ([`Progress`] sets and clears it; the
    /// lock keeps the socket open while the sweeper looks at it).
    socket: Mutex<Option<RawFd>>,
    /// The bytes still in the socket's send queue at the sweeper's last look.
    unsent_seen: AtomicU64,
}

impl Waiting {
    /// How many bytes of what was written the client has not taken yet (sent and not
    /// acknowledged, or not sent: `SIOCOUTQ`), when the socket is known.
    fn unsent(&self) -> Option<u64> {
        let socket = self.socket.lock().expect("no code panics while holding a socket lock");
        let fd = (*socket)?;
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is open while the lock is held (`Progress` clears it, under the lock,
        // before its socket is closed), and TIOCOUTQ writes one `int` to the pointer given.
        let done = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
        (done == 0).then(|| u64::try_from(queued).unwrap_or(0))
    }

    /// Whether the client took bytes of the queued answer since the sweeper's last look (or
    /// the queue emptied since), `unsent` being what is queued now: the wait for a request
    /// head does not count that time.
    fn client_reading(&self, unsent: Option<u64>) -> bool {
        let Some(unsent) = unsent else {
            return false;
        };
        self.unsent_seen.swap(unsent, Ordering::Relaxed) != unsent
    }
}

impl HeadTimeout {
    /// Starts the sweeper (on the current tokio runtime); it stops once the returned handle and
    /// every connection's [`Watch`] are dropped.
    pub fn start(timeout: Duration) -> Arc<HeadTimeout> {
        HeadTimeout::start_with(timeout, stall_limit(timeout))
    }

    /// [`HeadTimeout::start`] with a stall limit of its own (tests: the real one is minutes).
    fn start_with(timeout: Duration, stall: Duration) -> Arc<HeadTimeout> {
        let this = Arc::new(HeadTimeout {
            timeout,
            stall,
            now_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            watched: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        tokio::spawn(sweep(Arc::downgrade(&this), sweep_interval(timeout)));
        this
    }

    /// Watches a connection from now on; it stops being watched when the [`Watch`] is dropped.
    pub fn watch(self: &Arc<Self>) -> Watch {
        let waiting = Arc::new(Waiting {
            waiting_since: AtomicU64::new(self.now_ms.load(Ordering::Relaxed)),
            expired: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            socket: Mutex::new(None),
            unsent_seen: AtomicU64::new(0),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, waiting.clone());
        Watch {
            id,
            waiting,
            owner: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Waiting>>> {
        self.watched
            .lock()
            .expect("no code panics while holding the head-timeout lock")
    }

    /// One sweep: advances the clock, and wakes every connection waiting longer than the
    /// timeout.
    fn sweep(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.now_ms.store(now, Ordering::Relaxed);
        let limit = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let stall = u64::try_from(self.stall.as_millis()).unwrap_or(u64::MAX);
        for waiting in self.lock().values() {
            let since = waiting.waiting_since.load(Ordering::Relaxed);
            if since != SERVING && now.saturating_sub(since) >= limit {
                // An answer still queued: the client has the stall limit to take some of it.
                let unsent = waiting.unsent();
                if unsent.is_some_and(|queued| queued > 0) && now.saturating_sub(since) < stall {
                    continue;
                }
                if waiting.client_reading(unsent) {
                    // Restarted unless a request or a write moved the clock meanwhile.
                    let _ = (waiting.waiting_since).compare_exchange(
                        since,
                        now,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    continue;
                }
                waiting.expired.store(true, Ordering::Release);
                waiting.waker.wake();
            }
        }
    }
}

/// How long an answer may sit in the send queue with no write getting through, before the
/// client is taken to have stopped reading: two minutes (a client reading at 25 KB/s or more
/// frees half of a 6 MB receive buffer, Linux's default largest, within it), or the head
/// timeout when that is longer.
pub(crate) fn stall_limit(timeout: Duration) -> Duration {
    timeout.max(Duration::from_secs(120))
}

/// A tenth of the timeout, between 10 ms and 1 s.
fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

async fn sweep(owner: Weak<HeadTimeout>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match owner.upgrade() {
            Some(owner) => owner.sweep(),
            None => return,
        }
    }
}

/// A watched connection.
#[derive(Debug)]
pub struct Watch {
    id: u64,
    waiting: Arc<Waiting>,
    owner: Arc<HeadTimeout>,
}

impl Watch {
    /// Marks a request as being served (its head has arrived); returns what to call when its
    /// answer is ready.
    pub fn serving(&self) -> Served {
        self.waiting.waiting_since.store(SERVING, Ordering::Relaxed);
        Served {
            waiting: self.waiting.clone(),
            owner: Arc::downgrade(&self.owner),
        }
    }

    /// Marks a request as being served, as [`Watch::serving`] does, without a guard: for a
    /// request answered within the call ([`Watch::answered`] then restarts the wait), or
    /// handed on to [`Watch::serving`]'s guard.
    pub fn mark_serving(&self) {
        self.waiting.waiting_since.store(SERVING, Ordering::Relaxed);
    }

    /// Restarts the wait for the next request head after a request answered within the call
    /// that marked it ([`Watch::mark_serving`]): what dropping [`Watch::serving`]'s [`Served`]
    /// does.
    pub fn answered(&self) {
        self.waiting.waiting_since.store(self.owner.now_ms.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Resolves once the connection waited for a request head longer than the timeout.
    pub async fn expired(&self) {
        std::future::poll_fn(|cx| {
            let expired = &self.waiting.expired;
            if expired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waiting.waker.register(cx.waker());
            // Set between the load and the registration, its wake-up went to the old waker.
            if expired.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Notes that an answer's bytes made progress to the client: the wait restarts (unless a
    /// request is being served, which is never timed out).
    pub fn wrote(&self) {
        let now = self.owner.now_ms.load(Ordering::Relaxed);
        let _ = self.waiting.waiting_since.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |since| (since != SERVING).then_some(now),
        );
    }
}

/// A connection's I/O that tells its [`Watch`] about every write that makes progress.
#[derive(Debug)]
pub struct Progress<I> {
    inner: I,
    watch: Arc<Watch>,
}

impl<I> Progress<I> {
    /// Wraps `inner`, whose TCP socket is `socket` (looked at by the sweeper to tell a client
    /// slowly reading a long answer from one that stopped reading).
    pub fn new(inner: I, watch: Arc<Watch>, socket: Option<RawFd>) -> Progress<I> {
        *watch.waiting.socket.lock().expect("no code panics while holding a socket lock") = socket;
        Progress { inner, watch }
    }

    fn noted(&self, written: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.watch.wrote();
        }
        written
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Progress<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Progress<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.noted(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<I> Drop for Progress<I> {
    /// Forgets the socket before `inner` closes it (the sweeper must not look at a closed or
    /// reused descriptor).
    fn drop(&mut self) {
        if let Ok(mut socket) = self.watch.waiting.socket.lock() {
            *socket = None;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.owner.lock().remove(&self.id);
    }
}

/// Restarts the wait for the next request head when dropped: when the answer is ready, or when
/// serving it was abandoned.
#[derive(Debug)]
pub struct Served {
    waiting: Arc<Waiting>,
    owner: Weak<HeadTimeout>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            let now = owner.now_ms.load(Ordering::Relaxed);
            self.waiting.waiting_since.store(now, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expires_within(watch: &Watch, limit: Duration) -> bool {
        tokio::time::timeout(limit, watch.expired()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_waiting_longer_than_the_timeout_expires_and_one_being_served_does_not() {
        let timeouts = HeadTimeout::start(Duration::from_secs(1));
        let idle = timeouts.watch();
        let busy = timeouts.watch();
        let served = busy.serving();
        // Not before the timeout (less one sweep)...
        assert!(!expires_within(&idle, Duration::from_millis(850)).await);
        // ...but within it plus one sweep.
        assert!(expires_within(&idle, Duration::from_millis(300)).await);
        // Serving a request holds the clock, however long it takes.
        assert!(!expires_within(&busy, Duration::from_secs(5)).await);
        // The answer restarts it.
        drop(served);
        assert!(!expires_within(&busy, Duration::from_millis(850)).await);
        assert!(expires_within(&busy, Duration::from_millis(300)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_make_progress_restart_the_wait_but_never_end_serving() {
        let timeouts = HeadTimeout::start(Duration::from_secs(1));
        // A client slowly reading a long answer: a write gets through every 500 ms.
        let reading = timeouts.watch();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reading.wrote();
        }
        assert!(!expires_within(&reading, Duration::from_millis(700)).await);
        // Once it stops reading, the timeout runs out.
        assert!(expires_within(&reading, Duration::from_millis(600)).await);
        // A write while serving (an answer to a pipelined request) does not end serving.
        let busy = timeouts.watch();
        let _served = busy.serving();
        busy.wrote();
        assert!(!expires_within(&busy, Duration::from_secs(5)).await);
    }

    /// Sets a socket option of `fd` to `bytes` (the kernel doubles it).
    fn buffer(fd: RawFd, option: libc::c_int, bytes: libc::c_int) {
        // SAFETY: `fd` is an open socket; the value is one `int`, its size given.
        let set = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "setsockopt");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_draining_a_full_send_queue_is_not_cut_and_one_that_stopped_reading_is() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        // A connection whose answer fills the send queue: the kernel's own (auto-tuned, as the
        // proxy's sockets are: megabytes on loopback) on the proxy's side, a small receive
        // buffer on the client's, so each read the client makes frees some of it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        buffer(client.as_raw_fd(), libc::SO_RCVBUF, 32 * 1024);
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        while (&server).write(&chunk).is_ok() {}
        let timeouts = HeadTimeout::start_with(Duration::from_secs(1), Duration::from_secs(3));
        let watch = Arc::new(timeouts.watch());
        let io = Progress::new((), watch.clone(), Some(server.as_raw_fd()));
        let queued = watch.waiting.unsent().expect("the socket's send queue");
        assert!(queued > 512 * 1024, "the answer fills the send queue: {queued} bytes");
        // The client reads 64 KiB every 700 ms for twice the stall limit, and no write of the
        // proxy's gets through meanwhile (its queue is never drained enough to be writable).
        let mut taken = vec![0; 64 * 1024];
        for _ in 0..9 {
            assert!(!expires_within(&watch, Duration::from_millis(700)).await, "cut while reading");
            let before = watch.waiting.unsent().unwrap();
            client.read_exact(&mut taken).unwrap();
            // The client's acknowledgements reach the queue in the kernel's own time.
            let waited = std::time::Instant::now();
            while watch.waiting.unsent().unwrap() == before {
                assert!(waited.elapsed() < Duration::from_secs(10), "the queue never drained");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(watch.waiting.unsent().unwrap() > 0, "bytes still queued");
        // It stops reading: not cut within the stall limit, whatever the head timeout...
        assert!(!expires_within(&watch, Duration::from_millis(2900)).await);
        // ...but within twice the stall limit (and a sweep).
        assert!(expires_within(&watch, Duration::from_millis(3300)).await);
        // Once its I/O is gone, the socket is not looked at any more.
        drop(io);
        assert_eq!(watch.waiting.unsent(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn each_answer_restarts_the_wait_so_a_steady_client_is_never_cut() {
        let timeouts = HeadTimeout::start(Duration::from_secs(1));
        let steady = timeouts.watch();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(steady.serving());
        }
        assert!(!expires_within(&steady, Duration::from_millis(700)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_watches_are_forgotten_and_nothing_else_keeps_the_timeouts_alive() {
        let timeouts = HeadTimeout::start(Duration::from_millis(100));
        drop(timeouts.watch());
        assert!(timeouts.lock().is_empty());
        let weak = Arc::downgrade(&timeouts);
        drop(timeouts);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(weak.upgrade().is_none());
    }
}
