"""The address kinds other than PCI, as far as they decide what is on PCI: libvirt's
virtio-mmio, spapr-vio and CCW passes (before the PCI one), and its USB and DIMM passes
(after it), which overwrite a PCI address a device cannot keep.  (The virtio-serial
pass, which comes first of all, is in ``defaults``: it may add controllers.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import devices, parsecheck
from .address import PciAddress
from .defaults import number
from .domain import Address, Controller, Device
from .errors import PlanError

if TYPE_CHECKING:
    from .defaults import Guest


def mark_non_pci_transports(guest: Guest) -> None:
    """virtio-mmio (ARM/RISC-V boards) and spapr-vio (pSeries) decisions that take
    devices off PCI before PCI addresses are assigned."""
    m = guest.machine
    if m.virtio_mmio:
        has_root = guest.find_controller("pci", 0) is not None and \
            guest.find_controller("pci", 0).model == "pcie-root"  # type: ignore[union-attr]
        any_mmio = any(d.address is not None and d.address.type == "virtio-mmio"
                       for d in guest.iterate())  # (a console standing for a serial is not one)
        mmio = not has_root or any_mmio
        for d in guest.domain.devices:
            if d.address is not None:
                continue
            if mmio and devices.is_virtio(d):
                d.set("address", Address("virtio-mmio"))
            elif not m.pci and devices.is_virtio(d):
                # (a vexpress board with a pcie-root: libvirt marks them PCI, and lays out no
                # PCI on the board, so they keep an empty <address type='pci'/>)
                d.set("address", Address("pci"))
            elif _virtio_hostdev_nic(d):
                # libvirt declares the address kind of every address-less virtio NIC, a host
                # device's included (which its host device then refuses when it is not PCI)
                d.address = Address("virtio-mmio" if mmio else "pci")
    if m.ccw:
        for d in guest.domain.devices:
            if d.tag == "hostdev" and d.type == "mdev" and d.model == "vfio-ap" and \
                    d.address is not None:
                d.set("address", None)  # (an AP device has no address: libvirt forgets it)
        for d in guest.domain.devices:
            if d.address is None and (devices.is_virtio(d) or d.tag in ("filesystem", "vsock") or
                                      _virtio_hostdev_nic(d)):
                d.address = Address("ccw")
    for d in guest.domain.devices:
        # spapr-vlan NICs and ibmvscsi controllers are spapr-vio devices on every machine:
        # libvirt gives them a spapr-vio address even over a PCI one the user wrote
        if is_spapr_vio_device(d):
            if d.address is None:
                d.address = Address("spapr-vio")
            elif d.address.type != "spapr-vio":
                d.set("address", _as_spapr_vio(d.address))
        elif m.family == "pseries" and _spapr_vio_on_pseries(d):
            # the console, NVRAM and TPM proxy of pSeries: libvirt's spapr-vio pass runs
            # before the PCI one and replaces any other address
            if d.address is None:
                d.address = Address("spapr-vio")
            elif d.address.type != "spapr-vio":
                d.set("address", _as_spapr_vio(d.address))


#: TABLE: the spapr-vio devices of every machine, by element: (attribute, value) pairs
SPAPR_VIO_DEVICES = {"interface": (("model", "spapr-vlan"),),
                     "controller": (("type", "scsi"), ("model", "ibmvscsi"))}


def is_spapr_vio_device(d: Device) -> bool:
    """A spapr-vlan NIC or an ibmvscsi controller: spapr-vio devices on every machine."""
    wanted = SPAPR_VIO_DEVICES.get(d.tag)
    return wanted is not None and all(getattr(d, k) == v for k, v in wanted)


#: libvirt keeps every kind of address in one C union and turns another kind into a
#: spapr-vio one by changing its type only: the 64-bit register is then read from the
#: old address's first two 32-bit numbers (low, high), and "has a register" from the low
#: byte of its third: address type -> those three fields, each (attribute, number base)
_SPAPR_VIO_ALIASES = {
    "drive": (("controller", 10), ("bus", 10), ("target", 10)),
    "virtio-serial": (("controller", 10), ("bus", 10), ("port", 10)),
    "ccw": (("cssid", 0), ("ssid", 0), ("devno", 0)),
    "ccid": (("controller", 10), ("slot", 10), None),
    "isa": (("iobase", 16), ("irq", 16), None),
    "dimm": (("slot", 10), None, ("base", 16)),  # (the 64-bit base is the third field)
}


def _as_spapr_vio(a: Address) -> Address:
    """The spapr-vio address libvirt makes of address ``a`` of another kind: without a
    register (libvirt picks one) unless the old numbers read as one."""
    if a.is_pci:
        p = a.pci
        low, high, has = p.domain, p.bus, p.slot
    elif a.type == "usb":
        # (bus, then the port's first two numbers: port='1.2' is 1 and 2)
        ports = [parsecheck.c_uint(n, 10) or 0 for n in (a.attrs.get("port") or "").split(".") if n]
        ports += [0, 0]
        low, high, has = parsecheck.c_uint(a.attrs.get("bus") or "0", 10) or 0, ports[0], ports[1]
    elif a.type in _SPAPR_VIO_ALIASES:
        def num(field: tuple[str, int] | None) -> int:
            return (parsecheck.c_uint(a.attrs.get(field[0]) or "0", field[1],
                                      parsecheck.ULLONG_MAX) or 0) if field else 0
        low, high, has = (num(f) for f in _SPAPR_VIO_ALIASES[a.type])
    else:
        return Address("spapr-vio")
    if not has & 0xFF:
        return Address("spapr-vio")
    reg = (low & 0xFFFFFFFF) | (high & 0xFFFFFFFF) << 32
    return Address("spapr-vio", attrs={"type": "spapr-vio", "reg": f"0x{reg:08x}"})


#: the 32-bit numbers each kind of address keeps first in libvirt's C union, where a PCI
#: address keeps its domain, bus, slot and function: (attribute, number base), None for
#: a number it does not set (zero: libvirt allocates the union zeroed)
_UNION_WORDS: dict[str, tuple[tuple[str, int] | None, ...]] = {
    "drive": (("controller", 10), ("bus", 10), ("target", 10), ("unit", 10)),
    "virtio-serial": (("controller", 10), ("bus", 10), ("port", 10)),
    "ccw": (("cssid", 0), ("ssid", 0), ("devno", 0)),
    "ccid": (("controller", 10), ("slot", 10)),
    "isa": (("iobase", 16), ("irq", 16)),
    "dimm": (("slot", 10),),  # (its 64-bit base is the third and fourth: see below)
}


def union_as_pci(a: Address) -> PciAddress:
    """The PCI address libvirt reads from an address of any kind (a PCI one is itself): its
    last check of the PCI controllers (the bus) and the default port of a PCIe root or
    downstream port (slot and function) take another kind for a PCI one, its C union's
    numbers.  A USB address is its bus and first three ports, a spapr-vio one its 64-bit
    register (low, high) and whether it has one, a DIMM its slot, a padding word and its
    64-bit base."""
    if a.is_pci:
        return a.pci
    if a.type == "usb":
        ports = [parsecheck.c_uint(n, 10) or 0 for n in (a.attrs.get("port") or "").split(".") if n]
        words = [parsecheck.c_uint(a.attrs.get("bus") or "0", 10) or 0, *ports]
    elif a.type == "spapr-vio":
        reg = parsecheck.c_uint(a.attrs.get("reg") or "0", 16, parsecheck.ULLONG_MAX)
        words = [(reg or 0) & 0xFFFFFFFF, (reg or 0) >> 32, int(reg is not None)]
    elif a.type == "dimm":
        base = parsecheck.c_uint(a.attrs.get("base") or "0", 16, parsecheck.ULLONG_MAX) or 0
        words = [parsecheck.c_uint(a.attrs.get("slot") or "0", 10) or 0, 0,
                 base & 0xFFFFFFFF, base >> 32]
    else:
        words = [(parsecheck.c_uint(a.attrs.get(f[0]) or "0", f[1]) or 0) if f else 0
                 for f in _UNION_WORDS.get(a.type, ())]
    words += [0, 0, 0, 0]
    return PciAddress(*words[:4])


def check_user_transport_addresses(guest: Guest) -> None:
    """libvirt's spapr-vio and CCW passes (before the PCI one) refuse a register or device
    number the user gave twice."""
    everyone = guest.iterate()
    for d in _spapr_vio_pass_order(guest):
        reg = _user_reg(d)
        if reg is not None and any(_user_reg(e) == reg and e is not d for e in everyone):
            # (C's %#llx: no 0x before a zero)
            raise PlanError(f"spapr-vio address {f'0x{reg:x}' if reg else '0'} already in use",
                            d.describe())
    devnos: set[tuple[int, int, int]] = set()
    for d in everyone:  # (the CCW pass comes after the spapr-vio one)
        a = d.address
        if a is not None and a.type == "ccw" and guest.machine.ccw and a.attrs.get("devno") is not None:
            key = tuple(parsecheck.c_uint(a.attrs.get(k, "0"), 0) or 0 for k in ("cssid", "ssid", "devno"))
            if key in devnos:
                raise PlanError("The CCW devno '%x.%x.%04x' is in use already" % key, d.describe())
            devnos.add(key)  # type: ignore[arg-type]


def _spapr_vio_pass_order(guest: Guest) -> list[Device]:
    """The devices libvirt's spapr-vio pass gives a register to, in its order (NICs,
    controllers, serial ports, the NVRAM, TPMs): each register written on one of them is
    compared with every other device's (a register the pass picks itself steps aside: it
    cannot clash).  Two other devices may share one."""
    return [d for tag in ("interface", "controller", "serial", "nvram", "tpm")
            for d in (guest.controllers if tag == "controller" else guest.devices(tag))]


def _user_reg(d: Device) -> int | None:
    a = d.address
    if a is None or a.type != "spapr-vio" or a.attrs.get("reg") is None:
        return None
    return parsecheck.c_uint(a.attrs["reg"], 16, parsecheck.ULLONG_MAX) or 0


def _virtio_hostdev_nic(d: Device) -> bool:
    """An <interface type='hostdev'> that names a virtio model: s390x's default address for
    virtio devices (CCW) is given to it too, which its host device then refuses."""
    return d.tag == "interface" and d.type == "hostdev" and (d.model or "") in devices.VIRTIO_NIC_MODELS


def _spapr_vio_on_pseries(d: Device) -> bool:
    return (d.tag == "serial" and devices.serial_target_type(d, False, "pseries") == "spapr-vio-serial") \
        or d.tag == "nvram" or (d.tag == "tpm" and d.model != "spapr-tpm-proxy")


#: devices whose own address kind is given after the PCI pass (USB ports, DIMM slots):
#: a PCI address written on them is kept taken by that pass, then replaced
LATE_TRANSPORTS = {"hub": "usb", "memory": "dimm"}


def check_usb_controllers(guest: Guest) -> None:
    """The start of libvirt's USB pass (after the PCI one): devices that need a USB bus on a
    guest whose USB controllers are all ``none`` are refused, then two controllers with ports
    on one index (its address set has one hub per index; the ICH9 UHCI companions have no
    ports of their own).  Like every address error, these come before libvirt's validation,
    and before its check of the machine name (``api._refuse``)."""
    usb = [c for c in guest.controllers if c.type == "usb"]
    if needs_usb(guest) and all(c.model == "none" for c in usb):
        raise PlanError("USB is disabled for this domain, but USB devices are present in the domain XML",
                        "devices", kind="unsupported")
    hubs: set[int | None] = set()
    for c in usb:
        if c.model in devices.USB_WITHOUT_PORTS:
            continue
        if c.index in hubs:
            raise PlanError(f"Duplicate USB controllers with index {c.index}", c.describe())
        hubs.add(c.index)


def needs_usb(guest: Guest) -> bool:
    """Does anything need a USB bus (including what libvirt adds on its own)?"""
    m = guest.machine
    if m.usb_input_with_graphics and guest.domain.graphics:
        return True  # libvirt adds a USB keyboard (and mouse) to graphical ppc64 guests
    for d in guest.domain.devices:
        t = d.tag
        # (as in xmlio._usb_hostdev_to_parser: libvirt reads a capabilities-mode host device's
        # type as a subsystem's, and 'storage' is its first as 'usb' is theirs: such a device
        # counts as USB here too)
        if (t == "input" and d.bus == "usb") or (t == "hostdev" and d.type in ("usb", "storage")) or \
           t in ("redirdev", "smartcard") or (t == "hub" and d.type == "usb") or \
           (t == "disk" and d.bus == "usb") or (t == "sound" and d.model == "usb") or \
           (t == "serial" and d.target.get("type") == "usb-serial") or \
           (t == "interface" and d.model == "usb-net") or \
           (t == "interface" and d.type == "hostdev" and (d.source or {}).get("type") == "usb") or \
           (isinstance(d, Controller) and d.type == "ccid"):
            return True
    return False


def check_usb_addresses(guest: Guest) -> None:
    """libvirt's USB pass (after the PCI one) on the USB addresses the user wrote, in its
    order: the controllers' buses; the hubs with a port, each on the port its path leads
    to (a bus, then hubs); every other USB device with a port, reserved; then the hubs,
    and the other devices, that name only a bus.  A missing bus, a hub a path goes
    through that is not there, a port past a controller's or hub's last, or one port
    given twice is refused.  Then libvirt gives out the ports: to the hubs without one (those
    written, then those it adds when the devices outnumber the ports), then to the other
    devices, each on the bus it names or the first with a free port; a device left without
    one is refused.  (pciplan checks this, it does not write the USB ports.)"""
    check_usb_controllers(guest)
    buses: dict[int | None, int] = {}
    for c in guest.controllers:
        ports = devices.USB_PORTS.get(c.model) if c.type == "usb" else None
        if ports is not None:
            if c.model in devices.XHCI_MODELS and c.attrs.get("ports"):
                ports = number(c.attrs.get("ports"), ports)
            buses.setdefault(c.index, ports)
    if not buses:
        return  # no USB at all: the "USB is disabled" refusals say it better
    hubs: set[tuple[int, tuple[int, ...]]] = set()
    taken: set[tuple[int, tuple[int, ...]]] = set()
    usb_hubs = [d for d in guest.domain.devices if d.tag == "hub" and d.type == "usb"]
    others = usb_port_users(guest)

    def located(d: Device) -> tuple[int, tuple[int, ...], str] | None:
        """A device's USB bus, port path and port as libvirt writes it (None: no port)."""
        a = d.address
        if a is None or a.type != "usb":
            return None
        path = _usb_port_path(a.attrs.get("port") or "")
        if not path:
            return None
        return number(a.attrs.get("bus"), 0), path, ".".join(map(str, path))

    def find(d: Device, bus: int, path: tuple[int, ...], text: str) -> None:
        """Walk a port path from its bus through its hubs to the port (libvirt's FindPort)."""
        if not buses.get(bus):  # (a controller of no ports makes no bus)
            raise PlanError(f"Missing USB bus {bus}", d.describe())
        ports = buses[bus]
        for i, port in enumerate(path[:-1]):
            if port > ports:
                raise PlanError(f"port {port} out of range in USB address bus: {bus} port: {text}",
                                d.describe())
            if (bus, path[:i + 1]) not in hubs:
                raise PlanError(f"there is no hub at port {port} in USB address bus: {bus} port: "
                                f"{text}", d.describe())
            ports = USB_HUB_PORTS
        if path[-1] > ports:
            raise PlanError(f"requested USB port {text} not present on USB bus {bus}", d.describe())

    for hub in usb_hubs:
        where = located(hub)
        if where is None:
            continue
        bus, path, text = where
        find(hub, bus, path, text)
        if (bus, path) in hubs:
            raise PlanError(f"Duplicate USB hub on bus {bus} port {text}", hub.describe())
        hubs.add((bus, path))
        taken.add((bus, path))
    for d in others:
        where = located(d)
        if where is None:
            continue
        bus, path, text = where
        find(d, bus, path, text)
        if (bus, path) in taken:
            raise PlanError(f"Duplicate USB address bus {bus} port {text}", d.describe())
        taken.add((bus, path))
    # the hubs libvirt adds when the USB devices outnumber the ports (a new hub takes one)
    ports = sum(buses.values()) + USB_HUB_PORTS * len(usb_hubs)
    count = len(usb_hubs) + len(others)
    added = -(-(count - ports + 1) // (USB_HUB_PORTS - 1)) if count > ports else 0
    for d in usb_hubs + [None] * added + others:  # (hubs first: each then has its ports)
        if d is not None and _has_usb_port(d):
            continue
        a = d.address if d is not None else None
        bus = number(a.attrs.get("bus"), 0) if a is not None and a.type == "usb" else None
        if bus is not None and bus not in buses:
            raise PlanError(f"USB bus {bus} requested but no controller with that index is "
                            "present", d.describe())
        where = next((w for b in (sorted(buses) if bus is None else [bus])
                      for w in [_free_usb_port(buses, hubs, taken, b)] if w is not None), None)
        if where is None:
            raise PlanError("No free USB ports", d.describe() if d is not None else "hub",
                            kind="internal")
        taken.add(where)
        if d is None or d.tag == "hub":
            hubs.add(where)


#: the ports of a USB hub
USB_HUB_PORTS = 8
#: how deep libvirt goes through hubs to find a free USB port (the bus, then 3 hubs)
USB_MAX_PORT_DEPTH = 4


def _has_usb_port(d: Device) -> bool:
    """Whether a device's USB address gives a port (its first number is not 0)."""
    a = d.address
    if a is None or a.type != "usb":
        return False
    first = (a.attrs.get("port") or "").split(".")[0]
    return bool(first) and bool(parsecheck.c_uint(first, 10))


def _free_usb_port(buses: dict[int | None, int], hubs: set[tuple[int, tuple[int, ...]]],
                   taken: set[tuple[int, tuple[int, ...]]], bus: int,
                   path: tuple[int, ...] = ()) -> tuple[int, tuple[int, ...]] | None:
    """libvirt's first free USB port of a bus: one of its own ports, else (depth first,
    hub by hub in port order) one behind a hub on it; None when all are taken."""
    count = buses[bus] if not path else USB_HUB_PORTS
    for port in range(1, count + 1):
        if (bus, path + (port,)) not in taken:
            return bus, path + (port,)
    if len(path) >= USB_MAX_PORT_DEPTH - 1:
        return None
    for port in range(1, count + 1):
        if (bus, path + (port,)) in hubs:
            found = _free_usb_port(buses, hubs, taken, bus, path + (port,))
            if found is not None:
                return found
    return None


def _usb_port_path(text: str) -> tuple[int, ...]:
    """A USB port as libvirt reads it ('1.2.3'), up to its last non-zero number; ()
    when it has none, or when a number before that is 0 (pciplan leaves those alone)."""
    numbers = [parsecheck.c_uint(p, 10) or 0 for p in text.split(".")] if text else []
    while numbers and not numbers[-1]:
        numbers.pop()
    if not numbers or 0 in numbers:
        return ()
    return tuple(numbers)


def usb_port_users(guest: Guest) -> list[Device]:
    """The devices (hubs apart) libvirt's USB pass goes through, in its order: USB host
    devices, USB disks, CCID controllers, USB inputs, USB serial ports, USB sound cards,
    USB redirectors."""
    # one walk of the devices, each kind kept in the document's order
    hostdevs: list[Device] = []
    disks: list[Device] = []
    ccids: list[Device] = []
    inputs: list[Device] = []
    serials: list[Device] = []
    sounds: list[Device] = []
    redirdevs: list[Device] = []
    for d in guest.domain.devices:
        tag = d.tag
        if tag == "hostdev":
            if d.type == "usb" and d.attrs.get("mode") == "subsys":
                hostdevs.append(d)
        elif tag == "disk":
            if d.bus == "usb":
                disks.append(d)
        elif tag == "input":
            if d.bus == "usb":
                inputs.append(d)
        elif tag == "serial":
            if d.target.get("type") == "usb-serial":
                serials.append(d)
        elif tag == "sound":
            if d.model == "usb":
                sounds.append(d)
        elif tag == "redirdev":
            if (d.bus or "usb") == "usb":
                redirdevs.append(d)
        if isinstance(d, Controller) and d.type == "ccid":
            ccids.append(d)
    return hostdevs + disks + ccids + inputs + serials + sounds + redirdevs


def check_memory_slots(guest: Guest) -> None:
    """libvirt's last address pass gives each DIMM and NVDIMM without a slot the first free one
    of ``<maxMemory slots>``; with none left the domain is refused.  (pciplan checks this, it
    does not write the slots.)"""
    dom = guest.domain
    if not dom.max_memory or dom.memory is None:
        return
    mems = [d for d in dom.devices if d.tag == "memory"]
    taken = {number(d.address.attrs.get("slot"), 0) for d in mems
             if d.address is not None and d.address.type == "dimm"}
    free = (s for s in range(dom.memory.slots) if s not in taken)
    for d in mems:
        if d.model in ("dimm", "nvdimm") and (d.address is None or d.address.type != "dimm"):
            if next(free, None) is None:
                raise PlanError("failed to find an empty memory slot", d.describe(), kind="internal")


def retarget_after_pci(guest: Guest) -> None:
    """libvirt's USB and DIMM passes (after the PCI one) overwrite the address of another
    kind on a USB hub, or on a DIMM or NVDIMM of a guest with memory hotplug (PCI, CCW,
    spapr-vio, unassigned...), with their own; pciplan, which writes neither, leaves none."""
    for d in guest.domain.devices:
        kind = LATE_TRANSPORTS.get(d.tag)
        if kind is None or d.address is None or d.address.type == kind:
            continue
        if d.tag == "memory" and (d.model not in ("dimm", "nvdimm") or not guest.domain.max_memory):
            continue
        if d.tag == "hub" and d.type != "usb":
            continue
        d.set("address", None)
