//! Front-end throughput on a generated project of ~59,000 lines (~3 MB).
//!
//! Groups (all with `Throughput::BytesDecimal`, so criterion prints MB/s
//! where 1 MB = 10^6 bytes):
//!
//! * `parse/pest`       the pest parser alone (`syntax::parser::parse_items`, no AST)
//! * `parse/parse_file` pest + building the typed AST (`syntax::parse_file`), per file
//! * `check/check`      the whole front end, `check::check(&SourceMap)`:
//!   parse + names, types and lints (this is what `l3map check` runs;
//!   large projects are parsed on every core)
//! * `check/check_1_thread` the same on one thread: the ratio's numerator,
//!   so that it compares like with like against `parse_file`
//! * `check/check_lower` `compile::check` then `compile::lower` (what `l3map compile` runs)
//!
//! After the run it prints a summary with the check/parse ratio, read back
//! from the estimates criterion wrote in this same run.
//!
//! Run: `cargo bench --bench check`. Smoke test (each routine once, as CI
//! does): `cargo bench --bench check -- --test`.
//!
//! Environment:
//! * `L3MAP_BENCH_DUMP=DIR`: also write the corpus to DIR (then `l3map check DIR`)
//! * `L3MAP_BENCH_ALLOW_DIAGNOSTICS=1`: print diagnostics on the corpus
//!   instead of failing (to measure while the checker has a false positive)

mod corpus;

use criterion::{black_box, Criterion, SamplingMode, Throughput};
use l3map::syntax::{parse_file, parser, FileId, SourceMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

// The same allocator as the `l3map` binary, so the numbers are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let started = SystemTime::now();
    let project = corpus::generate(corpus::Params::default());
    let (lines, bytes) = corpus::size(&project);
    println!(
        "corpus: {} files, {lines} lines, {bytes} bytes ({:.2} MB)",
        project.len(),
        bytes as f64 / 1e6
    );
    if let Ok(dir) = std::env::var("L3MAP_BENCH_DUMP") {
        std::fs::create_dir_all(&dir).expect("create dump directory");
        for (path, text) in &project {
            std::fs::write(PathBuf::from(&dir).join(path), text).expect("write corpus file");
        }
        println!("corpus written to {dir}");
    }
    assert!(lines >= 50_000, "corpus must have at least 50,000 lines");

    let mut sources = SourceMap::new();
    for (path, text) in &project {
        sources.add(path.as_str(), text.as_str());
    }
    let texts: Vec<&str> = project.iter().map(|(_, t)| t.as_str()).collect();

    sanity(&sources);

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    {
        let mut g = c.benchmark_group("parse");
        g.throughput(Throughput::BytesDecimal(bytes as u64))
            .sampling_mode(SamplingMode::Flat);
        g.bench_function("pest", |b| {
            b.iter(|| {
                let mut items = 0usize;
                let mut errors = 0usize;
                for (i, t) in texts.iter().enumerate() {
                    errors += parser::parse_items(FileId(i as u32), t, |_, _| items += 1).len();
                }
                black_box((items, errors))
            })
        });
        g.bench_function("parse_file", |b| {
            b.iter(|| {
                texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| parse_file(FileId(i as u32), t))
                    .collect::<Vec<_>>()
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("check");
        g.throughput(Throughput::BytesDecimal(bytes as u64))
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(6));
        g.bench_function("check", |b| {
            b.iter(|| l3map::check::check(black_box(&sources)))
        });
        g.bench_function("check_1_thread", |b| {
            b.iter(|| l3map::check::check_with_threads(black_box(&sources), 1))
        });
        g.bench_function("check_lower", |b| {
            b.iter(|| {
                let checked = l3map::compile::check(black_box(&sources), None);
                l3map::compile::lower(&checked, &sources)
            })
        });
        g.finish();
    }
    c.final_summary();
    summary(started, lines, bytes);
}

/// Once, outside timing: the corpus parses and checks without a single
/// diagnostic (error or warning), and lowers to IR.
fn sanity(sources: &SourceMap) {
    for (id, f) in sources.files() {
        let (_, errors) = parse_file(id, &f.text);
        assert!(errors.is_empty(), "{}: syntax errors: {errors:?}", f.path);
    }
    let checked = l3map::check::check(sources);
    if !checked.diagnostics.is_empty() {
        let shown: Vec<_> = checked.diagnostics.iter().take(20).cloned().collect();
        let report = l3map::diagnostics::render_human(&shown, sources, false);
        let msg = format!(
            "the benchmark corpus must check clean, got {} diagnostics (first {}):\n{report}",
            checked.diagnostics.len(),
            shown.len()
        );
        if std::env::var_os("L3MAP_BENCH_ALLOW_DIAGNOSTICS").is_some() {
            eprintln!("WARNING (L3MAP_BENCH_ALLOW_DIAGNOSTICS): {msg}");
        } else {
            panic!("{msg}\n(set L3MAP_BENCH_ALLOW_DIAGNOSTICS=1 to measure anyway)");
        }
    } else {
        println!("corpus checks clean: 0 errors, 0 warnings");
    }
    assert!(
        checked.diagnostics.iter().any(|d| d.is_error())
            || l3map::compile::lower(&checked, sources).is_ok(),
        "a clean corpus must lower to IR"
    );
}

// ------------------------------------------------------------------ summary

/// Where criterion keeps its results (same rules as criterion 0.5).
fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return h.into();
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v["target_directory"].as_str()?).join("criterion"))
    });
    from_metadata.unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Mean time per iteration (ns) of one benchmark, if measured in this run.
fn mean_ns(home: &std::path::Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = home.join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None; // stale: from an earlier run (or filtered out of this one)
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn summary(started: SystemTime, lines: usize, bytes: usize) {
    let home = criterion_home();
    let ids = [
        "parse/pest",
        "parse/parse_file",
        "check/check",
        "check/check_lower",
        "check/check_1_thread",
    ];
    let means: Vec<Option<f64>> = ids.iter().map(|id| mean_ns(&home, id, started)).collect();
    if means.iter().all(|m| m.is_none()) {
        return; // --test, --list, or a filter that ran nothing measurable
    }
    println!("\n== l3map front end: {lines} lines, {bytes} bytes ==");
    for (id, m) in ids.iter().zip(&means) {
        match m {
            Some(ns) => println!(
                "{id:<20} {:>9.2} ms/iter  {:>7.1} MB/s",
                ns / 1e6,
                bytes as f64 / (ns / 1e9) / 1e6
            ),
            None => println!("{id:<20} (not measured in this run)"),
        }
    }
    let ratio = |a: usize, b: usize| match (means[a], means[b]) {
        (Some(x), Some(y)) => format!("{:.2}", x / y),
        _ => "n/a".into(),
    };
    println!(
        "ratio check (1 thread) / parse_file : {}  (target <= 2)",
        ratio(4, 1)
    );
    println!("ratio check (1 thread) / pest       : {}", ratio(4, 0));
    if let Some(ns) = means[2] {
        let mbs = bytes as f64 / (ns / 1e9) / 1e6;
        println!(
            "check throughput         : {mbs:.1} MB/s (target >= 20): {}",
            if mbs >= 20.0 { "met" } else { "MISSED" }
        );
    }
}
