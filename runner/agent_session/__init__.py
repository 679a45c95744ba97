"""Agents drive the guarded browser: the tool calls (shared by ``warden mcp``) and the Python session API."""

from runner.agent_session.calls import AgentInfo, ToolResult
from runner.agent_session.live import SessionOptions
from runner.agent_session.session import GuardedSession, open_session

__all__ = ["AgentInfo", "GuardedSession", "SessionOptions", "ToolResult", "open_session"]
