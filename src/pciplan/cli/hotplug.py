"""``pciplan hotplug``: where a device can be hot-plugged into a running guest."""

from __future__ import annotations

import click

from . import guarded


@click.command("hotplug")
@click.argument("files", nargs=-1, metavar="[DOMAIN] DEVICE")
@click.option("-c", "--connect", "uri", metavar="URI",
              help="Read the running domain from this libvirt connection (needs libvirt-python).")
@click.option("-d", "--domain", "name", metavar="NAME",
              help="The running domain's name or UUID (with --connect; DOMAIN is then omitted).")
@click.option("--attach", is_flag=True,
              help="Attach the device at the planned address (live only; needs --domain).")
@click.option("-o", "--output", "output", metavar="OUT", help="Write the device XML to OUT.")
def command(files: tuple[str, ...], uri: str | None, name: str | None, attach: bool,
            output: str | None) -> None:
    """Print DEVICE (a file with one device element) with the PCI address libvirt 9.0
    gives it when it is hot-plugged into the running domain DOMAIN (a planned or
    live domain XML), or into the domain NAME of a libvirt connection.

    Controllers cannot be hot-plugged, so only empty hot-pluggable slots that
    already exist are used: an empty pcie-root-port or switch downstream port
    for a PCIe device, a free pci-root/pci-bridge/pcie-to-pci-bridge slot for a
    conventional PCI device, function 0 only.  With --connect, what libvirt
    asks of the guest's host is asked too: its virtual networks, and for a
    local daemon VFIO, bridges and host interfaces, disk and device files.

    Exit status: 0 placed (or the device needs no PCI address), 1 no room or
    libvirt would refuse the attach, 2 usage error or unreadable input.
    """
    from .. import api, attach as hot, fileio, hostpci, xmlio
    from ..errors import CapacityError
    from ..hostcaps import running_guest_host
    from ..planner import Options

    if name is None and uri is not None:
        raise click.UsageError("--connect needs --domain NAME")
    if attach and name is None:
        raise click.UsageError("--attach needs --domain NAME (and --connect URI)")
    want = 1 if name is not None else 2
    if len(files) != want:
        raise click.UsageError("expected DEVICE (with --domain)" if want == 1 else "expected DOMAIN DEVICE")
    device_file = files[-1]

    def run() -> None:
        live = None
        try:
            if name is not None:
                from ..live import LiveDomain, LiveError

                live = LiveDomain(uri, name)
                if not live.is_active():
                    raise LiveError("the domain is not running: hot-plug needs a running guest (for a "
                                    "shut-off one, add the device to its XML and run `pciplan plan`)",
                                    f"domain '{name}'")
                domain_text: str | bytes = live.xml()
            else:
                domain_text = fileio.read_input(files[0])
            device = xmlio.load_device(fileio.read_input(device_file))
            # (the guest runs: its host has whatever it names, swtpm, KVM for its arch...;
            # a local daemon's guest runs here, where the files a new device needs are asked)
            here = name is not None and is_local(uri)
            networks = live.networks() if live is not None else None
            options = Options(host_probe=hostpci.is_conventional, host=running_guest_host(here, networks))
            plan = api.plan_text(domain_text, options).plan
            try:
                placement = hot.place(plan, device.device, options)
            except CapacityError as err:
                flags = plan_flags(plan, device.device, options)
                raise CapacityError(f"{err.reason}; {hot.remedy(plan, flags)}", err.element) from None
            hot.apply(placement)
            out = xmlio.device_tostring(device)
            if not out.endswith("\n"):
                out += device.newline
            fileio.write_output(out.encode("utf-8"), output)
            for c in placement.first:
                where = describe_slot(plan, c.address) if c.address is not None else f"no PCI address ({c.transport})"
                click.echo(f"{c.device.describe()}: {where} (libvirt hot-plugs it first, for the "
                           f"{placement.device.describe()})", err=True)
            dev = placement.device.describe()
            if placement.address is None:
                click.echo(f"note: {dev}: no PCI address needed ({placement.transport})", err=True)
            else:
                click.echo(f"{dev}: {describe_slot(plan, placement.address)} "
                           f"({placement.room} empty hot-pluggable slot{'s' if placement.room != 1 else ''} "
                           "could take it)", err=True)
            for w in placement.warnings:
                click.echo(f"warning: {w}", err=True)
            if attach and live is not None:
                live.attach(out)
                click.echo(f"attached to domain '{name}'", err=True)
        finally:
            if live is not None:
                live.close()

    guarded(run)


def describe_slot(plan, address) -> str:
    bus = plan.guest.find_controller("pci", address.bus)
    on = f"{bus.model} index='{bus.index}'" if bus is not None else f"bus {address.bus}"
    return f"{address} on {on}"


def plan_flags(plan, dev, options):
    from ..planner import Assigner

    return Assigner(plan.guest, options).flags(dev)


def is_local(uri: str | None) -> bool:
    """Whether a libvirt URI names a daemon on this machine (no host part; None: the default,
    which is local unless $LIBVIRT_DEFAULT_URI says otherwise)."""
    import os
    from urllib.parse import urlsplit

    uri = uri or os.environ.get("LIBVIRT_DEFAULT_URI")
    if not uri:
        return True
    host = urlsplit(uri).hostname
    return host in (None, "", "localhost")
