//! The `l3map` command line.

// Output goes through `output`'s macros: `print!` panics on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;

mod auth;
mod check;
mod diff;
mod e2e;
mod embedded;
mod emulate;
mod events;
mod fmt;
mod graph;
mod mcp;
mod migrate;
mod outbox;
mod packaging;
mod plan;
mod publish;
mod run;
mod schema;
mod sealing;
mod service;
mod signals;
mod status;
mod test;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "l3map",
    version,
    about = "Support-ops knowledge for AI agents on Zendesk and Salesforce"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum OutboxAction {
    /// The newest actions, or only those in one state.
    List {
        #[command(flatten)]
        state: outbox::Where,
        #[arg(long, value_enum)]
        only: Option<outbox::Only>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// `human` (a table) or `json` (an array of rows).
        #[arg(long, value_enum, default_value_t = DataFormat::Human)]
        format: DataFormat,
    },
    /// Send dead letters again (all of them, or the ids named).
    Retry {
        #[command(flatten)]
        state: outbox::Where,
        ids: Vec<i64>,
    },
    /// Delete dead letters a human decided not to apply (all, or the ids).
    Drop {
        #[command(flatten)]
        state: outbox::Where,
        ids: Vec<i64>,
        /// Required when no id is named: drops every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// How `check` and `test` report: they find problems at places in the
/// files, which GitHub shows as annotations.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
}

/// How `plan`, `diff` and `outbox list` print what they found: for a
/// person, or JSON for a program. Nothing there is a problem at a place in
/// a file, so there is no `github`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deny {
    Warnings,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    Ir,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Subcommand)]
enum Command {
    /// Check .l3map files: syntax, names, types, workflow and least-privilege lints.
    ///
    /// Exit status: 0 clean, 1 errors (or warnings with --deny warnings), 2 usage or I/O problem.
    Check {
        /// Files or directories (each directory holding .l3map files is one project).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long, value_enum)]
        deny: Option<Deny>,
    },
    /// Rewrite .l3map files in the canonical layout (comments kept, meaning
    /// unchanged; a file that does not parse is left alone).
    ///
    /// Exit status: 0 done, 1 a file would change (--check) or does not parse, 2 usage or I/O.
    Fmt {
        /// Files or directories (every .l3map file below a directory).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that would change and exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// A Language Server on stdin/stdout, for editors: the diagnostics of
    /// `l3map check` as you type, hover, go-to-definition, references,
    /// completion, formatting and the outline.
    ///
    /// Exit status: 0 after the editor's `exit`, 2 a protocol error.
    Lsp,
    /// Compile a project and print its IR.
    Compile {
        /// A project directory (or one of its files).
        path: PathBuf,
        /// What to print.
        #[arg(long, value_enum, default_value = "ir")]
        emit: Emit,
    },
    /// Dry run: what the mappings would do with recorded events (one JSON
    /// event per line). Nothing is sent anywhere.
    ///
    /// Exit status: 0 all events read, 1 mapping errors or unreadable events, 2 usage or I/O.
    Plan {
        /// A project directory (or one of its files).
        path: PathBuf,
        /// A JSON Lines file of events (docs/EVENTS.md; raw Zendesk and
        /// Salesforce payloads are converted).
        #[arg(long)]
        events: PathBuf,
        /// `human`, or `json`: one decision per line.
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
        /// The Salesforce field that holds a record's Zendesk ticket id
        /// (e.g. `Zendesk_Ticket_Id__c`), so raw Salesforce payloads can
        /// write to their ticket (docs/EVENTS.md).
        #[arg(long, value_name = "FIELD")]
        ticket_field: Option<String>,
    },
    /// Replay recorded events through two versions of a project and show
    /// every event they decide differently: how a mapping change is reviewed.
    ///
    /// Exit status: 0 compared (1 with --exit-code when any decision differs,
    /// or when no line could be read and so nothing was compared), 2 mapping
    /// errors, usage or I/O. Unreadable lines are reported and skipped.
    Diff {
        /// The project as it was (e.g. a `git worktree` of the base branch).
        old: PathBuf,
        /// The project as changed.
        new: PathBuf,
        /// A JSON Lines file of events (docs/EVENTS.md; raw Zendesk and
        /// Salesforce payloads are converted).
        #[arg(long)]
        events: PathBuf,
        /// `human`, or `json`: one changed event per line.
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
        /// Exit with 1 when any event is decided differently, or no line
        /// could be read (and so nothing was compared).
        #[arg(long)]
        exit_code: bool,
        /// The Salesforce field that holds a record's Zendesk ticket id
        /// (e.g. `Zendesk_Ticket_Id__c`), so raw Salesforce payloads can
        /// write to their ticket (docs/EVENTS.md).
        #[arg(long, value_name = "FIELD")]
        ticket_field: Option<String>,
    },
    /// Run the `test` blocks of .l3map files: per-test pass/fail, and for a
    /// failure the `expect` line with what happened instead.
    ///
    /// Exit status: 0 all passed, 1 a test failed, 2 mapping errors, usage or I/O.
    Test {
        /// Files or directories (each directory holding .l3map files is one project).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// `human`, `json` (one report), or `github`: a workflow annotation
        /// on each failing `expect` line.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Run only the tests whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Run the local Zendesk and Salesforce emulators (docs/EMULATORS.md),
    /// seeded from the mapping projects, until Ctrl-C or SIGTERM.
    ///
    /// Exit status: 0 stopped by Ctrl-C or SIGTERM, 2 a port in use, bad
    /// options, mapping errors, or a state file that cannot be read or written.
    Emulate(emulate::Options),
    /// Run the mappings against Zendesk and Salesforce: webhooks in, the
    /// decided actions applied through a durable outbox. Without a
    /// configuration (--config, $L3MAP_CONFIG or ./l3map.toml), the
    /// embedded default: both emulators in-process and a demo stream.
    Run(service::Options),
    /// Run the mappings as `l3map run --config` does, and serve MCP on
    /// stdin/stdout for a local agent (docs/MCP.md): the tools, decided
    /// against the mappings, as the agent `--agent` names (its `tools`
    /// limit applies). Ends when the agent closes stdin, or on Ctrl-C or
    /// SIGTERM. Logs go to stderr.
    Mcp(mcp::McpOptions),
    /// The go-live test sequence (docs/E2E.md): a ticket by webhook within
    /// 5 s, every test block run live and read back, 250 requests/min
    /// against a 200/min token with nothing lost, then cleanup. Exit 1 if
    /// any step fails.
    E2e(e2e::Args),
    /// Inspect and repair the runtime's outbox: list actions, send dead
    /// letters again, or drop them.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// The fleet as its store sees it: replicas, revisions, lease holders,
    /// queues and shared rate budgets (exit 1 if a replica is unwell).
    Status(status::Args),
    /// Switch a fleet of replicas (PostgreSQL `[store]`) to the mappings
    /// in a folder, checked first, and wait until they decide by them.
    Publish(publish::Args),
    /// Bring the state store's schema up to date (SQLite, or PostgreSQL
    /// with `[store]` in l3map.toml; `--check` only says whether
    /// migrations are pending).
    Migrate(migrate::Args),
    /// OAuth grants in the state store: sign a connection in (`login`), or
    /// see each connection's grant (`status`, no token shown).
    Auth {
        #[command(subcommand)]
        action: auth::AuthAction,
    },
    /// Record or compare a live instance's schema (`l3map.lock.json`), which
    /// `l3map check` then validates the mappings against, offline.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// A shell completion script on stdout, e.g. `source <(l3map
    /// completions bash)` in ~/.bashrc, or save it in the shell's
    /// completion folder (docs: README.md, "Installing").
    Completions(packaging::CompletionArgs),
    /// The manual page l3map(1) as roff on stdout (`l3map man | man -l -`),
    /// or with --out-dir every page, one per subcommand, for a package's
    /// share/man/man1.
    Man(packaging::ManArgs),
    /// Draw a status table as a Mermaid or Graphviz diagram.
    Graph {
        /// A .l3map file holding a `statuses` block (or a project directory).
        path: PathBuf,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
        /// The connection whose table to draw, when there are several.
        #[arg(long)]
        table: Option<String>,
    },
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Read the instance behind a connection (credentials from its env/file
    /// references) into the project's l3map.lock.json.
    ///
    /// Exit status: 0 written, 2 mapping errors, missing credentials or an API error.
    Pull {
        #[arg(long)]
        connection: String,
        /// The project directory (or one of its files); default: the
        /// config's `mappings`, else the working directory.
        path: Option<PathBuf>,
        /// l3map.toml (default: $L3MAP_CONFIG, else ./l3map.toml when
        /// present): its `[connections.NAME]` overrides apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show how the instance differs from the lockfile (- lockfile, + instance).
    ///
    /// Exit status: 0 no drift, 1 drift, 2 mapping errors, missing credentials or an API error.
    Diff {
        #[arg(long)]
        connection: String,
        path: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // Services keep going when nobody reads their output, and say so with
    // writes that drop what cannot be written; only the other commands
    // end on a failed write (src/cli/output.rs).
    let service = matches!(
        cli.command,
        Command::Run(_) | Command::Mcp(_) | Command::Emulate(_) | Command::Lsp | Command::E2e(_)
    );
    let code = match cli.command {
        Command::Check {
            paths,
            format,
            deny,
        } => check::run(&paths, format, deny.is_some()),
        Command::Fmt { paths, check } => fmt::run(&paths, check),
        Command::Lsp => match crate::lsp::run() {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        Command::Compile { path, emit } => check::compile(&path, emit),
        Command::Plan {
            path,
            events,
            format,
            ticket_field,
        } => plan::run(&path, &events, format, ticket_field),
        Command::Diff {
            old,
            new,
            events,
            format,
            exit_code,
            ticket_field,
        } => diff::run(&old, &new, &events, format, exit_code, ticket_field),
        Command::Test {
            paths,
            format,
            filter,
        } => test::run(&paths, format, filter.as_deref()),
        Command::Run(o) => run::run(o),
        Command::Mcp(o) => mcp::mcp(o),
        Command::E2e(a) => e2e::run(a),
        Command::Outbox { action } => outbox::run(action),
        Command::Auth { action } => auth::run(action),
        Command::Migrate(a) => migrate::run(a),
        Command::Publish(a) => publish::run(a),
        Command::Status(a) => status::run(a),
        Command::Emulate(o) => emulate::run(o),
        Command::Schema { action } => {
            let mode = match action {
                SchemaAction::Pull { .. } => schema::Mode::Pull,
                SchemaAction::Diff { .. } => schema::Mode::Diff,
            };
            match action {
                SchemaAction::Pull {
                    connection,
                    path,
                    config,
                }
                | SchemaAction::Diff {
                    connection,
                    path,
                    config,
                } => schema::run(path.as_deref(), config.as_deref(), &connection, mode),
            }
        }
        Command::Graph {
            path,
            format,
            table,
        } => graph::run(&path, format, table.as_deref()),
        Command::Completions(a) => packaging::completions(a),
        Command::Man(a) => packaging::man(a),
    };
    if !service {
        output::flush();
    }
    ExitCode::from(code)
}

/// Prints a one-line reason and returns the usage/I/O exit status.
pub(crate) fn fail(msg: impl std::fmt::Display) -> u8 {
    errln!("error: {msg}");
    2
}
