//! One transport for every helpdesk connector. A call is one logical
//! request through the retry layer ([`super::retry`]); each attempt takes
//! four steps, each in its own file:
//!
//! 1. **budget** ([`budget`]): a slot of the token's rate limiter (and a
//!    concurrency permit where the vendor caps them), waited for under the
//!    call's deadline; a request the limiter would hold past it is never
//!    sent.
//! 2. **session** ([`session`]): the credential to send. An expired one is
//!    renewed once, single-flight (a generation counter), and the request
//!    sent again inside the same attempt: an expired token refuses a
//!    request before anything is done, so resending is safe for any write.
//! 3. **send** ([`send`]): one HTTP exchange with the per-attempt timeout
//!    and the body cap.
//! 4. **observe** ([`observe`]): the vendor's rate headers fed to the
//!    limiter, before the body is read.
//!
//! What differs between vendors is a [`Policy`] (as vector's sinks each
//! implement a small `RetryLogic` behind one shared retry policy): how to
//! build a request and sign it, which requests may be sent twice, how to
//! read its rate headers, how to get a token, how to type an error answer.
//!
//! A new helpdesk (Freshdesk, HubSpot) adds a folder
//! `src/connectors/<vendor>/` with `mod.rs` (its client: a
//! `Transport<ItsPolicy>` and a config), `policy.rs` (the [`Policy`]) and
//! `endpoints.rs` (its operations), plus `System::<Vendor>` in
//! `connectors/error.rs`; nothing here changes.

pub mod budget;
pub mod keep;
pub mod observe;
pub mod send;
pub mod session;

pub use budget::Budget;
pub use observe::Rate;
pub use send::{Answer, Request};
pub use session::{Grant, Session};

use super::error::{ApiError, System};
use super::limit::Lane;
use super::retry::{Replay, RetryPolicy};
use reqwest::header::HeaderMap;

/// What a non-2xx answer means.
#[derive(Debug)]
pub enum Verdict {
    /// The session expired: renew it and send again (once).
    Expired,
    /// The typed error: the retry layer decides whether to try again.
    Failed(ApiError),
}

/// One vendor's side of the transport.
pub trait Policy: Grant + 'static {
    /// Which API, in errors, logs and metrics.
    const SYSTEM: System;

    /// The request as sent: URL, credential, body, vendor headers.
    fn build(
        &self,
        http: &reqwest::Client,
        token: &Self::Token,
        req: &Request<'_>,
    ) -> reqwest::RequestBuilder;

    /// Whether the request may be sent again after a failure that leaves
    /// its outcome unknown (what is retriable; which errors are is
    /// [`ApiError::is_retryable`]).
    fn replay(&self, req: &Request<'_>) -> Replay;

    /// The vendor's rate headers. A policy may keep other readings of its
    /// own here (Salesforce's daily API usage).
    fn rate(&self, headers: &HeaderMap) -> Rate;

    /// A non-2xx answer, typed with the vendor's own message.
    fn classify(&self, answer: &Answer) -> Verdict;

    /// The error for an answer that still says "expired" after a renewal,
    /// or from a credential that cannot be renewed.
    fn still_expired(&self, answer: &Answer) -> ApiError;
}

/// A vendor's client core: its policy, its session, its token's budget,
/// its HTTP client and its retry policy.
pub struct Transport<P: Policy> {
    http: reqwest::Client,
    policy: P,
    session: Session<P::Token>,
    budget: Budget,
    retry: RetryPolicy,
}

impl<P: Policy> Transport<P> {
    pub fn new(
        http: reqwest::Client,
        policy: P,
        session: Session<P::Token>,
        budget: Budget,
        retry: RetryPolicy,
    ) -> Transport<P> {
        Transport {
            http,
            policy,
            session,
            budget,
            retry,
        }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The session's token (signing in first if it has none) and its
    /// generation: for a protocol that carries the credential itself, such
    /// as Salesforce's Pub/Sub API over gRPC.
    pub async fn token(&self) -> Result<(P::Token, u64), ApiError> {
        self.session.current(&self.policy, &self.http).await
    }

    /// A new token unless one newer than generation `seen` exists: what
    /// such a protocol calls when its server says the token expired.
    pub async fn renew_token(&self, seen: u64) -> Result<(P::Token, u64), ApiError> {
        self.session.renew(seen, &self.policy, &self.http).await
    }

    /// One logical request: retried by the retry policy, each attempt in
    /// `lane`. A success is any 2xx answer; the endpoint reads its body.
    pub async fn call(&self, lane: Lane, req: &Request<'_>) -> Result<Answer, ApiError> {
        let replay = self.policy.replay(req);
        self.retry
            .run(P::SYSTEM, replay, |deadline| {
                self.attempt(lane, req, deadline)
            })
            .await
    }

    async fn attempt(
        &self,
        lane: Lane,
        req: &Request<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, ApiError> {
        let _permit = self.budget.slot(P::SYSTEM, lane, deadline).await?;
        let (token, generation) = self.session.current(&self.policy, &self.http).await?;
        let answer = self.exchange(&token, req).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        match self.policy.classify(&answer) {
            Verdict::Failed(e) => Err(e),
            Verdict::Expired if !self.session.is_renewable() => {
                Err(self.policy.still_expired(&answer))
            }
            Verdict::Expired => {
                let (token, _) = self
                    .session
                    .renew(generation, &self.policy, &self.http)
                    .await?;
                let answer = self.exchange(&token, req).await?;
                if answer.status.is_success() {
                    return Ok(answer);
                }
                match self.policy.classify(&answer) {
                    Verdict::Failed(e) => Err(e),
                    Verdict::Expired => Err(self.policy.still_expired(&answer)),
                }
            }
        }
    }

    async fn exchange(&self, token: &P::Token, req: &Request<'_>) -> Result<Answer, ApiError> {
        let built = self.policy.build(&self.http, token, req);
        send::exchange_seen(P::SYSTEM, built, |status, headers| {
            self.budget.observe(
                status == reqwest::StatusCode::TOO_MANY_REQUESTS,
                &self.policy.rate(headers),
            )
        })
        .await
    }
}
