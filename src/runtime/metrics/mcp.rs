//! The MCP server's series: each tool call by tool and result. Both label
//! values come from fixed sets (the tool names l3map defines, the results
//! below), so no client can add series by calling a tool that does not
//! exist. Registered with the rest in `families.rs`; recorded here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Metrics;

/// What a tool call came to (`l3map_mcp_tool_calls_total{result}`):
/// `accepted` (every action queued, or a read answered), `partly_refused`,
/// `refused` (decided, nothing queued), `nothing_to_do`, `duplicate` (a
/// retry answered as the first call), `invalid` (arguments refused before
/// anything was read), `denied` (a tool the agent may not use), `error`
/// (Zendesk, Salesforce or the store failed; try again).
pub const MCP_RESULTS: [&str; 8] = [
    "accepted",
    "partly_refused",
    "refused",
    "nothing_to_do",
    "duplicate",
    "invalid",
    "denied",
    "error",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ToolLabels {
    pub(super) tool: String,
    pub(super) result: String,
}

#[derive(Debug, Default)]
pub(super) struct McpFamilies {
    calls: Family<ToolLabels, Counter>,
}

impl McpFamilies {
    pub(super) fn register(registry: &mut Registry) -> McpFamilies {
        let f = McpFamilies::default();
        registry.register(
            "l3map_mcp_tool_calls",
            "MCP tool calls, by tool and result: accepted, partly_refused, refused, nothing_to_do, duplicate, invalid, denied, error",
            f.calls.clone(),
        );
        f
    }
}

impl Metrics {
    /// `l3map_mcp_tool_calls_total{tool,result}`: `tool` one of
    /// [`crate::runtime::config::MCP_TOOLS`] (else `other`), `result` one
    /// of [`MCP_RESULTS`] (else `error`).
    pub fn mcp_call(&self, tool: &str, result: &str) {
        let tool = crate::runtime::config::MCP_TOOLS
            .iter()
            .find(|t| **t == tool)
            .map_or("other", |t| t);
        let result = MCP_RESULTS
            .iter()
            .find(|r| **r == result)
            .map_or("error", |r| r);
        self.0
            .mcp
            .calls
            .get_or_create(&ToolLabels {
                tool: tool.into(),
                result: result.into(),
            })
            .inc();
    }
}
