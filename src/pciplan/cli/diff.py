"""``pciplan diff``: the guest-visible PCI changes between two domain XMLs."""

from __future__ import annotations

import sys

import click

from . import error, no_host_probe


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON (schema diff-v1).")
@no_host_probe
def command(old: str, new: str, as_json: bool, no_host_probe: bool) -> None:
    """List the guest-visible PCI changes from OLD to NEW (domain XML files; one may be -).

    Both documents are planned in memory first, so an unplanned NEW is compared
    as libvirt 9.0 would lay it out.  Devices are matched by identity (disk
    target, NIC MAC, hostdev source, controller type and index...), not by
    position.

    Exit status: 0 the guest-visible PCI layout is the same, 1 it differs,
    2 usage error or an input that cannot be read or planned.
    """
    from .. import api, diff, fileio, xmlio
    from ..errors import PciplanError
    from ..planner import Options

    if old == "-" and new == "-":
        raise click.UsageError("only one of OLD and NEW can be standard input")

    def load(path: str):
        where = "<stdin>" if path == "-" else path
        try:
            doc = xmlio.load(fileio.read_input(path))
            plan = api.plan_document(doc, Options(probe_host=not no_host_probe))
        except PciplanError as err:
            # read errors already name the file
            error(str(err) if err.element == path else f"{where}: {err}", 2)
        except RecursionError:
            error(f"{where}: document nested too deeply", 2)
        name = doc.tree.getroot().findtext("name")
        return plan, (name.strip() if name else None)

    old_plan, old_name = load(old)
    new_plan, new_name = load(new)
    changes = diff.compare(old_plan, new_plan)
    if as_json:
        import json
        click.echo(json.dumps(diff.to_data(changes, old_name, new_name), indent=2))
    else:
        click.echo(diff.to_text(changes), nl=False)
    sys.exit(1 if changes else 0)
