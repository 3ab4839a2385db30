"""``pciplan qemu-args`` and ``pciplan verify``: the plan as a QEMU command line, checked by QEMU."""

from __future__ import annotations

import json
import signal
import sys

import click

from . import guarded, no_host_probe

try:  # ``--guest`` (boot Linux on the plan) lives in cli/guest.py when installed
    from .guest import guest_options, pop_guest_options, run_guest, wants_guest
except ImportError:  # pragma: no cover - without the guest check
    guest_options = None

_PLAN_OPTIONS = [
    click.option("--hotplug-ports", type=click.IntRange(0, 255), metavar="N",
                 help="Plan with at least N empty hot-pluggable slots (as pciplan plan)."),
    click.option("--placement", type=click.Choice(["libvirt", "flat"]), default="libvirt",
                 show_default=True, help="Placement policy (as pciplan plan)."),
    click.option("--capacity", type=click.Choice(["libvirt", "max"]), default="libvirt",
                 show_default=True, help="Capacity policy (as pciplan plan)."),
]


def _plan_options(fn):
    for opt in reversed([*_PLAN_OPTIONS, no_host_probe]):
        fn = opt(fn)
    return fn


def _topology(file: str, hotplug_ports: int | None, placement: str, capacity: str, no_host_probe: bool):
    from .. import api, fileio, topology, xmlio
    from ..planner import Options

    doc = xmlio.load(fileio.read_input(file))
    plan = api.plan_document(doc, Options(hotplug_ports=hotplug_ports, placement=placement,
                                          capacity=capacity, probe_host=not no_host_probe))
    for w in plan.warnings:
        click.echo(f"warning: {w}", err=True)
    return topology.build(plan)


@click.command("qemu-args")
@click.argument("file", required=False, default="-")
@click.option("--format", "fmt", type=click.Choice(["lines", "shell", "json"]), default="lines",
              show_default=True,
              help="lines: one option per line; shell: a runnable command line; json: see docs/qemu-args.md.")
@_plan_options
def qemu_args(file: str, fmt: str, hotplug_ports: int | None, placement: str, capacity: str,
              no_host_probe: bool) -> None:
    """The QEMU 7.2 -device arguments that realise the planned PCI topology of FILE.

    Controllers get id=pci.<index>; every endpoint is placed with bus= and addr=.
    Devices needing host resources get harmless backends or stand-ins of the same
    PCI kind (see docs/qemu-args.md).  Exit status: 0, 1 cannot be planned, 2 bad input.
    """
    from .. import qemuargs

    def run() -> None:
        cfg = qemuargs.build(_topology(file, hotplug_ports, placement, capacity, no_host_probe))
        if fmt == "json":
            click.echo(json.dumps(cfg.to_json(), indent=2))
        elif fmt == "shell":
            click.echo(cfg.shell())
        else:
            for line in cfg.lines():
                click.echo(line)

    guarded(run)


def _sigterm(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt


@click.command("verify")
@click.argument("file", required=False, default="-")
@click.option("--qemu", "qemu", metavar="BINARY",
              help="QEMU system emulator to run (default: qemu-system-<arch> on PATH).")
@click.option("--timeout", type=click.FloatRange(0.5, 600), default=20.0, show_default=True,
              help="Seconds to wait for QEMU at each step.")
@click.option("--no-hotplug", is_flag=True, help="Skip the hot-plug check.")
@click.option("--hotplug-limit", type=click.IntRange(1), default=64, show_default=True, metavar="N",
              help="Hot-plug into at most N empty slots (every hot-pluggable bus is tried at least once).")
@click.option("--hotplug-all", is_flag=True, help="Hot-plug into every empty hot-pluggable slot.")
@click.option("-v", "--verbose", is_flag=True, help="Show the QEMU command line and timings.")
@_plan_options
@(guest_options if guest_options is not None else (lambda f: f))
def verify(file: str, qemu: str | None, timeout: float, no_hotplug: bool, hotplug_limit: int,
           hotplug_all: bool, verbose: bool, hotplug_ports: int | None, placement: str, capacity: str,
           no_host_probe: bool, **guest_kwargs) -> None:
    """Start QEMU (TCG, paused) with the plan of FILE and check its PCI tree and hot-plug.

    Prints OK, or one line per difference between the plan and QEMU.
    Exit status: 0 OK, 1 differences (or the domain cannot be planned),
    2 bad input, QEMU missing or not answering, interrupted.
    """
    from .. import verify as verify_mod

    guest = pop_guest_options(guest_kwargs) if guest_options is not None else {}

    def run() -> int:
        topo = _topology(file, hotplug_ports, placement, capacity, no_host_probe)
        status = qmp_check(topo)
        if guest_options is not None and wants_guest(guest):
            status = max(status, run_guest(topo, qemu=qemu, verbose=verbose, **guest))
        return status

    def qmp_check(topo) -> int:
        report = verify_mod.verify(topo, qemu, timeout=timeout, hotplug=not no_hotplug,
                                   hotplug_limit=None if hotplug_all else hotplug_limit)
        if verbose:
            import shlex
            click.echo("qemu: " + " ".join(shlex.quote(a) for a in report.argv), err=True)
            click.echo("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()),
                       err=True)
        if report.ok:
            hp = ""
            if report.hotplug_tried:
                of = "" if report.hotplug_tried == report.hotplug_ports else f" of {report.hotplug_ports}"
                hp = (f", hot-plug into {report.hotplug_ok}{of} empty hot-pluggable "
                      f"slot{'s' if report.hotplug_ports > 1 else ''}")
            click.echo(f"OK: {report.checked} functions as planned{hp}")
            return 0
        for d in report.differences:
            click.echo(d)
        return 1

    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        status = guarded(run)
    except KeyboardInterrupt:
        click.echo("error: interrupted (QEMU stopped)", err=True)
        sys.exit(2)
    finally:
        signal.signal(signal.SIGTERM, old)
    sys.exit(status)
