"""Hot-plug: where libvirt 9.0 puts a device attached to a running guest.

Controllers cannot be hot-plugged, so a new device can only go into a slot
that already exists and is empty.  libvirt's rule (``virDomainPCIAddressEnsureAddr``)
is the cold-plug search with one more requirement: the bus must be
hot-pluggable.  So a PCI Express device needs an empty ``pcie-root-port`` or
``pcie-switch-downstream-port``, a conventional PCI device a free slot of a
``pci-root`` (pc, pSeries PHBs), ``pci-bridge``, ``pcie-to-pci-bridge`` or
``pci-expander-bus``; ``pcie-root`` and ``dmi-to-pci-bridge`` never take one,
nor does a port with ``<target hotplug='off'/>``.  Only function 0 of an
empty slot is used.

``place(plan, device)`` answers with the planner's own knowledge: the
device's class (``devices.classify`` via ``Assigner.flags``) and the final
address set of the plan of the running domain (``Plan.addresses``).  It is
pure: the plan is not changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from . import defaults, transports
from .address import PciAddress
from .controllers import MODELS
from .connect import Connect, kind_name
from .defaults import Guest
from .domain import Address, Controller, Device, Domain
from .errors import CapacityError, PlanError
from .planner import Assigner, Options, Plan

#: device elements libvirt 9.0 can attach to a running QEMU guest (qemuDomainAttachDeviceLive)
LIVE_ATTACHABLE = frozenset({"disk", "controller", "lease", "interface", "hostdev", "redirdev",
                             "serial", "parallel", "channel", "console", "rng", "memory", "shmem",
                             "watchdog", "input", "vsock", "filesystem"})
#: the only controller type libvirt hot-plugs
LIVE_CONTROLLER_TYPES = frozenset({"scsi"})
#: libvirt's names for device kinds in "live attach of device '...'" (virDomainDeviceType)
DEVICE_TYPE_NAMES = {"interface": "net", "filesystem": "fs", "serial": "chr", "parallel": "chr",
                     "channel": "chr", "console": "chr"}


@dataclass
class Placement:
    """Where a hot-plugged device goes."""

    device: Device
    #: the PCI address libvirt gives it; None when the device does not use PCI here
    address: PciAddress | None
    #: what the device needs from its bus (``Connect.NONE`` when it is not PCI)
    flags: Connect = Connect.NONE
    #: why the device needs no PCI address (its transport), when ``address`` is None
    transport: str | None = None
    #: how many empty hot-pluggable slots take the device (before it is placed)
    room: int = 0
    #: things that will go wrong beyond libvirt's choice (QEMU's own limits)
    warnings: list[str] = field(default_factory=list)


def check_attachable(dev: Device) -> None:
    """libvirt's refusals of a live attach that have nothing to do with free slots."""
    if dev.tag not in LIVE_ATTACHABLE:
        name = DEVICE_TYPE_NAMES.get(dev.tag, dev.tag)
        raise PlanError(f"live attach of device '{name}' is not supported", dev.describe(),
                        kind="unsupported")
    if isinstance(dev, Controller) and dev.type not in LIVE_CONTROLLER_TYPES:
        raise PlanError(f"'{dev.type}' controller cannot be hot plugged.", dev.describe(),
                        kind="unsupported")


def prepare(plan: Plan, dev: Device) -> Device:
    """The device as libvirt sees it after parsing: default models and the
    transports that take it off PCI (CCW on s390x, spapr-vio on pSeries).

    Hot-plug never picks virtio-mmio: an ARM/RISC-V guest with a PCIe root gets
    the device on PCI."""
    dom = plan.domain
    machine = plan.machine._replace(virtio_mmio=False)
    scratch = Guest(Domain(dom.arch, dom.machine, dom.virt_type, devices=[dev]), machine)
    defaults.fill_models(scratch)
    transports.mark_non_pci_transports(scratch)
    return dev


def place(plan: Plan, dev: Device, options: Options | None = None) -> Placement:
    """Where libvirt 9.0 would hot-plug ``dev`` into the running guest of ``plan``.

    Raises ``PlanError`` when libvirt refuses the attach for another reason and
    ``CapacityError`` when no empty hot-pluggable slot takes the device.
    """
    check_attachable(dev)
    prepare(plan, dev)
    a = dev.address
    if a is not None and not a.is_pci:
        return Placement(dev, None, transport=a.type)
    flags = Assigner(plan.guest, options or Options()).flags(dev)
    if not flags:
        return Placement(dev, None, transport="not PCI")
    flags |= Connect.HOTPLUGGABLE
    s = copy.deepcopy(plan.addresses)
    for bus in s.buses:
        row = MODELS.get(bus.model or "")
        if row is not None and not row.qemu_hotplug:
            # libvirt would pick it, but QEMU refuses to hot-plug into this bus
            bus.accepts &= ~Connect.HOTPLUGGABLE
    element = dev.describe()
    if not s.buses:
        raise PlanError("No PCI buses available", element)
    if a is not None and not a.pci.is_empty:
        if a.pci.function != 0:
            raise PlanError("Only PCI device addresses with function=0 are supported", element,
                            kind="internal")
        addr = s.reserve(a.pci, flags, from_config=True, element=element)
    else:
        try:
            addr = s.reserve_next(flags, element)
        except CapacityError as err:
            raise CapacityError(f"{err.reason}: no empty hot-pluggable slot takes a "
                                f"{kind_name(flags)} ({needed(plan, flags)})", element) from None
    p = Placement(dev, addr, flags, room=room(plan, flags))
    if addr.bus == 0 and plan.machine.chipset == "i440fx" and not plan.domain.acpi:
        p.warnings.append("QEMU hot-plugs into the root bus (pci.0) of a pc guest through ACPI only, "
                          "and the domain has no <features><acpi/>: the attach will fail (give the "
                          "device a pci-bridge slot, or enable ACPI and restart)")
    return p


def room(plan: Plan, flags: Connect) -> int:
    """How many empty slots of the plan a device with ``flags`` could be hot-plugged into."""
    n = 0
    for bus in plan.addresses.buses:
        probe = PciAddress(0, bus.index, 0, 0)
        row = MODELS.get(bus.model or "")
        if row is not None and not row.qemu_hotplug:
            continue
        if plan.addresses.fits(probe, bus.accepts, flags | Connect.HOTPLUGGABLE, from_config=False):
            n += len(bus.free_slots())
    return n


def needed(plan: Plan, flags: Connect) -> str:
    """What kind of empty slot a device with ``flags`` needs on this machine."""
    if flags & Connect.PCIE_DEVICE:
        return "an empty pcie-root-port or pcie-switch-downstream-port"
    if plan.machine.multiple_roots:
        return "a free slot on a PHB (pci-root)"
    root = plan.guest.find_controller("pci", 0)
    if root is not None and root.model == "pcie-root":
        return "a free slot on a pcie-to-pci-bridge or pci-bridge"
    return "a free slot on the root bus or a pci-bridge"


def remedy(plan: Plan, flags: Connect) -> str:
    """How to make room: controllers cannot be hot-plugged, so re-plan and restart."""
    root = plan.guest.find_controller("pci", 0)
    pcie_root = root is not None and root.model == "pcie-root"
    if pcie_root and not flags & Connect.PCIE_DEVICE:
        return ("add <controller type='pci' model='pcie-to-pci-bridge'/> to the domain, re-plan it "
                "with `pciplan plan` and restart it")
    return "re-plan the domain with `pciplan plan --hotplug-ports N` and restart it"


def apply(placement: Placement) -> None:
    """Write the address into the device (marked changed, for ``xmlio.device_tostring``)."""
    if placement.address is None:
        return
    dev = placement.device
    old = dev.address
    zpci = old.zpci if old is not None and old.is_pci else None
    mf = old.multifunction if old is not None and old.is_pci else None
    dev.set("address", Address("pci", placement.address, mf, zpci))
