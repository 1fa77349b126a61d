//! The credential a request carries, and its renewal. A configured token
//! is fixed; a session (an OAuth client, a Salesforce sign-in) starts empty,
//! signs in on first use and is renewed when the API says it expired, or
//! shortly before the lifetime the token endpoint gave it runs out.
//!
//! `generation` counts renewals. A caller that got "expired" renews only if
//! the generation is still the one its token came from: the lock is held
//! across the token request, so concurrent 401s wait for one renewal and
//! then all use the token it got.
//!
//! A session may keep its grant in a [`Keeper`] (the runtime's sealed
//! store): loaded at first use, the refresh intent written before the
//! token request, and the answer committed (compare-and-swap on the
//! store's generation) **before** the new access token is handed to any
//! caller. A vendor that rotates refresh tokens on every use (Zendesk,
//! Salesforce with rotation) thus never has us hold a token the store
//! does not, except in the window between the vendor applying a refresh
//! and our commit of its answer (docs/RUNTIME.md, "Credentials").

use super::super::error::ApiError;
use super::super::secret::Secret;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const LOG_TARGET: &str = "l3map::credentials";

pub use super::keep::{Begin, Keeper, KeeperHandle, Kept, Standby};

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

    /// The token as kept in a store, and its lifetime; `None`: this
    /// vendor's tokens are not kept (and are renewed on a 401 only).
    fn keep(&self, _token: &Self::Token) -> Option<Kept> {
        None
    }

    /// A token from a kept grant.
    fn adopt(&self, _kept: Kept) -> Result<Self::Token, ApiError> {
        Err(ApiError::Protocol {
            system: super::super::error::System::Zendesk,
            message: "this sign-in keeps no grant".into(),
        })
    }

    /// A refresh token of a second, independent lineage, minted with
    /// `token` (Zendesk: the OAuth Tokens API); `None`: this vendor has
    /// none to give.
    fn standby(
        &self,
        _http: &reqwest::Client,
        _token: &Self::Token,
    ) -> impl Future<Output = Result<Option<Secret>, ApiError>> + Send {
        async { Ok(None) }
    }
}

/// A fixed credential, or a session that renews itself.
pub enum Session<T> {
    Fixed(T),
    Renewable(Box<tokio::sync::Mutex<State<T>>>),
}

pub struct State<T> {
    token: Option<T>,
    generation: u64,
    /// When the current token should be renewed before use (its lifetime
    /// less the margin), on the monotonic clock.
    renew_at: Option<Instant>,
    keeper: Option<Arc<dyn Keeper>>,
    /// The most a token is renewed ahead of its expiry.
    margin: Duration,
    /// The store's generation of the current grant; `None` before a load,
    /// or when the store has none.
    stored: Option<i64>,
    loaded: bool,
    /// The store's generation the vendor refused (`invalid_grant`): not
    /// sent again; only a new generation (a login) is tried.
    refused: Option<i64>,
    /// The stored grant's standby refresh token.
    standby: Option<Secret>,
    /// The stored generation whose refresh may have been applied by the
    /// vendor without its answer reaching the store (an intent found at
    /// load, or a request that failed in transit).
    unanswered: Option<i64>,
    /// No standby is minted before this (the vendor had none to give, or
    /// minting failed).
    mint_after: Option<Instant>,
    /// The stored generation and stamp of this session's refresh intent.
    intent: Option<(i64, i64)>,
    /// How long another process's refresh intent holds this one off: the
    /// longest a token request may take, and a little more.
    lease: Duration,
}

/// A refresh intent's lease beyond the token request's own timeout: the
/// commit that follows the answer.
pub const REFRESH_LEASE_SLACK: Duration = Duration::from_secs(5);

/// How long a vendor that gave no standby is left alone before asking again.
const MINT_AGAIN: Duration = Duration::from_secs(600);

/// `min(margin, ttl / 4)` before `ttl` runs out, from `now`. A lifetime
/// of 0 (an `expires_in` rounded down) says nothing: such a token is
/// renewed on its 401 only, not before every use.
fn renew_at(now: Instant, ttl: Option<Duration>, margin: Duration) -> Option<Instant> {
    ttl.filter(|t| !t.is_zero())
        .map(|ttl| now + ttl.saturating_sub(margin.min(ttl / 4)))
}

async fn blocking<R: Send + 'static>(
    keeper: &Arc<dyn Keeper>,
    f: impl FnOnce(&dyn Keeper) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    let k = keeper.clone();
    tokio::task::spawn_blocking(move || f(&*k))
        .await
        .map_err(|_| ApiError::Protocol {
            system: super::super::error::System::Zendesk,
            message: "the credential store call was cancelled".into(),
        })?
}

impl<T: Clone + Send + Sync + 'static> Session<T> {
    /// A session that signs in on first use.
    pub fn renewable() -> Session<T> {
        Session::renewable_kept(None, Duration::from_secs(120), Duration::from_secs(35))
    }

    /// A session whose grant lives in `keeper` (when given), renewed at
    /// most `margin` before its access token expires; another process's
    /// refresh is awaited for at most `lease` (more than a token request
    /// may take) before it is taken for dead.
    pub fn renewable_kept(
        keeper: Option<Arc<dyn Keeper>>,
        margin: Duration,
        lease: Duration,
    ) -> Session<T> {
        Session::Renewable(Box::new(tokio::sync::Mutex::new(State {
            token: None,
            generation: 0,
            renew_at: None,
            keeper,
            margin,
            stored: None,
            loaded: false,
            refused: None,
            standby: None,
            unanswered: None,
            mint_after: None,
            intent: None,
            lease,
        })))
    }

    pub fn is_renewable(&self) -> bool {
        matches!(self, Session::Renewable(_))
    }

    /// The token to send and the generation it belongs to (a fixed token
    /// is generation 0 forever); a session without one, or whose token is
    /// about to expire, renews first.
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
                if s.renew_at.is_none_or(|at| Instant::now() < at) {
                    return Ok((t.clone(), s.generation));
                }
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
        let fresh = |s: &State<T>| s.renew_at.is_none_or(|at| Instant::now() < at);
        if s.generation != seen && fresh(&s) {
            if let Some(t) = &s.token {
                return Ok((t.clone(), s.generation));
            }
        }
        if let Some(keeper) = s.keeper.clone() {
            // First use: the store's grant, if it has one.
            if !s.loaded {
                self.adopt_stored(&mut s, &keeper, grant).await?;
                s.loaded = true;
                if s.token.is_some() && fresh(&s) && seen == 0 {
                    return Ok((s.token.clone().expect("just set"), s.generation));
                }
            }
            if s.refused.is_some() && s.refused == s.stored {
                // Refused before: only a grant stored since (a login, or
                // another process) is worth a request.
                self.adopt_stored(&mut s, &keeper, grant).await?;
                if s.refused == s.stored {
                    return Err(ApiError::GrantRevoked {
                        system: super::super::error::System::Zendesk,
                        message: "invalid_grant: waiting for `l3map auth login`".into(),
                    });
                }
                s.refused = None;
                if let Some(t) = &s.token {
                    if fresh(&s) {
                        return Ok((t.clone(), s.generation));
                    }
                }
            }
            if let Some(g) = s.stored {
                // Another process's refresh of this generation that has
                // not committed (it died, or is slow): if ours is refused,
                // that is the lost-answer window, not a revocation. A
                // standby it minted is picked up too.
                let now = blocking(&keeper, |k| k.standby()).await?;
                if now.unanswered {
                    s.unanswered = s.stored;
                }
                if now.refresh.is_some() {
                    s.standby = now.refresh;
                }
                let mut g = g;
                let mut mine = s.intent.filter(|(at, _)| *at == g).map(|(_, stamp)| stamp);
                let lease = s.lease;
                let waiting = Instant::now();
                // The access token the vendor just called expired: a grant
                // stored since that still carries it (another process only
                // added a standby to it) is no answer.
                let spent = s
                    .token
                    .as_ref()
                    .and_then(|t| grant.keep(t))
                    .map(|k| k.access);
                loop {
                    match blocking(&keeper, move |k| k.begin(g, mine, lease)).await? {
                        Begin::Go(stamp) => {
                            s.intent = Some((g, stamp));
                            break;
                        }
                        Begin::MovedOn => {
                            // Another process refreshed: theirs, without a
                            // request.
                            self.adopt_stored(&mut s, &keeper, grant).await?;
                            let access = s.token.as_ref().and_then(|t| grant.keep(t));
                            match (&s.token, s.stored) {
                                (Some(_), Some(now))
                                    if spent.is_some()
                                        && access.map(|k| k.access) == spent
                                        && now != g =>
                                {
                                    g = now;
                                    mine = None;
                                    continue;
                                }
                                (Some(t), _) => return Ok((t.clone(), s.generation)),
                                (None, _) => break,
                            }
                        }
                        // Another process is sending this refresh token:
                        // sent twice, one of the two is refused and the
                        // other answer is the only copy of the next one.
                        // Its commit is awaited; a writer that died is
                        // taken over when its lease runs out (its clock
                        // ahead of ours: once ours has run out twice).
                        Begin::Held if waiting.elapsed() < lease * 2 => {
                            s.unanswered = Some(g);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Begin::Held => break,
                    }
                }
            }
        }
        let answer = grant.grant(http, s.token.as_ref()).await;
        let token = match answer {
            Ok(t) => t,
            Err(e @ ApiError::GrantRevoked { .. }) => {
                if let Some(keeper) = s.keeper.clone() {
                    // The answer to an earlier refresh of this generation
                    // never reached the store: the vendor deleted the
                    // stored refresh token when it applied it.
                    let lost = s.unanswered.is_some() && s.unanswered == s.stored;
                    // Refused because another process used the refresh
                    // token first? Its commit follows its answer closely.
                    for _ in 0..3 {
                        let before = s.stored;
                        self.adopt_stored(&mut s, &keeper, grant).await?;
                        if s.stored != before {
                            if let Some(t) = &s.token {
                                return Ok((t.clone(), s.generation));
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    if lost {
                        if let Some(t) = self.recover(&mut s, &keeper, grant, http).await? {
                            return Ok(t);
                        }
                    }
                    keeper.counted("invalid_grant");
                    if s.stored.is_none() {
                        // The configured seed was refused: an empty grant
                        // is stored to be marked, so the refusal is as
                        // loud as any (/healthz, the gauge, `auth status`)
                        // and survives a restart; a login replaces it.
                        let empty = Kept {
                            access: Secret::new(String::new()),
                            refresh: None,
                            expires_in: Some(Duration::ZERO),
                            refresh_expires_in: None,
                            instance_url: None,
                        };
                        if blocking(&keeper, move |k| k.commit(None, &empty)).await? {
                            s.stored = Some(1);
                        }
                    }
                    s.refused = s.stored;
                    if let Some(g) = s.stored {
                        let err = e.clone();
                        let _ = blocking(&keeper, move |k| {
                            k.refused(g, &err);
                            Ok(())
                        })
                        .await;
                    }
                }
                return Err(e);
            }
            Err(e) => {
                if let Some(keeper) = s.keeper.clone() {
                    // It may have been applied all the same.
                    if s.stored.is_some() {
                        s.unanswered = s.stored;
                    }
                    keeper.counted("transient");
                }
                return Err(e);
            }
        };
        let kept = grant.keep(&token);
        if let (Some(keeper), Some(kept)) = (s.keeper.clone(), kept.clone()) {
            // Durable before anyone uses the new access token, with the
            // standby it came with.
            let expected = s.stored;
            let standby = s.standby.clone();
            let won = blocking(&keeper, move |k| {
                k.commit_standby(expected, &kept, standby.as_ref())
            })
            .await?;
            if !won {
                // Another writer stored a newer grant in between: the
                // store wins.
                self.adopt_stored(&mut s, &keeper, grant).await?;
                if let Some(t) = &s.token {
                    return Ok((t.clone(), s.generation));
                }
            }
            s.stored = Some(expected.unwrap_or(0) + 1);
            s.unanswered = None;
            keeper.counted("ok");
        }
        s.renew_at = renew_at(Instant::now(), kept.and_then(|k| k.expires_in), s.margin);
        s.token = Some(token.clone());
        s.generation += 1;
        grant.renewed(s.generation);
        if let Some(keeper) = s.keeper.clone() {
            self.mint(&mut s, &keeper, grant, http).await;
        }
        Ok((token, s.generation))
    }

    /// The lost-answer window closed: the stored refresh token was refused
    /// after a refresh of it went unanswered, so the standby lineage's
    /// refresh token is redeemed instead and its answer becomes the
    /// primary grant (committed before use, as always), then a new standby
    /// is minted. `None`: no standby, or it was refused too.
    async fn recover<G: Grant<Token = T>>(
        &self,
        s: &mut State<T>,
        keeper: &Arc<dyn Keeper>,
        grant: &G,
        http: &reqwest::Client,
    ) -> Result<Option<(T, u64)>, ApiError> {
        let (Some(standby), Some(current)) = (s.standby.clone(), s.token.as_ref()) else {
            return Ok(None);
        };
        let Some(mut via) = grant.keep(current) else {
            return Ok(None);
        };
        via.refresh = Some(standby);
        let via = grant.adopt(via)?;
        let token = match grant.grant(http, Some(&via)).await {
            Ok(t) => t,
            Err(e @ ApiError::GrantRevoked { .. }) => {
                tracing::warn!(target: LOG_TARGET, connection = keeper.connection(), error = %e, "the standby grant was refused too");
                s.standby = None;
                return Ok(None);
            }
            // No answer: the standby is kept and tried again with the next
            // request (not a reason for a login).
            Err(e) => {
                keeper.counted("transient");
                return Err(e);
            }
        };
        let Some(kept) = grant.keep(&token) else {
            return Ok(None);
        };
        let expected = s.stored;
        let ttl = kept.expires_in;
        // The standby is spent: stored without one.
        let won = blocking(keeper, move |k| k.commit_standby(expected, &kept, None)).await?;
        if !won {
            self.adopt_stored(s, keeper, grant).await?;
            return Ok(s.token.clone().map(|t| (t, s.generation)));
        }
        s.stored = Some(expected.unwrap_or(0) + 1);
        s.standby = None;
        s.unanswered = None;
        s.refused = None;
        s.renew_at = renew_at(Instant::now(), ttl, s.margin);
        s.token = Some(token.clone());
        s.generation += 1;
        keeper.counted("recovered");
        tracing::warn!(target: LOG_TARGET, connection = keeper.connection(), "a refresh answer was lost (the vendor had already rotated the stored refresh token); recovered with the standby grant");
        grant.renewed(s.generation);
        s.mint_after = None;
        self.mint(s, keeper, grant, http).await;
        Ok(Some((token, s.generation)))
    }

    /// Mints and stores a standby when the grant has none (after the first
    /// grant is stored, and after the standby was spent). Best effort: a
    /// vendor that gives none, or refuses, is asked again later.
    async fn mint<G: Grant<Token = T>>(
        &self,
        s: &mut State<T>,
        keeper: &Arc<dyn Keeper>,
        grant: &G,
        http: &reqwest::Client,
    ) {
        if s.standby.is_some() || s.mint_after.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let Some(token) = s.token.clone() else {
            return;
        };
        let minted = match grant.standby(http, &token).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                s.mint_after = Some(Instant::now() + MINT_AGAIN);
                return;
            }
            Err(e) => {
                tracing::warn!(target: LOG_TARGET, connection = keeper.connection(), error = %e, "no standby grant could be minted; a refresh answer lost from now on needs a login (docs/RUNTIME.md, \"The standby\")");
                s.mint_after = Some(Instant::now() + MINT_AGAIN);
                return;
            }
        };
        let Some(kept) = grant.keep(&token) else {
            return;
        };
        let expected = s.stored;
        let r = minted.clone();
        // Another writer moved on (its grant wins; this lineage is left
        // unused), or the store failed: tried after the next refresh.
        if let Ok(true) =
            blocking(keeper, move |k| k.commit_standby(expected, &kept, Some(&r))).await
        {
            s.stored = Some(expected.unwrap_or(0) + 1);
            s.standby = Some(minted);
        }
    }

    /// Replaces the session's token by the store's (if the store has one).
    async fn adopt_stored<G: Grant<Token = T>>(
        &self,
        s: &mut State<T>,
        keeper: &Arc<dyn Keeper>,
        grant: &G,
    ) -> Result<(), ApiError> {
        let Some((g, kept)) = blocking(keeper, |k| k.load()).await? else {
            return Ok(());
        };
        if s.stored == Some(g) && s.token.is_some() {
            return Ok(());
        }
        let ttl = kept.expires_in;
        let extra = blocking(keeper, |k| k.standby()).await?;
        s.token = Some(grant.adopt(kept)?);
        s.stored = Some(g);
        s.standby = extra.refresh;
        s.unanswered = extra.unanswered.then_some(g);
        s.renew_at = match ttl {
            // Expired by the store's wall clock: renewed before first use.
            Some(d) if d.is_zero() => Some(Instant::now()),
            ttl => renew_at(Instant::now(), ttl, s.margin),
        };
        s.generation += 1;
        Ok(())
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

    /// A store in memory: its generation and the grant's access token.
    struct Memory(std::sync::Mutex<(i64, String)>);

    fn kept(access: &str) -> Kept {
        Kept {
            access: Secret::new(access),
            refresh: Some(Secret::new("r")),
            expires_in: Some(Duration::from_secs(600)),
            refresh_expires_in: None,
            instance_url: None,
        }
    }

    impl Keeper for Memory {
        fn load(&self) -> Result<Option<(i64, Kept)>, ApiError> {
            let m = self.0.lock().unwrap();
            Ok(Some((m.0, kept(&m.1))))
        }
        fn begin(&self, g: i64, _: Option<i64>, _: Duration) -> Result<Begin, ApiError> {
            Ok(if self.0.lock().unwrap().0 == g {
                Begin::Go(1)
            } else {
                Begin::MovedOn
            })
        }
        fn commit(&self, expected: Option<i64>, grant: &Kept) -> Result<bool, ApiError> {
            let mut m = self.0.lock().unwrap();
            if Some(m.0) != expected {
                return Ok(false);
            }
            *m = (m.0 + 1, grant.access.expose().to_string());
            Ok(true)
        }
        fn refused(&self, _: i64, _: &ApiError) {}
    }

    /// Access tokens `a1`, `a2`, ... for each refresh.
    struct Refresher(AtomicU64);

    impl Grant for Refresher {
        type Token = String;
        async fn grant(&self, _: &reqwest::Client, _: Option<&String>) -> Result<String, ApiError> {
            Ok(format!("a{}", self.0.fetch_add(1, Ordering::SeqCst) + 2))
        }
        fn renewed(&self, _: u64) {}
        fn keep(&self, token: &String) -> Option<Kept> {
            Some(kept(token))
        }
        fn adopt(&self, kept: Kept) -> Result<String, ApiError> {
            Ok(kept.access.expose().to_string())
        }
    }

    /// Another process stored the grant again with the same access token
    /// (it added a standby) while this one's was being called expired:
    /// adopting it would hand back the token the vendor just refused, so
    /// the session refreshes it instead, once.
    #[tokio::test]
    async fn a_grant_stored_again_with_the_expired_access_token_is_refreshed() {
        let store = Arc::new(Memory(std::sync::Mutex::new((1, "a1".into()))));
        let session = Session::<String>::renewable_kept(
            Some(store.clone()),
            Duration::from_secs(60),
            Duration::from_secs(10),
        );
        let grant = Refresher(AtomicU64::new(0));
        let http = reqwest::Client::new();
        let (token, generation) = session.current(&grant, &http).await.unwrap();
        assert_eq!(token, "a1");
        *store.0.lock().unwrap() = (2, "a1".into());
        let (token, _) = session.renew(generation, &grant, &http).await.unwrap();
        assert_eq!(token, "a2");
        assert_eq!(grant.0.load(Ordering::SeqCst), 1);
        assert_eq!(*store.0.lock().unwrap(), (3, "a2".to_string()));
    }
}
