"""Warden: run browser missions in a sandboxed Chromium and prove what they did."""

__version__ = "0.1.0"
