//! A production-shaped stack for end-to-end tests: `l3map emulate` and
//! `l3map run --config l3map.toml` as two real processes on 127.0.0.1,
//! the runtime configured exactly as a user would (secrets from the
//! environment and a secret file, overrides pointing the connections at
//! the emulators).
//!
//! Its directory is a [`tempfile::TempDir`], kept when a test fails so
//! `run.log` and `emulate.log` can be read.

pub use super::free_port;
use super::{copy_mappings, keep_on_panic, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const DEV_TOKEN: &str = "l3map-dev-token";
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret-5d1c";
pub const AGENT_TOKEN: &str = "e2e-agent-token-9a3f";
/// The fintech desk's custom fields (mappings/fintech/fields.l3map).
pub const SLA_TIER: u64 = 360001234;
pub const DISPUTE_TYPE: u64 = 360001238;

/// The stack's credentials in the environment of an `l3map run`: the
/// emulators' development token and Salesforce client, the webhook secret
/// and the agent's token, as `l3map.toml` names them.
pub trait StackEnv {
    fn stack_env(&mut self) -> &mut Self;
}

impl StackEnv for Command {
    fn stack_env(&mut self) -> &mut Command {
        self.env("ZENDESK_OAUTH_TOKEN", DEV_TOKEN)
            .env("SF_CLIENT_ID", "l3map-emulator-client")
            .env("SF_REFRESH_TOKEN", "l3map-emulator-refresh")
            .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("L3MAP_AGENT_TOKEN", AGENT_TOKEN)
    }
}

pub struct Stack {
    pub dir: PathBuf,
    tmp: Option<TempDir>,
    pub zendesk: String,
    pub salesforce: String,
    /// The Salesforce emulator's Pub/Sub API (gRPC) endpoint.
    pub pubsub: String,
    pub runtime: String,
    emulate: Child,
    run: Option<Child>,
    pub http: reqwest::Client,
    /// Whether the runtime takes the stack's webhook secret. A test that
    /// brings its own `[webhook]` secret starts without it: the variable
    /// would win over the file (RUNTIME.md, "Which webhook secret wins").
    webhooks: bool,
}

/// Copies the mappings of `from` to `to`, the Salesforce client secret
/// read from `secret_file`: the secret file lives where the test can
/// write it.
pub fn copy_project(from: &Path, to: &Path, secret_file: &Path) {
    copy_mappings(from, to, |text| {
        text.replace(
            "/run/secrets/sf_client_secret",
            &secret_file.display().to_string(),
        )
    });
}

impl Stack {
    /// Starts both processes; `extra` is appended to l3map.toml.
    pub async fn start(name: &str, extra: &str) -> Stack {
        Stack::start_with(name, extra, true).await
    }

    /// As [`Stack::start`]; without `webhooks` the runtime has no
    /// `[webhook]` section, so the emulator's deliveries are refused and
    /// only polling brings changes in.
    pub async fn start_with(name: &str, extra: &str, webhooks: bool) -> Stack {
        Stack::start_with_files(name, extra, webhooks, &[]).await
    }

    /// As [`Stack::start_with`], with `files` (name, text) added to the
    /// copied mappings before either process reads them.
    pub async fn start_with_files(
        name: &str,
        extra: &str,
        webhooks: bool,
        files: &[(&str, &str)],
    ) -> Stack {
        Stack::start_limited(name, extra, webhooks, files, 100_000).await
    }

    /// As [`Stack::start_with_files`], the Zendesk emulator limiting each
    /// token to `rate_limit` requests a minute (the others give 100,000).
    pub async fn start_limited(
        name: &str,
        extra: &str,
        webhooks: bool,
        files: &[(&str, &str)],
        rate_limit: u32,
    ) -> Stack {
        let mut stack = Stack::build(name, extra, webhooks, files, rate_limit, None, &[]);
        stack.start_runtime().await;
        stack
    }

    /// The emulators and the l3map.toml of [`Stack::start_with_files`],
    /// no runtime: the test starts its own (`l3map mcp --config`).
    pub fn without_runtime(name: &str, extra: &str, files: &[(&str, &str)]) -> Stack {
        Stack::build(name, extra, true, files, 100_000, None, &[])
    }

    /// The emulators and an l3map.toml whose store is the PostgreSQL
    /// database `store_url` (`[store]`, no `state`); no runtime is started:
    /// a fleet test starts its replicas ([`Stack::replica_config`]).
    pub fn fleet(name: &str, extra: &str, store_url: &str) -> Stack {
        Stack::fleet_with(name, extra, store_url, &[], 100_000, &[])
    }

    /// As [`Stack::fleet`], with `files` (name, text) added to the copied
    /// mappings, the Zendesk emulator limiting each token to `rate_limit`
    /// requests a minute, and `emulate` given more arguments
    /// (`--latency-ms 300`).
    pub fn fleet_with(
        name: &str,
        extra: &str,
        store_url: &str,
        files: &[(&str, &str)],
        rate_limit: u32,
        emulate: &[&str],
    ) -> Stack {
        Stack::build(
            name,
            extra,
            true,
            files,
            rate_limit,
            Some(store_url),
            emulate,
        )
    }

    /// A copy of l3map.toml for replica `n` (1, 2, ...): the same store
    /// and emulators, its own port (replica 1 keeps the stack's, which the
    /// emulator delivers webhooks to). Returns the config and the URL.
    pub fn replica_config(&self, n: usize) -> (PathBuf, String) {
        let text = std::fs::read_to_string(self.dir.join("l3map.toml")).expect("config");
        if n == 1 {
            return (self.dir.join("l3map.toml"), self.runtime.clone());
        }
        let port = free_port();
        let own = self.runtime.trim_start_matches("http://");
        let path = self.dir.join(format!("l3map-{n}.toml"));
        std::fs::write(&path, text.replace(own, &format!("127.0.0.1:{port}"))).expect("config");
        (path, format!("http://127.0.0.1:{port}"))
    }

    fn build(
        name: &str,
        extra: &str,
        webhooks: bool,
        files: &[(&str, &str)],
        rate_limit: u32,
        store_url: Option<&str>,
        emulate_args: &[&str],
    ) -> Stack {
        let tmp = temp_dir(&format!("e2e-{name}"));
        let dir = tmp.path().to_path_buf();
        let secret_file = dir.join("sf_client_secret");
        std::fs::write(&secret_file, "l3map-emulator-secret\n").expect("secret file");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_project(
            &root.join("mappings/fintech"),
            &dir.join("mappings"),
            &secret_file,
        );
        for (file, text) in files {
            std::fs::write(dir.join("mappings").join(file), text).expect("a mappings file");
        }
        let port = free_port();
        let runtime = format!("http://127.0.0.1:{port}");

        let mut emulate = Command::new(env!("CARGO_BIN_EXE_l3map"))
            // The test reads the emulator with the runtime's token; a wide
            // limit keeps its reads from starving the runtime (rate limits
            // are tested on their own, in tests/zendesk.rs).
            .args([
                "emulate",
                "--zendesk-port",
                "0",
                "--salesforce-port",
                "0",
                "--rate-limit",
                &rate_limit.to_string(),
                "--webhook-url",
            ])
            .arg(format!("{runtime}/webhooks/zendesk"))
            .args(emulate_args)
            .arg(dir.join("mappings"))
            .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(dir.join("emulate.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("l3map emulate starts");
        let (zendesk, salesforce, pubsub, lines) = super::emulator_endpoints(&mut emulate);
        // Keep draining the emulator's output so it never blocks on a full
        // pipe; kept in emulate.out for the secrets scan.
        let out_file = dir.join("emulate.out");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(out_file).ok();
            for line in lines.map_while(Result::ok) {
                if let Some(f) = f.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        std::fs::write(
            dir.join("l3map.toml"),
            format!(
                r#"mappings = "mappings"
{store}

[server]
listen = "127.0.0.1:{port}"

{webhook}
[agents.e2e]
token_env = "L3MAP_AGENT_TOKEN"

[connections.desk]
base_url = "{zendesk}"

[connections.crm]
login_url = "{salesforce}"

[outbox]
max_attempts = 8
workers_per_connection = 4

{extra}
"#,
                store = match store_url {
                    Some(url) => format!("[store]\nurl = \"{url}\"\nlease_secs = 3\n"),
                    None => "state = \"state/state.db\"".to_string(),
                },
                webhook = if webhooks {
                    "[webhook]\nsecret_env = \"L3MAP_WEBHOOK_SECRET\"\ntolerance_secs = 300\n"
                } else {
                    ""
                }
            ),
        )
        .expect("config");
        Stack {
            dir,
            tmp: Some(tmp),
            zendesk,
            salesforce,
            pubsub,
            runtime,
            emulate,
            run: None,
            http: reqwest::Client::new(),
            webhooks,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state/state.db")
    }

    pub fn mappings(&self) -> PathBuf {
        self.dir.join("mappings")
    }

    /// Starts `l3map run --config` and waits until it answers /healthz.
    pub async fn start_runtime(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("run.log"))
            .expect("log file");
        let mut run = Command::new(env!("CARGO_BIN_EXE_l3map"));
        run.stack_env();
        if !self.webhooks {
            run.env_remove("L3MAP_WEBHOOK_SECRET");
        }
        let child = run
            .args(["run", "--config"])
            .arg(self.dir.join("l3map.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("l3map run starts");
        self.run = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(r) = self
                .http
                .get(format!("{}/healthz", self.runtime))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.run.as_mut().map(|c| c.try_wait()) {
                panic!("l3map run exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "l3map run did not answer /healthz:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id of `l3map run` (to signal it, or read its CPU time).
    pub fn runtime_pid(&self) -> Option<u32> {
        self.run.as_ref().map(Child::id)
    }

    /// `kill -9`: no shutdown, no flush, nothing finished.
    pub fn kill_runtime(&mut self) {
        if let Some(mut c) = self.run.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit: a graceful shutdown.
    pub fn terminate_runtime(&mut self) -> std::process::ExitStatus {
        let mut c = self.run.take().expect("a running runtime");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("exits")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    pub async fn health(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/healthz", self.runtime))
            .send()
            .await
            .expect("healthz")
            .json()
            .await
            .expect("json")
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.runtime))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The sum of a metric's samples whose line contains every one of
    /// `has` (0 when none).
    pub async fn metric_sum(&self, name: &str, has: &[&str]) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(name) && has.iter().all(|h| l.contains(h)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The Zendesk emulator's request counts (`/__l3map/stats`).
    pub async fn zendesk_stats(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/__l3map/stats", self.zendesk))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    /// A Salesforce access token from the emulator, as the runtime gets
    /// one (a test reads and writes records with it).
    pub async fn sf_token(&self) -> String {
        let v: serde_json::Value = self
            .http
            .post(format!("{}/services/oauth2/token", self.salesforce))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "l3map-emulator-client"),
                ("client_secret", "l3map-emulator-secret"),
                ("refresh_token", "l3map-emulator-refresh"),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        v["access_token"].as_str().expect("a token").to_string()
    }

    /// Restarts the runtime from a fresh store with Change Data Capture on
    /// against the emulator's Pub/Sub port (known only once the emulator
    /// runs), Salesforce polling off and Zendesk polled every
    /// `zendesk_secs`, then `extra`; the `[poll]` block the stack started
    /// with (`started`) is replaced. Returns once `channel`'s stream
    /// (`AccountChangeEvent`, ...) is up.
    pub async fn restart_with_cdc(
        &mut self,
        started: &str,
        zendesk_secs: u64,
        extra: &str,
        channel: &str,
    ) {
        self.kill_runtime();
        let toml = self.dir.join("l3map.toml");
        let cdc = format!(
            "[poll]\nzendesk_interval_secs = {zendesk_secs}\nsalesforce_interval_secs = 0\n\n\
             [cdc]\nenabled = true\nendpoint = \"{}\"\n{extra}",
            self.pubsub
        );
        let text = std::fs::read_to_string(&toml).expect("l3map.toml");
        assert!(text.contains(started), "{text}");
        std::fs::write(&toml, text.replace(started, &cdc)).expect("l3map.toml");
        // A fresh store: the first start subscribes from LATEST.
        let _ = std::fs::remove_dir_all(self.dir.join("state"));
        self.start_runtime().await;
        self.stream_up(channel).await;
    }

    /// Waits until the CDC stream of `channel` is up.
    pub async fn stream_up(&self, channel: &str) {
        super::eventually("the CDC stream is up", Duration::from_secs(20), || async {
            let m = self.metrics().await;
            if m.lines().any(|l| {
                l.starts_with("l3map_cdc_stream_up") && l.contains(channel) && l.ends_with(" 1")
            }) {
                Ok(())
            } else {
                Err(m
                    .lines()
                    .filter(|l| l.contains("cdc"))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        })
        .await;
    }

    /// Waits until the outbox has nothing pending or in flight.
    pub async fn drained(&self, within: Duration) {
        super::eventually("the outbox to drain", within, || async {
            let h = self.health().await;
            let o = &h["outbox"];
            if o["pending"] == 0 && o["sending"] == 0 {
                Ok(())
            } else {
                Err(h.to_string())
            }
        })
        .await
    }

    /// A Zendesk API call on the emulator, as a person or another tool.
    pub async fn zendesk(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.zendesk))
            .bearer_auth(DEV_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("zendesk emulator");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    /// Creates a ticket on the emulator as a person would, with the
    /// fintech desk's SLA tier and, optionally, its dispute type.
    pub async fn create_ticket(&self, subject: &str, tier: &str, dispute: Option<&str>) -> u64 {
        let mut fields = vec![serde_json::json!({"id": SLA_TIER, "value": tier})];
        if let Some(d) = dispute {
            fields.push(serde_json::json!({"id": DISPUTE_TYPE, "value": d}));
        }
        let t = self
            .zendesk(
                reqwest::Method::POST,
                "/api/v2/tickets.json",
                Some(serde_json::json!({"ticket": {
                    "subject": subject,
                    "comment": {"body": subject},
                    "custom_fields": fields
                }})),
            )
            .await;
        t["ticket"]["id"].as_u64().expect("ticket id")
    }

    /// A ticket as the Zendesk emulator has it now.
    pub async fn ticket(&self, id: u64) -> serde_json::Value {
        self.zendesk(
            reqwest::Method::GET,
            &format!("/api/v2/tickets/{id}.json"),
            None,
        )
        .await["ticket"]
            .clone()
    }

    /// How many writes (PUTs) the Zendesk emulator took for a ticket.
    pub async fn ticket_writes(&self, id: u64) -> usize {
        let log = self
            .zendesk(
                reqwest::Method::GET,
                &format!("/__l3map/requests?path=/api/v2/tickets/{id}.json"),
                None,
            )
            .await;
        log["requests"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|e| e["method"] == "PUT").count())
    }

    /// The bodies of a ticket's private comments (the hand-off notes).
    pub async fn private_notes(&self, ticket: u64) -> Vec<String> {
        self.comments(ticket)
            .await
            .iter()
            .filter(|c| c["public"] == false)
            .filter_map(|c| c["body"].as_str().map(str::to_string))
            .collect()
    }

    pub async fn comments(&self, ticket: u64) -> Vec<serde_json::Value> {
        let v = self
            .zendesk(
                reqwest::Method::GET,
                &format!("/api/v2/tickets/{ticket}/comments.json"),
                None,
            )
            .await;
        v["comments"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_runtime();
        let _ = self.emulate.kill();
        let _ = self.emulate.wait();
        if let Some(tmp) = self.tmp.take() {
            keep_on_panic(tmp);
        }
    }
}
