"""``warden mcp``: the guarded browser as a Model Context Protocol server (see docs/mcp.md)."""
