//! The schema's versions: `migrations/V{n}__*.sql`, embedded in the
//! binary and applied by refinery, as the PostgreSQL store's are (its
//! `refinery_schema_history` table records each with a checksum).
//!
//! Why this shape:
//! - Every pending step, its history row and the new `schema_version` go
//!   into the one IMMEDIATE transaction the caller holds, so a failure or
//!   a crash halfway leaves the store as the older l3map wrote it, and two
//!   processes opening an old store at once upgrade it once (the second
//!   waits for the first's lock, then finds nothing pending). refinery's
//!   own rusqlite driver begins a transaction of its own for every step
//!   (and for creating and reading its table), which SQLite refuses
//!   inside another one; [`InTx`] gives refinery the open one instead.
//! - A store written before refinery has `meta.schema_version` and no
//!   history. It is adopted: refinery records V1..V{that version} as
//!   applied with this binary's checksums (its `FakeVersion` target), in
//!   the same transaction, and then applies the rest.
//! - `meta.schema_version` is still written: an l3map from before refinery
//!   reads only that, so it refuses a store a newer one upgraded instead of
//!   running on tables it does not know. A file without it is not an
//!   l3map store, whatever else it holds (another program's refinery
//!   history included).
//!
//! Errors are the reason only; the caller names the file.

use refinery::{Migrate, Migration, Target};
use refinery_core::traits::sync::{Query, Transaction as Execute};
use rusqlite::{Connection, OptionalExtension, Transaction};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod embedded {
    refinery::embed_migrations!("src/runtime/store/sqlite/migrations");
}

/// refinery's table, the name it uses unless told otherwise.
const HISTORY: &str = "refinery_schema_history";

/// The newest version this binary knows.
pub fn latest() -> i64 {
    ours()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

fn ours() -> Vec<Migration> {
    embedded::migrations::runner().get_migrations().clone()
}

/// One step applied: from which version to which, its file's name and
/// its first line (the step in a phrase, for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub from: i64,
    pub to: i64,
    pub name: String,
    pub what: String,
}

/// Where a store is, as found.
enum At {
    /// refinery's history names this version.
    History(i64),
    /// Written before refinery: `meta.schema_version` only.
    Meta(i64),
}

/// refinery's connection for one migration: the statements run in the
/// transaction the store already holds, never in one of their own.
struct InTx<'t, 'c>(&'t Transaction<'c>);

impl Execute for InTx<'_, '_> {
    type Error = rusqlite::Error;

    fn execute<'a, T: Iterator<Item = &'a str>>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut n = 0;
        for q in queries {
            self.0.execute_batch(q)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The history's rows as refinery's rusqlite driver reads them (version,
/// name, RFC 3339 time, decimal checksum), refused rather than a panic
/// when a row was edited into something else.
impl Query<Vec<Migration>> for InTx<'_, '_> {
    fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let bad = |column, e: Box<dyn std::error::Error + Send + Sync>| {
            rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e)
        };
        let mut q = self.0.prepare(query)?;
        let rows = q.query_map([], |r| {
            let (applied_on, checksum): (String, String) = (r.get(2)?, r.get(3)?);
            Ok(Migration::applied(
                r.get(0)?,
                r.get(1)?,
                OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|e| bad(2, e.into()))?,
                checksum.parse().map_err(|e| bad(3, Box::new(e)))?,
            ))
        })?;
        rows.collect()
    }
}

impl Migrate for InTx<'_, '_> {}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

/// What the store holds, checked against this binary's migrations.
/// Refused: a file with no `meta.schema_version` (not an l3map store), a
/// version newer than this binary's by either record, and an applied
/// migration that differs from this binary's (edited after it was
/// applied, or from another build).
fn checked(conn: &Connection) -> Result<At, String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let meta: Option<String> = if has_table(conn, "meta").map_err(sql)? {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?
    } else {
        None
    };
    let Some(meta) = meta else {
        return Err("is an SQLite database but not an l3map store (it has no schema version); point `state` at the store `l3map run` created, or at a path that does not exist yet to create one".into());
    };
    let Some(meta) = meta.parse::<i64>().ok().filter(|v| *v >= 1) else {
        return Err(format!(
            "has an unreadable schema version ({meta:?}); restore it from a backup"
        ));
    };
    let applied: Vec<(i32, String, String)> = if has_table(conn, HISTORY).map_err(sql)? {
        let mut q = conn
            .prepare(&format!(
                "SELECT version, name, checksum FROM {HISTORY} ORDER BY version"
            ))
            .map_err(sql)?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    } else {
        Vec::new()
    };
    let at = applied.last().map(|a| i64::from(a.0));
    let (newest, latest) = (at.unwrap_or(meta).max(meta), latest());
    if newest > latest {
        return Err(format!(
            "was written by a newer l3map (schema {newest}; this one reads up to {latest}); run that version or a later one"
        ));
    }
    let ours = ours();
    for (version, name, checksum) in &applied {
        let same = ours.iter().any(|m| {
            m.version() == *version && m.name() == name && m.checksum().to_string() == *checksum
        });
        if !same {
            return Err(format!(
                "applied migration V{version}__{name} differs from this l3map's (edited after it was applied, or from another build); restore the store from a backup or run the l3map that applied it"
            ));
        }
    }
    Ok(at.map_or(At::Meta(meta), At::History))
}

/// The version the store is at, changing nothing; refused as [`upgrade`]
/// refuses.
pub(crate) fn version(conn: &Connection) -> Result<i64, String> {
    match checked(conn)? {
        At::History(v) | At::Meta(v) => Ok(v),
    }
}

/// Brings an l3map store to [`latest`] inside `tx`, adopting one written
/// before refinery first. Nothing is committed here.
pub(crate) fn upgrade(tx: &Transaction<'_>) -> Result<Vec<Step>, String> {
    let from = match checked(tx)? {
        At::History(v) => v,
        At::Meta(v) => {
            let fake = i32::try_from(v).map_err(|e| e.to_string())?;
            runner()
                .set_target(Target::FakeVersion(fake))
                .run(&mut InTx(tx))
                .map_err(|e| {
                    format!(
                        "cannot record its schema {v} in refinery's history ({}); nothing was changed, the older l3map still reads it",
                        why(&e)
                    )
                })?;
            v
        }
    };
    apply(tx, from)
}

/// Every migration, on a database that has no tables yet (a store being
/// created).
pub(crate) fn build(tx: &Transaction<'_>) -> Result<Vec<Step>, String> {
    apply(tx, 0)
}

fn runner() -> refinery::Runner {
    embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
}

/// What refinery says went wrong, on one line: SQLite's own message when
/// it is one (refinery's wording around it names none of our steps, and
/// rusqlite's quotes the whole migration).
fn why(e: &refinery::Error) -> String {
    let text = match e.kind() {
        refinery::error::Kind::Connection(_, source) => {
            match source.downcast_ref::<rusqlite::Error>() {
                Some(rusqlite::Error::SqlInputError { msg, .. }) => msg.clone(),
                _ => source.to_string(),
            }
        }
        _ => e.to_string(),
    };
    text.lines().next().unwrap_or_default().to_owned()
}

/// refinery applies what is pending after `from`, each with its history
/// row; then `meta.schema_version` follows.
fn apply(tx: &Transaction<'_>, from: i64) -> Result<Vec<Step>, String> {
    let report = runner().run(&mut InTx(tx)).map_err(|e| {
        let done = e.report().map_or(0, |r| r.applied_migrations().len());
        let mut pending: Vec<i64> = ours()
            .iter()
            .map(|m| i64::from(m.version()))
            .filter(|v| *v > from)
            .collect();
        pending.sort_unstable();
        let to = pending.get(done).copied().unwrap_or_else(latest);
        format!(
            "cannot be upgraded to schema {to} ({}); nothing was changed, the older l3map still reads it",
            why(&e)
        )
    })?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [latest().to_string()],
    )
    .map_err(|e| e.to_string())?;
    let mut at = from;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| {
            let to = i64::from(m.version());
            let what = m
                .sql()
                .and_then(|s| s.lines().next())
                .and_then(|l| l.strip_prefix("-- "))
                .unwrap_or(m.name());
            let step = Step {
                from: at,
                to,
                name: format!("V{to}__{}", m.name()),
                what: what.to_owned(),
            };
            at = to;
            step
        })
        .collect())
}
