//! A TCP proxy that resets connections, put between a client and an
//! emulator: what a load balancer restarting, a NAT table dropping an
//! entry or a flaky network does to a request. The fault layer
//! ([`super::faults`]) answers with HTTP; a reset has no answer at all,
//! so it cannot be an axum middleware.
//!
//! Each chunk the client sends (on a pooled HTTP/1.1 connection, about
//! one request) rolls the seeded dice. A hit resets the connection (TCP
//! RST) either before the request is passed on (it never reached the API)
//! or after the API has answered it (the write landed; the answer is
//! thrown away): the client cannot tell which, exactly as in production.

use super::Running;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long a reset after the request waits for the API's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The proxy's switches and counters, shared with the test driving it.
#[derive(Debug, Default)]
pub struct Chaos {
    /// Share of requests whose connection is reset, 0.0..=1.0.
    pub reset_rate: f64,
    /// While set, everything is passed through untouched.
    pub paused: AtomicBool,
    /// Seed it (`fastrand::Rng::with_seed`) to make a run reproducible.
    pub rng: Mutex<fastrand::Rng>,
    /// Connections reset before the request was passed on.
    pub reset_before: AtomicU32,
    /// Connections reset after the API answered (the request took effect).
    pub reset_after: AtomicU32,
}

#[derive(Clone, Copy)]
enum Reset {
    Before,
    After,
}

impl Chaos {
    pub fn new(reset_rate: f64, seed: u64) -> Arc<Chaos> {
        Arc::new(Chaos {
            reset_rate,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            ..Chaos::default()
        })
    }

    /// Resets so far, both kinds.
    pub fn resets(&self) -> u32 {
        self.reset_before.load(Ordering::SeqCst) + self.reset_after.load(Ordering::SeqCst)
    }

    fn roll(&self) -> Option<Reset> {
        if self.paused.load(Ordering::SeqCst) || self.reset_rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.f64() >= self.reset_rate {
            return None;
        }
        Some(if rng.bool() {
            Reset::Before
        } else {
            Reset::After
        })
    }
}

/// Listens on 127.0.0.1 (a free port) and proxies every connection to
/// `upstream` through `chaos`. Dropping the returned [`Running`] stops it
/// and every connection it holds.
pub async fn start(upstream: SocketAddr, chaos: Arc<Chaos>) -> std::io::Result<Running> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Owned by the accept loop: aborting it drops every connection.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((client, _)) => {
                        conns.spawn(proxy(client, upstream, chaos.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "chaos proxy: accept failed"),
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok(Running { addr, task })
}

/// One connection: bytes both ways until either side closes or the dice
/// say reset.
async fn proxy(mut client: TcpStream, upstream: SocketAddr, chaos: Arc<Chaos>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let hit = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        loop {
            tokio::select! {
                n = cr.read(&mut up) => {
                    let n = match n { Ok(0) | Err(_) => break None, Ok(n) => n };
                    match chaos.roll() {
                        None => {
                            if sw.write_all(&up[..n]).await.is_err() { break None; }
                        }
                        Some(Reset::Before) => break Some(Reset::Before),
                        Some(Reset::After) => {
                            if sw.write_all(&up[..n]).await.is_err() { break None; }
                            // The answer is read and dropped: the request
                            // was carried out, the client never hears so.
                            let _ = tokio::time::timeout(ANSWER_WAIT, sr.read(&mut down)).await;
                            break Some(Reset::After);
                        }
                    }
                }
                n = sr.read(&mut down) => {
                    let n = match n { Ok(0) | Err(_) => break None, Ok(n) => n };
                    if cw.write_all(&down[..n]).await.is_err() { break None; }
                }
            }
        }
    };
    match hit {
        Some(Reset::Before) => {
            chaos.reset_before.fetch_add(1, Ordering::SeqCst);
            reset(&client);
        }
        Some(Reset::After) => {
            chaos.reset_after.fetch_add(1, Ordering::SeqCst);
            reset(&client);
        }
        None => {}
    }
}

/// Closes with RST instead of FIN once the socket is dropped.
fn reset(s: &TcpStream) {
    if let Err(e) = s.set_zero_linger() {
        tracing::warn!(error = %e, "chaos proxy: cannot set SO_LINGER");
    }
}
