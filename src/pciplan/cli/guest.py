"""``pciplan verify --guest``: the options and the run, for ``cli/qemu.py``'s ``verify`` to call.

``verify`` takes the options with ``@guest_options`` and, when ``--guest`` (or
``--kernel``) is given, hands its planned topology to ``run_guest``, which
returns the exit status.  ``command`` is the same check as a standalone click
command (``pciplan verify --guest`` without the QMP part), used by the tests.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from . import guarded

GUEST_OPTION_NAMES = ("guest", "kernel", "initrd", "guest_append", "guest_timeout", "guest_log")

_GUEST_OPTIONS = [
    click.option("--guest", is_flag=True,
                 help="Boot a small Linux guest (TCG) on the plan and check from inside: every device "
                      "at its planned address, its IDs, and its interrupt mode (docs/guest-verify.md)."),
    click.option("--kernel", type=click.Path(dir_okay=False), metavar="FILE",
                 help="With --guest: boot this kernel instead of Debian's (implies --guest)."),
    click.option("--initrd", type=click.Path(dir_okay=False), metavar="FILE",
                 help="With --kernel: an initramfs with busybox (and the driver modules); "
                      "pciplan's /init is appended to it."),
    click.option("--append", "guest_append", metavar="ARGS", default="",
                 help="With --guest: extra guest kernel command line (e.g. pci=nomsi)."),
    click.option("--guest-timeout", type=click.FloatRange(5, 3600), default=180.0, show_default=True,
                 metavar="SECONDS", help="With --guest: kill the guest after this long."),
    click.option("--guest-log", type=click.Path(dir_okay=False), metavar="FILE",
                 help="With --guest: write the guest's serial console to FILE."),
]


def guest_options(fn):
    """Add the ``--guest`` options to a click command."""
    for opt in reversed(_GUEST_OPTIONS):
        fn = opt(fn)
    return fn


def wants_guest(opts: dict[str, Any]) -> bool:
    return bool(opts.get("guest") or opts.get("kernel") or opts.get("initrd"))


def pop_guest_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the guest options out of a command's keyword arguments."""
    return {k: kwargs.pop(k) for k in GUEST_OPTION_NAMES if k in kwargs}


def run_guest(topo, *, guest: bool = True, kernel: str | None = None, initrd: str | None = None,
              guest_append: str = "", guest_timeout: float = 180.0, guest_log: str | None = None,
              qemu: str | None = None, verbose: bool = False) -> int:
    """Boot the guest on ``topo``, print the report; 0 all as planned, 1 a problem."""
    from .. import guest as guest_mod

    if initrd and not kernel:
        raise click.UsageError("--initrd needs --kernel")
    img = guest_mod.image_for(topo.arch, kernel, initrd,
                              log=lambda msg: click.echo(f"pciplan: {msg}", err=True))
    try:
        v = guest_mod.verify_guest(topo, img=img, append=guest_append, timeout=guest_timeout, qemu=qemu)
    except guest_mod.GuestError as err:
        if guest_log and err.console:
            with open(guest_log, "w") as f:
                f.write(err.console)
        raise
    if guest_log:
        with open(guest_log, "w") as f:
            f.write(v.boot.console)
    if verbose:
        import shlex
        click.echo("qemu: " + " ".join(shlex.quote(a) for a in v.boot.argv), err=True)
    click.echo(guest_mod.format_report(v, verbose=verbose))
    return 0 if v.ok else 1


def _sigterm(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt


def guarded_run(fn) -> int:
    """``guarded`` plus Ctrl-C/SIGTERM: the guest is always stopped, exit 2."""
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return guarded(fn)
    except KeyboardInterrupt:
        click.echo("error: interrupted (guest stopped)", err=True)
        sys.exit(2)
    finally:
        signal.signal(signal.SIGTERM, old)


@click.command("verify-guest")
@click.argument("file", required=False, default="-")
@click.option("--qemu", "qemu", metavar="BINARY", help="QEMU system emulator to run.")
@click.option("-v", "--verbose", is_flag=True, help="Show the QEMU command line and capabilities.")
@click.option("--hotplug-ports", type=click.IntRange(0, 255), metavar="N",
              help="Plan with at least N empty hot-pluggable slots (as pciplan plan).")
@click.option("--placement", type=click.Choice(["libvirt", "flat"]), default="libvirt", show_default=True)
@click.option("--capacity", type=click.Choice(["libvirt", "max"]), default="libvirt", show_default=True)
@guest_options
def command(file: str, qemu: str | None, verbose: bool, hotplug_ports: int | None, placement: str,
            capacity: str, **opts: Any) -> None:
    """Boot a Linux guest on the plan of FILE and check every device from inside.

    Exit status: 0 every device where planned (virtio and PCIe endpoints on
    MSI-X), 1 a difference (or the domain cannot be planned), 2 bad input or
    the guest could not be run.
    """
    def run() -> int:
        from .. import api, fileio, topology, xmlio
        from ..planner import Options

        doc = xmlio.load(fileio.read_input(file))
        plan = api.plan_document(doc, Options(hotplug_ports=hotplug_ports, placement=placement,
                                              capacity=capacity))
        opts["guest"] = True
        return run_guest(topology.build(plan), qemu=qemu, verbose=verbose, **opts)

    sys.exit(guarded_run(run))
