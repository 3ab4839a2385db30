"""The address set: which PCI functions of which buses are taken (mechanism only).

An ``AddressSet`` is a list of buses indexed by controller index.  Each bus knows
what it accepts (``Connect`` flags from its controller model), its slot range and
which functions of each slot are used.  It can check an address, reserve it, and
find the next free one; in a *dry run* it may also grow new buses when nothing
fits.  *Which* devices get placed, in which order, is the planner's policy.
"""

from __future__ import annotations

from . import controllers
from .address import FUNCTIONS_PER_SLOT, SLOTS_PER_BUS, PciAddress
from .connect import ENDPOINTS, KINDS, Connect, kind_name
from .errors import CapacityError, Element, PlanError
from .records import Record

ALL_FUNCTIONS = (1 << FUNCTIONS_PER_SLOT) - 1


class Bus(Record):
    """One PCI bus of the address set: what it accepts, and which of its functions are used."""

    index: int
    #: controller model providing the bus (None until known)
    model: str | None = None
    #: what the bus accepts: kinds + AUTOASSIGN + HOTPLUGGABLE
    accepts: Connect = Connect.NONE
    min_slot: int = 0
    max_slot: int = -1
    #: per slot, bit f set when function f is used
    used: list[int]
    #: per slot, True when the slot packs several functions of AGGREGATE_SLOT devices
    aggregate: list[bool]
    #: search cursors of ``AddressSet.next_free``: per query, the first slot that
    #: may still answer it (> max_slot: none will).  Valid because slots only
    #: ever fill up: a slot that cannot take a device never can again.
    cursors: dict

    def __init__(self, index, model=None, accepts=Connect.NONE, min_slot=0, max_slot=-1) -> None:
        self.index = index
        self.model = model
        self.accepts = accepts
        self.min_slot = min_slot
        self.max_slot = max_slot
        self.used = [0] * SLOTS_PER_BUS
        self.aggregate = [False] * SLOTS_PER_BUS
        self.cursors = {}

    @property
    def is_empty(self) -> bool:
        return not any(self.used[self.min_slot:self.max_slot + 1])

    @property
    def fully_reserved(self) -> bool:
        return all(self.used[s] for s in range(self.min_slot, self.max_slot + 1))

    def slot_in_use(self, slot: int) -> bool:
        return self.used[slot] != 0

    def free_slots(self) -> list[int]:
        return [s for s in range(self.min_slot, self.max_slot + 1) if not self.used[s]]


_AGGREGATE = int(Connect.AGGREGATE_SLOT)
_INTEGRATED = int(Connect.INTEGRATED)
_AUTOASSIGN = int(Connect.AUTOASSIGN)
_HOTPLUGGABLE = int(Connect.HOTPLUGGABLE)
_PCI_BRIDGE = int(Connect.PCI_BRIDGE)
_PCI_DEVICE = int(Connect.PCI_DEVICE)
_ENDPOINTS = int(ENDPOINTS)
_KINDS = int(KINDS)
_PCIE_PLUGS = int(Connect.PCIE_DEVICE | Connect.PCIE_SWITCH_UPSTREAM_PORT)


class _BusList(list):
    """The buses of an ``AddressSet``: appending keeps its search cursors,
    any other change (a bus replaced or removed) resets them."""

    def __init__(self, first: dict, buses=()) -> None:
        super().__init__(buses)
        self._first = first

    def _reset(self) -> None:
        # a bus's own cursors stay valid wherever it sits: only the
        # per-set "first bus" cursors depend on the list
        self._first.clear()

    def __setitem__(self, index, value) -> None:
        super().__setitem__(index, value)
        self._reset()

    def __delitem__(self, index) -> None:
        super().__delitem__(index)
        self._reset()

    def __imul__(self, n):
        result = super().__imul__(n)
        self._reset()
        return result

    def pop(self, index=-1):
        bus = super().pop(index)
        self._reset()
        return bus

    def insert(self, index, value) -> None:
        super().insert(index, value)
        self._reset()

    def remove(self, value) -> None:
        super().remove(value)
        self._reset()

    def clear(self) -> None:
        super().clear()
        self._reset()

    def sort(self, *args, **kwargs) -> None:
        super().sort(*args, **kwargs)
        self._reset()

    def reverse(self) -> None:
        super().reverse()
        self._reset()


def bus_for_model(index: int, model: str, hotplug: bool = True, restricted: bool = False) -> Bus:
    row = controllers.MODELS[model]
    key = (model, hotplug, restricted)
    cached = _ACCEPTS.get(key)
    if cached is not None and cached[0] is row:
        accepts = cached[1]
    else:
        accepts = row.accepts
        if row.hotplug and hotplug:
            accepts |= Connect.HOTPLUGGABLE
        if restricted:
            accepts = controllers.RESTRICTED_ROOT_PORT_ACCEPTS
        _ACCEPTS[key] = (row, accepts)
    return Bus(index, model, accepts, row.min_slot, row.max_slot)


#: bus_for_model's flags per (model, hotplug, restricted), with the table row they
#: came from: IntFlag | is slow, and every bus of both passes is made here
_ACCEPTS: dict[tuple[str, bool, bool], tuple[object, Connect]] = {}


class AddressSet:
    def __init__(self, nbuses: int, *, dry_run: bool, multiple_roots: bool,
                 has_pcie_to_pci_bridge: bool = True) -> None:
        #: per query of ``next_free``, the first bus that may still answer it
        self._first: dict[tuple[int, int, int | None], int] = {}
        self.buses = [Bus(i) for i in range(nbuses)]
        self.dry_run = dry_run
        self.multiple_roots = multiple_roots
        self.has_pcie_to_pci_bridge = has_pcie_to_pci_bridge
        #: pciplan's flat placement (every endpoint integrated): a full root bus is said so,
        #: not with libvirt's words for its one integrated device (a virtio-iommu)
        self.flat = False

    # ---- compatibility ------------------------------------------------------
    def fits(self, addr: PciAddress, bus_flags: Connect, dev_flags: Connect, *,
             from_config: bool, element: Element = None) -> bool:
        """Can a device with ``dev_flags`` sit on a bus offering ``bus_flags``?

        With ``element`` given, a mismatch raises PlanError naming it; without,
        the answer is a quiet False (used while searching).
        """
        # plain int arithmetic: IntFlag operators are slow, and this runs per bus and device
        b = int(bus_flags)
        d = int(dev_flags)
        if d & _INTEGRATED:
            if addr.bus != 0:
                if element is not None:
                    raise PlanError(f"The device at PCI address {addr} needs to be an integrated "
                                    "device (bus=0)", element)
                return False
            b |= _AUTOASSIGN  # the root bus takes integrated devices, PCI or PCIe
            if b & _ENDPOINTS:
                b |= _ENDPOINTS
        if from_config:
            # a hand-written address may put PCI on PCIe and vice versa, and a
            # pci-bridge anywhere a conventional PCI device could go
            if b & _ENDPOINTS:
                b |= _ENDPOINTS
            if d & _PCI_BRIDGE:
                d |= _PCI_DEVICE
        elif (d & _AUTOASSIGN) and not (b & _AUTOASSIGN):
            if element is not None:
                raise PlanError(f"The device at PCI address {addr} was auto-assigned this address, "
                                f"but the PCI controller with index='{addr.bus}' doesn't allow "
                                "auto-assignment", element, kind="internal")
            return False
        if (d & _HOTPLUGGABLE) and not (b & _HOTPLUGGABLE):
            if element is not None:
                raise PlanError(f"The device at PCI address {addr} requires hotplug capability, but "
                                f"the PCI controller with index='{addr.bus}' doesn't support hotplug",
                                element, kind="xml" if from_config else "internal")
            return False
        if not (d & b & _KINDS):
            if element is not None:
                raise PlanError(f"The device at PCI address {addr} cannot be plugged into the PCI "
                                f"controller with index='{addr.bus}'. It requires a controller that "
                                f"accepts a {kind_name(Connect(d))}.", element,
                                kind="xml" if from_config else "internal")
            return False
        return True

    def validate(self, addr: PciAddress, flags: Connect, *, from_config: bool, element: Element) -> None:
        kind = "xml" if from_config else "internal"
        if not self.buses:
            raise PlanError("No PCI buses available", element, kind=kind)
        if addr.domain != 0:
            raise PlanError(f"Invalid PCI address {addr}. Only PCI domain 0 is available", element,
                            kind=kind)
        if addr.bus >= len(self.buses):
            raise PlanError(f"Invalid PCI address {addr}. Only PCI buses up to "
                            f"{len(self.buses) - 1} are available", element, kind=kind)
        bus = self.buses[addr.bus]
        self.fits(addr, bus.accepts, flags, from_config=from_config, element=element)
        if bus.min_slot and addr.slot < bus.min_slot:
            raise PlanError(f"Invalid PCI address {addr}. slot must be >= {bus.min_slot}", element,
                            kind=kind)
        if addr.slot > bus.max_slot:
            raise PlanError(f"Invalid PCI address {addr}. slot must be <= {bus.max_slot}", element,
                            kind=kind)

    # ---- reserving ----------------------------------------------------------
    def slot_in_use(self, addr: PciAddress) -> bool:
        return addr.bus < len(self.buses) and self.buses[addr.bus].slot_in_use(addr.slot)

    def reserve(self, addr: PciAddress, flags: Connect, *, from_config: bool, element: Element) -> PciAddress:
        """Mark one function used.  In a dry run, first grow buses up to ``addr.bus``
        (which may renumber the address's bus: the returned address is the one used)."""
        if self.dry_run and addr.bus >= len(self._buses):
            addr = self.grow(addr, flags, element)
        self.validate(addr, flags, from_config=from_config, element=element)
        bus = self.buses[addr.bus]
        bit = 1 << addr.function
        if bus.used[addr.slot] & bit:
            raise PlanError(f"Attempted double use of PCI Address {addr}", element,
                            kind="xml" if from_config else "internal")
        if not bus.used[addr.slot] and int(flags) & _AGGREGATE:
            bus.aggregate[addr.slot] = True
        bus.used[addr.slot] |= bit
        return addr

    @property
    def buses(self) -> list[Bus]:
        return self._buses

    @buses.setter
    def buses(self, buses: list[Bus]) -> None:
        self._buses = _BusList(self._first, buses)
        self._first.clear()

    def next_free(self, flags: Connect, element: Element, function: int | None = None) -> PciAddress:
        """The first free address for a device, libvirt's search order:
        every bus that takes the device, slot by slot; then grow (dry run only).

        Slots only ever fill up, so the search resumes where the previous one
        with the same query stopped (``_first`` per set, ``Bus.cursors`` per
        bus) instead of rescanning from bus 0: linear, not quadratic, in the
        number of devices, with the same answers.
        """
        return self._search(flags, element, function)[0]

    def _search(self, flags: Connect, element: Element, function: int | None) -> tuple[PciAddress, bool]:
        """:meth:`next_free`, and whether the address is on a bus the search found it on
        (one that takes the device, in its slot range, free: what ``validate`` would check)
        rather than on a bus just grown."""
        f = 0 if function is None else function
        key = (int(flags), f, function)
        buses = self._buses
        if not buses:  # a machine without PCI (isapc, microvm): none can be added either
            raise PlanError("No PCI buses available", element)
        start = self._first.get(key, 0)
        for i in range(start, len(buses)):
            found = self._free_on_bus(buses[i], flags, key)
            if found is not None:
                self._first[key] = i
                return found, True
        self._first[key] = len(buses)
        # libvirt retries on empty, unlocked buses of other isolation groups;
        # pciplan plans every device in group 0, so that pass finds nothing new
        if key[0] & _INTEGRATED:
            if self.flat:
                raise CapacityError("no free slot is left on the root bus for this integrated "
                                    "device", element)
            if self.dry_run:
                # libvirt grows the set as for any device, then finds the device's new
                # address is not on the root bus
                addr = self.grow(PciAddress(0, len(buses), 0, f), flags, element)
                at = PciAddress(0, addr.bus, self.buses[addr.bus].min_slot, f)
                raise CapacityError(f"The device at PCI address {at} needs to be an integrated "
                                    "device (bus=0)", element)
            raise CapacityError("No more available PCI slots", element)
        if self.dry_run:
            addr = self.grow(PciAddress(0, len(buses), 0, f), flags, element)
            return PciAddress(0, addr.bus, self.buses[addr.bus].min_slot, f), False
        raise CapacityError("No more available PCI slots", element)

    def _free_on_bus(self, bus: Bus, flags: Connect, key: tuple[int, int, int | None]) -> PciAddress | None:
        iflags, f, function = key
        start = bus.cursors.get(key)
        if start is None:
            probe = PciAddress(0, bus.index, 0, f)
            if not self.fits(probe, bus.accepts, flags, from_config=False):
                bus.cursors[key] = SLOTS_PER_BUS
                return None
            start = bus.min_slot
        aggregate = bus.aggregate if iflags & _AGGREGATE else None
        used_of = bus.used
        fbit = 1 << f
        for slot in range(start, bus.max_slot + 1):
            used = used_of[slot]
            if not used:
                bus.cursors[key] = slot
                return PciAddress(0, bus.index, slot, f)
            if aggregate is not None and aggregate[slot]:
                if not used & fbit:
                    bus.cursors[key] = slot
                    return PciAddress(0, bus.index, slot, f)
                if function is None:
                    for fn in range(FUNCTIONS_PER_SLOT):
                        if not used & (1 << fn):
                            bus.cursors[key] = slot
                            return PciAddress(0, bus.index, slot, fn)
        bus.cursors[key] = SLOTS_PER_BUS
        return None

    def reserve_next(self, flags: Connect, element: Element, function: int | None = None) -> PciAddress:
        addr, searched = self._search(flags, element, function)
        if not searched:
            return self.reserve(addr, flags, from_config=False, element=element)
        # found on an existing bus by the search: of ``reserve``'s checks only whether the
        # bus takes the device can have changed since (its flags changed in place)
        bus = self._buses[addr.bus]
        self.fits(addr, bus.accepts, flags, from_config=False, element=element)
        if not bus.used[addr.slot] and int(flags) & _AGGREGATE:
            bus.aggregate[addr.slot] = True
        bus.used[addr.slot] |= 1 << addr.function
        return addr

    # ---- growing (dry run) --------------------------------------------------
    def grow(self, addr: PciAddress, flags: Connect, element: Element) -> PciAddress:
        """Add buses so that ``addr.bus`` exists, choosing their models as libvirt does.

        A conventional PCI device on a machine that has no bus taking a
        pci-bridge yet gets a (restricted) root port and a pcie-to-pci-bridge
        first; when only one bus was asked for, the address moves onto the new
        bridge's bus.
        """
        add = addr.bus - len(self.buses) + 1
        if add <= 0:
            return addr
        first: list[Bus] = []
        start = len(self.buses)
        iflags = int(flags)
        if iflags & _PCI_DEVICE:
            if self.multiple_roots:
                model = "pci-root"
            else:
                model = "pci-bridge"
                legacy_missing = not any(b.accepts & Connect.PCI_BRIDGE for b in self.buses)
                if legacy_missing:
                    if self.has_pcie_to_pci_bridge:
                        first = [bus_for_model(start, "pcie-root-port", restricted=True),
                                 bus_for_model(start + 1, "pcie-to-pci-bridge")]
                    else:
                        first = [bus_for_model(start, "dmi-to-pci-bridge", hotplug=False)]
                    if add == 1:
                        # the device's bridge needs a parent first: one more
                        # bus than asked for, and the device moves onto it
                        add = 2
                        addr = addr.with_bus(addr.bus + 1)
        elif iflags & _PCIE_PLUGS:
            model = "pcie-root-port"
        else:
            for bit, name in controllers.CONNECT_TO_MODEL:
                if flags & bit:
                    raise CapacityError(f"a PCI slot is needed to connect a PCI controller model='{name}', "
                                        "but none is available, and it cannot be automatically added",
                                        element)
            raise CapacityError("Cannot automatically add a new PCI bus for a device with connect "
                                f"flags {int(flags):02x}", element)
        new = first[:add]
        for i in range(start + len(new), start + add):
            new.append(bus_for_model(i, model))
        self.buses.extend(new)
        return addr
