//! Tickets as the Zendesk API last showed them, by update: `(ticket id,
//! updated_at)`. A webhook reads the ticket it announces (event payloads
//! carry no custom fields), and one ticket update announces itself with
//! several events (status, comment, each custom field...). With this cache
//! the ticket is read at most once per update, however many of its events
//! arrive and however they interleave (moka's `entry().or_try_insert_with`
//! runs one read and lets the other callers wait for it), and not at all
//! for an update l3map made itself: the answer to its `PUT` is the updated
//! ticket with its new `updated_at`, kept here by the outbox worker.
//!
//! Bounded by bytes (each entry weighs its JSON size), not by count: a
//! ticket may carry megabytes of custom field text.

use crate::connectors::error::ApiError;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// 16 MiB of ticket JSON: some thousands of typical tickets.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Zendesk delivers a webhook within seconds of the update, and retries a
/// failed delivery for longer; an entry older than this is read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// Ticket id and `updated_at` in whole seconds: the Tickets API stamps
/// with one-second resolution, event payloads may add nanoseconds.
type Key = (u64, i64);

/// A ticket as the API answered it: `{"ticket": {...}}`.
pub type Shown = Arc<Json>;

#[derive(Clone)]
pub struct Tickets {
    inner: moka::future::Cache<Key, Shown>,
    /// Tickets l3map is writing (a bulk update, or one `PUT`) whose states are not
    /// known yet: a webhook about one waits for the read-back
    /// ([`Writing`]) rather than reading the ticket itself.
    writing: Arc<Mutex<HashMap<u64, watch::Receiver<()>>>>,
    /// The organization and requester last side-loaded with each ticket
    /// (`{"organizations", "users"}`): the answer to l3map's own `PUT`
    /// carries none, and takes these when the ticket still names the same
    /// ones, so its webhooks need no read for the links either.
    parties: moka::future::Cache<u64, Arc<(Json, Json)>>,
    /// What an answer of l3map's replaced under the same key: one second
    /// can hold a person's update and l3map's answer to it, and the
    /// person's later events describe the former.
    earlier: moka::future::Cache<Key, Shown>,
}

/// How long a webhook about a ticket l3map is writing waits for its
/// read-back or answer: with the links' lookups, under the 10 s Zendesk
/// waits for a webhook's answer. Past it, the webhook reads the ticket.
pub const WRITING_WAIT: Duration = Duration::from_secs(4);

/// Tickets being written in one update (bulk or `PUT`); dropped once their states
/// are kept (or the job failed), which lets waiting webhooks go on.
pub struct Writing {
    tickets: Arc<Mutex<HashMap<u64, watch::Receiver<()>>>>,
    ids: Vec<u64>,
    _done: watch::Sender<()>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut w = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        for id in &self.ids {
            // Only this update's marks: a later one may have marked it
            // again.
            if w.get(id)
                .is_some_and(|rx| rx.same_channel(&self._done.subscribe()))
            {
                w.remove(id);
            }
        }
    }
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets")
            .field("bytes", &self.inner.weighted_size())
            .finish()
    }
}

impl Default for Tickets {
    fn default() -> Tickets {
        Tickets::new(DEFAULT_MAX_BYTES, DEFAULT_TTL)
    }
}

/// `updated_at` as whole seconds since 1970, if it is a timestamp.
pub fn stamp(updated_at: &str) -> Option<i64> {
    updated_at
        .trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// The id and stamp of an API answer `{"ticket": {"id", "updated_at"}}`.
fn key_of(shown: &Json) -> Option<Key> {
    let t = shown.get("ticket")?;
    Some((
        t.get("id")?.as_u64()?,
        stamp(t.get("updated_at")?.as_str()?)?,
    ))
}

fn weight(shown: &Json) -> u32 {
    // The serialised size: what the ticket costs, near enough, in memory.
    let bytes = serde_json::to_vec(shown).map_or(usize::MAX, |v| v.len());
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Tickets {
    pub fn new(max_bytes: u64, ttl: Duration) -> Tickets {
        Tickets {
            inner: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_: &Key, v: &Shown| weight(v))
                .time_to_live(ttl)
                .build(),
            earlier: moka::future::Cache::builder()
                .max_capacity(max_bytes / 4)
                .weigher(|_: &Key, v: &Shown| weight(v))
                .time_to_live(ttl)
                .build(),
            writing: Arc::default(),
            parties: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Keeps the side-loads of `shown`, or gives `shown` those kept for
    /// its ticket when it has none and names the same organization and
    /// requester.
    async fn parties_of(&self, shown: &mut Json) {
        let Some((id, _)) = key_of(shown) else {
            return;
        };
        if let (Some(o), Some(u)) = (shown.get("organizations"), shown.get("users")) {
            self.parties
                .insert(id, Arc::new((o.clone(), u.clone())))
                .await;
            return;
        }
        let Some(kept) = self.parties.get(&id).await else {
            return;
        };
        let t = &shown["ticket"];
        let names = |list: &Json, key: &str| {
            let want = t.get(key).and_then(Json::as_u64);
            want.is_none()
                || list
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x.get("id").and_then(Json::as_u64) == want))
        };
        if names(&kept.0, "organization_id") && names(&kept.1, "requester_id") {
            if let Some(o) = shown.as_object_mut() {
                o.insert("organizations".into(), kept.0.clone());
                o.insert("users".into(), kept.1.clone());
            }
        }
    }

    /// Marks `ids` as being written by l3map until the guard drops.
    pub fn writing(&self, ids: &[u64]) -> Writing {
        let (tx, rx) = watch::channel(());
        let mut w = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            w.insert(*id, rx.clone());
        }
        Writing {
            tickets: self.writing.clone(),
            ids: ids.to_vec(),
            _done: tx,
        }
    }

    /// Waits, at most `limit`, while ticket `id` is in an update of
    /// l3map's whose result is not kept yet.
    pub async fn settled(&self, id: u64, limit: Duration) {
        let rx = {
            let w = self.writing.lock().unwrap_or_else(|e| e.into_inner());
            w.get(&id).cloned()
        };
        if let Some(mut rx) = rx {
            // Err once the sender is gone: the update is settled.
            let _ =
                tokio::time::timeout(limit, async { while rx.changed().await.is_ok() {} }).await;
        }
    }

    /// Keeps an API answer (the `PUT` that applied l3map's own actions):
    /// the webhook events of that update then need no read.
    pub async fn remember(&self, mut shown: Json) {
        self.parties_of(&mut shown).await;
        if let Some(key) = key_of(&shown) {
            if let Some(before) = self.inner.get(&key).await {
                if before.get("ticket") != shown.get("ticket") {
                    self.earlier.insert(key, before).await;
                }
            }
            self.inner.insert(key, Arc::new(shown)).await;
        }
    }

    /// What l3map's own answer replaced for the update stamped
    /// `updated_at`, if it replaced anything.
    pub async fn earlier(&self, id: u64, updated_at: &str) -> Option<Shown> {
        self.earlier.get(&(id, stamp(updated_at)?)).await
    }

    /// The ticket as kept for the update stamped `updated_at`, without a
    /// read: the state a decision was made on, while it is still kept.
    pub async fn kept(&self, id: u64, updated_at: &str) -> Option<Shown> {
        let key = (id, stamp(updated_at)?);
        match self.earlier.get(&key).await {
            Some(before) => Some(before),
            None => self.inner.get(&key).await,
        }
    }

    /// Forgets what is kept for one update: it was found stale.
    pub async fn forget(&self, id: u64, updated_at: &str) {
        if let Some(s) = stamp(updated_at) {
            self.inner.invalidate(&(id, s)).await;
        }
    }

    /// Ticket `id` as of the update stamped `updated_at` (or later): kept,
    /// or read by `read` once for every caller asking about that update at
    /// the same time. `true` with it when this call did the read. A failed
    /// read is not kept: the next caller reads again.
    pub async fn get_or_read<F>(
        &self,
        id: u64,
        updated_at: Option<&str>,
        read: F,
    ) -> Result<(Shown, bool), ApiError>
    where
        F: Future<Output = Result<Json, ApiError>>,
    {
        self.settled(id, WRITING_WAIT).await;
        let Some(s) = updated_at.and_then(stamp) else {
            // No update named: nothing to share it with, but what it
            // shows is kept for the events of its own update.
            let shown = Arc::new(read.await?);
            self.parties_of(&mut (*shown).clone()).await;
            if let Some(key) = key_of(&shown) {
                self.inner.insert(key, shown.clone()).await;
            }
            return Ok((shown, true));
        };
        let entry = self
            .inner
            .entry((id, s))
            .or_try_insert_with(async { read.await.map(Arc::new) })
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())?;
        let fresh = entry.is_fresh();
        let shown = entry.into_value();
        if fresh {
            self.parties_of(&mut (*shown).clone()).await;
            // Read later than the update it was asked for, it may show a
            // newer one: the events of that update need no read either.
            if let Some(key) = key_of(&shown).filter(|k| *k != (id, s)) {
                self.inner.insert(key, shown.clone()).await;
            }
        }
        Ok((shown, fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ticket(id: u64, updated_at: &str, text: &str) -> Json {
        serde_json::json!({"ticket": {"id": id, "updated_at": updated_at, "subject": text}})
    }

    #[tokio::test]
    async fn one_read_per_update_however_many_ask() {
        let cache = Tickets::default();
        let reads = Arc::new(AtomicU32::new(0));
        let asks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, reads) = (cache.clone(), reads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_read(7, Some("2026-11-25T10:00:00.123456Z"), async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(ticket(7, "2026-11-25T10:00:00Z", "x"))
                        })
                        .await
                })
            })
            .collect();
        for a in asks {
            a.await.unwrap().unwrap();
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Another update of the ticket is another read.
        let (_, read) = cache
            .get_or_read(7, Some("2026-11-25T10:00:05Z"), async {
                Ok(ticket(7, "2026-11-25T10:00:05Z", "y"))
            })
            .await
            .unwrap();
        assert!(read);
    }

    #[tokio::test]
    async fn an_update_remembered_needs_no_read() {
        let cache = Tickets::default();
        cache
            .remember(ticket(9, "2026-11-25T10:00:00Z", "ours"))
            .await;
        let (shown, read) = cache
            .get_or_read(9, Some("2026-11-25T10:00:00Z"), async {
                panic!("read an update l3map made itself")
            })
            .await
            .unwrap();
        assert!(!read);
        assert_eq!(shown["ticket"]["subject"], "ours");
    }

    #[tokio::test]
    async fn an_answer_in_the_same_second_keeps_what_it_replaced() {
        let cache = Tickets::default();
        let at = "2026-11-25T10:00:00Z";
        let (_, read) = cache
            .get_or_read(9, Some(at), async { Ok(ticket(9, at, "person's")) })
            .await
            .unwrap();
        assert!(read);
        assert!(cache.earlier(9, at).await.is_none());
        cache.remember(ticket(9, at, "ours")).await;
        let (shown, _) = cache
            .get_or_read(9, Some(at), async { panic!("kept") })
            .await
            .unwrap();
        assert_eq!(shown["ticket"]["subject"], "ours");
        let earlier = cache.earlier(9, at).await.expect("the person's state");
        assert_eq!(earlier["ticket"]["subject"], "person's");
        // The same answer again replaces nothing.
        cache.remember(ticket(9, at, "ours")).await;
        assert_eq!(
            cache.earlier(9, at).await.unwrap()["ticket"]["subject"],
            "person's"
        );
    }

    #[tokio::test]
    async fn bounded_by_bytes() {
        let cache = Tickets::new(64 * 1024, DEFAULT_TTL);
        let big = "x".repeat(16 * 1024);
        for id in 0..40 {
            cache
                .remember(ticket(id, "2026-11-25T10:00:00Z", &big))
                .await;
        }
        cache.inner.run_pending_tasks().await;
        assert!(
            cache.inner.weighted_size() <= 64 * 1024,
            "{} bytes kept",
            cache.inner.weighted_size()
        );
    }
}
