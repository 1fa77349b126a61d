//! Everything the commands print goes through here, never `print!`.
//!
//! `print!` panics when the reader has gone away (`l3map test | head -1`:
//! EPIPE, a panic message and exit 101). Here a closed pipe ends the command
//! at once, silently, with status 141: what a shell reports for a program
//! stopped by SIGPIPE (`cat`, `grep`). Not 0: the command did not finish, so
//! a truncated `check` or `test` must not look clean under `set -o pipefail`.
//!
//! SIGPIPE itself stays ignored (Rust's default): `run`, `emulate` and `lsp`
//! write to sockets, where a peer that hangs up is an error to handle, not a
//! reason to die. Those long-running commands use [`note`], which drops what
//! cannot be written.

use std::fmt;
use std::io::{self, Write};

/// The exit status after a reader closed the pipe: 128 + SIGPIPE (13).
pub const CLOSED_PIPE: i32 = 141;

/// Writes to stdout; see the module comment for what happens on failure.
pub fn stdout(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        gone(e, "standard output");
    }
}

/// Writes to stderr; see the module comment for what happens on failure.
pub fn stderr(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    if let Err(e) = err.write_fmt(args) {
        gone(e, "standard error");
    }
}

/// A line on stderr for a long-running command (the emulators, the
/// runtime): a closed stderr must not stop the service, so it is dropped.
pub fn note(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.write_all(b"\n"));
}

/// Flushes stdout before the exit status is returned, so a write error in
/// the last buffered line is handled here and not lost at exit.
pub fn flush() {
    if let Err(e) = io::stdout().lock().flush() {
        gone(e, "standard output");
    }
}

fn gone(e: io::Error, what: &str) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_PIPE);
    }
    // Another failure (a full disk behind `>`): say so, if stderr still can.
    let _ = writeln!(io::stderr(), "error: cannot write to {what}: {e}");
    std::process::exit(2);
}

/// `print!` that ends the command quietly on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that ends the command quietly on a closed pipe.
macro_rules! outln {
    () => { $crate::cli::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that ends the command quietly on a closed pipe.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that ends the command quietly on a closed pipe.
macro_rules! errln {
    () => { $crate::cli::output::stderr(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
