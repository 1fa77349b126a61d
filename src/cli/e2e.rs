//! `l3map e2e`: the go-live sequence (src/e2e), its progress on stderr and
//! its report on stdout; exit 0 when every step passed, 1 when one failed,
//! 2 when it could not start.

use super::fail;
use crate::e2e::{self, Options, Target};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    Emulator,
    Live,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// l3map.toml of the sandbox (--target live; default:
    /// $L3MAP_CONFIG, else ./l3map.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The project folder (default: mappings/fintech, or the config's).
    #[arg(long)]
    pub mappings: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "emulator")]
    pub target: TargetArg,
    /// CI-sized: 20 s of load with emulator time ×6 (30 s live).
    #[arg(long)]
    pub quick: bool,
    /// Seconds of load (default 120; --quick: 20).
    #[arg(long)]
    pub load_secs: Option<u64>,
    /// Keep the tickets and Cases the run created.
    #[arg(long)]
    pub keep: bool,
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
}

pub fn run(a: Args) -> u8 {
    let target = match a.target {
        TargetArg::Emulator => Target::Emulator,
        TargetArg::Live => Target::Live,
    };
    // The sandbox's l3map.toml, found as `run` finds it: --config, else
    // $L3MAP_CONFIG, else ./l3map.toml.
    let config = match target {
        Target::Live => match crate::runtime::config::locate(a.config.as_deref()) {
            Some(c) => Some(c),
            None => return fail("--target live needs the sandbox's l3map.toml (its instances, credentials and webhook secret): pass --config, set $L3MAP_CONFIG, or run where l3map.toml is"),
        },
        Target::Emulator => a.config.clone(),
    };
    let mut o = Options::new(target);
    if a.quick {
        o = o.quick();
    }
    if let Some(s) = a.load_secs {
        o.load = Duration::from_secs(s);
    }
    o.config = config.clone();
    o.mappings = a.mappings.clone();
    o.keep = a.keep;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    if let (Target::Live, Some(path)) = (target, &config) {
        if let Err(e) = runtime.block_on(reachable(path, a.mappings.as_deref())) {
            return fail(e);
        }
    }
    let progress = |line: String| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    };
    let report = match runtime.block_on(e2e::run(o, &progress)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let text = match a.format {
        ReportFormat::Human => report.human(),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(j) => j + "\n",
            Err(e) => return fail(format!("cannot write the report: {e}")),
        },
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if report.passed {
        0
    } else {
        1
    }
}

/// Before a live run: every credential and every instance of the sandbox,
/// checked at once and in seconds (one line naming what is missing or the
/// host that cannot be reached), not after the first step's retries.
async fn reachable(
    config: &std::path::Path,
    mappings: Option<&std::path::Path>,
) -> Result<(), String> {
    use crate::runtime::{clients, config::discover, reach};
    let Some(mut cfg) = discover(Some(config)).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if let Some(m) = mappings {
        cfg.mappings = m.to_path_buf();
    }
    let program = crate::runtime::compile::compile(&cfg.mappings)
        .map_err(|d| format!("{} does not compile:\n{d}", cfg.mappings.display()))?;
    crate::runtime::config::check_credentials(&cfg, &program).map_err(|e| e.to_string())?;
    clients::check_overrides(&program, &cfg.connections).map_err(|e| e.to_string())?;
    for c in &program.connections {
        let o = cfg.connections.get(&c.name).cloned().unwrap_or_default();
        if let Some(url) = clients::endpoint(c, &o) {
            reach::reach(&url, reach::CONNECT_TIMEOUT)
                .await
                .map_err(|e| format!("connection `{}`: {e}", c.name))?;
        }
    }
    Ok(())
}
