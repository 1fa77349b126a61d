//! The two load tests. Each spends most of its time waiting on the
//! emulators' 300 ms answers and sliding windows, so the harness runs them
//! beside the other end-to-end tests.

#[path = "load/budget.rs"]
mod budget;
#[path = "load/e2e_command.rs"]
mod e2e_command;
#[path = "load/e2e_report.rs"]
mod e2e_report;
