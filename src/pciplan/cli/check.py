"""``pciplan check``: lint a domain's PCI layout without changing anything."""

from __future__ import annotations

import sys

import click

from . import each_file, guarded, no_host_probe


@click.command("check")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("--strict", is_flag=True, help="Warnings make the exit status 1 too.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (schema check-v1).")
@no_host_probe
def command(files: tuple[str, ...], strict: bool, as_json: bool, no_host_probe: bool) -> None:
    """Check the PCI layout of domain XML files (none or - for stdin); changes nothing.

    Errors are what libvirt 9.0 would refuse (what `pciplan plan` refuses).
    Warnings are layouts libvirt accepts that are probably not what you want:
    PCIe/virtio devices on conventional PCI, x86-only controllers on other
    architectures, devices on pcie-root, no free hot-pluggable slot, IO space
    or bus numbers running out, multifunction mistakes.  Each comes with a
    stable code, why it matters and how to fix it.

    With several files, each line of a finding starts with its file, and --json
    prints a list of reports, each with its "file".  A file that is not a
    domain document gets an error line on stderr and the others are checked.

    Exit status: 0 no error (and no warning with --strict), 1 errors (or
    warnings with --strict), 2 usage error or an input that is not a domain
    document (the highest of all files).
    """
    from .. import check, fileio
    from ..planner import Options

    options = Options(probe_host=not no_host_probe)

    if len(files) <= 1:
        file = files[0] if files else "-"

        def run() -> int:
            report = check.check(fileio.read_input(file), options)
            if as_json:
                import json
                click.echo(json.dumps(check.to_data(report, strict), indent=2))
            else:
                click.echo(check.to_text(report), nl=False)
            return report.exit_status(strict)

        sys.exit(guarded(run))

    def run_all() -> int:
        errors = warnings = 0
        reports = []

        def check_one(file: str) -> int:
            nonlocal errors, warnings
            report = check.check(fileio.read_input(file), options)
            errors += len(report.errors)
            warnings += len(report.warnings)
            if as_json:
                reports.append(check.to_data(report, strict, file))
            else:
                click.echo(check.to_text(report, file), nl=False)
            return report.exit_status(strict)

        status, unread = each_file(files, check_one)
        if as_json:
            import json
            click.echo(json.dumps(reports, indent=2))
        else:
            checked = len(files) - unread
            tail = f"; {unread} not checked (see the errors above)" if unread else ""
            click.echo(f"{checked} file{'s' if checked != 1 else ''}: {check.counts(errors, warnings)}{tail}.")
        return status

    sys.exit(guarded(run_all))
