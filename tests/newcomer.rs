//! Issue 14: what a first-time user and the real APIs contradicted, each
//! item driven through the real binary.

#[path = "newcomer/cli.rs"]
mod cli;
#[path = "newcomer/config.rs"]
mod config;
#[path = "newcomer/emulators.rs"]
mod emulators;
#[path = "newcomer/lang.rs"]
mod lang;
#[path = "newcomer/obs.rs"]
mod obs;
#[path = "newcomer/polish_lang.rs"]
mod polish_lang;
#[path = "newcomer/polish_runtime.rs"]
mod polish_runtime;
#[path = "newcomer/tests.rs"]
mod tests;
