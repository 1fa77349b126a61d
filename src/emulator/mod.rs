//! Local emulators of the Zendesk and Salesforce REST APIs (axum): the same
//! paths, JSON shapes, status codes and headers as the real APIs for what
//! the connectors use, state in memory. Started by `l3map emulate`, by
//! `l3map run` on the embedded default, and in-process by tests.
//!
//! Shared here: serving on 127.0.0.1, fault injection (HTTP faults in
//! [`faults`], connection resets by the [`chaos`] proxy), the per-token
//! request window both emulators count against, the bounds on what they
//! keep per request ([`bounded`]), and the state file that keeps both
//! emulators' records across restarts.

pub mod bounded;
pub mod chaos;
pub mod faults;
pub(crate) mod redirect;
pub mod salesforce;
pub mod snapshot;
pub mod window;
pub mod zendesk;

use std::net::SocketAddr;

/// Whether a presented credential (token, client secret, refresh token)
/// is the expected one, compared in constant time: how long a refusal
/// takes must not tell a client how much of a secret it guessed right.
/// (Only a length mismatch returns early; lengths are not secret.)
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}
use tokio::task::JoinHandle;

/// A running emulator: where it listens, and the task serving it.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:PORT`, what a connection's `url` points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on 127.0.0.1 (`port` 0 picks a free one).
pub async fn serve(app: axum::Router, port: u16) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    Ok(Running { addr, task })
}
