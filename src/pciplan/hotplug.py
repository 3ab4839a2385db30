"""Hot-plug headroom: count and add empty hot-pluggable slots after every device is placed.

Controllers cannot be hot-plugged, so a running guest can only take a new
device in a slot that already exists and is empty.  ``add_ports`` adds the
machine's preferred kind of empty slot until at least N exist:

* PCIe machines (q35, virt): empty ``pcie-root-port``s (one slot each),
* pc (i440fx): free slots of the root bus and of ``pci-bridge``s,
* pSeries: free slots of PHBs (``pci-root``), adding PHBs.

It runs on the final address set, after libvirt's placement, so asking for more
ports never moves a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .addrset import AddressSet, Bus, bus_for_model
from .connect import Connect
from .errors import CapacityError

if TYPE_CHECKING:
    from .planner import Assigner

MAX_BUSES = 256


def hotplug_slots(bus: Bus) -> int:
    """Empty slots of a bus that take a hot-plugged endpoint."""
    if not (bus.accepts & Connect.HOTPLUGGABLE) or not (bus.accepts & (Connect.PCI_DEVICE | Connect.PCIE_DEVICE)):
        return 0
    return sum(1 for s in range(bus.min_slot, bus.max_slot + 1) if not bus.used[s])


def count(s: AddressSet) -> int:
    return sum(hotplug_slots(b) for b in s.buses)


def preferred_kind(a: "Assigner") -> str:
    if a.machine.multiple_roots:
        return "pci-root"
    if a.root_model == "pcie-root":
        return "pcie-root-port"
    return "pci-bridge"


def add_ports(a: "Assigner", s: AddressSet, wanted: int) -> None:
    kind = preferred_kind(a)
    while count(s) < wanted:
        idx = len(s.buses)
        if idx >= MAX_BUSES:
            a.warnings.append(f"--hotplug-ports {wanted}: only {count(s)} hot-pluggable slots fit in the "
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
                              f"{count(s)} hot-pluggable slots are available")
            return
        a.store(s, c, addr)
