//! `l3map mcp`: the runtime as `l3map run --config` starts it, and the MCP
//! server on stdin/stdout for a local agent (docs/MCP.md).

use super::run::production;
use super::service::{serve, Options};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct McpOptions {
    /// l3map.toml, as `l3map run` reads it (default: $L3MAP_CONFIG, else
    /// ./l3map.toml). Required: MCP serves a project's mappings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The agent to serve as: an [agents.NAME] of the configuration (its
    /// `tools` limit applies). Default: the only agent configured, else
    /// `local`, with every tool.
    #[arg(long)]
    pub agent: Option<String>,
}

/// `l3map mcp`: the runtime, and MCP on stdio.
pub fn mcp(o: McpOptions) -> u8 {
    serve(async move {
        match crate::runtime::config::discover(o.config.as_deref()) {
            Err(e) => Err(e.to_string()),
            Ok(None) => Err(
                "l3map mcp serves a project: name its l3map.toml with --config (docs/MCP.md)"
                    .into(),
            ),
            Ok(Some(cfg)) => {
                let agent = match (&o.agent, cfg.agents.len()) {
                    (Some(a), _) if !cfg.agents.contains_key(a) => {
                        return Err(format!(
                            "--agent {a}: no [agents.{a}] in the configuration (its agents: {})",
                            cfg.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                        ))
                    }
                    (Some(a), _) => a.clone(),
                    (None, 1) => cfg.agents.keys().next().cloned().unwrap_or_default(),
                    (None, _) => "local".to_string(),
                };
                let run = Options {
                    mappings: None,
                    config: o.config.clone(),
                    listen: None,
                    state: None,
                    serve: false,
                };
                production(cfg, run, Some(agent)).await
            }
        }
    })
}
