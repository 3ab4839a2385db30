"""Policy: which device gets which PCI address, and which controllers are added.

This is libvirt 9.0's algorithm, step for step, so that the answer is the one
``virsh define`` gives:

* every device gets its *connect flags* (``devices`` table -> ``Connect``);
* a **dry run** places everything, growing buses where nothing fits, and the
  controllers for the grown buses are added to the domain; its addresses are
  thrown away;
* the **real pass** starts again with the final controller set: first the
  addresses the user wrote, then the machine's fixed chipset slots, then every
  device in libvirt's placement order (PCI controllers first), each into the
  first free slot that takes it;
* finally ``multifunction='on'`` where a slot has several functions, and the
  controllers' model names, chassis and port numbers.

"Why did this device land on bus 3?": ``assign`` below, then
``AddressSet.next_free`` in ``addrset``.
"""

from __future__ import annotations

from typing import Iterator

from . import budget, devices, hotplug, machines, transports
from .address import PciAddress
from .addrset import AddressSet, bus_for_model
from .connect import PCI, PCIE, Connect
from .controllers import MODELS, PSERIES_PHB_MODEL_NAME, TARGET_ATTRIBUTES
from .defaults import Guest
from .devices import HostProbe
from .domain import Address, Controller, Device, Domain, Zpci
from .errors import PlanError
from .hostcaps import Host
from .machines import PIIX3_IDE, PIIX3_SLOT, PIIX3_USB, ChipsetSlots
from .records import Value

#: the PIIX3 functions (slot ``PIIX3_SLOT`` of bus 0) libvirt never reserves for the
#: primary IDE / index-0 USB controller, whatever the machine
_PIIX3_IDE_FUNCTION = PIIX3_IDE.address.function
_PIIX3_USB_FUNCTION = PIIX3_USB.address.function


#: the order devices are given addresses in (qemuDomainAssignDevicePCISlots),
#: after the PCI controllers
PLACEMENT_ORDER = ("filesystem", "interface", "sound", "controller", "disk", "hostdev",
                   "memballoon", "rng", "watchdog", "video", "shmem", "input", "serial",
                   "iommu", "vsock", "memory")

ZPCI_UID_MAX = 0xFFFF
ZPCI_FID_MAX = 0xFFFFFFFF


class Options(Value):
    """Knobs of the planner.  The defaults reproduce libvirt 9.0."""

    #: tells whether a host PCI device is conventional PCI, as libvirt learns from
    #: sysfs; ``api`` fills in the sysfs probe unless ``probe_host`` is False
    host_probe: HostProbe | None
    #: ask the host pciplan runs on, as libvirt asks the host it runs on (False: plan
    #: every host PCI device as PCIe and the domain as on ``hostcaps.ANY_HOST``)
    probe_host: bool
    #: leave at least this many empty hot-pluggable slots (None: libvirt's single spare)
    hotplug_ports: int | None
    #: "libvirt": its placement; "flat": every endpoint integrated on the root bus
    placement: str
    #: "libvirt": refuse where libvirt does; "max": grow with switches and nested
    #: bridges up to the 256-bus limit (see ``capacity``)
    capacity: str
    #: the host libvirt would run on, for the refusals that depend on it (KVM for the
    #: guest's arch, swtpm for an emulated TPM); ``api`` fills in this host
    #: (``hostcaps.this_host``) unless ``probe_host`` is False (``hostcaps.ANY_HOST``)
    host: Host | None

    def __init__(self, host_probe: HostProbe | None = None, probe_host: bool = True,
                 hotplug_ports: int | None = None, placement: str = "libvirt",
                 capacity: str = "libvirt", host: Host | None = None) -> None:
        self.host_probe = host_probe
        self.probe_host = probe_host
        self.hotplug_ports = hotplug_ports
        self.placement = placement
        self.capacity = capacity
        self.host = host


class Plan(Value):
    """The outcome of planning: the domain with every PCI address filled in."""

    guest: Guest
    #: the address set of the final pass: buses, their models and used functions
    addresses: AddressSet
    #: devices whose PCI address the planner chose (in placement order)
    assigned: list[Device]
    #: things a user should know about the plan (budgets, options that could not be met)
    warnings: list[str]

    def __init__(self, guest, addresses, assigned=..., warnings=...) -> None:
        self.guest = guest
        self.addresses = addresses
        self.assigned = [] if assigned is ... else assigned
        self.warnings = [] if warnings is ... else warnings

    @property
    def domain(self) -> Domain:
        return self.guest.domain

    @property
    def machine(self) -> machines.Machine:
        return self.guest.machine

    @property
    def added(self) -> list[Device]:
        """Devices and controllers that were not in the input."""
        return list(self.guest.added)


def wanted(dev: Device) -> bool:
    """libvirt assigns an address when there is none, or a PCI one with no domain/bus/slot."""
    a = dev.address
    return a is None or (a.is_pci and a.pci.is_empty)


def present(dev: Device) -> bool:
    a = dev.address
    return a is not None and a.is_pci and not a.pci.is_empty


class Assigner:
    """Runs libvirt's two passes over one guest."""

    def __init__(self, guest: Guest, options: Options) -> None:
        self.guest = guest
        self.machine = guest.machine
        self.options = options
        root = guest.find_controller("pci", 0)
        self.root_model = root.model if root is not None else None
        pcie = self.root_model == "pcie-root"
        self.pcie_flags = PCIE if pcie else PCI
        # (an emulator without the transitional virtio-pci devices has virtio as plain PCI)
        self.virtio_flags = PCI if "virtio-pci-transitional" in guest.machine.lacks else self.pcie_flags
        self.assigned: list[Device] = []
        self.warnings: list[str] = []

    # ---- flags ----------------------------------------------------------------
    def flags(self, dev: Device) -> Connect:
        if isinstance(dev, Controller) and dev.type == "pci":
            row = MODELS.get(dev.model or "")
            return row.plugs_as if row is not None else Connect.NONE
        cls = devices.classify(dev, self.options.host_probe)
        if cls is None:
            return Connect.NONE
        flags = PCI if cls == devices.PCI else self.virtio_flags if cls == devices.VIRTIO \
            else self.pcie_flags
        if dev.tag == "iommu" or (self.options.placement == "flat" and wanted(dev)):
            flags |= Connect.INTEGRATED
        return flags

    # ---- device lists in libvirt's orders -------------------------------------
    def of(self, tag: str) -> list[Device]:
        g = self.guest
        if tag == "controller":
            return list(g.controllers)
        if tag == "video":
            return g.videos()
        if tag == "hostdev":
            return [d for d in g.hostdevs() if d.tag == "hostdev"]
        return self.guest.devices(tag)

    def iterate(self) -> Iterator[Device]:
        """The devices in libvirt's iteration order, each once (an ``<interface
        type='hostdev'>`` is not visited again among the host devices)."""
        seen: set[int] = set()
        for d in self.guest.iterate():
            if id(d) not in seen:
                seen.add(id(d))
                yield d

    # ---- the address set ----------------------------------------------------------
    def create_set(self, nbuses: int, dry_run: bool) -> AddressSet:
        m = self.machine
        s = AddressSet(nbuses, dry_run=dry_run, multiple_roots=m.multiple_roots,
                       has_pcie_to_pci_bridge="pcie-pci-bridge" not in m.lacks)
        s.flat = self.options.placement == "flat"
        for c in self.guest.controllers:
            if c.type == "pci" and c.index is not None and c.index < nbuses and c.model in MODELS:
                s.buses[c.index] = bus_for_model(c.index, c.model,
                                                 hotplug=c.target.get("hotplug") != "off")
        if nbuses > 0 and s.buses[0].model is None:
            s.buses[0] = bus_for_model(0, "pci-root")
        default = ("pci-root" if m.multiple_roots else
                   "pcie-root-port" if self.root_model == "pcie-root" else "pci-bridge")
        for i in range(1, nbuses):
            if s.buses[i].model is None:
                s.buses[i] = bus_for_model(i, default)
        for dev in self.iterate():
            if present(dev):
                self.collect(s, dev)
        return s

    def collect(self, s: AddressSet, dev: Device) -> None:
        addr = dev.pci_address
        assert addr is not None
        flags = dev.connect or Connect.PCI_DEVICE
        if isinstance(dev, Controller) and addr.domain == 0 and addr.bus == 0 and addr.slot == PIIX3_SLOT:
            piix3 = ((dev.type == "ide" and dev.index == 0 and addr.function == _PIIX3_IDE_FUNCTION) or
                     (dev.type == "usb" and dev.index == 0 and dev.model in (None, "piix3-uhci")
                      and addr.function == _PIIX3_USB_FUNCTION))
            if piix3:
                if s.buses and not (s.buses[0].accepts & Connect.PCI_DEVICE):
                    raise PlanError("Bus 0 must be PCI for integrated PIIX3 USB or IDE controllers",
                                    dev.describe(), kind="internal")
                return
        placed = s.reserve(addr, flags, from_config=True, element=dev.describe)
        if placed != addr:
            # growing a legacy PCI topology renumbered the bus: libvirt rewrites
            # the user's address in place (even in the dry run)
            a = dev.address
            assert a is not None
            dev.set("address", Address("pci", placed, a.multifunction, a.zpci))

    # ---- storing ------------------------------------------------------------------
    def store(self, s: AddressSet, dev: Device, addr: PciAddress, multifunction: str | None = None) -> None:
        if s.dry_run:
            return
        zpci = dev.address.zpci if dev.address is not None and dev.address.is_pci else None
        dev.set("address", Address("pci", addr, multifunction, zpci))
        self.assigned.append(dev)

    def reserve_next(self, s: AddressSet, dev: Device) -> None:
        addr = s.reserve_next(dev.connect, dev.describe)
        self.store(s, dev, addr)

    def fix(self, dev: Device, addr: PciAddress, multifunction: str | None = None,
            like: Device | None = None) -> None:
        """An address the chipset step gives (kept even in the dry run); ``like``: the
        device whose address it copies, zPCI ids included."""
        src = like if like is not None else dev
        zpci = src.address.zpci if src.address is not None and src.address.is_pci else None
        dev.set("address", Address("pci", addr, multifunction, zpci))
        if dev not in self.assigned:
            self.assigned.append(dev)

    # ---- chipset --------------------------------------------------------------------
    def chipset(self, s: AddressSet) -> None:
        chip = self.machine.chipset
        if chip == "i440fx":
            self.chipset_i440fx(s)
        elif chip == "q35":
            self.chipset_q35(s)

    def _primary_video(self, s: AddressSet, slot: int, flags: Connect) -> None:
        vids = self.guest.videos()
        if not vids or vids[0].model in ("none", "ramfb"):
            return
        video = vids[0]
        if not wanted(video):
            return
        fixed = PciAddress(0, 0, slot, 0)
        s.validate(fixed, flags, from_config=True, element=video.describe())
        if s.slot_in_use(fixed):
            self.reserve_next(s, video)
        else:
            s.reserve(fixed, flags, from_config=True, element=video.describe())
            self.fix(video, fixed)

    def chipset_i440fx(self, s: AddressSet) -> None:
        flags = PCI
        chip = self.machine.chipset_slots
        assert chip is not None and chip.ide is not None and chip.piix3_usb is not None
        for c in self.guest.controllers:
            if c.type == "ide" and c.index == 0:
                at = chip.ide
            elif c.type == "usb" and c.index == 0 and c.model in (None, "piix3-uhci"):
                at = chip.piix3_usb
            else:
                continue
            fixed = at.address
            if present(c):
                if c.pci_address != fixed:
                    raise PlanError(at.error, c.describe(), kind="internal")
            else:
                self.fix(c, fixed)
            if s.buses:
                s.reserve(fixed, flags, from_config=True, element=c.describe())
        self._chipset_functions(s, chip, flags)
        self._primary_video(s, chip.video_slot, flags)

    @staticmethod
    def _chipset_functions(s: AddressSet, chip: ChipsetSlots, flags: Connect) -> None:
        if s.buses:
            for f in chip.functions:
                s.reserve(f.address, flags, from_config=True, element=f.element)

    def chipset_q35(self, s: AddressSet) -> None:
        flags = Connect.PCIE_DEVICE
        chip = self.machine.chipset_slots
        assert (chip is not None and chip.sata is not None and chip.dmi_to_pci_bridge_slot is not None
                and chip.hda_slot is not None)
        for c in self.guest.controllers:
            if c.type == "sata" and c.index == 0:
                fixed = chip.sata.address
                if present(c):
                    if c.pci_address != fixed:
                        raise PlanError(chip.sata.error, c.describe(), kind="internal")
                else:
                    self.fix(c, fixed)
            elif c.type == "usb" and c.model == "ich9-uhci1" and c.address is None:
                for slot in chip.uhci1_slots:
                    probe = PciAddress(0, 0, slot, 0)
                    if not s.slot_in_use(probe):
                        s.reserve(probe, flags, from_config=True, element=c.describe())
                        self.fix(c, probe, "on")
                        break
            elif c.type == "pci" and c.model == "dmi-to-pci-bridge" and c.address is None:
                probe = PciAddress(0, 0, chip.dmi_to_pci_bridge_slot, 0)
                if not s.slot_in_use(probe):
                    s.reserve(probe, flags, from_config=True, element=c.describe())
                    self.fix(c, probe)
        self._chipset_functions(s, chip, flags)
        self._primary_video(s, chip.video_slot, flags)
        hda = PciAddress(0, 0, chip.hda_slot, 0)
        if not s.slot_in_use(hda):
            for snd in self.guest.devices("sound"):
                if snd.model == "ich9" and wanted(snd):
                    s.reserve(hda, flags, from_config=True, element=snd.describe())
                    self.fix(snd, hda)
                    break

    # ---- placement ------------------------------------------------------------------
    def place_all(self, s: AddressSet) -> None:
        for c in self.guest.controllers:
            if c.type == "pci" and not MODELS[c.model or "pci-root"].is_root and wanted(c):
                self.reserve_next(s, c)
        for tag in PLACEMENT_ORDER:
            getattr(self, f"place_{tag}", self.place_generic)(s, tag)

    def place_generic(self, s: AddressSet, tag: str) -> None:
        for dev in self.of(tag):
            # without flags no bus takes the device, and none can be added: libvirt's error
            if (dev.connect or devices.wanted_without_flags(dev)) and wanted(dev):
                self.reserve_next(s, dev)

    def place_interface(self, s: AddressSet, tag: str) -> None:
        for dev in self.of(tag):
            if dev.type != "hostdev" and (dev.connect or devices.wanted_without_flags(dev)) \
                    and wanted(dev):
                self.reserve_next(s, dev)

    def place_controller(self, s: AddressSet, tag: str) -> None:
        ctrls = self.guest.controllers
        for c in ctrls:
            if c.type == "pci" or (c.type == "usb" and c.model == "none"):
                continue
            if c.type in ("fdc", "ccid") or (c.type == "ide" and c.index == 0):
                continue
            if not (c.connect or devices.wanted_without_flags(c)) or not wanted(c):
                continue
            if c.type == "usb" and c.model in devices.USB2_COMPANION_FUNCTION:
                fn = devices.USB2_COMPANION_FUNCTION[c.model]
                mf = "on" if c.model == "ich9-uhci1" else None
                mate = next((o for o in ctrls if o.type == "usb" and o.index == c.index
                             and o.model in devices.USB2_COMPANION_FUNCTION and present(o)), None)
                if mate is not None:
                    base = mate.pci_address
                    assert base is not None
                    addr = PciAddress(base.domain, base.bus, base.slot, fn)
                    s.reserve(addr, c.connect, from_config=True, element=c.describe)
                    # libvirt copies the companion's whole address: on s390x its zPCI ids
                    # too, which the next pass then finds reserved twice
                    self.fix(c, addr, mf, like=mate)
                else:
                    addr = s.reserve_next(c.connect, c.describe, function=fn)
                    self.store(s, c, addr, mf)
                continue
            self.reserve_next(s, c)

    def place_disk(self, s: AddressSet, tag: str) -> None:
        for d in self.of(tag):
            if d.bus != "virtio" or present(d):
                continue
            a = d.address
            if a is not None and (a.type == "ccw" or (a.type == "virtio-mmio"
                                                      and "virtio-mmio" not in self.machine.lacks)):
                continue  # (virtio-mmio where the emulator has it)
            if not wanted(d):
                raise PlanError(f"virtio disk cannot have an address of type '{a.type if a else ''}'",
                                d.describe(), kind="unsupported")
            if d.connect:
                self.reserve_next(s, d)

    def place_hostdev(self, s: AddressSet, tag: str) -> None:
        for d in self.guest.hostdevs():
            if d.connect and wanted(d):
                self.reserve_next(s, d)

    def place_video(self, s: AddressSet, tag: str) -> None:
        for v in self.of(tag):
            if v.model not in ("none", "ramfb") and (v.connect or devices.wanted_without_flags(v)) \
                    and wanted(v):
                self.reserve_next(s, v)

    # ---- the two passes ----------------------------------------------------------------
    def run(self) -> AddressSet:
        g = self.guest
        pci = [c for c in g.controllers if c.type == "pci"]
        max_idx = max((c.index for c in pci if c.index is not None), default=-1)
        nbuses = max_idx + 1
        for dev in g.domain.devices:
            dev.connect = self.flags(dev)

        if nbuses > 0:
            s = self.create_set(nbuses, dry_run=True)
            self.chipset(s)
            if self.root_model == "pci-root" and not all(b.fully_reserved for b in s.buses):
                # keep one slot for a future bridge
                s.reserve_next(PCI, "spare slot for a pci-bridge")
            self.place_all(s)
            if max_idx <= 0 and len(s.buses) > max_idx + 1 and self.root_model == "pcie-root":
                # one empty root port for hotplug, when libvirt added buses on its own
                s.reserve_next(PCIE, "spare pcie-root-port for hotplug")
            i = 1
            # indexes with a pci controller (find_controller per bus scanned them all)
            have = {c.index for c in g.controllers if c.type == "pci"}
            while i < len(s.buses):
                if i not in have:
                    bus = s.buses[i]
                    c = g.add_controller("pci", i, bus.model, "bus")
                    have.add(i)
                    c.connect = self.flags(c)
                    if not MODELS[bus.model or "pci-root"].is_root:
                        s.reserve_next(c.connect, c.describe)
                i += 1
            nbuses = len(s.buses)  # more than 256: refused by validate.validate_late, as libvirt does

        s = self.create_set(nbuses, dry_run=False)
        if self.machine.pci:
            self.chipset(s)
            self.place_all(s)
            if self.options.hotplug_ports is not None:
                hotplug.add_ports(self, s, self.options.hotplug_ports)
            self.assign_zpci()
            self.set_multifunction()
            self.finish_controllers()
        elif self.options.hotplug_ports:
            self.warnings.append(f"--hotplug-ports {self.options.hotplug_ports}: machine "
                                 f"'{self.guest.domain.machine}' has no PCI bus to leave hot-pluggable "
                                 "slots on")
        return s

    # ---- after placement ----------------------------------------------------------------
    def set_multifunction(self) -> None:
        addressed = [(d, d.pci_address) for d in self.iterate()]
        # the first device (in iteration order) at each function 0
        first: dict[tuple[int, int, int], Device] = {}
        for d, a in addressed:
            if a is not None and a.function == 0:
                first.setdefault((a.domain, a.bus, a.slot), d)
        for d, a in addressed:
            if a is None or a.function == 0:
                continue
            other = first.get((a.domain, a.bus, a.slot))
            if other is not None:
                assert other.address is not None
                if other.address.multifunction is None:
                    o = other.pci_address
                    other.set("address", Address("pci", o, "on", other.address.zpci))

    def finish_controllers(self) -> None:
        g = self.guest
        for c in g.controllers:
            if c.type != "pci":
                continue
            row = MODELS[c.model or "pci-root"]
            if c.model_name is None:
                if c.model == "pci-root" and self.machine.multiple_roots:
                    c.set("model_name", PSERIES_PHB_MODEL_NAME)
                elif row.default_model_name:
                    # (the first QEMU device of the model the emulator has, the last if none)
                    names = [n for n in row.model_names if n not in self.machine.lacks]
                    c.set("model_name", names[0] if names else row.model_names[-1])
            # (an address of another kind is read as a PCI one: its C union's numbers)
            addr = transports.union_as_pci(c.address) if c.address is not None else PciAddress()
            target = {k: v for k, v in c.target.items() if k in TARGET_ATTRIBUTES}
            if c.model == "pci-bridge":
                target.setdefault("chassisNr", str(c.index))
            elif c.model == "pcie-root-port":
                target.setdefault("chassis", str(c.index))
                target.setdefault("port", hex(((addr.slot << 3) + addr.function) & 0xFFFFFFFF))
            elif c.model == "pcie-switch-downstream-port":
                target.setdefault("chassis", str(c.index))
                target.setdefault("port", hex(addr.slot))
            elif c.model in ("pci-expander-bus", "pcie-expander-bus"):
                if "busNr" not in target:
                    bus_nr = self._new_bus_nr()
                    if bus_nr < 0:
                        raise PlanError("No free busNr lower than current lowest busNr is available "
                                        f"to auto-assign to bus {addr.bus}. Must be manually assigned",
                                        c.describe(), kind="unsupported")
                    target["busNr"] = str(bus_nr)
            elif c.model == "pci-root" and self.machine.multiple_roots:
                if "index" not in target:
                    ti = 0 if c.index == 0 else self._new_target_index()
                    if ti < 0:
                        raise PlanError(f"No usable target index found for {addr.bus}", c.describe(),
                                        kind="unsupported")
                    target["index"] = str(ti)
            c.set("target", target)
            bus = addr.bus
            if c.model == "pci-bridge" and c.index is not None and c.index <= bus:
                raise PlanError(f"PCI controller at index {c.index} (0x{c.index:02x}) has "
                                f"bus='0x{bus:02x}', but index must be larger than bus",
                                c.describe(), kind="unsupported")

    def _new_bus_nr(self) -> int:
        lowest = 256
        for c in self.guest.controllers:
            if c.type == "pci" and "busNr" in c.target:
                try:
                    lowest = min(lowest, int(c.target["busNr"], 0))
                except ValueError:
                    pass
        return -1 if lowest <= 2 else lowest - 2

    def _new_target_index(self) -> int:
        used = set()
        for c in self.guest.controllers:
            if c.type == "pci" and c.model == "pci-root" and c.model_name == PSERIES_PHB_MODEL_NAME:
                try:
                    used.add(int(c.target.get("index", "-1"), 0))
                except ValueError:
                    pass
        for ti in range(1, 32):
            if ti not in used:
                return ti
        return -1

    # ---- s390x zPCI ----------------------------------------------------------------------
    def assign_zpci(self) -> None:
        if not self.machine.zpci:
            return
        uids: set[int] = set()
        fids: set[int] = set()
        pending: list[Device] = []
        for d in self.iterate():
            a = d.address
            if a is None or not a.is_pci or d.tag in ("serial", "parallel", "channel", "console"):
                continue
            z = a.zpci
            if d.origin == "bus":
                continue  # controllers libvirt adds while planning carry no zPCI ids
            if z is not None and (z.uid is not None or z.fid is not None):
                self._zpci_ensure(d, z, uids, fids)
                d.changed.add("address")
            else:
                pending.append(d)
        for d in pending:
            a = d.address
            assert a is not None
            z = Zpci(a.zpci.uid, a.zpci.fid) if a.zpci is not None else Zpci()
            self._zpci_ensure(d, z, uids, fids)
            d.set("address", Address("pci", a.pci, a.multifunction, z))

    @staticmethod
    def _zpci_ensure(d: Device, z: Zpci, uids: set[int], fids: set[int]) -> None:
        if z.uid is None:
            z.uid = next(u for u in range(1, ZPCI_UID_MAX + 1) if u not in uids)
        if z.fid is None:
            z.fid = next(f for f in range(0, ZPCI_FID_MAX + 1) if f not in fids)
        if z.uid in uids:
            raise PlanError(f"zPCI uid {z.uid:o} is already reserved", d.describe(), kind="internal")
        if z.fid in fids:
            raise PlanError(f"zPCI fid {z.fid:o} is already reserved", d.describe(), kind="internal")
        uids.add(z.uid)
        fids.add(z.fid)


def assign(guest: Guest, options: Options | None = None) -> Plan:
    for c in guest.controllers:  # (libvirt's PCI address set takes each PCI controller's model)
        if c.type == "pci" and c.model is None:
            raise PlanError("PCI controller model was not set correctly", c.describe(), kind="internal")
    a = Assigner(guest, options or Options())
    s = a.run()
    plan = Plan(guest, s, a.assigned, a.warnings)
    budget.check(plan)
    return plan
