"""The official MCP Python SDK against the real l3map binary, driven by
tests/mcp_sdks.rs: one JSON line per step on stdout; the Rust test reads
them, edits the mappings when it sees {"step": "ready"}, and asserts.

    python client.py http  <url>   <token>  <ticket>
    python client.py stdio <l3map> <config> <ticket>
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def out(**kw):
    print(json.dumps(kw, default=str), flush=True)


async def main():
    mode, a, b, ticket = sys.argv[1:5]
    if mode == "http":
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {b}"}, timeout=60)
        server = streamable_http_client(a, http_client=http)
    else:
        # The runtime reads its credentials from the environment.
        server = StdioServerParameters(command=a, args=["mcp", "--config", b], env=dict(os.environ))
    async with Client(server) as c:
        out(step="connected", version=str(getattr(c.session, "protocol_version", "")))

        async def call(name, args):
            r = await c.call_tool(name, args)
            text = r.content[0].text if r.content else None
            return {"isError": bool(r.is_error), "structured": r.structured_content, "text": text}

        tools = await c.list_tools()
        status = next(t for t in tools.tools if t.name == "request_status_change")
        out(step="tools", names=[t.name for t in tools.tools],
            statuses=status.input_schema["properties"]["status"].get("enum", []))
        out(step="illegal", **await call("request_status_change", {"ticket": ticket, "status": "closed"}))
        legal = {"ticket": ticket, "status": "in_progress", "idempotency_key": f"py-{mode}-1"}
        out(step="legal", **await call("request_status_change", legal))
        out(step="retry", **await call("request_status_change", legal))
        out(step="context", **await call("get_ticket_context", {"ticket": ticket}))
        out(step="field", **await call("set_ticket_field", {"ticket": ticket, "fields": {"preferred_channel": "chat"}}))
        out(step="sku", **await call("normalise_sku", {"product": "Platinum card"}))
        out(step="escalate", **await call("escalate", {
            "ticket": ticket, "escalation": "suspected_fraud", "intent": "fraud_report",
            "summary": "Card used abroad", "attempts": ["froze the card"], "sentiment": "negative"}))
        out(step="turn", **await call("submit_turn", {"ticket": ticket, "intent": "question", "turn_id": f"py-{mode}-turn"}))
        first = await call("request_status_change", {"ticket": ticket, "status": "closed"})
        out(step="explain", **await call("explain_decision", {"call_id": first["structured"]["call_id"]}))
        try:
            r = await c.call_tool("no_such_tool", {})
            out(step="unknown", refused=bool(r.is_error), message=str(r.content[0].text if r.content else ""))
        except Exception as e:  # a protocol error
            out(step="unknown", refused=True, message=str(e))
        async with c.listen(tools_list_changed=True) as sub:
            out(step="ready")

            async def first_event():
                async for _ in sub:
                    return True
                return False

            await asyncio.wait_for(first_event(), timeout=30)
        after = await c.list_tools(cache_mode="refresh")
        esc = next(t for t in after.tools if t.name == "escalate")
        out(step="list_changed", escalations=esc.input_schema["properties"]["escalation"].get("enum", []))
    out(step="done")


asyncio.run(main())
