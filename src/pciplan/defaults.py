"""What libvirt 9.0 adds to a domain before it assigns addresses (its post-parse step).

The steps, in libvirt's order, each a short function:

1. ``controller_order``      the controller list as libvirt's parser builds it,
2. ``assign_indexes``        indexes for controllers written without one,
3. ``add_machine_defaults``  the machine's default USB, SATA, PCI root and memballoon,
4. ``fill_models``           default models of NICs, videos, USB and SCSI controllers,
5. ``add_implicit``          controllers needed by disks, channels and consoles; a video for graphics,
6. ``validate.validate``     the checks libvirt makes before it assigns addresses.

What libvirt refuses is in ``validate``, the address kinds other than PCI in ``transports``.

The result is a ``Guest``: the domain plus libvirt's ordered device lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import chardevs, devices, guestconf, machines, parsecheck, video
from .domain import Address, Controller, Device, Domain
from .errors import PlanError
from .machines import Machine
from .records import Value

if TYPE_CHECKING:
    from .hostcaps import Host

#: the disk-name prefixes that imply a bus when ``bus=`` is missing (a floppy's is 'fdc';
#: any other name, 'fda' of a cdrom too, implies 'ide')
DISK_PREFIX_BUS = (("hd", "ide"), ("sd", "scsi"), ("vd", "virtio"), ("xvd", "xen"), ("ubd", "uml"))
#: disk bus -> (controller type, disks per controller) for implicit controllers
DISK_BUS_CONTROLLER = {"scsi": ("scsi", devices.SCSI_NARROW_UNITS), "fdc": ("fdc", 2),
                       "ide": ("ide", 4), "sata": ("sata", 6)}
#: the order libvirt adds implicit disk controllers in
IMPLICIT_DISK_BUSES = ("scsi", "fdc", "ide", "sata")
#: the panic model a machine family implies when none is given (or 'default'); else 'isa'
PANIC_DEFAULT_MODELS = {"pseries": "pseries", "s390-ccw": "s390"}
USB2_MODELS = frozenset(devices.USB2_COMPANION_FUNCTION)
USB2_COMPANIONS = USB2_MODELS - {devices.USB2_MASTER}


class Guest(Value):
    """A domain with libvirt's view of it: ordered lists per device kind."""

    domain: Domain
    machine: Machine
    controllers: list[Controller]
    added: list[Device]
    #: the SCSI controller of each SCSI host device (``None``: not a drive address), in order
    scsi_hostdev_controllers: list[int | None]

    def __init__(self, domain, machine, controllers=..., added=..., scsi_hostdev_controllers=...) -> None:
        self.domain = domain
        self.machine = machine
        self.controllers = [] if controllers is ... else controllers
        self.added = [] if added is ... else added
        self.scsi_hostdev_controllers = [] if scsi_hostdev_controllers is ... else scsi_hostdev_controllers
        self._index: dict[str, list[Device]] = {}
        self._index_len = -1
        self._index_last: Device | None = None

    def devices(self, tag: str) -> list[Device]:
        """The domain's devices of one element, in document order (a new list).

        The checks and the planner ask for device lists about a hundred times per plan;
        scanning every device each time made a big guest slow.  So they come from an index
        by element, rebuilt whenever the device list changed (another length or another
        last device: devices are only ever appended or removed)."""
        devs = self.domain.devices
        last = devs[-1] if devs else None
        if len(devs) != self._index_len or last is not self._index_last:
            index: dict[str, list[Device]] = {}
            for d in devs:
                index.setdefault(d.tag, []).append(d)
            self._index, self._index_len, self._index_last = index, len(devs), last
        return list(self._index.get(tag, ()))

    def videos(self) -> list[Device]:
        # libvirt's parser inserts each primary='yes' video at the front (so the last of
        # several ends first; several are refused later)
        vids: list[Device] = []
        for v in self.devices("video"):
            if v.attrs.get("primary") == "yes":
                vids.insert(0, v)
            else:
                vids.append(v)
        return vids

    def iterate(self) -> list[Device]:
        """Every device in libvirt's iteration order (virDomainDeviceInfoIterate), the first
        console left out when it stands for the first serial port.  An ``<interface
        type='hostdev'>`` comes twice: libvirt keeps it among the host devices too."""
        out: list[Device] = []
        for tag in devices.ITERATION_ORDER:
            if tag == "controller":
                out += self.controllers
            elif tag == "video":
                out += self.videos()
            elif tag == "hostdev":
                out += self.hostdevs()
            elif tag == "console":
                alias = self.console_alias()
                out += [c for c in self.devices("console") if c is not alias]
            else:
                out += self.devices(tag)
        return out

    def console_alias(self) -> Device | None:
        """The first <console>, when it stands for the first <serial> (of type serial, or
        none written): libvirt skips it and writes the serial's address into it."""
        consoles = self.devices("console")
        if consoles and self.devices("serial") and \
                consoles[0].target.get("type") in devices.SERIAL_CONSOLE_TARGETS:
            return consoles[0]
        return None

    def hostdevs(self) -> list[Device]:
        """PCI-capable host devices; those of ``<interface type='hostdev'>`` come first."""
        nets = [d for d in self.domain.devices if d.tag == "interface" and d.type == "hostdev"]
        return nets + self.devices("hostdev")

    def find_controller(self, ctype: str, index: int) -> Controller | None:
        for c in self.controllers:
            if c.type == ctype and c.index == index:
                return c
        return None

    def controller_indexes(self, ctype: str) -> set[int | None]:
        """The indexes of the controllers of a type (a set: a guest may have thousands)."""
        return {c.index for c in self.controllers if c.type == ctype}

    def add(self, dev: Device) -> Device:
        self.domain.devices.append(dev)
        self.added.append(dev)
        if isinstance(dev, Controller):
            self.controllers.append(dev)
        return dev

    def add_controller(self, ctype: str, index: int, model: str | None, origin: str) -> Controller:
        c = Controller(tag="controller", type=ctype, index=index, model=model, origin=origin)
        c.changed.update({"index", "model"})
        self.add(c)
        return c


def read_by_libvirt(tag: str) -> bool:
    """Whether libvirt 9.0 reads a child of ``<devices>`` of this name.  It reads its own
    device kinds only, and drops any other element from the definition unread, with any
    address in it: devices of later releases (``<crypto>``, ``<pstore>``) as well as a
    misspelt one (``<membaloon>``), so nothing in them is checked or planned."""
    return tag == "emulator" or tag in parsecheck.DEVICE_PARSE_ORDER


#: the most implicit disk controllers pciplan adds: a drive address on a higher controller is
#: refused at once (libvirt adds them all, and takes minutes from 65,536 on; on a PCI machine
#: 256 buses x 31 slots run out long before, and the PCI plan gives libvirt's refusal)
MAX_IMPLICIT_CONTROLLERS = 65536
#: PCI controller indexes up to this one are planned before they are found too high (> 255),
#: in libvirt's order; higher ones are refused at once
MAX_PLANNED_INDEX = 4095
#: ports of a virtio-serial controller without ``ports=``
VIRTIO_SERIAL_PORTS = 31


def prepare(domain: Domain, machine: Machine, host: Host | None = None) -> Guest:
    order_disks(domain)  # (in place: before the guest's index of devices is first made)
    guest = Guest(domain, machine)
    drop_unknown(guest)
    clear_none_video(guest)
    guest.controllers = controller_order(domain)
    add_parse_time(guest)
    assign_indexes(guest)
    guestconf.post_parse_start(domain.conf)  # (QEMU's post-parse opens with the boot loader)
    guestconf.post_parse_machine(domain, host)  # (then the machine, when none is named)
    add_machine_defaults(guest)
    fill_models(guest)
    add_implicit(guest)
    checks.validate(guest)
    assign_virtio_serial_ports(guest)
    domain.list_order = {
        "usb": [c for c in guest.controllers if c.type == "usb"],
        "video": guest.videos(),
    }
    return guest


def drop_unknown(guest: Guest) -> None:
    dom = guest.domain
    for d in [d for d in dom.devices if not read_by_libvirt(d.tag)]:
        dom.devices.remove(d)
        dom.removed.append(d)


def clear_none_video(guest: Guest) -> None:
    """A first video of model 'none' is no device to QEMU: libvirt's post-parse forgets all
    that was written on it (its address, so another device may take that slot; its driver,
    heads, acceleration...: nothing of it is validated), its alias aside.  Another video of
    model 'none' keeps everything, and is refused later.  (A balloon or USB controller of
    model 'none' has its address not even read: ``xmlio``.)"""
    vids = guest.videos()
    if vids and vids[0].model == "none":
        v = vids[0]
        if v.address is not None:
            v.set("address", None)
        v.facts = video.VideoFacts()


# ---- 1. parse order -------------------------------------------------------------
def order_disks(domain: Domain) -> None:
    """libvirt's parser files each disk among the disks of the bus it names, by target
    ('vdb' before 'vdc' whatever the document says): virtio disks take PCI slots in that
    order.  Its insertion keeps each bus's disks together, the buses in the order they
    first appear; the disks keep the document's places among the other devices."""
    by_bus: dict[str | None, list[Device]] = {}
    for disk in domain.of("disk"):
        by_bus.setdefault(disk.bus, []).append(disk)
    if len(by_bus) < 2 and all(_sorted_by_target(g) for g in by_bus.values()):
        return
    disks = [d for group in by_bus.values() for d in sorted(group, key=target_index)]
    places = [i for i, d in enumerate(domain.devices) if d.tag == "disk"]
    for i, disk in zip(places, disks):
        domain.devices[i] = disk


def _sorted_by_target(disks: list[Device]) -> bool:
    indexes = [target_index(d) for d in disks]
    return all(a <= b for a, b in zip(indexes, indexes[1:]))


def target_index(disk: Device) -> int:
    name = disk.target.get("dev", "")
    index = _TARGET_INDEXES.get(name)
    if index is None:
        if len(_TARGET_INDEXES) >= 4096:  # bounded: the names come from the input
            _TARGET_INDEXES.clear()
        found = parsecheck.disk_name_index(name)
        index = _TARGET_INDEXES[name] = -1 if found is None else found
    return index


#: disk target names already turned into libvirt's index ('vdb' -> 1; -1 when not one)
_TARGET_INDEXES: dict[str, int] = {}


def controller_order(domain: Domain) -> list[Controller]:
    """Each parsed controller is slotted in among controllers of its own type:
    before the first one with a higher index, else after the last one."""
    order: list[Controller] = []
    top: dict[str | None, int] = {}
    for c in domain.controllers:
        # fast path (the usual case): a higher index than every controller of
        # its type so far, right after one of its type: it simply goes last
        if (c.index is not None and order and order[-1].type == c.type
                and c.index > top.get(c.type, -1) and not is_companion(c)):
            order.append(c)
            top[c.type] = c.index
            continue
        if c.index is not None:
            top[c.type] = max(top.get(c.type, -1), c.index)
        insert_at = -1
        for i in range(len(order) - 1, -1, -1):
            cur = order[i]
            if cur.type != c.type:
                continue
            if c.index is None:
                insert_at = i + 1
                break
            cur_idx = -1 if cur.index is None else cur.index
            if cur_idx > c.index:
                insert_at = i
            elif not is_companion(c) and is_companion(cur) and cur_idx == c.index:
                insert_at = i
            elif insert_at == -1:
                insert_at = i + 1
        if insert_at == -1:
            order.append(c)
        else:
            order.insert(insert_at, c)
    return order


def is_companion(c: Controller) -> bool:
    """USB companion controllers: libvirt lists them after their master."""
    return "master" in c.attrs or (c.type == "usb" and c.model in USB2_COMPANIONS)


# ---- 2. indexes -----------------------------------------------------------------
def _lowest_unused(guest: Guest, ctype: str) -> int:
    used = {c.index for c in guest.controllers if c.type == ctype and c.index is not None}
    i = 0
    while i in used:
        i += 1
    return i


def _index_filler(guest: Guest):
    """``_lowest_unused`` for many controllers in a row, in linear time."""
    used: dict[str | None, set[int]] = {}
    nxt: dict[str | None, int] = {}
    for c in guest.controllers:
        if c.index is not None:
            used.setdefault(c.type, set()).add(c.index)

    def take(ctype: str | None) -> int:
        u = used.setdefault(ctype, set())
        i = nxt.get(ctype, 0)
        while i in u:
            i += 1
        nxt[ctype] = i
        u.add(i)
        return i

    return take


def assign_indexes(guest: Guest) -> None:
    ctrls = guest.controllers
    take = _index_filler(guest)
    for pos, c in enumerate(ctrls):
        if c.index is not None:
            continue
        prev = None
        if pos > 0 and c.type == "usb" and c.model in USB2_MODELS:
            # a USB2 companion written right after its group joins the group's index
            for j in range(pos - 1, -1, -1):
                if ctrls[j].type == "usb":
                    prev = ctrls[j]
                    break
            if prev is not None and prev.model not in USB2_MODELS:
                prev = None
            if prev is not None and any(o.type == "usb" and o.index == prev.index and o.model == c.model
                                        for o in ctrls):
                prev = None
        c.set("index", prev.index if prev is not None else take(c.type))


# ---- 3. machine defaults ------------------------------------------------------------
def add_machine_defaults(guest: Guest) -> None:
    m = guest.machine
    if m.default_usb and guest.find_controller("usb", 0) is None:
        # (on an emulator without a PIIX3 UHCI libvirt's controller keeps its default model)
        guest.add_controller("usb", 0, None if m.default_usb == machines.DEFAULT_MODEL else m.default_usb,
                             "default")
    if m.sata and guest.find_controller("sata", 0) is None:
        guest.add_controller("sata", 0, None, "default")
    root = guest.find_controller("pci", 0)
    if m.root:
        if root is None:
            guest.add_controller("pci", 0, m.root, "default")
        elif root.model != m.root:
            raise PlanError(f"The PCI controller with index='0' must be model='{m.root}' for this "
                            f"machine type, but model='{root.model or '(null)'}' was found instead",
                            root.describe())
    if m.memballoon and not guest.devices("memballoon"):
        guest.add(Device(tag="memballoon", model="virtio", origin="default"))


# ---- 4. default models ----------------------------------------------------------------
def fill_models(guest: Guest) -> None:
    m = guest.machine
    for dev in guest.domain.devices:
        if dev.tag == "interface" and dev.model is None and dev.type != "hostdev":
            dev.set("model", "virtio" if dev.type == "vdpa" else m.nic_model)
        elif dev.tag == "filesystem" and dev.type is None:
            dev.set("type", "mount")
        elif dev.tag == "video" and dev.model in (None, "default"):
            dev.set("model", m.video_model)  # ('default' where the emulator has no cirrus or VGA)
        elif dev.tag in chardevs.CHR_TAGS and dev.type is None:
            dev.set("type", "pty")  # (a chardev's host side, when none is written)
        elif dev.tag == "panic" and dev.model in (None, "default"):
            dev.set("model", PANIC_DEFAULT_MODELS.get(m.family, "isa"))
        elif dev.tag == "vsock" and dev.model in (None, "default"):
            dev.set("model", "virtio")
        elif dev.tag == "disk" and dev.bus is None:
            dev.bus = _disk_bus(dev)
        elif isinstance(dev, Controller) and dev.type == "scsi" and dev.model in (None, "auto"):
            dev.set("model", m.scsi_model)  # ('auto' is no model: libvirt chooses one for both)
        elif isinstance(dev, Controller) and dev.model is None:
            if dev.type == "usb":
                if m.zpci:
                    # s390's QEMU has no piix3-uhci: libvirt leaves the model at its default
                    # when the controller has an address (so a PIIX3-like 00:01.2 one
                    # reserves nothing), and makes it 'none' when it has none
                    if dev.address is None:
                        dev.set("model", "none")
                elif m.usb_model:
                    dev.set("model", m.usb_model)


def _disk_bus(disk: Device) -> str:
    if disk.attrs.get("device") == "floppy":
        return "fdc"
    dst = disk.target.get("dev", "")
    for prefix, bus in DISK_PREFIX_BUS:
        if dst.startswith(prefix):
            return bus
    return "ide"


# ---- 5. implicit devices ----------------------------------------------------------------
def drive_controller(dev: Device) -> int | None:
    """The index of the controller a disk or SCSI host device names or implies (its
    drive address, else its target name), None when it names none."""
    a = dev.address
    if a is not None and a.type == "drive":
        n = parsecheck.c_uint(a.attrs.get("controller", "0"), 10)
        if n is None:
            return None
        if n >= 2 ** 31:
            n -= 2 ** 32  # libvirt compares it as a C int: no controller for a negative one
        return n if n >= 0 else None
    if a is not None:
        return None
    if dev.tag == "disk":
        bus = dev.bus or ""
        if bus not in DISK_BUS_CONTROLLER:
            return None
        idx = parsecheck.disk_name_index(dev.target.get("dev", ""))
        if idx is None:
            return None
        per = DISK_BUS_CONTROLLER[bus][1]
        return idx // per
    return 0


def _add_implicit(guest: Guest, ctype: str, index: int) -> None:
    c = guest.add_controller(ctype, index, None, "implicit")
    if ctype == "scsi":
        c.set("model", guest.machine.scsi_model)


def add_implicit(guest: Guest) -> None:
    before = {id(c) for c in guest.controllers}
    for bus in IMPLICIT_DISK_BUSES:
        ctype = DISK_BUS_CONTROLLER[bus][0]
        top = -1
        for disk in guest.devices("disk"):
            if disk.bus == bus:
                c = drive_controller(disk)
                if c is not None:
                    top = max(top, c)
        if top >= MAX_IMPLICIT_CONTROLLERS:
            raise PlanError(f"a {bus} disk needs {ctype} controller {top}: pciplan adds at most "
                            f"{MAX_IMPLICIT_CONTROLLERS} implicit controllers", "devices", kind="internal")
        # (a floppy on a second fdc controller is refused when its address is validated)
        have = guest.controller_indexes(ctype)
        for i in range(top + 1):
            if i not in have:
                _add_implicit(guest, ctype, i)
    for tag in ("channel", "console"):
        for chr_ in guest.devices(tag):
            if chr_.target.get("type") != "virtio":
                continue
            idx = 0
            a = chr_.address
            if a is not None and a.type == "virtio-serial":
                idx = number(a.attrs.get("controller"), 0)
            if guest.find_controller("virtio-serial", idx) is None:
                _add_implicit(guest, "virtio-serial", idx)
    add_hostdev_scsi_controllers(guest, {id(c) for c in guest.controllers} - before)
    if guest.domain.graphics and not guest.devices("video"):
        guest.add(Device(tag="video", model=guest.machine.video_model, origin="implicit",
                         changed={"model"}))


def add_parse_time(guest: Guest) -> None:
    """Controllers libvirt adds for ``<hostdev type='scsi'>``: its parser, after each one,
    adds every SCSI controller up to the one the host device names (or 0); its post-parse
    then gives each host device without an address the first free unit (see
    ``scsi_hostdev_controllers``).  The controllers added take the model of the controller
    that the host device raising the highest index so far names, when that one has a model."""
    hostdevs = [hd for hd in guest.devices("hostdev")
                if hd.type == "scsi" and hd.attrs.get("mode", "subsys") == "subsys"]
    if not hostdevs:
        return
    top, model = -1, None
    for hd in hostdevs:
        c = drive_controller(hd)
        if c is None or c <= top:
            continue
        _check_implicit_scsi(hd, c)
        top = c
        cont = guest.find_controller("scsi", c)
        if cont is not None and cont.model is not None:
            model = cont.model
        have = guest.controller_indexes("scsi")
        for i in range(c + 1):
            if i not in have:
                guest.add_controller("scsi", i, model, "implicit")
    guest.scsi_hostdev_controllers = scsi_hostdev_controllers(guest, hostdevs)


def _check_implicit_scsi(hd: Device, c: int) -> None:
    if c >= MAX_IMPLICIT_CONTROLLERS:
        raise PlanError(f"a SCSI host device needs scsi controller {c}: pciplan adds at most "
                        f"{MAX_IMPLICIT_CONTROLLERS} implicit controllers", hd.describe(),
                        kind="internal")


def scsi_hostdev_controllers(guest: Guest, hostdevs: list[Device]) -> list[int]:
    """The SCSI controller of each host device after libvirt's post-parse: one without an
    address takes the first unit (0-6, bus 0, target 0) from controller 0 up that its
    controller's model has, that the controller does not take itself, and that no SCSI disk
    and no host device before it holds.  The controllers' models are still those of the XML."""
    used: set[tuple[int, int, int, int]] = set()
    for disk in guest.devices("disk"):
        if disk.bus == "scsi":
            a = disk.address
            if a is not None and a.type == "drive":
                used.add(_drive_tuple(a))
            elif a is None:
                idx = parsecheck.disk_name_index(disk.target.get("dev", ""))
                if idx is not None:
                    used.add((idx // devices.SCSI_NARROW_UNITS, 0, 0, idx % devices.SCSI_NARROW_UNITS))
    for hd in hostdevs:
        if hd.address is not None and hd.address.type == "drive":
            used.add(_drive_tuple(hd.address))
    result = []
    for hd in hostdevs:
        if hd.address is not None:
            result.append(drive_controller(hd))
            continue
        controller = 0
        while True:
            cont = guest.find_controller("scsi", controller)
            model = cont.model if cont is not None else None
            top = devices.SCSI_MAX_UNIT.get(model or "", devices.SCSI_NARROW_UNITS)
            reserved = devices.SCSI_RESERVED_UNIT.get(model or "")
            unit = next((u for u in range(min(top + 1, devices.SCSI_NARROW_UNITS))
                         if u != reserved and (controller, 0, 0, u) not in used), None)
            if unit is not None:
                break
            controller += 1
        _check_implicit_scsi(hd, controller)
        used.add((controller, 0, 0, unit))
        result.append(controller)
    return result


def _drive_tuple(a: Address) -> tuple[int, int, int, int]:
    n = [number(a.attrs.get(k), 0) for k in ("controller", "bus", "target", "unit")]
    return n[0], n[1], n[2], n[3]


def add_hostdev_scsi_controllers(guest: Guest, unresolved: set[int]) -> None:
    """libvirt's implicit SCSI controllers for host devices, after its post-parse: every one
    up to the highest a host device sits on, of the model of the controller that the host
    device raising that index names (when it has a model by then: models are filled in,
    but not those of the controllers just added for disks, listed in ``unresolved``)."""
    top, model = -1, None
    for c in guest.scsi_hostdev_controllers:
        if c is None or c <= top:
            continue
        top = c
        cont = guest.find_controller("scsi", c)
        if cont is not None and cont.model is not None and id(cont) not in unresolved:
            model = cont.model
    have = guest.controller_indexes("scsi")
    for i in range(top + 1):
        if i not in have:
            guest.add_controller("scsi", i, model or guest.machine.scsi_model, "implicit")


# ---- virtio-serial ports (libvirt does this first when it assigns addresses) -----------
def number(text: str | None, default: int, base: int = 10) -> int:
    """An attribute as libvirt reads a number (C's strtoul, base 10 unless said: '010' is
    10), ``default`` when absent or not one."""
    n = parsecheck.c_uint(text, base) if text is not None else None
    return default if n is None else n


def _reserve_virtio_serial_ports(guest: Guest, ports: dict[int, set[int]],
                                 size: dict[int, int]) -> None:
    """The ports written in the devices' virtio-serial addresses (port 0 is not one:
    libvirt gives those a port), each taken once, on a controller that has it.  libvirt
    goes through every device, whatever its kind, in its iteration order."""
    for d in guest.iterate():
        a = d.address
        if a is None or a.type != "virtio-serial":
            continue
        port = number(a.attrs.get("port"), 0)
        if not port:
            continue
        ctrl = number(a.attrs.get("controller"), 0)
        if ctrl not in ports:
            raise PlanError(f"virtio serial controller {ctrl} is missing", d.describe())
        if port >= size[ctrl]:
            raise PlanError(f"virtio serial controller {ctrl} does not have port {port}",
                            d.describe())
        if port in ports[ctrl]:
            raise PlanError(f"virtio serial port {port} on controller {ctrl} is already "
                            "occupied", d.describe())
        ports[ctrl].add(port)


def assign_virtio_serial_ports(guest: Guest) -> None:
    """Channels and consoles need a port on a virtio-serial controller; when every
    port is taken libvirt adds another controller."""
    ports: dict[int, set[int]] = {}
    size: dict[int, int] = {}
    for c in guest.controllers:
        if c.type == "virtio-serial" and c.index is not None:
            ports.setdefault(c.index, set())
            size[c.index] = number(c.attrs.get("ports"), VIRTIO_SERIAL_PORTS)
    _reserve_virtio_serial_ports(guest, ports, size)
    users = [(d, True) for d in guest.devices("console") if d.target.get("type") == "virtio"]
    users += [(d, False) for d in guest.devices("channel") if d.target.get("type") == "virtio"]
    for d, allow_zero in users:
        a = d.address
        if a is not None and a.type == "virtio-serial" and number(a.attrs.get("port"), 0):
            continue
        wanted_ctrl = number(a.attrs.get("controller"), 0) if a is not None and a.type == "virtio-serial" \
            and "controller" in a.attrs else None
        candidates = [wanted_ctrl] if wanted_ctrl is not None else sorted(ports)
        placed = False
        for idx in candidates:
            used = ports.setdefault(idx, set())
            for port in range(0 if allow_zero else 1, size.get(idx, VIRTIO_SERIAL_PORTS)):
                if port not in used:
                    used.add(port)
                    placed = True
                    break
            if placed:
                break
        if not placed and wanted_ctrl is not None:
            raise PlanError(f"Unable to find a free port on virtio-serial controller {wanted_ctrl}",
                            d.describe())
        if not placed:
            idx = _lowest_unused(guest, "virtio-serial")
            guest.add_controller("virtio-serial", idx, None, "implicit")
            port = 0 if allow_zero else 1
            ports[idx] = {port}
            size[idx] = VIRTIO_SERIAL_PORTS
            placed = True
        if placed and a is not None and a.type != "virtio-serial" and d.tag == "channel":
            # a channel's port replaces whatever other address the user wrote (a PCI one
            # included); libvirt leaves a console's address as it was
            d.set("address", Address("virtio-serial", attrs={"controller": str(idx), "bus": "0",
                                                             "port": str(port)}))


# libvirt's checks need this module's names: imported once they exist
from . import validate as checks  # noqa: E402
