"""The ``pciplan`` command line.  A thin edge: parse arguments, call the library,
map errors to one line on stderr and an exit status.

Exit status: 0 planned / OK, 1 the configuration cannot be planned (or, for
``diff`` and ``check``, a difference or a problem was found), 2 usage error,
unreadable input, not XML, or not a ``<domain>``.
"""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

import click

from .errors import PciplanError

T = TypeVar("T")


def fail(err: PciplanError) -> "NoReturn":  # type: ignore[name-defined]
    click.echo(f"error: {err}", err=True)
    sys.exit(err.exit_status)


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except PciplanError as err:
        fail(err)
    except RecursionError:
        click.echo("error: document nested too deeply", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pciplan")
def main() -> None:
    """Plan the PCI/PCIe topology of QEMU/KVM guests as libvirt 9.0 does."""


@main.command()
@click.argument("file", required=False, default="-")
@click.option("-o", "--output", "output", metavar="OUT", help="Write the planned document to OUT.")
@click.option("--in-place", is_flag=True, help="Replace FILE with the planned document (atomically).")
def plan(file: str, output: str | None, in_place: bool) -> None:
    """Fill in every PCI controller and address of a domain XML (FILE or - for stdin)."""
    from . import api, fileio, xmlio

    if in_place and output:
        raise click.UsageError("--in-place and -o/--output cannot be used together")
    if in_place and file == "-":
        raise click.UsageError("--in-place needs a FILE")

    def run() -> None:
        data = fileio.read_input(file)
        doc = xmlio.load(data)
        api.plan_document(doc)
        out = xmlio.dump(doc)
        if not out.endswith(b"\n"):
            out += b"\n"
        fileio.write_output(out, file if in_place else output)

    guarded(run)


if __name__ == "__main__":  # pragma: no cover
    main()
