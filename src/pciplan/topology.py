"""A read-only view of a planned guest's PCI tree: buses, what sits in each slot, what is free.

``build(plan)`` turns a ``Plan`` into a ``Topology`` that the views (tree, diff,
check, qemu-args, verify) walk.  It adds no policy: every fact comes from the
planned domain and the controller table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import budget, controllers, hotplug
from .address import PciAddress
from .connect import Connect, is_pcie
from .domain import Controller, Device
from .machines import Machine
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
    #: PCI Express (True) or conventional PCI (False), as the guest sees it: a
    #: PCIe-capable function on a conventional PCI bus is conventional PCI
    express: bool
    #: added by the planner (not in the input)
    added: bool
    #: the bus this function provides, when it is a bridge/port
    child: "Bus | None" = None
    #: the planner chose its address (the input had none, or an empty one)
    assigned: bool = False
    #: the bus it sits on (None when that bus is not a known PCI controller)
    bus: "Bus | None" = None

    @property
    def is_bridge(self) -> bool:
        """A PCI controller (bridge, port, expander): libvirt never hot-plugs those."""
        d = self.device
        return isinstance(d, Controller) and d.type == "pci"

    @property
    def hotpluggable(self) -> bool:
        """Can this function be hot-plugged / unplugged while the guest runs?  Not a
        bridge or port (libvirt never hot-plugs controllers), not a function of a
        chipset slot, and only on a bus with hot-plug."""
        return bool(self.bus is not None and self.bus.hotplug and not self.is_bridge
                    and self.address.slot not in self.bus.reserved_slots)


@dataclass(eq=False)
class Bus:
    index: int
    controller: Controller
    model: controllers.ControllerModel
    #: the function that provides this bus (None for roots)
    parent: Function | None
    hotplug: bool
    functions: list[Function] = field(default_factory=list)
    #: slots taken by chipset functions that are not in the XML (ISA bridge...)
    reserved_slots: set[int] = field(default_factory=set)

    @property
    def express(self) -> bool:
        return self.model.express

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def used_slots(self) -> set[int]:
        return {f.address.slot for f in self.functions} | self.reserved_slots

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
    return fn.bus


def chipset_functions(machine: Machine) -> list[tuple[PciAddress, str]]:
    """The chipset functions of an x86 machine that are not in the XML, with their names:
    the host bridge at 00:00.0, then the functions of ``machines.ChipsetSlots``."""
    chip = machine.chipset_slots
    if chip is None:
        return []
    return [(PciAddress(0, 0, 0, 0), chip.host_bridge)] + [(f.address, f.name) for f in chip.functions]


@dataclass
class Topology:
    buses: dict[int, Bus]
    roots: list[Bus]
    functions: list[Function]
    #: fixed chipset functions that are not in the XML (ISA bridge, SMBus...)
    reserved: list[PciAddress]
    #: the machine row, the guest arch and machine type
    machine: Machine | None = None
    arch: str = ""
    machine_type: str = ""
    #: indexes of the bridges/ports that take a 4 KiB IO window (see ``budget``)
    io_window_buses: set[int] = field(default_factory=set)
    #: every fixed chipset function not in the XML, with its name (host bridge included)
    chipset: list[tuple[PciAddress, str]] = field(default_factory=list)

    @property
    def express(self) -> bool:
        """A PCI Express machine (its first root is pcie-root)."""
        return bool(self.roots) and self.roots[0].model.name == "pcie-root"

    def bus_numbers_used(self) -> int:
        return len(self.buses)

    def io_windows(self) -> int:
        """Bridges/ports that need a 4 KiB window of the 64 KiB IO space."""
        return len(self.io_window_buses)

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
    no_root = hotplug.root_needs_acpi(plan.machine.chipset, dom.acpi)
    for idx in sorted(ctrls):
        c = ctrls[idx]
        row = controllers.MODELS.get(c.model or "")
        if row is None:
            continue
        takes = row.hotplug and hotplug.qemu_hotplug(c.model, idx, no_root) and c.target.get("hotplug") != "off"
        buses[idx] = Bus(idx, c, row, None, takes)
    assigned = {id(d) for d in plan.assigned}
    functions: list[Function] = []
    for d in dom.devices:
        a = d.pci_address
        if a is None:
            continue
        bus = buses.get(a.bus)
        flags = d.connect
        if isinstance(d, Controller) and d.type == "pci":
            row = controllers.MODELS.get(d.model or "")
            flags = row.plugs_as if row is not None else Connect.NONE
        express = is_pcie(flags) and (bus is None or bus.express)
        fn = Function(d, a, express, id(d) in added, assigned=id(d) in assigned, bus=bus)
        functions.append(fn)
        if bus is not None:
            bus.functions.append(fn)
        if isinstance(d, Controller) and d.type == "pci" and d.index in buses:
            fn.child = buses[d.index]
            buses[d.index].parent = fn
    for b in buses.values():
        b.functions.sort(key=lambda f: (f.address.slot, f.address.function))
    roots = [b for b in buses.values() if b.parent is None]
    chipset = chipset_functions(plan.machine)
    reserved = [a for a, _ in chipset if a.slot != 0]
    for a in reserved:
        if a.bus in buses:
            buses[a.bus].reserved_slots.add(a.slot)
    return Topology(buses, roots, functions, reserved, machine=plan.machine, arch=dom.arch,
                    machine_type=dom.machine, io_window_buses=budget.io_windows(plan),
                    chipset=chipset)
