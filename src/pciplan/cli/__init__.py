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
import os
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


#: the longest error line printed; longer ones (a huge attribute value...) are cut in the middle
MAX_ERROR = 1000


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters escaped, length bounded."""
    out = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    if len(out) > MAX_ERROR:
        half = MAX_ERROR // 2
        out = f"{out[:half]}...[{len(out) - 2 * half} characters]...{out[-half:]}"
    return out


def error(message: str, status: int) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(status)


def fail(err: PciplanError) -> NoReturn:
    error(str(err), err.exit_status)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn pciplan errors into ``error: ...`` and their exit status."""
    try:
        return fn()
    except PciplanError as err:
        fail(err)
    except RecursionError:
        error("document nested too deeply", 2)


def _internal(exc: BaseException) -> NoReturn:
    """The last line of defence: an unexpected exception is a pciplan bug, reported in one
    line (PCIPLAN_DEBUG=1 shows the traceback instead)."""
    if os.environ.get("PCIPLAN_DEBUG"):
        raise exc
    error(f"internal error: {type(exc).__name__}: {exc} (a pciplan bug: please report it "
          "with the input)", INTERNAL_ERROR)


#: exit status of an internal error (a bug): like an unusable input, nothing was written
INTERNAL_ERROR = 2


def _broken_pipe() -> NoReturn:
    """The reader of our output went away (``pciplan plan x | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(1)


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
        except PciplanError as err:
            fail(err)
        except RecursionError:
            error("document nested too deeply", 2)
        except MemoryError:
            error("out of memory", 2)
        except BrokenPipeError:
            _broken_pipe()
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - anything else is a bug: one line, no traceback
            _internal(exc)

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
