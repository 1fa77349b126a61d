//! `l3map emulate`: the local Zendesk and Salesforce emulators, seeded from
//! the mapping projects, until Ctrl-C or SIGTERM. With `--state FILE`, the
//! records start from the file and are written back to it while running
//! and on the way out (`emulator::snapshot`).

use super::check::{color, relevant};
use super::fail;
use crate::connectors::Secret;
use crate::diagnostics::render_human;
use crate::emulator::faults::Faults;
use crate::emulator::salesforce::{self, PubSubOptions, SalesforceEmulator, SalesforceOptions};
use crate::emulator::snapshot::{self, Snapshot};
use crate::emulator::zendesk::{
    self, Seed, WebhookTarget, ZendeskEmulator, ZendeskOptions, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
    DEV_TOKEN,
};
use crate::ir::{Program, Type};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Options {
    /// Projects to seed from (default: `mappings/` when it exists).
    pub mappings: Vec<PathBuf>,
    #[arg(long, default_value_t = 8801)]
    pub zendesk_port: u16,
    #[arg(long, default_value_t = 8802)]
    pub salesforce_port: u16,
    /// The Salesforce Pub/Sub API (gRPC, Change Data Capture events).
    /// Default 8803, or a free port when `--salesforce-port 0` asks for one.
    #[arg(long)]
    pub pubsub_port: Option<u16>,
    /// How long a Pub/Sub subscription with requested events waits for
    /// events before an empty keepalive response (Salesforce: within 270 s).
    #[arg(long, default_value_t = 5000)]
    pub pubsub_keepalive_ms: u64,
    /// How long change events are kept for replay (Salesforce: 72 hours).
    #[arg(long, default_value_t = 72)]
    pub pubsub_retention_hours: u64,
    /// Zendesk requests per minute per token (Team 200, Enterprise 700).
    #[arg(long, default_value_t = 200)]
    pub rate_limit: u32,
    /// Zendesk API updates of one ticket per 10 minutes before a 429
    /// (Zendesk: 30 per user per ticket); 0 turns the limit off.
    #[arg(long, default_value_t = 30)]
    pub ticket_update_limit: u32,
    /// Share of requests answered 503 (fault injection), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer the first N requests 503, then serve normally.
    #[arg(long, default_value_t = 0)]
    pub burst_5xx: u32,
    /// Lifetime of the Zendesk OAuth access tokens the emulator issues, in
    /// seconds (Zendesk: 30 minutes by default, at least 300 s when a
    /// client asks). Values below 300 are allowed here, for tests only.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub oauth_access_ttl: u64,
    /// Salesforce refresh token rotation (an app setting in Salesforce):
    /// `on` answers every refresh with a new refresh token and invalidates
    /// the one used.
    #[arg(long, value_enum, default_value_t = Switch::Off)]
    pub sf_refresh_rotation: Switch,
    /// Deliver Zendesk webhooks (signed) to this URL.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The environment variable holding the webhook signing secret.
    #[arg(long, default_value = "L3MAP_WEBHOOK_SECRET")]
    pub webhook_secret_env: String,
    /// Keep the records in this file: loaded at start if it exists,
    /// written every 2 s when something changed and on the way out. A
    /// file that cannot be read is refused, never overwritten.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// How often the records are compared with the file, and written if they
/// changed: a crash loses at most this much.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// A compiled project and the Salesforce fields its `fields` blocks
/// declare (`Object.Field`, type, attributes), used by a rule or not.
type Seeded = (Program, Vec<(String, Type, Vec<String>)>);

/// The compiled projects the seed data comes from; none when no path was
/// given and there is no `mappings/` here (the emulators' own seed then).
fn programs(paths: &[PathBuf]) -> Result<Vec<Seeded>, u8> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        let default = PathBuf::from("mappings");
        if !default.is_dir() {
            return Ok(vec![]);
        }
        vec![default]
    } else {
        paths.to_vec()
    };
    let projects = crate::project::load(&paths).map_err(fail)?;
    let mut out = Vec::new();
    for p in &projects {
        // Against its lockfile, as `l3map check` does: the forms a `schema
        // pull` recorded (and each category's default) reach the seed
        // through the program.
        let lock = crate::schema::Lockfile::find(&p.dir).map_err(fail)?;
        let checked = crate::compile::check(&p.sources, lock.as_ref());
        match crate::compile::lower(&checked, &p.sources) {
            Ok(program) => {
                let fields = checked
                    .env
                    .fields
                    .iter()
                    .filter(|(conn, _)| {
                        checked
                            .env
                            .conns
                            .get(*conn)
                            .is_some_and(|c| c.kind == crate::model::Kind::Salesforce)
                    })
                    .flat_map(|(_, fs)| fs.iter())
                    .map(|(path, f)| (path.clone(), crate::ir::lower_ty(&f.ty), f.attrs.clone()))
                    .collect();
                out.push((program, fields))
            }
            Err(_) => {
                err!(
                    "{}",
                    render_human(&relevant(p, &checked), &p.sources, color())
                );
                return Err(fail(format!(
                    "{} has errors; fix them or name other mappings to seed from",
                    p.name()
                )));
            }
        }
    }
    Ok(out)
}

pub fn run(o: Options) -> u8 {
    // The emulators' own warnings (a webhook delivery that failed, a bad
    // JWT key) on stderr, coloured only on a terminal; RUST_LOG for more.
    crate::runtime::logs::init(crate::runtime::config::LogFormat::Human, "warn");
    if !(0.0..=1.0).contains(&o.error_rate) {
        return fail(format!(
            "--error-rate {} is not a share between 0 and 1 (0.005 is 0.5 %)",
            o.error_rate
        ));
    }
    let (programs, fields): (Vec<Program>, Vec<_>) = match programs(&o.mappings) {
        Ok(p) => p.into_iter().unzip(),
        Err(code) => return code,
    };
    let webhook = match &o.webhook_url {
        None => None,
        Some(url) => match std::env::var(&o.webhook_secret_env) {
            Ok(secret) if !secret.is_empty() => Some(WebhookTarget::new(url, Secret::new(secret))),
            _ => {
                return fail(format!(
                    "--webhook-url needs a signing secret in ${}; set it, or name another variable with --webhook-secret-env",
                    o.webhook_secret_env
                ))
            }
        },
    };
    let faults = Arc::new(Faults {
        error_rate: o.error_rate,
        latency: Duration::from_millis(o.latency_ms),
        burst_5xx: std::sync::atomic::AtomicU32::new(o.burst_5xx),
        ..Faults::default()
    });
    let zendesk = ZendeskOptions {
        seed: if programs.is_empty() {
            Seed::embedded()
        } else {
            Seed::from_programs(&programs)
        },
        rate_limit: o.rate_limit,
        ticket_update_limit: o.ticket_update_limit,
        faults: faults.clone(),
        webhook,
        // Bulk jobs run in the background, as Zendesk's do: a client must
        // poll them, not take the answer for the outcome.
        job_delay: Duration::from_millis(100),
        access_token_lifetime: Duration::from_secs(o.oauth_access_ttl.max(1)),
        ..ZendeskOptions::default()
    };
    let salesforce = programs.iter().fold(
        SalesforceOptions {
            faults,
            rotate_refresh_tokens: o.sf_refresh_rotation == Switch::On,
            pubsub: PubSubOptions {
                keepalive: Duration::from_millis(o.pubsub_keepalive_ms.max(1)),
                retention: Duration::from_secs(o.pubsub_retention_hours.saturating_mul(3600)),
            },
            ..SalesforceOptions::default()
        },
        |opts, p| opts.with_program(p),
    );
    let salesforce = salesforce.with_fields(
        fields
            .iter()
            .flatten()
            .map(|(path, ty, attrs)| (path.as_str(), ty, attrs.as_slice())),
    );
    let (sf_client, sf_secret, sf_refresh) = (
        salesforce.client_id.clone(),
        salesforce.client_secret.clone(),
        salesforce.refresh_token.clone(),
    );
    // Read before anything listens: a file that cannot be read stops here,
    // untouched, with nothing started.
    let restored = match o.state.as_deref().map(snapshot::load).transpose() {
        Ok(found) => found.flatten(),
        Err(reason) => return fail(format!("{reason}; move it aside to start afresh")),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        // Armed before anything listens: a SIGTERM sent as soon as the
        // emulators answer stops them in order (exit 0, the state written).
        let stop = super::signals::stop_requested();
        let zd_emu = ZendeskEmulator::new(zendesk);
        let sf_emu = SalesforceEmulator::new(salesforce);
        let handles = (zd_emu.handle(), sf_emu.handle());
        let resumed = restored.is_some();
        if let Some(snap) = restored {
            snap.restore(&handles.0, &handles.1);
        }
        let zd = match zd_emu.start(o.zendesk_port).await {
            Ok((running, _)) => running,
            Err(e) => return fail(format!("Zendesk emulator on port {}: {e}", o.zendesk_port)),
        };
        let sf = match sf_emu.start(o.salesforce_port).await {
            Ok((running, _)) => running,
            Err(e) => {
                return fail(format!(
                    "Salesforce emulator on port {}: {e}",
                    o.salesforce_port
                ))
            }
        };
        let pubsub_port = o
            .pubsub_port
            .unwrap_or(if o.salesforce_port == 0 { 0 } else { 8803 });
        let pubsub = match handles.1.serve_pubsub(pubsub_port).await {
            Ok(running) => running,
            Err(e) => {
                return fail(format!(
                    "Salesforce Pub/Sub emulator on port {pubsub_port}: {e}"
                ))
            }
        };
        // A closed stdout (`| head -2`) must not stop the emulators.
        let say = |line: String| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|_| out.flush());
        };
        say(format!(
            "Zendesk emulator     {}  (OAuth token {DEV_TOKEN:?}, {} requests/min per token; OAuth client {DEV_CLIENT_ID:?} / {DEV_CLIENT_SECRET:?}, POST /oauth/tokens)",
            zd.base_url(),
            o.rate_limit
        ));
        say(format!(
            "Salesforce emulator  {}  (client_id {sf_client:?}, client_secret {sf_secret:?}, refresh token {sf_refresh:?}; POST /services/oauth2/token)",
            sf.base_url()
        ));
        say(format!(
            "Salesforce Pub/Sub   {}  (gRPC eventbus.v1, Change Data Capture; metadata accesstoken, instanceurl, tenantid {:?}; keepalive {} ms)",
            pubsub.base_url(),
            salesforce::pubsub::ORG_ID,
            o.pubsub_keepalive_ms.max(1)
        ));
        say("These are local test credentials, not secrets. Ctrl-C stops them.".into());
        if let Some(path) = &o.state {
            let how = if resumed { "resumed from" } else { "will be kept in" };
            say(format!("State                {how} {}", path.display()));
        }
        match &o.state {
            None => {
                stop.await;
                0
            }
            Some(path) => keep_state(path, &handles.0, &handles.1, stop).await,
        }
    })
}

/// Writes the records to `path` every [`SAVE_EVERY`] when they changed,
/// and once more on Ctrl-C or SIGTERM. A failed periodic write is reported
/// and tried again; a failed final write is the exit status.
async fn keep_state(
    path: &Path,
    zd: &zendesk::Handle,
    sf: &salesforce::Handle,
    stop: impl std::future::Future<Output = ()>,
) -> u8 {
    let mut written = Snapshot::capture(zd, sf).encode();
    let mut tick = tokio::time::interval(SAVE_EVERY);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let now = Snapshot::capture(zd, sf).encode();
                if now == written {
                    continue;
                }
                match snapshot::save(path, &now) {
                    Ok(()) => written = now,
                    // Still serving: a closed stderr must not stop the emulators.
                    Err(e) => super::output::note(format_args!(
                        "warning: cannot write the state file {}: {e}",
                        path.display()
                    )),
                }
            }
        }
    }
    match snapshot::save(path, &Snapshot::capture(zd, sf).encode()) {
        Ok(()) => 0,
        Err(e) => fail(format!(
            "cannot write the state file {}: {e}",
            path.display()
        )),
    }
}
