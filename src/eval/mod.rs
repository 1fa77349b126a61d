//! The interpreter: pure functions from (IR, event) to decisions. No I/O,
//! no clock, no randomness; time arrives with the event.

pub mod convert;
pub mod decide;
pub mod display;
pub mod event;
pub mod explain;
pub mod expr;
pub mod mapping;
pub mod status;
pub mod template;
pub mod testing;

pub use event::{Event, EventError, EventKind};
