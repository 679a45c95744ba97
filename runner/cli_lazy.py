"""Subcommands imported only when they are named: ``warden run`` never loads the approvals queue's
ORM (SQLAlchemy) or the fleet's front end on its way to the browser's launch.

``warden --help`` still lists them (listing imports each one, once).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import ClassVar

import click


class LazyGroup(click.Group):
    """A ``click.Group`` whose ``lazy_commands`` (name → ``"module:attribute"``) load on first use."""

    lazy_commands: ClassVar[Mapping[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):  # a wrong table entry is a bug, said at once
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)
