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
    /// Also write the report as a self-contained HTML page (charts of
    /// turn latency and the token's budget over the load) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `--report FILE`: a temporary file beside FILE, made before the run so an
/// unwritable place fails in seconds, not after minutes of load; renamed
/// over FILE once the page is written, so a reader never sees half a page.
fn html_file(path: &std::path::Path) -> Result<tempfile::NamedTempFile, String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".l3map-e2e-report-")
        .suffix(".html")
        .tempfile_in(dir)
        .map_err(|e| {
            // tempfile adds its temporary file's path; the user named FILE.
            let cause = e.to_string();
            let cause = cause.split(" at path ").next().unwrap_or_default();
            format!("cannot write the report to {}: {cause}", path.display())
        })
}

fn write_html(
    mut file: tempfile::NamedTempFile,
    path: &std::path::Path,
    report: &crate::e2e::report::Report,
) -> Result<(), String> {
    let page = crate::e2e::html::render(report);
    // A page to share: readable as any file the user writes (a temporary
    // file is made private).
    #[cfg(unix)]
    let shared = {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
    };
    #[cfg(not(unix))]
    let shared = Ok(());
    shared
        .and_then(|()| file.write_all(page.as_bytes()))
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?;
    file.persist(path)
        .map(drop)
        .map_err(|e| format!("cannot write the report to {}: {}", path.display(), e.error))
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
    let html = match a.report.as_deref().map(html_file).transpose() {
        Ok(f) => f,
        Err(e) => return fail(e),
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
    drop(out);
    if let (Some(file), Some(path)) = (html, &a.report) {
        if let Err(e) = write_html(file, path, &report) {
            return fail(e);
        }
    }
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
