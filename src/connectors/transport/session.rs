//! The credential a request carries, and its renewal. A configured token
//! is fixed; a session (an OAuth client, a Salesforce sign-in) starts empty,
//! signs in on first use and is renewed when the API says it expired.
//!
//! `generation` counts renewals. A caller that got "expired" renews only if
//! the generation is still the one its token came from: the lock is held
//! across the token request, so concurrent 401s wait for one renewal and
//! then all use the token it got.

use super::super::error::ApiError;
use std::future::Future;

/// How a vendor gets a token: the sign-in half of its policy.
pub trait Grant: Send + Sync {
    /// What a sign-in yields and every request then carries: an
    /// `Authorization` value, a rotating refresh token, the instance URL a
    /// token endpoint named.
    type Token: Clone + Send + Sync + 'static;

    /// A new token. `previous` is the session's current one (a refresh
    /// token that rotates on every use lives in it), `None` at first
    /// sign-in.
    fn grant(
        &self,
        http: &reqwest::Client,
        previous: Option<&Self::Token>,
    ) -> impl Future<Output = Result<Self::Token, ApiError>> + Send;

    /// Told after every renewal (the vendor logs it under its own name).
    fn renewed(&self, generation: u64);
}

/// A fixed credential, or a session that renews itself.
pub enum Session<T> {
    Fixed(T),
    Renewable(tokio::sync::Mutex<State<T>>),
}

pub struct State<T> {
    token: Option<T>,
    generation: u64,
}

impl<T: Clone + Send + Sync + 'static> Session<T> {
    /// A session that signs in on first use.
    pub fn renewable() -> Session<T> {
        Session::Renewable(tokio::sync::Mutex::new(State {
            token: None,
            generation: 0,
        }))
    }

    pub fn is_renewable(&self) -> bool {
        matches!(self, Session::Renewable(_))
    }

    /// The token to send and the generation it belongs to (a fixed token
    /// is generation 0 forever); a session without one signs in first.
    pub async fn current<G: Grant<Token = T>>(
        &self,
        grant: &G,
        http: &reqwest::Client,
    ) -> Result<(T, u64), ApiError> {
        let state = match self {
            Session::Fixed(t) => return Ok((t.clone(), 0)),
            Session::Renewable(s) => s,
        };
        let seen = {
            let s = state.lock().await;
            if let Some(t) = &s.token {
                return Ok((t.clone(), s.generation));
            }
            s.generation
        };
        self.renew(seen, grant, http).await
    }

    /// A new token, unless someone got one since `seen`: then theirs.
    pub async fn renew<G: Grant<Token = T>>(
        &self,
        seen: u64,
        grant: &G,
        http: &reqwest::Client,
    ) -> Result<(T, u64), ApiError> {
        let state = match self {
            // The transport never renews a fixed token (it is not
            // renewable); answer with it rather than panic.
            Session::Fixed(t) => return Ok((t.clone(), 0)),
            Session::Renewable(s) => s,
        };
        let mut s = state.lock().await;
        if s.generation != seen {
            if let Some(t) = &s.token {
                return Ok((t.clone(), s.generation));
            }
        }
        let token = grant.grant(http, s.token.as_ref()).await?;
        s.token = Some(token.clone());
        s.generation += 1;
        grant.renewed(s.generation);
        Ok((token, s.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Grants `n` for the n-th sign-in, slowly, so callers overlap.
    struct Counter(AtomicU64);

    impl Grant for Counter {
        type Token = u64;
        async fn grant(&self, _: &reqwest::Client, _: Option<&u64>) -> Result<u64, ApiError> {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
        }
        fn renewed(&self, _: u64) {}
    }

    #[tokio::test]
    async fn concurrent_expiries_renew_once() {
        let grant = Arc::new(Counter(AtomicU64::new(0)));
        let session = Arc::new(Session::<u64>::renewable());
        let http = reqwest::Client::new();
        let (first, generation) = session.current(&*grant, &http).await.unwrap();
        assert_eq!((first, generation), (1, 1));
        // Ten callers come back with "expired" for generation 1 at once.
        let renewals: Vec<_> = (0..10)
            .map(|_| {
                let (session, grant, http) = (session.clone(), grant.clone(), http.clone());
                tokio::spawn(async move { session.renew(1, &*grant, &http).await.unwrap() })
            })
            .collect();
        for r in renewals {
            assert_eq!(r.await.unwrap(), (2, 2));
        }
        assert_eq!(grant.0.load(Ordering::SeqCst), 2);
        assert!(Session::Fixed(7u64).current(&*grant, &http).await.unwrap() == (7, 0));
    }
}
