"""The click group of the ``pciplan`` command (imported on first use, see ``__init__``)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from .. import __version__
from . import COMMANDS, HANDLED, exit_for


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except HANDLED as exc:
            exit_for(exc)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not self._available(name):
            return None
        module, attr = target.split(":")
        cmd: Any = getattr(importlib.import_module(module), attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, package_name="pciplan")
def main() -> None:
    """Plan the PCI/PCIe topology of QEMU/KVM guests as libvirt 9.0 does."""
