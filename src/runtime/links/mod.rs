//! Record links at run time (`link` blocks in the mappings): from a ticket
//! to the Salesforce records it is linked to (`resolve`), and from a
//! Salesforce change to every ticket it governs (`fanout`). Both go
//! through the connectors' caches; neither decides anything: the engine
//! decides the events they build.
//!
//! `ticket_side.rs`: the values a ticket's links compare, from one
//! Tickets API answer; `resolve.rs`: the cached lookups behind them.
//! `change.rs`: a Salesforce change as every source reports it (CDC,
//! polling), the one input of the fan-out. `ticket_event.rs`: webhooks'
//! and the poller's ticket events carry their linked records.
//! `unique.rs`: the fan-out refuses a record that shares a unique link's
//! value with another, as the turn does.

pub mod change;
pub mod fanout;
pub mod resolve;
pub mod ticket_event;
pub mod ticket_read;
pub mod ticket_side;
pub mod unique;

pub use change::{ChangeType, CrmChange};
