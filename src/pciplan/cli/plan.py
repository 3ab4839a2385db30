"""``pciplan plan``: fill in every PCI controller and address."""

from __future__ import annotations

import click

from . import guarded


@click.command("plan")
@click.argument("file", required=False, default="-")
@click.option("-o", "--output", "output", metavar="OUT", help="Write the planned document to OUT.")
@click.option("--in-place", is_flag=True, help="Replace FILE with the planned document (atomically).")
def command(file: str, output: str | None, in_place: bool) -> None:
    """Fill in every PCI controller and address of a domain XML (FILE, or - for stdin)."""
    from .. import api, fileio, xmlio

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
