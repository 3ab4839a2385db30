"""``pciplan plan``: fill in every PCI controller and address."""

from __future__ import annotations

import sys

import click

from . import each_file, guarded, no_host_probe, plan_file


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
@no_host_probe
def command(files: tuple[str, ...], output: str | None, in_place: bool, hotplug_ports: int | None,
            placement: str, capacity: str, no_host_probe: bool) -> None:
    """Fill in every PCI controller and address of a domain XML (FILE, or - for stdin).

    With --in-place, several FILEs may be given: each is replaced by its plan
    (atomically); one that cannot be planned is left as it was, with an error
    line naming it, and the others are still planned.

    Exit status: 0 planned, 1 the configuration cannot be planned (libvirt 9.0
    would refuse it), 2 usage error or input that is not a domain document
    (with several files, the highest of them).
    """
    from ..planner import Options

    file = files[0] if files else "-"
    if in_place and output:
        raise click.UsageError("--in-place and -o/--output cannot be used together")
    if in_place and "-" in (files or ("-",)):
        raise click.UsageError("--in-place needs a FILE")
    if len(files) > 1 and not in_place:
        raise click.UsageError("several FILEs need --in-place (each file is replaced by its plan)")
    options = Options(hotplug_ports=hotplug_ports, placement=placement, capacity=capacity,
                      probe_host=not no_host_probe)

    if len(files) <= 1:
        guarded(lambda: plan_file(file, file if in_place else output, options))
        return

    def plan_in_place(path: str) -> int:
        plan_file(path, path, options, f"{path}: ")
        return 0

    sys.exit(guarded(lambda: each_file(files, plan_in_place)[0]))
