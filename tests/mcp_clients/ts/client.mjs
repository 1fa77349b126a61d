// The official MCP TypeScript SDK against the real l3map binary, driven by
// tests/mcp_sdks.rs: one JSON line per step on stdout; the Rust test reads
// them, edits the mappings when it sees {"step":"ready"}, and asserts.
//
//   node client.mjs http  <url> <token>     <ticket>
//   node client.mjs stdio <l3map> <config>  <ticket>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [mode, a, b, ticket] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const transport =
  mode === "http"
    ? new StreamableHTTPClientTransport(new URL(a), {
        requestInit: { headers: { Authorization: `Bearer ${b}` } },
      })
    : new StdioClientTransport({
        command: a,
        args: ["mcp", "--config", b],
        // The runtime reads its credentials from the environment.
        env: process.env,
        stderr: "ignore",
      });
const client = new Client({ name: "l3map-ts-sdk-test", version: "1.0.0" });
let heard;
const changed = new Promise((r) => (heard = r));
client.setNotificationHandler(ToolListChangedNotificationSchema, () => heard());
await client.connect(transport);
out({ step: "connected", version: client.getServerVersion()?.name });

const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  return { isError: r.isError === true, structured: r.structuredContent ?? null, text: r.content?.[0]?.text ?? null };
};

const tools = await client.listTools();
out({ step: "tools", names: tools.tools.map((t) => t.name),
      statuses: tools.tools.find((t) => t.name === "request_status_change")?.inputSchema?.properties?.status?.enum ?? [] });
out({ step: "illegal", ...(await call("request_status_change", { ticket, status: "closed" })) });
const legal = { ticket, status: "in_progress", idempotency_key: `ts-${mode}-1` };
out({ step: "legal", ...(await call("request_status_change", legal)) });
out({ step: "retry", ...(await call("request_status_change", legal)) });
out({ step: "context", ...(await call("get_ticket_context", { ticket })) });
out({ step: "field", ...(await call("set_ticket_field", { ticket, fields: { preferred_channel: "chat" } })) });
out({ step: "sku", ...(await call("normalise_sku", { product: "Platinum card" })) });
out({ step: "escalate", ...(await call("escalate", { ticket, escalation: "suspected_fraud",
  intent: "fraud_report", summary: "Card used abroad", attempts: ["froze the card"], sentiment: "negative" })) });
out({ step: "turn", ...(await call("submit_turn", { ticket, intent: "question", turn_id: `ts-${mode}-turn` })) });
const first = await call("request_status_change", { ticket, status: "closed" });
out({ step: "explain", ...(await call("explain_decision", { call_id: first.structured.call_id })) });
try {
  await client.callTool({ name: "no_such_tool", arguments: {} });
  out({ step: "unknown", refused: false });
} catch (e) {
  out({ step: "unknown", refused: true, message: String(e.message ?? e) });
}
out({ step: "ready" });
const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no list_changed within 30 s")), 30000));
await Promise.race([changed, timeout]);
const after = await client.listTools();
out({ step: "list_changed",
      escalations: after.tools.find((t) => t.name === "escalate")?.inputSchema?.properties?.escalation?.enum ?? [] });
await client.close();
out({ step: "done" });
process.exit(0);
