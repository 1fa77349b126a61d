//! The polling sources of `l3map run`: changes the webhooks missed (or,
//! without webhooks, every change), read from the APIs on an interval.
//!
//! - **Zendesk**: the cursor-based incremental ticket export, page after
//!   page until `end_of_stream`. Cursor key `zendesk_poll:<connection>`;
//!   its value is the export's `after_cursor`, or `start_time:<unix secs>`
//!   before the first change is seen (an operator may set that form by
//!   hand to replay from a point in time).
//! - **Salesforce**: SOQL on `SystemModstamp` (indexed) per object. Cursor
//!   key `salesforce_poll:<connection>:<Object>`; its value is
//!   `<stamp>` (every record stamped at or before it is read) or
//!   `<stamp>|<Id>` (records at that stamp are read up to that Id).
//!
//! A first start (no cursor) does not replay history: Zendesk starts at
//! the current time, Salesforce at the object's newest `SystemModstamp`
//! (the org's clock, so a skewed local clock loses nothing). That starting
//! point is stored at once, so a restart resumes from it.
//!
//! Nothing is lost and nothing is decided twice: a page's events are
//! ingested in order and only the last one carries the page's new cursor
//! (event and cursor in one transaction), so a crash replays at most that
//! page; a replayed event has the same id (a ticket's id and `updated_at`,
//! a record's Id and `SystemModstamp`) and the store skips it as a
//! duplicate.

mod export;
mod shared;
mod soql;

pub use export::{zendesk, zendesk_linked};
pub use shared::{
    salesforce_cursor_key, zendesk_cursor_key, SALESFORCE_PAGE, SALESFORCE_SOURCE, ZENDESK_SOURCE,
};
pub use soql::salesforce;
