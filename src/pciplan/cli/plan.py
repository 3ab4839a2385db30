"""``pciplan plan``: fill in every PCI controller and address."""

from __future__ import annotations

import click

from . import guarded


@click.command("plan")
@click.argument("file", required=False, default="-")
@click.option("-o", "--output", "output", metavar="OUT", help="Write the planned document to OUT.")
@click.option("--in-place", is_flag=True, help="Replace FILE with the planned document (atomically).")
@click.option("--hotplug-ports", type=click.IntRange(0, 255), metavar="N",
              help="Leave at least N empty hot-pluggable slots (added after every device is placed).")
@click.option("--placement", type=click.Choice(["libvirt", "flat"]), default="libvirt", show_default=True,
              help="flat: put every endpoint directly on the root bus (integrated, no hotplug).")
@click.option("--capacity", type=click.Choice(["libvirt", "max"]), default="libvirt", show_default=True,
              help="max: where libvirt runs out of slots, add PCIe switches and nested bridges "
                   "up to the 256-bus limit.")
def command(file: str, output: str | None, in_place: bool, hotplug_ports: int | None,
            placement: str, capacity: str) -> None:
    """Fill in every PCI controller and address of a domain XML (FILE, or - for stdin).

    Exit status: 0 planned, 1 the configuration cannot be planned (libvirt 9.0
    would refuse it), 2 usage error or input that is not a domain document.
    """
    from .. import api, fileio, xmlio
    from ..planner import Options

    if in_place and output:
        raise click.UsageError("--in-place and -o/--output cannot be used together")
    if in_place and file == "-":
        raise click.UsageError("--in-place needs a FILE")
    options = Options(hotplug_ports=hotplug_ports, placement=placement, capacity=capacity)

    def run() -> None:
        data = fileio.read_input(file)
        doc = xmlio.load(data)
        plan = api.plan_document(doc, options)
        out = xmlio.dump(doc)
        fileio.write_output(out, file if in_place else output)
        for w in plan.warnings:
            click.echo(f"warning: {w}", err=True)

    guarded(run)
