"""Warden's runner: composes missions, guards, the browser and evidence into a run (CLI, step loop, driver)."""

from kernel import __version__

__all__ = ["__version__"]
