//! A TCP proxy on 127.0.0.1, for the fleet's chaos test
//! (tests/fleet_chaos.rs), in front of one server or several:
//!
//! * one replica's link to PostgreSQL, which [`Proxy::cut`] breaks: every
//!   connection it carries is dropped and new ones are refused (accepted
//!   and closed at once) until [`Proxy::heal`];
//! * one replica's way to the Zendesk emulator: the replica's `base_url`
//!   names the proxy's port, so the `Host` of its requests, which the
//!   emulator's request log keeps, says which replica sent them;
//! * a load balancer ([`Proxy::balancer`]) for webhooks and agent turns:
//!   each new connection goes to the next upstream whose health check
//!   answers 200 (any of them while none does), as a load balancer in
//!   front of a fleet sends to ready replicas only.
//!
//! Bytes are carried as they are; nothing is parsed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a balancer asks each upstream's health URL, and how long it
/// waits for the answer: a stopped process (SIGSTOP) takes connections
/// into its backlog and never answers, so only the answer tells.
const HEALTH_EVERY: Duration = Duration::from_millis(300);
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Proxy {
    pub port: u16,
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

struct Inner {
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
    cut: AtomicBool,
    /// Bumped by [`Proxy::cut`]: every connection carried ends.
    cuts: watch::Sender<u64>,
}

struct Upstream {
    addr: SocketAddr,
    healthy: AtomicBool,
}

impl Proxy {
    /// A proxy to `upstream` on a port of the kernel's choosing.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        Proxy::listen(0, vec![(upstream, None)]).await
    }

    /// A load balancer on `port` over `upstreams`, each with the URL that
    /// says whether it is ready (`/readyz`).
    pub async fn balancer(port: u16, upstreams: Vec<(SocketAddr, String)>) -> Proxy {
        let ups = upstreams.into_iter().map(|(a, u)| (a, Some(u))).collect();
        Proxy::listen(port, ups).await
    }

    async fn listen(port: u16, upstreams: Vec<(SocketAddr, Option<String>)>) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the proxy's port");
        let port = listener.local_addr().expect("an address").port();
        let inner = Arc::new(Inner {
            upstreams: upstreams
                .iter()
                .map(|(addr, _)| Upstream {
                    addr: *addr,
                    healthy: AtomicBool::new(true),
                })
                .collect(),
            next: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            cuts: watch::channel(0).0,
        });
        let mut tasks = vec![tokio::spawn(serve(inner.clone(), listener))];
        for (i, (_, health)) in upstreams.into_iter().enumerate() {
            if let Some(url) = health {
                tasks.push(tokio::spawn(check(inner.clone(), i, url)));
            }
        }
        Proxy { port, inner, tasks }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every connection carried and refuses new ones until
    /// [`Proxy::heal`].
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        self.inner.cuts.send_modify(|n| *n += 1);
    }

    pub fn heal(&self) {
        self.inner.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if inner.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        tokio::spawn(carry(inner.clone(), client));
    }
}

async fn carry(inner: Arc<Inner>, mut client: TcpStream) {
    let mut cuts = inner.cuts.subscribe();
    let Some(mut upstream) = connect(&inner).await else {
        return;
    };
    if inner.cut.load(Ordering::SeqCst) {
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = cuts.changed() => {}
    }
}

/// The next upstream that takes a connection, the ready ones first.
async fn connect(inner: &Inner) -> Option<TcpStream> {
    let n = inner.upstreams.len();
    let first = inner.next.fetch_add(1, Ordering::SeqCst);
    let any_ready = inner
        .upstreams
        .iter()
        .any(|u| u.healthy.load(Ordering::SeqCst));
    for i in 0..n {
        let u = &inner.upstreams[(first + i) % n];
        if any_ready && !u.healthy.load(Ordering::SeqCst) {
            continue;
        }
        if let Ok(s) = TcpStream::connect(u.addr).await {
            return Some(s);
        }
    }
    None
}

async fn check(inner: Arc<Inner>, i: usize, url: String) {
    let http = reqwest::Client::builder()
        .timeout(HEALTH_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    loop {
        let ok = http
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        inner.upstreams[i].healthy.store(ok, Ordering::SeqCst);
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}
