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

pub struct Args {
    pub config: Option<PathBuf>,
    pub mappings: Option<PathBuf>,
    pub target: TargetArg,
    pub quick: bool,
    pub load_secs: Option<u64>,
    pub keep: bool,
    pub format: ReportFormat,
}

pub fn run(a: Args) -> u8 {
    let target = match a.target {
        TargetArg::Emulator => Target::Emulator,
        TargetArg::Live => Target::Live,
    };
    if target == Target::Live && a.config.is_none() {
        return fail("--target live needs --config l3map.toml (the sandbox's instances, credentials and webhook secret)");
    }
    let mut o = Options::new(target);
    if a.quick {
        o = o.quick();
    }
    if let Some(s) = a.load_secs {
        o.load = Duration::from_secs(s);
    }
    o.config = a.config;
    o.mappings = a.mappings;
    o.keep = a.keep;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
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
