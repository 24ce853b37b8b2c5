"""A real MCP server for the MCP toolset tests, written with the ``mcp`` SDK.

``python -m tests.mcp_servers stdio`` serves it over stdio; ``python -m tests.mcp_servers http PORT``
over streamable HTTP. Each tool that runs appends a line to the file named by ``MCP_LOG``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("ledger")


def _log(line: str) -> None:
    if path := os.environ.get("MCP_LOG"):
        with open(path, "a") as f:
            f.write(line + "\n")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def search_docs(query: str) -> str:
    """Search the ledger's documentation."""
    _log(f"search_docs {query}")
    return f"docs about {query}"


@server.tool(name="SearchAgno", annotations=ToolAnnotations(read_only_hint=True))
def search_agno(query: str) -> str:
    """Search Agno's documentation (the tool Agno's MCP cookbook example confirms)."""
    _log(f"SearchAgno {query}")
    return f"Agno is a framework for agents ({query})"


@server.tool()
def transfer(amount: int, to: str) -> str:
    """Move money to an account."""
    _log(f"transfer {amount} {to}")
    return f"sent {amount} to {to}"


@server.tool()
async def slow_transfer(amount: int, seconds: float) -> str:
    """Move money, slowly."""
    _log(f"slow_transfer {amount} started")
    await anyio.sleep(seconds)
    _log(f"slow_transfer {amount} done")
    return f"sent {amount} slowly"


@server.tool(name="bad name!", annotations=ToolAnnotations(read_only_hint=True))
def bad_name() -> str:
    """A name no model API accepts."""
    return "never offered"


@server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True))
def delete_record(record: int) -> str:
    """Delete a ledger record."""
    _log(f"delete_record {record}")
    return f"deleted {record}"


@server.tool(annotations=ToolAnnotations(idempotent_hint=True))
def flaky(what: str) -> str:
    """Fails on the server's side."""
    _log(f"flaky {what}")
    raise ValueError(f"the ledger is closed for {what}")


@server.tool(annotations=ToolAnnotations(idempotent_hint=True))
def crash_once(token: str) -> str:
    """Kills the server the first time it is called with a token; answers the second."""
    marker = Path(os.environ.get("MCP_LOG", "/tmp/mcp.log") + f".{token}")
    if not marker.exists():
        marker.touch()
        _log(f"crash_once {token} (died)")
        os._exit(3)
    _log(f"crash_once {token}")
    return f"survived {token}"


@server.tool()
def add_tool(name: str) -> str:
    """Adds a tool named ``name`` to this server (how a server grows mid-run)."""

    def late(note: str) -> str:
        _log(f"{name} {note}")
        return f"{name} ran with {note}"

    server.add_tool(late, name=name, description="Added while the server ran.")
    return f"added {name}"


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
