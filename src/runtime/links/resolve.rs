//! From a ticket to the Salesforce records it is linked to: for each
//! `link` of the ticket's Zendesk connection, the ticket's value (its id,
//! a field, its organization's or requester's external_id, email or
//! field: [`TicketSide`]) looked up on the Salesforce side
//! (`SELECT <what the program reads> FROM Account WHERE Id = '...'`).
//!
//! Cost: the Zendesk side comes from the one ticket read the caller makes
//! anyway (with the organization and requester sideloaded when a link
//! needs more than their ids). The Salesforce side is cached per lookup
//! for the connectors' 15 minutes, "no match" included (a negative
//! entry), and what is not cached is asked in one request: one query, or
//! one Composite request of queries for several objects (up to 5, which
//! Salesforce counts as one call of the daily limit). Concurrent
//! resolutions missing the same lookups share one request (moka's
//! single-flight `try_get_with`).
//!
//! A lookup's key holds the fields read: a reload whose program reads
//! more fields of the object misses the entries the old one made, so no
//! decision runs on a record without a field it reads.

use super::ticket_side::{zendesk_side, KeyValue, TicketSide};
use crate::connectors::cache::DEFAULT_TTL;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::{Record, SalesforceClient};
use crate::connectors::salesforce_id;
use crate::ir::{Link, Pick, Program};
use crate::runtime::metrics::Metrics;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One Salesforce lookup, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupKey {
    pub connection: String,
    pub object: String,
    pub field: String,
    pub value: String,
    /// The fields read, sorted (`Id` among them).
    pub fields: Vec<String>,
    pub newest: bool,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(Arc<Record>),
    /// No record matched: cached like a record (a negative entry).
    NoMatch,
    /// More than one matched a link that allows one (not cached: the data
    /// is wrong and someone will fix it).
    Many,
    /// The query failed (not cached).
    Failed(String),
}

/// Through which link a record was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Via {
    pub object: String,
    /// `desk.organization <-> crm.Account`.
    pub link: String,
    /// `organization.external_id == Account.Id`.
    pub on: String,
    /// The value both sides hold.
    pub value: String,
    /// `file:line` of the link.
    pub source: Option<String>,
    /// Whether it came from the cache (no Salesforce request).
    pub cached: bool,
}

/// A link that found nothing for this ticket, and why: not an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    pub object: String,
    pub link: String,
    pub on: String,
    pub reason: String,
    pub source: Option<String>,
}

/// A link that could not be resolved: a failed read, or several records
/// where the link allows one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkError {
    pub object: String,
    pub link: String,
    pub message: String,
    pub source: Option<String>,
    /// A failed read (Salesforce down, a refused query): asking again may
    /// succeed, so an event needing the record waits for it. Several
    /// matches or a missing client will not heal by retrying.
    #[serde(skip)]
    pub transient: bool,
}

/// What a ticket's links came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Linked {
    /// `{Object: fields with Id}`, as events carry them in `records`.
    pub records: BTreeMap<String, Record>,
    pub via: Vec<Via>,
    pub misses: Vec<Miss>,
    pub errors: Vec<LinkError>,
    /// Salesforce requests this resolution made (0 or 1).
    #[serde(skip)]
    pub salesforce_reads: u32,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("lookups", &self.lookups.entry_count())
            .finish_non_exhaustive()
    }
}

/// Built once per runtime and shared (`Arc`): its caches outlive reloads,
/// whose new field sets simply miss.
pub struct Resolver {
    lookups: moka::future::Cache<LookupKey, Lookup>,
    /// Lookups being loaded, by the set of keys one request asks for: the
    /// single flight of concurrent resolutions of one ticket.
    loading: moka::future::Cache<Vec<LookupKey>, Arc<Loaded>>,
    /// How many times each (connection, object) was forgotten: a load
    /// that began before a forget of one of its objects is neither cached
    /// nor shared (it may hold the record as it was before the change).
    forgotten: Mutex<HashMap<(String, String), u64>>,
    /// `l3map_link_lookups_total`; none in unit tests.
    metrics: Option<Metrics>,
}

/// One request's answers, and the forget count of its objects when it
/// was sent.
struct Loaded {
    lookups: Vec<Lookup>,
    generation: u64,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(DEFAULT_TTL)
    }
}

/// Entries kept, whatever their TTL: lookups are small records.
const MAX_LOOKUPS: u64 = 100_000;

impl Resolver {
    pub fn new(ttl: Duration) -> Resolver {
        Resolver {
            lookups: moka::future::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(MAX_LOOKUPS)
                // `forget`: without it, invalidate_entries_if refuses.
                .support_invalidation_closures()
                .build(),
            // Only long enough to share a load between concurrent callers;
            // what was loaded lives in `lookups`.
            loading: moka::future::Cache::builder()
                .time_to_live(Duration::from_secs(2))
                .max_capacity(1_000)
                .support_invalidation_closures()
                .build(),
            forgotten: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Counts every lookup in `metrics` (`l3map_link_lookups_total`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Resolver {
        self.metrics = Some(metrics);
        self
    }

    /// The forget count of the objects `keys` look up: it grows whenever
    /// one of them is forgotten.
    fn generation(&self, keys: &[LookupKey]) -> u64 {
        let forgotten = self.forgotten.lock().unwrap_or_else(|e| e.into_inner());
        let objects: BTreeSet<(&str, &str)> = keys
            .iter()
            .map(|k| (k.connection.as_str(), k.object.as_str()))
            .collect();
        objects
            .into_iter()
            .filter_map(|(c, o)| forgotten.get(&(c.to_string(), o.to_string())))
            .sum()
    }

    /// The links of `desk` (the ticket's Zendesk connection).
    pub fn links<'p>(program: &'p Program, desk: &'p str) -> impl Iterator<Item = &'p Link> {
        program.links.iter().filter(move |l| l.desk == desk)
    }

    /// Whether the ticket read must sideload its organization and
    /// requester for `desk`'s links.
    pub fn needs_parties(program: &Program, desk: &str) -> bool {
        Resolver::links(program, desk).any(TicketSide::needs_party)
    }

    /// The ticket's linked records. `sf` is the Salesforce connection the
    /// runtime has; links to another one are errors in the answer.
    pub async fn for_ticket(
        &self,
        program: &Program,
        desk: &str,
        side: &TicketSide,
        sf: Option<(&str, &SalesforceClient)>,
    ) -> Linked {
        let mut out = Linked::default();
        let mut planned: Vec<(&Link, LookupKey)> = Vec::new();
        for link in Resolver::links(program, desk) {
            let source = source_of(program, link);
            let on = format!("{} == {}.{}", zendesk_side(link), link.object, link.field);
            let value = match side.key_value(link) {
                KeyValue::Value(v) => v,
                KeyValue::Absent(reason) => {
                    out.misses.push(Miss {
                        object: link.object.clone(),
                        link: link.describe(),
                        on,
                        reason,
                        source,
                    });
                    continue;
                }
            };
            if sf.map(|(name, _)| name) != Some(link.crm.as_str()) {
                out.errors.push(LinkError {
                    object: link.object.clone(),
                    link: link.describe(),
                    message: format!("no client for the Salesforce connection {}", link.crm),
                    source,
                    transient: false,
                });
                continue;
            }
            planned.push((link, key_of(program, link, value)));
        }
        let mut found: Vec<Option<(Lookup, bool)>> = Vec::with_capacity(planned.len());
        let mut missing = BTreeSet::new();
        for (_, key) in &planned {
            let hit = self.lookups.get(key).await;
            if hit.is_none() {
                missing.insert(key.clone());
            }
            found.push(hit.map(|l| (l, true)));
        }
        if let (false, Some((_, client))) = (missing.is_empty(), sf) {
            let keys: Vec<LookupKey> = missing.into_iter().collect();
            let (loaded, ran) = self.load(client, keys.clone()).await;
            out.salesforce_reads = u32::from(ran);
            for (slot, (_, key)) in found.iter_mut().zip(&planned) {
                if slot.is_none() {
                    let at = keys.iter().position(|k| k == key);
                    *slot = at.and_then(|i| loaded.get(i)).map(|l| (l.clone(), !ran));
                }
            }
        }
        for ((link, key), got) in planned.into_iter().zip(found) {
            let source = source_of(program, link);
            let on = format!("{} == {}.{}", zendesk_side(link), link.object, link.field);
            let (lookup, cached) = got.unwrap_or((Lookup::Failed("not read".into()), false));
            if let Some(m) = &self.metrics {
                m.link_lookup(&link.describe(), result_of(&lookup, cached));
            }
            match lookup {
                Lookup::Found(rec) => {
                    if out.records.contains_key(&link.object) {
                        // An earlier link found this object: it wins, in
                        // declaration order.
                        continue;
                    }
                    let mut rec = (*rec).clone();
                    rec.remove("attributes");
                    out.records.insert(link.object.clone(), rec);
                    out.via.push(Via {
                        object: link.object.clone(),
                        link: link.describe(),
                        on,
                        value: key.value,
                        source,
                        cached,
                    });
                }
                Lookup::NoMatch => out.misses.push(Miss {
                    object: link.object.clone(),
                    link: link.describe(),
                    reason: format!("no {} has {} = {:?}", link.object, link.field, key.value),
                    on,
                    source,
                }),
                Lookup::Many => out.errors.push(LinkError {
                    object: link.object.clone(),
                    link: link.describe(),
                    message: many_message(link, &key.value),
                    source,
                    transient: false,
                }),
                Lookup::Failed(message) => out.errors.push(LinkError {
                    object: link.object.clone(),
                    link: link.describe(),
                    message,
                    source,
                    transient: true,
                }),
            }
        }
        for e in &out.errors {
            tracing::warn!(link = %e.link, source = ?e.source, error = %e.message, "a linked record could not be resolved");
        }
        out
    }

    /// Loads `keys` in one request, shared with concurrent callers asking
    /// for the same set; whether this call's request ran.
    ///
    /// A change forgotten while the request was out makes its answer
    /// suspect (Salesforce may have answered before the change): it is
    /// handed to this caller, whose resolution began before the change was
    /// known, but not cached; and a caller that finds it shared after the
    /// forget asks again.
    async fn load(&self, sf: &SalesforceClient, keys: Vec<LookupKey>) -> (Vec<Lookup>, bool) {
        for _ in 0..2 {
            let to_ask = keys.clone();
            let generation = self.generation(&keys);
            let entry = self
                .loading
                .entry(keys.clone())
                .or_try_insert_with(async move {
                    ask(sf, &to_ask).await.map(|lookups| {
                        Arc::new(Loaded {
                            lookups,
                            generation,
                        })
                    })
                })
                .await;
            match entry {
                Ok(e) => {
                    let ran = e.is_fresh();
                    let loaded = e.into_value();
                    let current = loaded.generation == self.generation(&keys);
                    if !current {
                        self.loading.invalidate(&keys).await;
                    }
                    if ran && current {
                        for (k, l) in keys.iter().zip(loaded.lookups.iter()) {
                            if matches!(l, Lookup::Found(_) | Lookup::NoMatch) {
                                self.lookups.insert(k.clone(), l.clone()).await;
                            }
                        }
                    }
                    if ran || current {
                        return (loaded.lookups.clone(), ran);
                    }
                }
                Err(e) => {
                    let failed = Lookup::Failed(format!("Salesforce: {e}"));
                    return (vec![failed; keys.len()], true);
                }
            }
        }
        // Forgotten again while asking again: this answer is as fresh as
        // any, and is not cached.
        match ask(sf, &keys).await {
            Ok(lookups) => (lookups, true),
            Err(e) => {
                let failed = Lookup::Failed(format!("Salesforce: {e}"));
                (vec![failed; keys.len()], true)
            }
        }
    }

    /// Drops what is cached for `object` records with `field = value`
    /// (after l3map wrote one, or a change said it changed).
    pub async fn forget(&self, connection: &str, object: &str) {
        let (c, o) = (connection.to_string(), object.to_string());
        *self
            .forgotten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((c.clone(), o.clone()))
            .or_default() += 1;
        let (c2, o2) = (c.clone(), o.clone());
        let forgot = self
            .lookups
            .invalidate_entries_if(move |k, _| k.connection == c && k.object == o);
        // A load of the last seconds is shared from `loading`: it would
        // hand the record as it was to the next caller.
        let loads = self.loading.invalidate_entries_if(move |keys, _| {
            keys.iter().any(|k| k.connection == c2 && k.object == o2)
        });
        if let Err(e) = forgot.and(loads) {
            tracing::error!(error = %e, "linked records could not be forgotten");
        }
    }
}

/// The `result` label of a lookup (`l3map_link_lookups_total`).
fn result_of(lookup: &Lookup, cached: bool) -> &'static str {
    match (lookup, cached) {
        (Lookup::Found(_), true) => "hit",
        (Lookup::NoMatch, true) => "negative_hit",
        (Lookup::Found(_) | Lookup::NoMatch, false) => "miss",
        (Lookup::Many, _) => "many",
        (Lookup::Failed(_), _) => "error",
    }
}

/// What a link that allows one record says when `value` matches several:
/// the agent turn's error and the fan-out's refusal alike.
pub fn many_message(link: &Link, value: &str) -> String {
    format!(
        "more than one {} has {} = {value:?}, and the link allows one: make the field unique in Salesforce, or say `pick newest`",
        link.object, link.field
    )
}

/// The lookups as one query or one Composite request (per 5 queries).
async fn ask(sf: &SalesforceClient, keys: &[LookupKey]) -> Result<Vec<Lookup>, ApiError> {
    let mut out = vec![Lookup::NoMatch; keys.len()];
    let mut asked = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match soql_of(k) {
            Ok(Some(q)) => asked.push((i, q)),
            // An Id that is no Salesforce Id matches nothing.
            Ok(None) => {}
            Err(e) => out[i] = Lookup::Failed(e),
        }
    }
    let answers: Vec<Result<Vec<Record>, String>> = match asked.as_slice() {
        [] => vec![],
        [(_, q)] => vec![Ok(sf.query(q).await?.records)],
        many => {
            let qs: Vec<String> = many.iter().map(|(_, q)| q.clone()).collect();
            sf.query_composite(&qs).await?
        }
    };
    for ((i, _), got) in asked.iter().zip(answers) {
        out[*i] = match got {
            Err(e) => Lookup::Failed(e),
            Ok(mut recs) if keys[*i].newest || recs.len() == 1 => match recs.len() {
                0 => Lookup::NoMatch,
                _ => Lookup::Found(Arc::new(recs.swap_remove(0))),
            },
            Ok(recs) if recs.is_empty() => Lookup::NoMatch,
            Ok(_) => Lookup::Many,
        };
    }
    Ok(out)
}

/// `SELECT Id, SLA_Tier__c FROM Account WHERE Id = '001...' LIMIT 2`:
/// two, so a second match of a unique link shows; `pick newest` orders by
/// `SystemModstamp` and takes one. `None` when the value cannot match
/// (not an Id where an Id is compared).
pub(super) fn soql_of(k: &LookupKey) -> Result<Option<String>, String> {
    let names = std::iter::once(&k.object)
        .chain(std::iter::once(&k.field))
        .chain(&k.fields);
    if let Some(bad) = names.into_iter().find(|n| !is_name(n)) {
        return Err(format!("{bad:?} is not a Salesforce name"));
    }
    let value = if k.field == "Id" {
        match salesforce_id::canonical(&k.value) {
            Some(id) => id,
            None => return Ok(None),
        }
    } else {
        k.value.clone()
    };
    let tail = if k.newest {
        "ORDER BY SystemModstamp DESC LIMIT 1"
    } else {
        "LIMIT 2"
    };
    Ok(Some(format!(
        "SELECT {} FROM {} WHERE {} = '{}' {tail}",
        k.fields.join(", "),
        k.object,
        k.field,
        escape(&value)
    )))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// A SOQL string literal's escapes: backslash and quote.
/// <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm>
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\'' => s.push_str("\\'"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s
}

/// The lookup a link makes for `value`, reading what the program reads on
/// the object, its Id, the link's field, a Case's Status (which `status
/// crm ...` compares) and an Account's Name (what an agent calls the
/// customer; every Account has one, so the query cannot fail on it).
fn key_of(program: &Program, link: &Link, value: String) -> LookupKey {
    let mut fields: BTreeSet<String> = program
        .salesforce_fields(&link.crm, &link.object)
        .into_iter()
        .map(str::to_string)
        .collect();
    fields.insert("Id".into());
    fields.insert(link.field.clone());
    match link.object.as_str() {
        "Case" => {
            fields.insert("Status".into());
        }
        "Account" => {
            fields.insert("Name".into());
        }
        _ => {}
    }
    LookupKey {
        connection: link.crm.clone(),
        object: link.object.clone(),
        field: link.field.clone(),
        value,
        fields: fields.into_iter().collect(),
        newest: link.pick == Pick::Newest,
    }
}

/// `file:line` of the link.
fn source_of(program: &Program, link: &Link) -> Option<String> {
    let file = program.files.get(usize::try_from(link.loc.file).ok()?)?;
    Some(format!("{file}:{}", link.loc.line))
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
