//! Bounds on what one agent may hold open at `/mcp`, checked after the
//! bearer gate and before the SDK sees the request:
//!
//! - a session belongs to the agent that opened it: another agent's token
//!   on its `Mcp-Session-Id` (POST, GET or DELETE) is answered as for a
//!   session that does not exist;
//! - an agent has at most [`SESSIONS_PER_AGENT`] sessions seen in the last
//!   [`IDLE`] (the SDK closes a session idle that long);
//! - long-lived streams (`GET /mcp`, and a 2026-07-28
//!   `subscriptions/listen`) are at most [`STREAMS_PER_AGENT`] per
//!   agent and a quarter of the server's connections in all, so no agent
//!   can hold every connection and lock out webhooks and probes.

use super::super::auth::AgentName;
use crate::runtime::app::error;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SESSIONS_PER_AGENT: usize = 32;
pub const STREAMS_PER_AGENT: usize = 4;
/// The SDK's own idle timeout for a session.
pub const IDLE: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Book {
    /// Session id -> its agent and when it was last used.
    owners: HashMap<String, (String, Instant)>,
    /// Open streams, by agent.
    streams: HashMap<String, usize>,
}

pub struct Sessions {
    book: Mutex<Book>,
    max_streams: usize,
}

impl Sessions {
    pub fn new(max_streams: usize) -> Arc<Sessions> {
        Arc::new(Sessions {
            book: Mutex::default(),
            max_streams: max_streams.max(1),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A stream's place, given back when its response body is dropped.
struct Stream {
    sessions: Arc<Sessions>,
    agent: String,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut b = self.sessions.book();
        if let Some(n) = b.streams.get_mut(&self.agent) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                b.streams.remove(&self.agent);
            }
        }
    }
}

fn refused(status: StatusCode, code: &str, message: String) -> Response {
    error(status, code, message)
}

/// Whether a POST is a `subscriptions/listen` (2026-07-28): its answer is
/// a stream held open like a `GET`'s. The body was read whole by the gate.
async fn listens(req: Request) -> (Request, bool) {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let listen = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("method").and_then(|m| m.as_str()) == Some("subscriptions/listen"));
    (Request::from_parts(parts, Body::from(bytes)), listen)
}

pub async fn guard(State(sessions): State<Arc<Sessions>>, req: Request, next: Next) -> Response {
    let Some(agent) = req.extensions().get::<AgentName>().map(|a| a.0.clone()) else {
        return next.run(req).await;
    };
    let (req, listen) = if req.method() == Method::POST {
        listens(req).await
    } else {
        (req, false)
    };
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let method = req.method().clone();
    let mut stream = None;
    {
        let mut b = sessions.book();
        let now = Instant::now();
        b.owners
            .retain(|_, (_, seen)| now.duration_since(*seen) < IDLE);
        match &session {
            Some(id) => match b.owners.get_mut(id) {
                Some((owner, _)) if *owner != agent => {
                    return refused(
                        StatusCode::NOT_FOUND,
                        "session_not_found",
                        "no such session: open one of your own".into(),
                    )
                }
                Some((_, seen)) => *seen = now,
                None => {}
            },
            None if method == Method::POST => {
                let open = b.owners.values().filter(|(a, _)| *a == agent).count();
                if open >= SESSIONS_PER_AGENT {
                    return refused(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_sessions",
                        format!("agent {agent} has {open} MCP sessions open; close one (DELETE /mcp) or let one idle out ({} s)", IDLE.as_secs()),
                    );
                }
            }
            None => {}
        }
        if method == Method::GET || listen {
            let mine = b.streams.get(&agent).copied().unwrap_or(0);
            let all: usize = b.streams.values().sum();
            if mine >= STREAMS_PER_AGENT || all >= sessions.max_streams {
                return refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_streams",
                    format!("agent {agent} has {mine} MCP streams open (at most {STREAMS_PER_AGENT}, and {} in all); close one first", sessions.max_streams),
                );
            }
            *b.streams.entry(agent.clone()).or_default() += 1;
            stream = Some(Stream {
                sessions: sessions.clone(),
                agent: agent.clone(),
            });
        }
    }
    let resp = next.run(req).await;
    let mut b = sessions.book();
    if let Some(id) = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    {
        b.owners
            .entry(id.to_string())
            .or_insert_with(|| (agent.clone(), Instant::now()));
    }
    if method == Method::DELETE && resp.status().is_success() {
        if let Some(id) = &session {
            b.owners.remove(id);
        }
    }
    drop(b);
    match stream {
        // The place is held for as long as the stream's body is.
        Some(s) => resp.map(|body| {
            Body::new(http_body_util::BodyExt::map_frame(body, move |f| {
                let _held = &s;
                f
            }))
        }),
        None => resp,
    }
}
