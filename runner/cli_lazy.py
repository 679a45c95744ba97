"""Subcommands imported only when they are named: ``warden run`` never loads the approvals queue's
ORM (SQLAlchemy) or the fleet's front end on its way to the browser's launch.

``warden --help`` still lists them (listing imports each one, once).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

import click


class _Commands(dict[str, click.Command]):
    """``group.commands``, where ``commands[name]`` of a lazy command not loaded yet loads it."""

    def __init__(self, group: LazyGroup, commands: Mapping[str, click.Command]) -> None:
        super().__init__(commands)
        self._group = group

    def __missing__(self, name: str) -> click.Command:
        command = self._group.load(name)
        if command is None:
            raise KeyError(name)
        return command


class LazyGroup(click.Group):
    """A ``click.Group`` whose ``lazy_commands`` (name → ``"module:attribute"``) load on first use."""

    lazy_commands: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self, self.commands)

    def load(self, cmd_name: str) -> click.Command | None:
        """The lazy command ``cmd_name``, imported and added (None if there is no such lazy command)."""
        if cmd_name not in self.lazy_commands:
            return None
        module, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # a wrong table entry is a bug, said at once
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self.load(cmd_name)
        return super().get_command(ctx, cmd_name)
