"""``pciplan check``: lint a domain's PCI layout without changing anything."""

from __future__ import annotations

import sys

import click

from . import guarded


@click.command("check")
@click.argument("file", required=False, default="-")
@click.option("--strict", is_flag=True, help="Warnings make the exit status 1 too.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (schema check-v1).")
def command(file: str, strict: bool, as_json: bool) -> None:
    """Check the PCI layout of a domain XML (FILE, or - for stdin); changes nothing.

    Errors are what libvirt 9.0 would refuse (what `pciplan plan` refuses).
    Warnings are layouts libvirt accepts that are probably not what you want:
    PCIe/virtio devices on conventional PCI, x86-only controllers on other
    architectures, devices on pcie-root, no free hot-pluggable slot, IO space
    or bus numbers running out, multifunction mistakes.  Each comes with a
    stable code, why it matters and how to fix it.

    Exit status: 0 no error (and no warning with --strict), 1 errors (or
    warnings with --strict), 2 usage error or input that is not a domain document.
    """
    from .. import check, fileio

    def run() -> int:
        report = check.check(fileio.read_input(file))
        if as_json:
            import json
            click.echo(json.dumps(check.to_data(report, strict), indent=2))
        else:
            click.echo(check.to_text(report), nl=False)
        return report.exit_status(strict)

    sys.exit(guarded(run))
