"""Hot-plug headroom: count and add empty hot-pluggable slots after every device is placed.

Controllers cannot be hot-plugged, so a running guest can only take a new
device in a slot that already exists and is empty.  ``add_ports`` adds the
machine's preferred kind of empty slot until at least N exist:

* PCIe machines (q35, virt): empty ``pcie-root-port``s (one slot each); free
  ``pcie-to-pci-bridge`` slots do not count, they take no PCIe or virtio device,
* pc (i440fx): free slots of the root bus (with ACPI only: QEMU hot-plugs into
  pci.0 through it) and of ``pci-bridge``s,
* pSeries: free slots of PHBs (``pci-root``), adding PHBs.

It runs on the final address set, after libvirt's placement, so asking for more
ports never moves a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .addrset import AddressSet, Bus, bus_for_model
from .controllers import MODELS
from .connect import Connect
from .errors import CapacityError

if TYPE_CHECKING:
    from .planner import Assigner

MAX_BUSES = 256


ENDPOINT_KINDS = Connect.PCI_DEVICE | Connect.PCIE_DEVICE


def root_needs_acpi(chipset: str | None, acpi: bool) -> bool:
    """QEMU hot-plugs into the root bus (pci.0) of an i440fx guest through ACPI only:
    without ``<features><acpi/>`` it refuses ("Bus 'pci.0' does not support
    hotplugging"), though libvirt counts the bus hot-pluggable."""
    return chipset == "i440fx" and not acpi


def qemu_hotplug(model: str | None, index: int, root_without_hotplug: bool = False) -> bool:
    """Whether QEMU hot-plugs into a bus libvirt calls hot-pluggable: not into an
    expander bus, nor into pci.0 when ``root_without_hotplug`` (``root_needs_acpi``)."""
    row = MODELS.get(model or "")
    if row is not None and not row.qemu_hotplug:
        return False
    return not (index == 0 and root_without_hotplug)


def hotplug_slots(bus: Bus, kinds: Connect = ENDPOINT_KINDS, root_without_hotplug: bool = False) -> int:
    """Empty slots of a bus that take a hot-plugged endpoint of one of ``kinds``."""
    if not (bus.accepts & Connect.HOTPLUGGABLE) or not (bus.accepts & kinds):
        return 0
    if not qemu_hotplug(bus.model, bus.index, root_without_hotplug):
        return 0
    return sum(1 for s in range(bus.min_slot, bus.max_slot + 1) if not bus.used[s])


def count(s: AddressSet, kinds: Connect = ENDPOINT_KINDS, root_without_hotplug: bool = False) -> int:
    return sum(hotplug_slots(b, kinds, root_without_hotplug) for b in s.buses)


def endpoint_kind(a: "Assigner") -> Connect:
    """The endpoints the machine's spare slots are for: PCI Express ones on a
    PCIe root (a free pcie-to-pci-bridge slot takes no virtio or PCIe device),
    conventional PCI ones elsewhere."""
    return Connect.PCIE_DEVICE if a.root_model == "pcie-root" else Connect.PCI_DEVICE


def preferred_kind(a: "Assigner") -> str:
    if a.machine.multiple_roots:
        return "pci-root"
    if a.root_model == "pcie-root":
        return "pcie-root-port"
    return "pci-bridge"


def add_ports(a: "Assigner", s: AddressSet, wanted: int) -> None:
    kind = preferred_kind(a)
    kinds = endpoint_kind(a)
    no_root = root_needs_acpi(a.machine.chipset, a.guest.domain.acpi)
    while count(s, kinds, no_root) < wanted:
        idx = len(s.buses)
        if idx >= MAX_BUSES:
            a.warnings.append(f"--hotplug-ports {wanted}: only {count(s, kinds, no_root)} hot-pluggable slots fit in the "
                              f"{MAX_BUSES} PCI bus numbers")
            return
        c = a.guest.add_controller("pci", idx, kind, "hotplug")
        c.connect = a.flags(c)
        s.buses.append(bus_for_model(idx, kind))
        if kind == "pci-root":
            continue  # a new PHB is a root bus of its own: no slot to take
        try:
            addr = s.reserve_next(c.connect, c.describe())
        except CapacityError:
            s.buses.pop()
            a.guest.controllers.remove(c)
            a.guest.domain.devices.remove(c)
            a.guest.added.remove(c)
            a.warnings.append(f"--hotplug-ports {wanted}: no slot is left for another {kind}; "
                              f"{count(s, kinds, no_root)} hot-pluggable slots are available")
            return
        a.store(s, c, addr)
