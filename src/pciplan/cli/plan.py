"""``pciplan plan``: fill in every PCI controller and address."""

from __future__ import annotations

import sys

import click

from ..errors import PciplanError
from . import echo_err, guarded, one_line


@click.command("plan")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("-o", "--output", "output", metavar="OUT", help="Write the planned document to OUT.")
@click.option("--in-place", is_flag=True, help="Replace FILE with the planned document (atomically).")
@click.option("--hotplug-ports", type=click.IntRange(0, 255), metavar="N",
              help="Leave at least N empty hot-pluggable slots (added after every device is placed).")
@click.option("--placement", type=click.Choice(["libvirt", "flat"]), default="libvirt", show_default=True,
              help="flat: put every endpoint directly on the root bus (integrated, no hotplug).")
@click.option("--capacity", type=click.Choice(["libvirt", "max"]), default="libvirt", show_default=True,
              help="max: where libvirt runs out of slots, add PCIe switches and nested bridges "
                   "up to the 256-bus limit.")
def command(files: tuple[str, ...], output: str | None, in_place: bool, hotplug_ports: int | None,
            placement: str, capacity: str) -> None:
    """Fill in every PCI controller and address of a domain XML (FILE, or - for stdin).

    With --in-place, several FILEs may be given: each is replaced by its plan
    (atomically); one that cannot be planned is left as it was, with an error
    line naming it, and the others are still planned.

    Exit status: 0 planned, 1 the configuration cannot be planned (libvirt 9.0
    would refuse it), 2 usage error or input that is not a domain document
    (with several files, the highest of them).
    """
    from .. import api, fileio, xmlio
    from ..planner import Options

    file = files[0] if files else "-"
    if in_place and output:
        raise click.UsageError("--in-place and -o/--output cannot be used together")
    if in_place and "-" in (files or ("-",)):
        raise click.UsageError("--in-place needs a FILE")
    if len(files) > 1 and not in_place:
        raise click.UsageError("several FILEs need --in-place (each file is replaced by its plan)")
    options = Options(hotplug_ports=hotplug_ports, placement=placement, capacity=capacity)

    def plan_one(path: str, target: str | None, label: str) -> None:
        data = fileio.read_input(path)
        doc = xmlio.load(data)
        plan = api.plan_document(doc, options)
        out = xmlio.dump(doc)
        fileio.write_output(out, target)
        for w in plan.warnings:
            click.echo(f"warning: {label}{w}", err=True)

    if len(files) <= 1:
        guarded(lambda: plan_one(file, file if in_place else output, ""))
        return

    def run_all() -> int:
        status = 0
        for path in files:
            try:
                plan_one(path, path, f"{path}: ")
            except PciplanError as err:
                echo_err(f"error: {one_line(f'{path}: {err}')}")
                status = max(status, err.exit_status)
        return status

    sys.exit(guarded(run_all))
