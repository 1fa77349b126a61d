//! The two load tests in one binary. Each spends most of its time waiting
//! on the emulators' 300 ms answers and sliding windows, so the test
//! harness runs them side by side: one binary each ran them one after the
//! other and cost CI a minute and a half.

mod common;

#[path = "load/budget.rs"]
mod budget;
#[path = "load/e2e_command.rs"]
mod e2e_command;
