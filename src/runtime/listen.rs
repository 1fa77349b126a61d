//! Serving the runtime's HTTP face on its listener, with bounds on what
//! anyone who can reach the port may hold before showing a credential:
//!
//! - HTTP/1.1 only. Zendesk's webhooks and agents speak HTTP/1.1; a
//!   cleartext HTTP/2 (h2c) preface is not HTTP/1.1 and closes the
//!   connection, so no client gets 200 streams on one socket.
//! - A request head (request line and headers) must arrive within
//!   `header_timeout`, and be at most [`MAX_HEAD`] bytes and
//!   [`MAX_HEADERS`] headers (hyper's HTTP/1 settings). hyper starts that
//!   clock whenever a connection waits for a request, so it also closes a
//!   keep-alive connection idle for as long.
//! - At most `max_connections` connections are open. When a new one
//!   arrives at the cap, the oldest connection that has never sent a
//!   request is closed to make room, else the oldest idle keep-alive one;
//!   only when every connection is mid-request is the newcomer closed.
//!   Half-open sockets therefore cannot lock out a health check: the
//!   newest connection always gets in, and the cap keeps the runtime's
//!   file descriptors below its limit.
//!
//! - A response that makes no progress for `body_timeout` (a client that
//!   sends requests and never reads the answers) closes the connection,
//!   so such a connection cannot stay busy, and so unclosable, forever.
//!
//! Bodies are bounded where they are read, after the credentials: see
//! [`super::intake`].

use axum::body::Body;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// The largest request head hyper buffers for one connection; also the
/// most it reads ahead of a body nobody asked for. Zendesk's and agents'
/// heads are a few hundred bytes.
pub const MAX_HEAD: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 64;

/// `[server]` limits of `l3map.toml` (docs/RUNTIME.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    /// To send a request head; also the longest a keep-alive connection
    /// stays open between requests.
    pub header_timeout: Duration,
    /// To send a whole body, once the request's credentials passed; also
    /// the longest a response may make no progress (a client not reading).
    pub body_timeout: Duration,
    /// Request bodies held in memory at once, all requests together.
    pub body_buffer_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            // Below the common 1024 open-file limit, with room for the
            // store, the watcher and the connectors' own connections.
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_buffer_bytes: 32 * 1024 * 1024,
        }
    }
}

impl HttpLimits {
    /// Bodies read at once: a quarter of the connections, so slow bodies
    /// never hold every connection busy (a busy connection cannot be
    /// closed to make room).
    pub fn body_reads(&self) -> usize {
        (self.max_connections / 4).max(1)
    }
}

/// Serves `app` until `stop` turns true, then lets in-flight requests
/// finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let table = Arc::new(Table::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let mut warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it
                // was accepted): wait a little rather than spin; one
                // warning a minute at most.
                if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    warned = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(slot) = table.admit() else {
            // Every connection is mid-request: this one waits its turn
            // in the client's retry, not in our memory.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = StalledWrites::new(stream, limits.body_timeout);
        let conn = http.serve_connection(TokioIo::new(stream), service(app.clone(), &slot));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::select! {
                // Errors here are the client's (a reset, a bad head, the
                // header timeout): nothing for the operator to do.
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                // Evicted: nothing is in flight on it (see `Table::admit`).
                _ = slot.slot.evicted.notified() => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The router per request, marking the connection busy until the response
/// body has been written (the guard rides in the body).
fn service(
    app: Router,
    slot: &Admitted,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let slot = slot.slot.clone();
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = Busy::begin(&slot);
        let app = app.clone();
        async move {
            let Some(busy) = busy else {
                // Closed to make room a moment ago; the connection is
                // about to be dropped.
                return Ok(super::app::error(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "closing",
                    "the connection was closed to make room; send the request again",
                ));
            };
            let resp = app.oneshot(req.map(Body::new)).await?;
            Ok(resp.map(|b| {
                Body::new(b.map_frame(move |f| {
                    let _held = &busy;
                    f
                }))
            }))
        }
    })
}

/// The connection's socket, failing a write that has made no progress
/// for `limit` (tokio has no write timeout of its own).
struct StalledWrites {
    io: tokio::net::TcpStream,
    limit: Duration,
    /// Armed when a write first returns `Pending`, cleared on progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StalledWrites {
    fn new(io: tokio::net::TcpStream, limit: Duration) -> StalledWrites {
        StalledWrites {
            io,
            limit,
            stalled: None,
        }
    }

    fn track<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for StalledWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for StalledWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.track(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.track(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.track(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Set in `Slot::state` once evicted; the low bits count requests.
const EVICTED: usize = 1 << (usize::BITS - 1);

struct Slot {
    id: u64,
    /// Requests in flight, plus [`EVICTED`].
    state: AtomicUsize,
    /// Whether a request ever came: never-served connections go first.
    served: AtomicBool,
    evicted: Notify,
}

struct Busy(Arc<Slot>);

impl Busy {
    fn begin(slot: &Arc<Slot>) -> Option<Busy> {
        let before = slot.state.fetch_add(1, Ordering::SeqCst);
        if before & EVICTED != 0 {
            slot.state.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        slot.served.store(true, Ordering::Relaxed);
        Some(Busy(slot.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections, oldest first.
struct Table {
    max: usize,
    inner: Mutex<(u64, BTreeMap<u64, Arc<Slot>>)>,
}

/// A connection's place in the table, given back on drop.
struct Admitted {
    table: Arc<Table>,
    slot: Arc<Slot>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.table.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.1.remove(&self.slot.id);
    }
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            max: max.max(1),
            inner: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// A place for a new connection, closing an idle one if the table is
    /// full; `None` when every open connection is mid-request.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (next, open) = &mut *guard;
        if open.len() >= self.max {
            // An idle connection is marked evicted only if no request is in
            // flight at that instant; a request arriving after is refused
            // by `Busy::begin`, so nothing half-done is dropped.
            let evict = |s: &Arc<Slot>| {
                s.state
                    .compare_exchange(0, EVICTED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            };
            let victim = open
                .values()
                .find(|s| !s.served.load(Ordering::Relaxed) && evict(s))
                .or_else(|| open.values().find(|s| evict(s)))
                .map(|s| s.id);
            let id = victim?;
            if let Some(s) = open.remove(&id) {
                s.evicted.notify_one();
            }
        }
        *next += 1;
        let slot = Arc::new(Slot {
            id: *next,
            state: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        open.insert(slot.id, slot.clone());
        Some(Admitted {
            table: self.clone(),
            slot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_oldest_never_served_then_the_oldest_idle() {
        let t = Arc::new(Table::new(3));
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        let c = t.admit().unwrap();
        // a served a request and is idle; b never sent one; c is busy.
        drop(Busy::begin(&a.slot).unwrap());
        let _busy_c = Busy::begin(&c.slot).unwrap();
        let d = t.admit().unwrap();
        assert_ne!(b.slot.state.load(Ordering::SeqCst) & EVICTED, 0);
        assert!(
            Busy::begin(&b.slot).is_none(),
            "an evicted slot serves nothing"
        );
        drop(b);
        // a (idle) and d (never served): d goes first.
        let e = t.admit().unwrap();
        assert_ne!(d.slot.state.load(Ordering::SeqCst) & EVICTED, 0);
        assert_eq!(a.slot.state.load(Ordering::SeqCst), 0);
        drop(d);
        // a idle, c and e busy: a goes.
        let _busy_e = Busy::begin(&e.slot).unwrap();
        let f = t.admit().unwrap();
        assert_ne!(a.slot.state.load(Ordering::SeqCst) & EVICTED, 0);
        drop(a);
        // c, e and f busy: the newcomer is refused.
        let _busy_f = Busy::begin(&f.slot).unwrap();
        assert!(t.admit().is_none(), "every connection busy: refused");
    }
}
