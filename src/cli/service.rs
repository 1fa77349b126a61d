//! What `l3map run` and `l3map mcp` share: the options of a runtime, the
//! async runtime they run on, and the logs.

use super::fail;
use super::signals::survive_file_size_limit;
use crate::runtime::config::LogFormat;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Options {
    /// The project folder (default: the config's `mappings`, or the
    /// fintech desk built into the binary for the embedded default).
    pub mappings: Option<PathBuf>,
    /// l3map.toml: listen address, webhook secret, agents, state file,
    /// per-connection overrides (default: $L3MAP_CONFIG, else
    /// ./l3map.toml when present; none: the embedded default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen here (default 127.0.0.1:8780; the demo picks a free port).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The state store (SQLite) to use.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Embedded default: keep serving after the demo stream.
    #[arg(long)]
    pub serve: bool,
}

/// The embedded default's agent and its token (local only, like the
/// emulators' development credentials).
pub const DEMO_AGENT: &str = "demo-agent";
pub const DEMO_AGENT_TOKEN: &str = "l3map-demo-agent-token";
/// The embedded default's ops console user and token (local only too).
pub const DEMO_OPS: &str = "demo-ops";
pub const DEMO_OPS_TOKEN: &str = "l3map-demo-ops-token";

/// Runs a service on a multi-threaded runtime to its exit code.
pub(super) fn serve(job: impl std::future::Future<Output = Result<u8, String>>) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        survive_file_size_limit();
        job.await
    });
    // Everything was stopped in order above; a name lookup still running
    // in a blocking thread (the start-up reachability check) must not hold
    // the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(message) => fail(message),
    }
}

pub(super) fn init_logs(format: LogFormat, level: &str) {
    crate::runtime::logs::init(format, level);
}
