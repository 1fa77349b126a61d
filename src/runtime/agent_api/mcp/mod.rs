//! The MCP server (docs/MCP.md): the agent API's decisions as Model
//! Context Protocol tools, over Streamable HTTP at `/mcp` (the same
//! listener and bearer tokens as the agent API) and over stdio
//! (`l3map mcp`). Every write goes through the mappings: a tool call is an
//! agent turn, decided, recorded and applied as one.
//!
//! Here the protocol's side: which agent asks, which tools it may see,
//! and telling clients when a reload changed them. Beside it: [`catalog`]
//! (the tools as the mappings define them), [`call`] (carrying a call
//! out), [`explain`] (`explain_decision`) and [`guide`] (resources and
//! prompts).

mod call;
pub mod catalog;
mod explain;
mod guide;
mod outcome;
pub(super) mod sessions;

use super::auth::AgentName;
use super::AgentApi;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::sync::Arc;

const LOG_TARGET: &str = "l3map::runtime::mcp";

/// One MCP server: per session over HTTP (a session is bound to the agent
/// that opened it), one for the process over stdio.
#[derive(Clone)]
pub struct Server {
    api: Arc<AgentApi>,
    /// stdio: the agent it serves as. HTTP: `None`, each request's bearer
    /// token says (the agent gate checked it before this saw the request).
    fixed: Option<String>,
}

impl Server {
    pub(super) fn new(api: Arc<AgentApi>, fixed: Option<String>) -> Server {
        Server { api, fixed }
    }

    /// Who asks: the stdio agent, or the one the bearer gate found for this
    /// request (a session's owner is held to it by `sessions::guard`).
    fn agent(&self, ext: &rmcp::model::Extensions) -> Result<String, McpError> {
        if let Some(a) = &self.fixed {
            return Ok(a.clone());
        }
        ext.get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<AgentName>())
            .map(|a| a.0.clone())
            .ok_or_else(|| {
                McpError::invalid_request("no agent: send Authorization: Bearer <token>", None)
            })
    }

    /// The tools `agent` may use (`[agents.NAME] tools`); `None`: all.
    fn allowed(&self, agent: &str) -> Option<Vec<String>> {
        self.api.app.agent_policy.tools.get(agent).cloned()
    }

    /// Sends `notifications/tools/list_changed` (with prompts and
    /// resources) each time a reload makes another revision live, until
    /// `send` fails (the client went away).
    async fn follow<F, Fut>(&self, send: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut revisions = self.api.app.engine.revisions();
        revisions.mark_unchanged();
        while revisions.changed().await.is_ok() {
            if !send().await {
                break;
            }
        }
    }
}

fn tool_result(o: outcome::Outcome) -> CallToolResult {
    if !o.structured {
        return CallToolResult::error(vec![rmcp::model::ContentBlock::text(o.value.to_string())]);
    }
    if o.is_error {
        CallToolResult::structured_error(o.value)
    } else {
        CallToolResult::structured(o.value)
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_prompts()
                .enable_prompts_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("l3map", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "l3map decides every change against the org's mappings: ask with these tools instead of writing to Zendesk or Salesforce yourself. A refusal says why and what is allowed; explain_decision quotes the rule.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let agent = self.agent(&context.extensions)?;
        let live = self.api.app.engine.live();
        let tools = catalog::tools(&live.program, self.allowed(&agent).as_deref());
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let live = self.api.app.engine.live();
        catalog::tools(&live.program, None)
            .into_iter()
            .find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let agent = self.agent(&context.extensions)?;
        let tool = request.name.to_string();
        let metrics = &self.api.app.engine.metrics;
        let known = crate::runtime::config::MCP_TOOLS.contains(&tool.as_str());
        let permitted = self.allowed(&agent).is_none_or(|a| a.contains(&tool));
        if !known || !permitted {
            metrics.mcp_call(&tool, "denied");
            tracing::warn!(target: LOG_TARGET, agent = %agent, tool = %tool.chars().take(64).collect::<String>(), "MCP tool refused: not a tool this agent may use");
            // A protocol error: the tool is not on the agent's list.
            return Err(McpError::invalid_params(
                format!(
                    "no tool {:?} for agent {agent}: call tools/list for the tools you may use",
                    tool.chars().take(64).collect::<String>()
                ),
                None,
            ));
        }
        let started = std::time::Instant::now();
        let outcome = match call::call(
            &self.api,
            &agent,
            &tool,
            request.arguments.unwrap_or_default(),
        )
        .await
        {
            Ok(o) => o,
            Err(f) => outcome::Outcome::failed(&f),
        };
        metrics.mcp_call(&tool, outcome.result);
        tracing::info!(
            target: LOG_TARGET,
            agent = %agent, tool = %tool, result = outcome.result,
            call = outcome.value.get("call_id").and_then(|c| c.as_str()).unwrap_or(""),
            latency_ms = started.elapsed().as_millis() as u64,
            "MCP tool call"
        );
        Ok(tool_result(outcome).into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.agent(&context.extensions)?;
        let live = self.api.app.engine.live();
        serde_json::from_value(guide::resources(&live.program))
            .map_err(|e| McpError::internal_error(e.to_string(), None))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.agent(&context.extensions)?;
        let live = self.api.app.engine.live();
        let found = guide::read(&live.program, &request.uri).ok_or_else(|| {
            McpError::resource_not_found(
                format!(
                    "no resource {:?}: resources/list names them",
                    request.uri.chars().take(200).collect::<String>()
                ),
                None,
            )
        })?;
        let r: ReadResourceResult = serde_json::from_value(found)
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(r.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.agent(&context.extensions)?;
        serde_json::from_value(guide::prompts())
            .map_err(|e| McpError::internal_error(e.to_string(), None))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.agent(&context.extensions)?;
        if request.name != "escalation_policy" {
            return Err(McpError::invalid_params(
                "no such prompt: prompts/list names them",
                None,
            ));
        }
        let live = self.api.app.engine.live();
        let r: GetPromptResult = serde_json::from_value(guide::policy(&live.program))
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(r.into())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // A session (2025-11-25 and before): its client hears of each
        // reload on its standalone stream for as long as it is open.
        let this = self.clone();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            this.follow(|| {
                let peer = peer.clone();
                async move {
                    peer.notify_tool_list_changed().await.is_ok()
                        && peer.notify_prompt_list_changed().await.is_ok()
                        && peer.notify_resource_list_changed().await.is_ok()
                }
            })
            .await;
        });
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        // Stateless (2026-07-28): a `subscriptions/listen` stream.
        let sink = context.sink().clone();
        tokio::select! {
            _ = context.cancelled() => {}
            _ = self.follow(|| {
                let sink = sink.clone();
                async move {
                    let _ = sink.notify_prompt_list_changed().await;
                    let _ = sink.notify_resource_list_changed().await;
                    sink.notify_tool_list_changed().await.is_ok()
                }
            }) => {}
        }
        Ok(())
    }
}

/// `/mcp`: the Streamable HTTP transport, sessions for clients of
/// 2025-11-25 and before, stateless for 2026-07-28. Behind the agents'
/// bearer gate, so the `Host` check meant for unauthenticated local
/// servers (DNS rebinding) is off: a request without a token never gets
/// here. Bodies are bounded by the gate before this reads them.
pub(super) fn service(
    api: Arc<AgentApi>,
    max_body: usize,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    Server,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    };
    let closing = api.app.engine.closing.child_token();
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body)
        .with_cancellation_token(closing);
    StreamableHttpService::new(
        move || Ok(Server::new(api.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// The longest line `l3map mcp` reads from stdin: a tool call is small.
const STDIO_LINE: usize = 4 * 1024 * 1024;

/// Serves MCP on stdin/stdout as `agent` until the client closes stdin or
/// the runtime stops. Nothing else may write to stdout meanwhile (logs go
/// to stderr). Lines reach the SDK only when they are JSON, within
/// [`STDIO_LINE`]: any other line is answered with a JSON-RPC parse error
/// (`-32700`) and the session goes on (the SDK would stop reading).
pub async fn serve_stdio(app: Arc<crate::runtime::app::App>, agent: String) -> Result<(), String> {
    use rmcp::ServiceExt;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let api = Arc::new(AgentApi {
        app: app.clone(),
        memo: super::idempotency::Memo::new(),
    });
    let (sdk_side, our_side) = tokio::io::duplex(256 * 1024);
    let (sdk_read, sdk_write) = tokio::io::split(sdk_side);
    let (from_sdk, mut to_sdk) = tokio::io::split(our_side);
    let (out, mut lines) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    // One writer to stdout, whole lines at a time.
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = lines.recv().await {
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let answers = {
        let out = out.clone();
        tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(from_sdk);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if out.send(line).await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let reader = tokio::spawn(async move {
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut line: Vec<u8> = Vec::new();
        let mut too_long = false;
        loop {
            let buf = match stdin.fill_buf().await {
                Ok([]) | Err(_) => break,
                Ok(b) => b,
            };
            let (chunk, ends) = match buf.iter().position(|&c| c == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if !too_long {
                if line.len() + chunk.len() > STDIO_LINE {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            let used = ends.unwrap_or(buf.len());
            stdin.consume(used);
            if ends.is_none() {
                continue;
            }
            let bad = if too_long {
                Some(format!("the message is longer than {STDIO_LINE} bytes"))
            } else if line.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                serde_json::from_slice::<serde_json::Value>(&line)
                    .err()
                    .map(|e| format!("not JSON: {e}"))
            };
            match bad {
                Some(why) => {
                    let answer = serde_json::json!({"jsonrpc": "2.0", "id": null,
                        "error": {"code": -32700, "message": why}});
                    let _ = out.send(format!("{answer}\n").into_bytes()).await;
                }
                None if !line.is_empty() => {
                    line.push(b'\n');
                    if to_sdk.write_all(&line).await.is_err() {
                        break;
                    }
                }
                None => {}
            }
            line.clear();
            too_long = false;
        }
        // stdin closed: so is the SDK's input.
        let _ = to_sdk.shutdown().await;
    });
    let server = Server::new(api, Some(agent));
    let running = server
        .serve_with_ct((sdk_read, sdk_write), app.engine.closing.child_token())
        .await
        .map_err(|e| format!("MCP over stdio: {e}"))?;
    let ended = running.waiting().await;
    reader.abort();
    let _ = answers.await;
    let _ = writer.await;
    ended
        .map(|_| ())
        .map_err(|e| format!("MCP over stdio: {e}"))
}
