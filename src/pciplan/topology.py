"""A read-only view of a planned guest's PCI tree: buses, what sits in each slot, what is free.

``build(plan)`` turns a ``Plan`` into a ``Topology`` that the views (tree, diff,
check, qemu-args, verify) walk.  It adds no policy: every fact comes from the
planned domain and the controller table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import controllers
from .address import PciAddress
from .connect import Connect, is_pcie
from .domain import Controller, Device
from .planner import Plan

#: guest IO port space and the window each bridge takes from it
IO_SPACE = 64 * 1024
IO_WINDOW = 4 * 1024
#: PCI bus numbers
BUS_NUMBERS = 256


@dataclass(eq=False)
class Function:
    """One PCI function: a device (or controller) at an address."""

    device: Device
    address: PciAddress
    #: PCI Express (True) or conventional PCI (False), as the guest sees it
    express: bool
    #: added by the planner (not in the input)
    added: bool
    #: the bus this function provides, when it is a bridge/port
    child: "Bus | None" = None


@dataclass(eq=False)
class Bus:
    index: int
    controller: Controller
    model: controllers.ControllerModel
    #: the function that provides this bus (None for roots)
    parent: Function | None
    hotplug: bool
    functions: list[Function] = field(default_factory=list)

    @property
    def express(self) -> bool:
        return self.model.express

    def used_slots(self) -> set[int]:
        return {f.address.slot for f in self.functions}

    def free_slots(self) -> list[int]:
        used = self.used_slots()
        return [s for s in range(self.model.min_slot, self.model.max_slot + 1) if s not in used]

    @property
    def takes_endpoints(self) -> bool:
        return bool(self.model.accepts & (Connect.PCI_DEVICE | Connect.PCIE_DEVICE))

    def hotplug_slots(self) -> list[int]:
        """Empty slots a device could be hot-plugged into."""
        if not (self.hotplug and self.takes_endpoints):
            return []
        return self.free_slots()

    def depth(self) -> int:
        d, p = 0, self.parent
        while p is not None:
            d += 1
            owner = _owner(p)
            p = owner.parent if owner is not None else None
        return d


def _owner(fn: Function) -> Bus | None:
    return getattr(fn, "_bus", None)


@dataclass
class Topology:
    buses: dict[int, Bus]
    roots: list[Bus]
    functions: list[Function]
    #: fixed chipset functions that are not in the XML (ISA bridge, SMBus...)
    reserved: list[PciAddress]

    def bus_numbers_used(self) -> int:
        return len(self.buses)

    def io_windows(self) -> int:
        return sum(1 for b in self.buses.values() if b.parent is not None and b.model.io_window)

    def hotplug_ports(self) -> list[tuple[int, int]]:
        """(bus, slot) of every empty hot-pluggable slot."""
        return [(b.index, s) for b in self.buses.values() for s in b.hotplug_slots()]

    def bus_of(self, fn: Function) -> Bus:
        return self.buses[fn.address.bus]


def build(plan: Plan) -> Topology:
    dom = plan.domain
    added = {id(d) for d in plan.added}
    ctrls = {c.index: c for c in plan.guest.controllers if c.type == "pci" and c.index is not None}
    buses: dict[int, Bus] = {}
    for idx in sorted(ctrls):
        c = ctrls[idx]
        row = controllers.MODELS.get(c.model or "")
        if row is None:
            continue
        hotplug = row.hotplug and c.target.get("hotplug") != "off"
        buses[idx] = Bus(idx, c, row, None, hotplug)
    functions: list[Function] = []
    for d in dom.devices:
        a = d.pci_address
        if a is None:
            continue
        express = is_pcie(d.connect) if d.connect else False
        if isinstance(d, Controller) and d.type == "pci":
            row = controllers.MODELS.get(d.model or "")
            express = bool(row and row.express and not row.is_root)
        fn = Function(d, a, express, id(d) in added)
        functions.append(fn)
        bus = buses.get(a.bus)
        if bus is not None:
            bus.functions.append(fn)
            fn._bus = bus  # type: ignore[attr-defined]
        if isinstance(d, Controller) and d.type == "pci" and d.index in buses:
            fn.child = buses[d.index]
            buses[d.index].parent = fn
    for b in buses.values():
        b.functions.sort(key=lambda f: (f.address.slot, f.address.function))
    roots = [b for b in buses.values() if b.parent is None]
    reserved: list[PciAddress] = []
    chip = plan.machine.chipset
    if chip == "i440fx":
        reserved = [PciAddress(0, 0, 1, 0), PciAddress(0, 0, 1, 3)]
    elif chip == "q35":
        reserved = [PciAddress(0, 0, 0x1F, 0), PciAddress(0, 0, 0x1F, 3)]
    return Topology(buses, roots, functions, reserved)
