"""The ``pciplan`` command line: a thin edge over the library.

Each subcommand lives in its own module of this package and is imported only
when it runs, so ``pciplan plan`` starts fast.  Errors become one line on
stderr and an exit status:

* 0  planned / OK / no difference,
* 1  the configuration cannot be planned (``plan``), or a difference or a
     problem was found (``diff``, ``check``, ``verify``),
* 2  usage error, unreadable input, not XML, or not a ``<domain>``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable, NoReturn, TypeVar

import click

from ..errors import PciplanError

T = TypeVar("T")

#: subcommand -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "plan": "pciplan.cli.plan:command",
    "tree": "pciplan.cli.tree:command",
    "diff": "pciplan.cli.diff:command",
    "check": "pciplan.cli.check:command",
    "qemu-args": "pciplan.cli.qemu:qemu_args",
    "verify": "pciplan.cli.qemu:verify",
    "hotplug": "pciplan.cli.hotplug:command",
}


def fail(err: PciplanError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(err.exit_status)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn pciplan errors into ``error: ...`` and their exit status."""
    try:
        return fn()
    except PciplanError as err:
        fail(err)
    except RecursionError:
        click.echo("error: document nested too deeply", err=True)
        sys.exit(2)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not self._available(name):
            return None
        module, attr = target.split(":")
        cmd: Any = getattr(importlib.import_module(module), attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pciplan")
def main() -> None:
    """Plan the PCI/PCIe topology of QEMU/KVM guests as libvirt 9.0 does."""
