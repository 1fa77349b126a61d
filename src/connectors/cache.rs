//! The read-through cache for slow-changing data (account tier, SLA
//! configuration): entries live 15 minutes by default, and concurrent
//! lookups of one key make one upstream call (moka's `try_get_with`
//! coalesces them).

use super::error::ApiError;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// How many bytes `value` takes as JSON, which counts every string it
/// holds once: what a cache weighed by bytes charges for it. A value that
/// cannot be serialised weighs what was written before the failure.
pub fn json_bytes(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = serde_json::to_writer(&mut n, value);
    n.0
}

/// The article's 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct ReadCache<K, V> {
    inner: moka::future::Cache<K, V>,
}

impl<K, V> ReadCache<K, V>
where
    K: Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration, capacity: u64) -> ReadCache<K, V> {
        ReadCache {
            inner: moka::future::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
        }
    }

    /// As [`ReadCache::new`], bounded by what `weigh` says the entries
    /// cost (in bytes) rather than by their number: for values whose size
    /// the caller does not control.
    pub fn by_weight(ttl: Duration, max_weight: u64, weigh: fn(&K, &V) -> u32) -> ReadCache<K, V> {
        ReadCache {
            inner: moka::future::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_weight)
                .weigher(weigh)
                .build(),
        }
    }

    /// The cached value, or `load`'s result, cached. A failed load is not
    /// cached: the next lookup tries again.
    pub async fn get_or_load<F>(&self, key: K, load: F) -> Result<V, ApiError>
    where
        F: Future<Output = Result<V, ApiError>>,
    {
        self.inner
            .try_get_with(key, load)
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    /// As [`ReadCache::get_or_load`], and whether the value was cached:
    /// `false` when this lookup's `load` ran, `true` when it made no call
    /// (the value was kept, or another lookup's concurrent load gave it).
    pub async fn get_or_load_cached<F>(&self, key: K, load: F) -> Result<(V, bool), ApiError>
    where
        F: Future<Output = Result<V, ApiError>>,
    {
        let entry = self
            .inner
            .entry(key)
            .or_try_insert_with(load)
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())?;
        let cached = !entry.is_fresh();
        Ok((entry.into_value(), cached))
    }

    pub async fn invalidate(&self, key: &K) {
        self.inner.invalidate(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn fifty_concurrent_lookups_make_one_call() {
        let cache: ReadCache<String, u32> = ReadCache::new(DEFAULT_TTL, 1000);
        let calls = Arc::new(AtomicU32::new(0));
        // Spawned all at once (collected), so the lookups really overlap.
        let lookups: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("001A".to_string(), async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(7)
                        })
                        .await
                })
            })
            .collect();
        for l in lookups {
            assert_eq!(l.await.unwrap(), Ok(7));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_weighted_cache_keeps_its_weight_not_its_count() {
        let cache: ReadCache<u32, String> =
            ReadCache::by_weight(DEFAULT_TTL, 100, |_, v: &String| v.len() as u32);
        for k in 0..10 {
            let v = cache.get_or_load(k, async { Ok("x".repeat(30)) }).await;
            assert_eq!(v.map(|v| v.len()), Ok(30));
        }
        cache.inner.run_pending_tasks().await;
        assert!(
            cache.inner.weighted_size() <= 100,
            "{}",
            cache.inner.weighted_size()
        );
        assert!(
            cache.inner.entry_count() <= 3,
            "{}",
            cache.inner.entry_count()
        );
    }

    #[tokio::test]
    async fn a_lookup_says_whether_it_was_cached() {
        let cache: ReadCache<&'static str, u32> = ReadCache::new(DEFAULT_TTL, 10);
        assert_eq!(
            cache.get_or_load_cached("k", async { Ok(1) }).await,
            Ok((1, false))
        );
        assert_eq!(
            cache.get_or_load_cached("k", async { Ok(2) }).await,
            Ok((1, true))
        );
        cache.invalidate(&"k").await;
        assert_eq!(
            cache.get_or_load_cached("k", async { Ok(3) }).await,
            Ok((3, false))
        );
    }

    #[tokio::test]
    async fn entries_expire_and_failures_are_not_cached() {
        let cache: ReadCache<&'static str, u32> = ReadCache::new(Duration::from_millis(50), 10);
        let err = cache
            .get_or_load("k", async {
                Err(ApiError::Transient {
                    system: super::super::error::System::Salesforce,
                    status: Some(503),
                    message: "down".into(),
                    sent: true,
                })
            })
            .await;
        assert!(err.is_err());
        assert_eq!(cache.get_or_load("k", async { Ok(1) }).await, Ok(1));
        assert_eq!(cache.get_or_load("k", async { Ok(2) }).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get_or_load("k", async { Ok(3) }).await, Ok(3));
    }
}
