"""What libvirt 9.0 adds to a domain before it assigns addresses (its post-parse step).

The steps, in libvirt's order, each a short function:

1. ``controller_order``      the controller list as libvirt's parser builds it,
2. ``assign_indexes``        indexes for controllers written without one,
3. ``add_machine_defaults``  the machine's default USB, SATA, PCI root and memballoon,
4. ``fill_models``           default models of NICs, videos, USB and SCSI controllers,
5. ``add_implicit``          controllers needed by disks, channels and consoles; a video for graphics,
6. ``validate``              the checks libvirt makes of PCI controllers.

The result is a ``Guest``: the domain plus libvirt's ordered device lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import controllers, devices, machines, parsecheck
from .domain import Address, Controller, Device, Domain
from .errors import PlanError
from .machines import Machine

#: libvirt's disk-name prefixes and the bus they imply when ``bus=`` is missing
DISK_PREFIX_BUS = (("hd", "ide"), ("fd", "fdc"), ("sd", "scsi"), ("vd", "virtio"),
                   ("xvd", "xen"), ("ubd", "uml"))
#: disk bus -> (controller type, disks per controller) for implicit controllers
DISK_BUS_CONTROLLER = {"scsi": ("scsi", 7), "fdc": ("fdc", 2), "ide": ("ide", 4), "sata": ("sata", 6)}
#: the order libvirt adds implicit disk controllers in
IMPLICIT_DISK_BUSES = ("scsi", "fdc", "ide", "sata")
#: disk buses whose devices cannot be cdroms or floppies
EJECTLESS_BUSES = frozenset({"virtio"})
USB2_MODELS = frozenset(devices.USB2_COMPANION_FUNCTION)
USB2_COMPANIONS = USB2_MODELS - {devices.USB2_MASTER}


@dataclass
class Guest:
    """A domain with libvirt's view of it: ordered lists per device kind."""

    domain: Domain
    machine: Machine
    controllers: list[Controller] = field(default_factory=list)
    added: list[Device] = field(default_factory=list)

    def devices(self, tag: str) -> list[Device]:
        return [d for d in self.domain.devices if d.tag == tag]

    def videos(self) -> list[Device]:
        vids = self.devices("video")
        prim = [v for v in vids if v.attrs.get("primary") == "yes"]
        if prim:
            vids.remove(prim[0])
            vids.insert(0, prim[0])
        return vids

    def hostdevs(self) -> list[Device]:
        """PCI-capable host devices; those of ``<interface type='hostdev'>`` come first."""
        nets = [d for d in self.domain.devices if d.tag == "interface" and d.type == "hostdev"]
        return nets + self.devices("hostdev")

    def find_controller(self, ctype: str, index: int) -> Controller | None:
        for c in self.controllers:
            if c.type == ctype and c.index == index:
                return c
        return None

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


#: elements libvirt 9.0 does not know and drops from the definition
DROPPED_BY_LIBVIRT = frozenset({"crypto"})
#: more implicit disk controllers than this cannot all get PCI slots (256 buses x 31 slots)
MAX_IMPLICIT_CONTROLLERS = 256 * 31
#: PCI controller indexes up to this one are planned before they are found too high (> 255),
#: in libvirt's order; higher ones are refused at once
MAX_PLANNED_INDEX = 4095
#: ports of a virtio-serial controller without ``ports=``
VIRTIO_SERIAL_PORTS = 31


def prepare(domain: Domain, machine: Machine) -> Guest:
    guest = Guest(domain, machine)
    parse_counts(domain)
    drop_unknown(guest)
    drop_switched_off_addresses(domain)
    order_disks(domain)
    guest.controllers = controller_order(domain)
    add_parse_time(guest)
    assign_indexes(guest)
    add_machine_defaults(guest)
    fill_models(guest)
    add_implicit(guest)
    validate(guest)
    assign_virtio_serial_ports(guest)
    domain.list_order = {
        "usb": [c for c in guest.controllers if c.type == "usb"],
        "video": guest.videos(),
    }
    return guest


#: devices the parser takes one of at most, in the order it reads them, with its words
SINGLE_DEVICES = (("watchdog", "only a single watchdog device is supported", "internal"),
                  ("memballoon", "only a single memory balloon device is supported", "internal"),
                  ("vsock", "only a single vsock device is supported", "xml"))


def parse_counts(domain: Domain) -> None:
    """libvirt's parser refuses a second watchdog, balloon or vsock before anything else."""
    for tag, message, kind in SINGLE_DEVICES:
        found = [d for d in domain.devices if d.tag == tag][1:2]
        if found:
            raise PlanError(message, found[0].describe(), kind=kind)


def drop_unknown(guest: Guest) -> None:
    dom = guest.domain
    for d in [d for d in dom.devices if d.tag in DROPPED_BY_LIBVIRT]:
        dom.devices.remove(d)
        dom.removed.append(d)


def drop_switched_off_addresses(domain: Domain) -> None:
    """A balloon, USB controller or video of model 'none' is no device to QEMU: libvirt
    forgets any address written on it, and another device may take that slot."""
    for d in domain.devices:
        if d.address is not None and d.model == "none" and (
                d.tag in ("memballoon", "video") or (isinstance(d, Controller) and d.type == "usb")):
            d.set("address", None)


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
    disks = [d for group in by_bus.values() for d in sorted(group, key=_target_index)]
    places = [i for i, d in enumerate(domain.devices) if d.tag == "disk"]
    for i, disk in zip(places, disks):
        domain.devices[i] = disk


def _sorted_by_target(disks: list[Device]) -> bool:
    indexes = [_target_index(d) for d in disks]
    return all(a <= b for a, b in zip(indexes, indexes[1:]))


def _target_index(disk: Device) -> int:
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
                and c.index > top.get(c.type, -1) and not _is_companion(c)):
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
            elif not _is_companion(c) and _is_companion(cur) and cur_idx == c.index:
                insert_at = i
            elif insert_at == -1:
                insert_at = i + 1
        if insert_at == -1:
            order.append(c)
        else:
            order.insert(insert_at, c)
    return order


def _is_companion(c: Controller) -> bool:
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
        guest.add_controller("usb", 0, m.default_usb, "default")
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
        elif dev.tag == "video" and dev.model is None:
            dev.set("model", m.video_model)
        elif dev.tag == "disk" and dev.bus is None:
            dev.bus = _disk_bus(dev)
        elif isinstance(dev, Controller) and dev.model is None:
            if dev.type == "usb":
                if m.zpci and dev.address is None:
                    dev.set("model", "none")
                elif m.usb_model:
                    dev.set("model", m.usb_model)
            elif dev.type == "scsi":
                dev.set("model", m.scsi_model)


def _disk_bus(disk: Device) -> str:
    if disk.attrs.get("device") == "floppy":
        return "fdc"
    dst = disk.target.get("dev", "")
    for prefix, bus in sorted(DISK_PREFIX_BUS, key=lambda p: -len(p[0])):
        if dst.startswith(prefix):
            return bus
    return "ide"


def disk_index(name: str) -> int | None:
    """libvirt's virDiskNameToIndex: 'sda' -> 0, 'sdz' -> 25, 'sdaa' -> 26."""
    m = re.fullmatch(r"(?:hd|fd|sd|vd|xvd|ubd)([a-z]+)\d*", name)
    if not m:
        return None
    idx = 0
    for ch in m.group(1):
        idx = idx * 26 + (ord(ch) - ord("a") + 1)
    return idx - 1


# ---- 5. implicit devices ----------------------------------------------------------------
def _drive_controller(dev: Device) -> int | None:
    a = dev.address
    if a is not None and a.type == "drive":
        try:
            n = int(a.attrs.get("controller", "0"), 0)
        except ValueError:
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
        idx = disk_index(dev.target.get("dev", ""))
        if idx is None:
            return None
        per = DISK_BUS_CONTROLLER[bus][1]
        return idx // per
    return 0


def _maybe_add(guest: Guest, ctype: str, index: int) -> None:
    if guest.find_controller(ctype, index) is None:
        c = guest.add_controller(ctype, index, None, "implicit")
        if ctype == "scsi":
            c.set("model", guest.machine.scsi_model)


def add_implicit(guest: Guest) -> None:
    for bus in IMPLICIT_DISK_BUSES:
        ctype = DISK_BUS_CONTROLLER[bus][0]
        top = -1
        for disk in guest.devices("disk"):
            if disk.bus == bus:
                c = _drive_controller(disk)
                if c is not None:
                    top = max(top, c)
        if top >= MAX_IMPLICIT_CONTROLLERS:
            raise PlanError(f"a {bus} disk needs {ctype} controller {top}: its {top + 1} implicit "
                            "controllers cannot all get a PCI slot", "devices", kind="internal")
        if ctype == "fdc" and top > 0:
            raise PlanError("Only 1 fdc controller is supported", "devices", kind="unsupported")
        have = {c.index for c in guest.controllers if c.type == ctype}
        for i in range(top + 1):
            if i not in have:
                _maybe_add(guest, ctype, i)
    for tag in ("channel", "console"):
        for chr_ in guest.devices(tag):
            if chr_.target.get("type") != "virtio":
                continue
            idx = 0
            a = chr_.address
            if a is not None and a.type == "virtio-serial":
                try:
                    idx = int(a.attrs.get("controller", "0"), 0)
                except ValueError:
                    idx = 0
            _maybe_add(guest, "virtio-serial", idx)
    if guest.domain.graphics and not guest.devices("video"):
        guest.add(Device(tag="video", model=guest.machine.video_model, origin="implicit",
                         changed={"model"}))


def add_parse_time(guest: Guest) -> None:
    """Controllers libvirt's parser adds while reading ``<hostdev type='scsi'>``."""
    for hd in guest.devices("hostdev"):
        if hd.type == "scsi" and hd.attrs.get("mode", "subsys") == "subsys":
            c = _drive_controller(hd)
            if c is not None:
                if c >= MAX_IMPLICIT_CONTROLLERS:
                    raise PlanError(f"a SCSI host device needs scsi controller {c}: its {c + 1} "
                                    "implicit controllers cannot all get a PCI slot", hd.describe(),
                                    kind="internal")
                have = {x.index for x in guest.controllers if x.type == "scsi"}
                for i in range(c + 1):
                    if i not in have:
                        _maybe_add(guest, "scsi", i)


# ---- 6. validation ---------------------------------------------------------------------
def validate(guest: Guest) -> None:
    """Checks libvirt makes while it parses and fills in defaults (before addresses)."""
    orders: set[str] = set()
    for d in guest.domain.devices:
        order = d.attrs.get("boot")
        if order is None:
            continue
        if order in orders:
            raise PlanError(f"boot order '{order}' used for more than one device", d.describe(),
                            kind="unsupported")
        orders.add(order)
    if orders and guest.domain.os_boot:
        raise PlanError("per-device boot elements cannot be used together with os/boot elements",
                        "os", kind="unsupported")
    if any(c.type == "usb" and c.model == "none" and c.origin == "user" for c in guest.controllers):
        # the parser's own refusals, when the XML itself disables USB
        for inp in guest.devices("input"):
            if inp.bus == "usb":
                raise PlanError("Can't add USB input device. USB bus is disabled", inp.describe(),
                                kind="unsupported")
        for hub in guest.devices("hub"):
            if hub.type == "usb":
                raise PlanError("Can't add USB hub: USB is disabled for this domain", hub.describe(),
                                kind="unsupported")
    pci = [c for c in guest.controllers if c.type == "pci"]
    for c in pci:  # libvirt's per-device post-parse: before the duplicate check
        _pci_controller_post_parse(guest, c)
    for ser in guest.devices("serial"):
        a = ser.address
        if ser.target.get("type") == "usb-serial" and a is not None and a.type != "usb":
            raise PlanError("usb-serial requires address of usb type", ser.describe(), kind="unsupported")
    seen: dict[tuple[str | None, int | None], Controller] = {}
    for c in guest.controllers:
        if c.type == "usb":
            continue
        key = (c.type, c.index)
        if key in seen:
            raise PlanError(f"Multiple '{c.type}' controllers with index '{c.index}'", c.describe())
        seen[key] = c
    usb = [c for c in guest.controllers if c.type == "usb"]
    # a companion (an ICH9 UHCI is one even without <master>) needs some USB controller
    # that is none: libvirt 9.0 does not ask for one of the same index
    companions = [c for c in usb if _is_companion(c)]
    if companions and all(_is_companion(c) for c in usb):
        raise PlanError("No master USB controller specified", companions[0].describe())
    if any(c.model == "none" for c in usb) and len(usb) > 1:
        other = next((c for c in usb if c.model != "none"), usb[1])
        raise PlanError("Can't add another USB controller: USB is disabled for this domain",
                        other.describe(), kind="unsupported")
    for c in pci:
        _validate_pci_controller(guest, c)
    if len(guest.devices("iommu")) > 1:
        raise PlanError("only a single IOMMU device is supported", guest.devices("iommu")[1].describe())
    panic_models: set[str | None] = set()
    for panic in guest.devices("panic"):
        if panic.model is not None and panic.model in panic_models:
            raise PlanError(f"Multiple panic devices with model '{panic.model}'", panic.describe())
        panic_models.add(panic.model)
    tpms = [t for t in guest.devices("tpm") if t.model != "spapr-tpm-proxy"]
    if len(tpms) > 1:
        raise PlanError("only a single TPM non-proxy device is supported", tpms[1].describe(),
                        kind="unsupported")
    primaries = [v for v in guest.devices("video") if v.attrs.get("primary") == "yes"]
    if len(primaries) > 1:
        raise PlanError("Only one primary video device is supported", primaries[1].describe(),
                        kind="unsupported")
    seen_hostdevs: set[tuple[str, ...]] = set()
    for h in guest.hostdevs():
        if h.source and (h.tag == "interface" or h.type == "pci"):
            key = tuple(str(_int(h.source.get(k), 0)) for k in ("domain", "bus", "slot", "function"))
            if key in seen_hostdevs:
                raise PlanError("Hostdev already exists in the domain configuration", h.describe())
            seen_hostdevs.add(key)


def validate_late(guest: Guest) -> None:
    """Checks libvirt makes after addresses are assigned (so an address error wins)."""
    dom = guest.domain
    by_tag: dict[str, list[Device]] = {}
    for d in dom.devices:
        by_tag.setdefault(d.tag, []).append(d)

    def of(tag: str) -> list[Device]:
        return by_tag.get(tag, [])
    usb = [c for c in guest.controllers if c.type == "usb"]
    disks: dict[str, Device] = {}
    for disk in of("disk"):
        dev = disk.target.get("dev")
        if dev is None:
            continue
        if dev in disks:
            first = disks[dev]
            raise PlanError(f"target '{dev}' duplicated for disk sources "
                            f"'{first.attrs.get('source', '<null>')}' and "
                            f"'{disk.attrs.get('source', '<null>')}'", disk.describe())
        disks[dev] = disk
    # libvirt's USB address set (built after the PCI one) has one hub per index: every
    # controller with ports takes its index (the ICH9 UHCI companions have none of their own)
    hubs: set[int | None] = set()
    for c in usb:
        if c.model in devices.USB_WITHOUT_PORTS:
            continue
        if c.index in hubs:
            raise PlanError(f"Duplicate USB controllers with index {c.index}", c.describe())
        hubs.add(c.index)
    if _usb_devices(guest) and all(c.model == "none" for c in usb):
        raise PlanError("USB is disabled for this domain, but USB devices are present in the domain XML",
                        "devices", kind="unsupported")
    if dom.uefi and not dom.acpi and dom.arch in machines.X86:
        raise PlanError("UEFI requires ACPI on this architecture", "os", kind="unsupported")
    if dom.acpi and not dom.uefi and dom.arch == "aarch64":
        raise PlanError("ACPI requires UEFI on this architecture", "features", kind="unsupported")
    if dom.secure_boot:
        if guest.machine.family != "q35":
            raise PlanError("Secure boot is supported with q35 machine types only", "os/loader",
                            kind="unsupported")
        if dom.arch != "x86_64":
            raise PlanError("Secure boot is supported for x86_64 architecture only", "os/loader",
                            kind="unsupported")
        if not dom.firmware_auto and not dom.smm:
            raise PlanError("Secure boot requires SMM feature enabled", "os/loader", kind="unsupported")
    if dom.firmware_auto and dom.loader is not None:
        # firmware autoselection takes no loader but secure='yes' (a path implies a type)
        loader = dom.loader
        for attr, given in (("readonly", "readonly" in loader),
                            ("type", "type" in loader or "path" in loader),
                            ("secure", loader.get("secure") not in (None, "yes"))):
            if given:
                raise PlanError(f"loader attribute '{attr}' cannot be specified when firmware "
                                "autoselection is enabled", "os/loader", kind="internal")
    limit = machines.max_cpus(dom.emulator, dom.arch, dom.machine)
    if limit and dom.max_vcpus > limit:
        raise PlanError(f"Maximum CPUs greater than specified machine type limit {limit}", "vcpu",
                        kind="unsupported")
    if dom.arch in machines.X86 and dom.max_vcpus > X86_VCPUS_WITHOUT_EIM and \
            not any(i.attrs.get("eim") == "on" for i in of("iommu")):
        raise PlanError(f"more than {X86_VCPUS_WITHOUT_EIM} vCPUs require extended interrupt mode "
                        "enabled on the iommu device", "vcpu", kind="unsupported")
    if dom.max_memory and not dom.numa_cells:
        raise PlanError("At least one numa node has to be configured when enabling memory hotplug",
                        "maxMemory", kind="unsupported")
    if dom.topology_vcpus is not None and dom.topology_vcpus != dom.max_vcpus:
        raise PlanError("CPU topology doesn't match maximum vcpu count", "cpu/topology",
                        kind="unsupported")
    watchdogs = of("watchdog")
    for w in watchdogs:
        if w.model is not None and w.model not in WATCHDOG_MODELS:
            raise PlanError(f"unknown watchdog model '{w.model}'", w.describe(), kind="unsupported")
        if w.model == "diag288" and dom.arch not in machines.S390:
            raise PlanError("diag288 model of watchdog is allowed for s390 and s390x only", w.describe(),
                            kind="unsupported")
    # the panic devices are checked with the domain, before any device
    for panic in of("panic"):
        _validate_panic(guest, panic)
    for d in dom.devices:
        if d.address is not None and d.address.type == "unassigned" and d.tag != "hostdev" \
                and d.parent is None:
            raise PlanError("address of type 'unassigned' is supported only for hostdevs",
                            d.describe(), kind="unsupported")
    # libvirt validates devices kind by kind: disks, (nets,) sounds, hostdevs, videos,
    # controllers, smartcards, serials, ..., inputs, watchdogs; the checks of its QEMU
    # driver before its generic ones for each device
    for disk in of("disk"):
        a = disk.address
        if disk.bus == "usb" and a is not None and a.type != "usb":
            raise PlanError("unexpected address type for usb disk", disk.describe(), kind="internal")
        if disk.bus in DRIVE_BUSES and a is not None and a.type != "drive":
            raise PlanError(f"Invalid address type '{a.type}' for the disk '{disk.target.get('dev', '')}' "
                            f"with the bus type '{disk.bus}'", disk.describe(), kind="unsupported")
        if a is not None and a.type == "drive" and disk.bus in ("ide", "sata", "scsi"):
            _validate_drive_address(guest, disk, a)
        for opt in ("event_idx", "ioeventfd"):
            if opt in disk.attrs and disk.bus != "virtio":
                raise PlanError(f"disk {opt} mode supported only for virtio bus", disk.describe(),
                                kind="unsupported")
        if disk.type == "vhostuser" and not dom.shared_memory:
            raise PlanError("'vhostuser' requires shared memory", disk.describe(), kind="unsupported")
        if disk.attrs.get("sgio") == "unfiltered":
            raise PlanError("unfiltered sgio is no longer supported", disk.describe(), kind="unsupported")
        if disk.bus != "virtio" and "iothread" in disk.attrs:
            raise PlanError(f"IOThreads not available for bus {disk.bus} target {disk.target.get('dev', '')}",
                            disk.describe(), kind="unsupported")
        _validate_iothread(guest, disk, "Disk")
        if disk.bus in EJECTLESS_BUSES and disk.attrs.get("device") in ("cdrom", "floppy"):
            raise PlanError(f"disk type of '{disk.target.get('dev', '')}' does not support ejectable media",
                            disk.describe(), kind="unsupported")
        if disk.bus == "sata" and not guest.machine.sata_capable:
            raise PlanError("SATA is not supported with this QEMU binary", disk.describe(),
                            kind="unsupported")
    for net in of("interface"):
        if net.type in ("vhostuser", "vdpa") and net.model not in devices.VIRTIO_NIC_MODELS:
            if net.type == "vhostuser":
                raise PlanError("Wrong or no <model> 'type' attribute specified with <interface "
                                "type='vhostuser'/>. vhostuser requires the virtio-net* frontend",
                                net.describe(), kind="internal")
            raise PlanError(f"invalid model for interface of type 'vdpa': '{net.model or ''}'",
                            net.describe(), kind="unsupported")
    for snd in of("sound"):
        if snd.model == "ich9" and "ich9-intel-hda" in guest.machine.lacks:
            raise PlanError("The ich9-intel-hda audio controller is not supported in this QEMU binary",
                            snd.describe(), kind="unsupported")
        if devices.wanted_without_flags(snd):
            raise PlanError(f"sound card model '{snd.model}' is not supported by qemu", snd.describe(),
                            kind="internal")
    for h in of("hostdev"):
        if h.type == "pci" and h.attrs.get("mode") == "subsys" and h.address is not None and \
                h.address.type not in ("pci", "unassigned"):
            raise PlanError("PCI host devices must use 'pci' or 'unassigned' address type",
                            h.describe(), kind="internal")
        if h.type == "mdev" and h.attrs.get("display") == "on" and not dom.graphics:
            raise PlanError("graphics device is needed for attribute value 'display=on' in <hostdev>",
                            h.describe(), kind="unsupported")
        own = HOSTDEV_ADDRESS_TYPES.get(h.type or "")
        if own is not None and h.address is not None and h.address.type != own[0]:
            raise PlanError(f"{own[1]} host device must use '{own[0]}' address type", h.describe(),
                            kind="unsupported")
    videos = guest.videos()
    if len(videos) > 1:
        none = next((v for v in videos if v.model == "none"), None)
        if none is not None:
            raise PlanError("a 'none' video type must be the only video device defined for the domain",
                            none.describe(), kind="unsupported")
    for i, video in enumerate(videos):
        if video.attrs.get("accel2d") == "yes":
            raise PlanError("qemu does not support the accel2d setting", video.describe(),
                            kind="unsupported")
        if video.attrs.get("accel3d") == "yes" and video.model != "virtio":
            raise PlanError("3d acceleration is supported only with 'virtio' video device",
                            video.describe(), kind="unsupported")
        if video.model == "ramfb" and video.address is not None:
            raise PlanError("address not supported for video type ramfb", video.describe(),
                            kind="unsupported")
        if video.model is not None and video.model not in guest.machine.video_models:
            raise PlanError(f"domain configuration does not support video model '{video.model}'",
                            video.describe(), kind="unsupported")
        if i and video.model not in devices.SECONDARY_VIDEO_MODELS:
            raise PlanError(f"video type '{video.model}' is only valid as primary video device",
                            video.describe(), kind="unsupported")
    for c in guest.controllers:
        if c.type == "ide" and not guest.machine.ide:
            raise PlanError("IDE controllers are unsupported for this QEMU binary or machine type",
                            c.describe(), kind="unsupported")
        _validate_iothread(guest, c, "controller")
        if c.type == "scsi" and c.model in devices.SCSI_MODELS_QEMU_LACKS:
            raise PlanError(f"Unsupported controller model: {c.model}", c.describe(), kind="unsupported")
        if c.type == "usb" and c.model in ("qusb1", "qusb2"):
            raise PlanError("USB controller model type 'qusb1' or 'qusb2' is not supported in qemu",
                            c.describe(), kind="unsupported")
        if c.type == "usb" and c.model in ("nec-xhci", "qemu-xhci") and \
                _int(c.attrs.get("ports"), 0) > devices.XHCI_MAX_PORTS:
            raise PlanError(f"'{c.model}' controller only supports up to '{devices.XHCI_MAX_PORTS}' ports",
                            c.describe(), kind="unsupported")
        if c.type == "scsi" and c.model == "ncr53c90":
            raise PlanError("ncr53c90 SCSI controller is not a built-in for this machine", c.describe(),
                            kind="unsupported")
        if c.type == "ide" and c.index:
            raise PlanError("Only a single IDE controller is supported for this machine type",
                            c.describe(), kind="unsupported")
        if c.type == "pci" and c.index is not None and c.index > 255:
            # planned first (even the buses up to it), refused now, as libvirt does
            raise PlanError(f"PCI controller index {c.index} too high, maximum is 255", c.describe(),
                            kind="unsupported")
        if c.type == "pci" and guest.machine.pci:
            _validate_pci_options(guest, c)
    cards = of("smartcard")
    if len(cards) > 1:
        raise PlanError("this QEMU binary lacks multiple smartcard support", cards[1].describe(),
                        kind="unsupported")
    for card in cards:
        if card.address is not None and card.address.type != "ccid":
            raise PlanError("Controllers must use the 'ccid' address type", card.describe(),
                            kind="unsupported")
        _validate_spicevmc(guest, card)
    for ser in of("serial"):
        target = ser.target.get("type") or ("isa-serial" if dom.arch in machines.X86 else None)
        need = SERIAL_ADDRESS_TYPES.get(target or "")
        if need is not None and ser.address is not None and ser.address.type != need:
            raise PlanError(f"Target type '{target}' requires address type '{need}'", ser.describe(),
                            kind="unsupported")
    cards = of("smartcard")
    if len(cards) > 1:
        raise PlanError("this QEMU binary lacks multiple smartcard support", cards[1].describe(),
                        kind="unsupported")
    for card in cards:
        if card.address is not None and card.address.type != "ccid":
            raise PlanError("Controllers must use the 'ccid' address type", card.describe(),
                            kind="unsupported")
        _validate_spicevmc(guest, card)
    for ser in of("serial"):
        target = ser.target.get("type") or ("isa-serial" if dom.arch in machines.X86 else None)
        need = SERIAL_ADDRESS_TYPES.get(target or "")
        if need is not None and ser.address is not None and ser.address.type != need:
            raise PlanError(f"Target type '{target}' requires address type '{need}'", ser.describe(),
                            kind="unsupported")
    for ch in of("channel"):
        _validate_spicevmc(guest, ch)
    for inp in of("input"):
        if inp.type == "passthrough" and inp.bus not in (None, "virtio"):
            raise PlanError("only bus 'virtio' is supported for 'passthrough' input devices",
                            inp.describe(), kind="unsupported")
        if inp.type == "passthrough" and "virtio-input-host" in guest.machine.lacks:
            raise PlanError("virtio-input-host is not supported by this QEMU binary", inp.describe(),
                            kind="unsupported")
        if inp.type == "tablet" and inp.bus == "ps2":
            raise PlanError("ps2 bus does not support tablet input device", inp.describe(),
                            kind="internal")
        if inp.type == "evdev" and inp.bus is not None:
            raise PlanError("input evdev doesn't support bus element", inp.describe(),
                            kind="unsupported")
        if (inp.bus == "virtio" or (inp.bus is None and inp.type == "passthrough")) and \
                inp.model in ("virtio-transitional", "virtio-non-transitional"):
            raise PlanError("virtio (non-)transitional models are not supported for "
                            f"input type={inp.type}", inp.describe(), kind="unsupported")
    for fs in of("filesystem"):
        if fs.type not in (None, "mount"):
            raise PlanError("only supports mount filesystem type", fs.describe(), kind="unsupported")
        if fs.attrs.get("driver") != "virtiofs":
            continue
        if fs.attrs.get("accessmode", "passthrough") != "passthrough":
            raise PlanError("virtiofs only supports passthrough accessmode", fs.describe(),
                            kind="unsupported")
        if not dom.shared_memory:
            raise PlanError("'virtiofs' requires shared memory", fs.describe(), kind="unsupported")
    for w in watchdogs:
        if w.address is None:
            continue
        if w.model in ("ib700", "diag288"):
            raise PlanError(f"{w.model} model of watchdog does not support configuring the address",
                            w.describe(), kind="unsupported")
        if w.model == "i6300esb" and w.address.type != "pci":
            raise PlanError("i6300esb model of watchdog can go only on PCI bus", w.describe(),
                            kind="unsupported")
    for balloon in of("memballoon"):
        if balloon.model == "xen":
            raise PlanError("Memory balloon device type 'xen' is not supported by this version of qemu",
                            balloon.describe(), kind="unsupported")
    for shm in of("shmem"):
        model = shm.model or "ivshmem"
        if model == "ivshmem":
            raise PlanError("ivshmem device is not supported with this QEMU binary", shm.describe(),
                            kind="unsupported")
        if "/" in shm.attrs.get("name", ""):
            raise PlanError("shmem name cannot include '/' character", shm.describe(), kind="unsupported")
        if model in guest.machine.lacks:
            raise PlanError(f"shmem model '{model}' is not supported by this QEMU binary", shm.describe(),
                            kind="unsupported")
        if model == "ivshmem-plain" and "server" in shm.attrs:
            raise PlanError("shmem model 'ivshmem-plain' is supported only with server option disabled",
                            shm.describe(), kind="unsupported")
        if model == "ivshmem-doorbell" and "size" in shm.attrs:
            raise PlanError("shmem model 'ivshmem-doorbell' does not support size setting",
                            shm.describe(), kind="unsupported")
    for mem in of("memory"):
        if not dom.max_memory:
            raise PlanError("cannot use/hotplug a memory device when domain 'maxMemory' is not defined",
                            mem.describe(), kind="unsupported")
        if mem.model == "nvdimm" and "uuid" in mem.attrs and guest.machine.family != "pseries":
            raise PlanError("UUID is not supported for NVDIMM device", mem.describe(), kind="unsupported")
        if mem.model in guest.machine.lacks:
            raise PlanError(f"{mem.model} isn't supported by this QEMU binary", mem.describe(),
                            kind="unsupported")
    for tpm in of("tpm"):
        emulator = dom.emulator or machines.DEFAULT_EMULATORS.get(dom.arch, "")
        if dom.arch in machines.S390:  # no TPM at all: its backend is refused first
            raise PlanError(f"The QEMU executable {emulator} does not support TPM backend type "
                            f"{tpm.attrs.get('backend', '')}", tpm.describe(), kind="unsupported")
        archs = TPM_MODEL_ARCHES.get(tpm.model or "")
        if archs is not None and dom.arch not in archs:
            raise PlanError(f"The QEMU executable {emulator} does not support TPM model {tpm.model}",
                            tpm.describe(), kind="unsupported")
    for rd in of("redirdev"):
        _validate_spicevmc(guest, rd)
    for iommu in of("iommu"):
        _validate_iommu(guest, iommu)
    for vsock in of("vsock"):
        cid = vsock.attrs.get("cid")
        if cid is not None and _int(cid, 3) < 3:
            raise PlanError("guest CIDs must be >= 3", vsock.describe(), kind="unsupported")
    _check_duplicate_drives(of("disk"))
    aliases: set[str] = set()
    for d in dom.devices:
        alias = d.attrs.get("alias")
        if alias is None:
            continue
        if alias in aliases:
            raise PlanError(f"non unique alias detected: {alias}", d.describe(), kind="unsupported")
        aliases.add(alias)
    for d in dom.devices:
        a = d.address
        if a is None:
            continue
        if a.type == "ccw" and not guest.machine.zpci:
            raise PlanError("cannot use CCW address type for device '<null>' using machine type "
                            f"'{machines.canonical(dom.arch, dom.machine)}'", d.describe(),
                            kind="unsupported")
        if d.tag == "hostdev" and d.type == "scsi_host" and a.type not in ("pci", "ccw"):
            raise PlanError("SCSI_host host device must use 'pci' or 'ccw' address type",
                            d.describe(), kind="unsupported")
        if d.tag == "memory" and d.model in ("virtio-mem", "virtio-pmem") and a.type != "pci":
            raise PlanError(f"only 'pci' addresses are supported for the {d.model} device",
                            d.describe(), kind="unsupported")


#: the most x86 vCPUs without an IOMMU in extended interrupt mode (x2APIC ids)
X86_VCPUS_WITHOUT_EIM = 255
#: disk buses whose disks sit on a controller: a 'drive' address or none
DRIVE_BUSES = frozenset({"ide", "fdc", "scsi", "sata"})
#: host device types with an address kind of their own (libvirt's words for them)
HOSTDEV_ADDRESS_TYPES = {"scsi": ("drive", "SCSI"), "usb": ("usb", "USB")}
#: serial port target types and the only address kind each takes (usb-serial is
#: checked when the port is parsed)
SERIAL_ADDRESS_TYPES = {"isa-serial": "isa", "pci-serial": "pci"}
#: the guest arches whose QEMU 7.2 has each TPM front end (tpm-crb is x86's alone,
#: pSeries has only its own)
TPM_MODEL_ARCHES = {"tpm-crb": machines.X86,
                    "tpm-tis": machines.X86 | {"aarch64", "armv7l", "riscv64"},
                    "tpm-spapr": machines.PPC64}
#: the panic model a machine family implies when none is given
PANIC_DEFAULT_MODELS = {"pseries": "pseries", "s390-ccw": "s390"}


def _validate_drive_address(guest: Guest, disk: Device, a: Address) -> None:
    """The numbers of a <disk>'s drive address its controller cannot have."""
    n = {k: _int(a.attrs.get(k), 0) for k in ("controller", "bus", "target", "unit")}
    if disk.bus == "sata" and n["bus"]:
        raise PlanError("bus must be 0 for sata controller", disk.describe(), kind="unsupported")
    if disk.bus in ("sata", "ide") and n["target"]:
        raise PlanError(f"target must be 0 for {disk.bus} controller", disk.describe(), kind="unsupported")
    if disk.bus == "scsi":
        ctrl = guest.find_controller("scsi", n["controller"])
        model = ctrl.model if ctrl is not None else None
        if n["target"] and model in ("lsilogic", "auto"):
            raise PlanError(f"target must be 0 for controller model '{model}'", disk.describe(),
                            kind="unsupported")
        if n["bus"]:
            raise PlanError("SCSI controller only supports 1 bus", disk.describe(), kind="internal")


#: how libvirt derives a drive address from a target name's index, per disk bus:
#: (disks per controller, disks per bus); SCSI depends on its controller: not derived here
DRIVE_LAYOUT = {"ide": (4, 2), "sata": (6, 6), "fdc": (2, 2)}


def _check_duplicate_drives(disks: list[Device]) -> None:
    """Two disks of one bus at one drive address (written, or derived from the target
    names: 'vda' on IDE is 'hda')."""
    seen: dict[tuple, Device] = {}
    for disk in disks:
        a = disk.address
        if a is not None and a.type == "drive":
            n = tuple(_int(a.attrs.get(k), 0) for k in ("controller", "bus", "target", "unit"))
        elif a is None and disk.bus in DRIVE_LAYOUT:
            index = _target_index(disk)
            if index < 0:
                continue
            per_controller, per_bus = DRIVE_LAYOUT[disk.bus]
            n = (index // per_controller, (index % per_controller) // per_bus, 0, index % per_bus)
        else:
            continue
        key = (disk.bus,) + n
        first = seen.get(key)
        if first is not None:
            raise PlanError(f"Found duplicate drive address for disk with target name "
                            f"'{first.target.get('dev', '')}' controller='{n[0]}' bus='{n[1]}' "
                            f"target='{n[2]}' unit='{n[3]}'", disk.describe(), kind="unsupported")
        seen[key] = disk


def _validate_spicevmc(guest: Guest, dev: Device) -> None:
    if dev.type == "spicevmc" and not guest.domain.spice:
        raise PlanError("chardev 'spicevmc' not supported without spice graphics", dev.describe(),
                        kind="unsupported")


def _validate_iothread(guest: Guest, dev: Device, what: str) -> None:
    text = dev.attrs.get("iothread")
    if text is None:
        return
    n = _int(text, 0)
    if n not in guest.domain.iothreads:
        raise PlanError(f"{what} iothread '{n}' not defined in iothreadid", dev.describe(),
                        kind="unsupported")


def _validate_panic(guest: Guest, panic: Device) -> None:
    dom = guest.domain
    what = panic.describe()
    model = panic.model
    if model is None:
        model = PANIC_DEFAULT_MODELS.get(guest.machine.family, "isa" if dom.arch in machines.X86 else None)
    if model == "pseries" and guest.machine.family != "pseries":
        raise PlanError("only pSeries guests support panic device of model 'pseries'", what,
                        kind="unsupported")
    if model == "s390" and dom.arch not in machines.S390:
        raise PlanError("only S390 guests support panic device of model 's390'", what, kind="unsupported")
    if model == "isa" and dom.arch not in machines.X86:
        raise PlanError("the QEMU binary does not support the ISA panic device", what, kind="unsupported")
    if model == "hyperv" and dom.arch not in machines.X86:
        raise PlanError("only i686 and x86_64 guests support panic device of model 'hyperv'", what,
                        kind="unsupported")
    a = panic.address
    if a is None:
        return
    if model == "isa" and a.type != "isa":
        raise PlanError("panic is supported only with ISA address type", what, kind="unsupported")
    if model in ("pseries", "hyperv", "s390"):
        raise PlanError(f"setting the panic device address is not supported for model '{model}'", what,
                        kind="unsupported")


#: the watchdog models libvirt 9.0 knows (itco came later)
WATCHDOG_MODELS = frozenset({"i6300esb", "ib700", "diag288"})

#: machine families each IOMMU model works with (libvirt 9.0's words for them)
IOMMU_MACHINES: dict[str, tuple[frozenset[str], str]] = {
    "intel": (frozenset({"q35"}), "Q35 machines"),
    "virtio": (frozenset({"q35", "arm-virt"}), "Q35 and ARM Virt machines"),
    "smmuv3": (frozenset({"arm-virt"}), "ARM Virt machines"),
}


def _validate_iommu(guest: Guest, iommu: Device) -> None:
    what = iommu.describe()
    if iommu.model == "smmuv3" and iommu.address is not None:
        raise PlanError("iommu model 'smmuv3' can't have address", what)
    allowed = IOMMU_MACHINES.get(iommu.model or "")
    if allowed is not None and guest.machine.family not in allowed[0]:
        raise PlanError(f"IOMMU device: '{iommu.model}' is only supported with {allowed[1]}", what,
                        kind="unsupported")
    if iommu.model == "virtio" and not guest.domain.acpi:
        raise PlanError("IOMMU device: 'virtio' requires ACPI", what, kind="unsupported")
    if iommu.attrs.get("intremap") == "on" and guest.domain.ioapic != "qemu":
        raise PlanError("IOMMU interrupt remapping requires split I/O APIC (ioapic driver='qemu')",
                        what, kind="unsupported")


def _validate_pci_options(guest: Guest, c: Controller) -> None:
    """libvirt's checks of a PCI controller's <model name> and <target> options (the ones
    the planner filled in included)."""
    pseries = guest.machine.multiple_roots
    row = controllers.MODELS[c.model or "pci-root"]
    allowed = set(row.options)
    if pseries and c.model == "pci-root":
        allowed = set(controllers.PSERIES_PHB_OPTIONS)
    what = c.describe()
    for opt in c.target:
        if opt not in controllers.TARGET_ATTRIBUTES or opt in allowed:
            continue
        raise PlanError(f"Option '{controllers.OPTION_LABELS.get(opt, opt)}' is not valid for PCI "
                        f"controller with index '{c.index}', model '{c.model}' and modelName "
                        f"'{c.model_name or ''}'", what, kind="unsupported")
    if c.model_name is not None and row.model_names and c.model_name not in row.model_names \
            and not (pseries and c.model == "pci-root" and c.model_name == controllers.PSERIES_PHB_MODEL_NAME):
        raise PlanError(f"Option 'modelName' has invalid value for PCI controller with index "
                        f"'{c.index}', model '{c.model}' and modelName '{c.model_name}'", what,
                        kind="unsupported")
    for opt, (low, high) in controllers.OPTION_RANGES.items():
        if opt in c.target and opt in allowed:
            try:
                v = int(c.target[opt], 0)
            except ValueError:
                raise PlanError(f"Invalid value for attribute '{opt}' in element 'target': "
                                f"'{c.target[opt]}'", what) from None
            if not low <= v <= high:
                name = {"index": "target index"}.get(opt, opt)
                raise PlanError(f"PCI controller {name} '{v}' out of range - must be "
                                f"{low}-{high}", what, kind="unsupported")
    if pseries and c.model == "pci-root":
        ti = c.target.get("index")
        if ti is not None and (int(ti, 0) == 0) != (c.index == 0):
            raise PlanError("Only the PCI controller with index 0 can have target index 0, "
                            "and vice versa", what, kind="unsupported")
        if c.index == 0 and "node" in c.target:
            raise PlanError("The PCI controller with index=0 can't be associated with a NUMA "
                            "node", what, kind="unsupported")


def _usb_devices(guest: Guest) -> bool:
    """Does anything need a USB bus (including what libvirt adds on its own)?"""
    m = guest.machine
    if m.usb_input_with_graphics and guest.domain.graphics:
        return True  # libvirt adds a USB keyboard (and mouse) to graphical pSeries guests
    for d in guest.domain.devices:
        t = d.tag
        if (t == "input" and d.bus == "usb") or (t == "hostdev" and d.type == "usb") or \
           t in ("redirdev", "smartcard") or (t == "hub" and d.type == "usb") or \
           (t == "disk" and d.bus == "usb") or (t == "sound" and d.model == "usb") or \
           (t == "serial" and d.target.get("type") == "usb-serial") or \
           (t == "interface" and d.model == "usb-net") or \
           (isinstance(d, Controller) and d.type == "ccid"):
            return True
    return False


def _pci_controller_post_parse(guest: Guest, c: Controller) -> None:
    """What libvirt checks of one PCI controller as it fills in its defaults."""
    m = guest.machine
    what = c.describe()
    row = controllers.lookup(c.model)
    if c.model is None:
        raise PlanError("PCI controller model was not set correctly", what, kind="internal")
    if row is None:
        raise PlanError(f"Unknown PCI controller model '{c.model}'", what)
    if row.is_root and c.index != 0 and not m.multiple_roots:
        raise PlanError("pci-root and pcie-root controllers should have index 0", what)
    if c.model == "pci-expander-bus" and m.chipset != "i440fx":
        raise PlanError("pci-expander-bus controllers are only supported on 440fx-based machinetypes",
                        what, kind="unsupported")
    if c.model == "pcie-expander-bus" and m.family not in ("q35", "arm-virt"):
        raise PlanError("pcie-expander-bus controllers are not supported with this machine type",
                        what, kind="unsupported")
    node = c.target.get("node")
    if node is not None:
        try:
            n = int(node, 0)
        except ValueError:
            raise PlanError(f"Invalid NUMA node '{node}'", what) from None
        if n >= guest.domain.numa_cells:
            raise PlanError(f"{c.model} with index {c.index} is configured for a NUMA node ({n}) not "
                            f"present in the domain's <cpu><numa> array ({guest.domain.numa_cells})",
                            what)


def _validate_pci_controller(guest: Guest, c: Controller) -> None:
    """What libvirt checks of one PCI controller once the domain is complete."""
    what = c.describe()
    row = controllers.lookup(c.model)
    assert row is not None  # _pci_controller_post_parse
    if c.index is not None and c.index > MAX_PLANNED_INDEX:
        # libvirt first lays out that many buses (its error then is usually the address
        # set's, e.g. no slot left for the root ports on q35) and checks the index after;
        # pciplan does too, up to a bound that keeps absurd indexes from costing seconds
        raise PlanError(f"PCI controller index {c.index} too high, maximum is 255", what,
                        kind="unsupported")
    if row.is_root and c.address is not None:
        raise PlanError("pci-root and pcie-root controllers should not have an address", what,
                        kind="unsupported")


def mark_non_pci_transports(guest: Guest) -> None:
    """virtio-mmio (ARM/RISC-V boards) and spapr-vio (pSeries) decisions that take
    devices off PCI before PCI addresses are assigned."""
    m = guest.machine
    if m.virtio_mmio:
        has_root = guest.find_controller("pci", 0) is not None and \
            guest.find_controller("pci", 0).model == "pcie-root"  # type: ignore[union-attr]
        any_mmio = any(d.address is not None and d.address.type == "virtio-mmio"
                       for d in guest.domain.devices)
        if not has_root or any_mmio:
            for d in guest.domain.devices:
                if d.address is None and devices.is_virtio(d):
                    d.set("address", Address("virtio-mmio"))
    if m.zpci:
        for d in guest.domain.devices:
            if d.address is None and (devices.is_virtio(d) or d.tag in ("filesystem", "vsock")):
                d.address = Address("ccw")
    for d in guest.domain.devices:
        # spapr-vlan NICs and ibmvscsi controllers are spapr-vio devices on every machine:
        # libvirt gives them a spapr-vio address even over a PCI one the user wrote
        if (d.tag == "interface" and d.model == "spapr-vlan") or \
           (isinstance(d, Controller) and d.type == "scsi" and d.model == "ibmvscsi"):
            if d.address is None:
                d.address = Address("spapr-vio")
            elif d.address.type != "spapr-vio":
                d.set("address", Address("spapr-vio"))
        elif m.family == "pseries" and _spapr_vio_on_pseries(d):
            # the console, NVRAM and TPM proxy of pSeries: libvirt's spapr-vio pass runs
            # before the PCI one and replaces any other address
            if d.address is None:
                d.address = Address("spapr-vio")
            elif d.address.type != "spapr-vio":
                d.set("address", Address("spapr-vio"))


def check_user_transport_addresses(guest: Guest) -> None:
    """libvirt's spapr-vio and CCW passes (before the PCI one) refuse a register or device
    number the user gave twice."""
    regs: set[int] = set()
    devnos: set[tuple[int, int, int]] = set()
    for d in guest.domain.devices:
        a = d.address
        if a is None:
            continue
        if a.type == "spapr-vio" and a.attrs.get("reg") is not None and d.tag != "console":
            # (a console that is the first serial port shows that port's address)
            reg = parsecheck.c_uint(a.attrs["reg"], 16, parsecheck.ULLONG_MAX) or 0
            if reg in regs:
                raise PlanError(f"spapr-vio address 0x{reg:x} already in use", d.describe())
            regs.add(reg)
        elif a.type == "ccw" and guest.machine.zpci and a.attrs.get("devno") is not None:
            key = tuple(parsecheck.c_uint(a.attrs.get(k, "0"), 16) or 0 for k in ("cssid", "ssid", "devno"))
            if key in devnos:
                raise PlanError("The CCW devno '%x.%x.%04x' is in use already" % key, d.describe())
            devnos.add(key)  # type: ignore[arg-type]


def _spapr_vio_on_pseries(d: Device) -> bool:
    return (d.tag == "serial" and d.target.get("type") in (None, "spapr-vio-serial")) or \
        d.tag == "nvram" or (d.tag == "tpm" and d.model == "tpm-spapr")


#: devices whose own address kind is given after the PCI pass (USB ports, DIMM slots):
#: a PCI address written on them is kept taken by that pass, then replaced
LATE_TRANSPORTS = {"hub": "usb", "memory": "dimm"}


def check_usb_addresses(guest: Guest) -> None:
    """libvirt's USB pass (after the PCI one) reserves the USB addresses the user wrote:
    a bus that is no USB controller with ports, a port it does not have, or one port
    given twice is refused.  (pciplan checks them, it does not give out USB ports.)"""
    buses: dict[int | None, int] = {}
    for c in guest.controllers:
        ports = devices.USB_PORTS.get(c.model or "") if c.type == "usb" else None
        if ports is not None:
            if c.model in ("nec-xhci", "qemu-xhci") and c.attrs.get("ports"):
                ports = _int(c.attrs.get("ports"), ports)
            buses.setdefault(c.index, ports)
    if not buses:
        return  # no USB at all: the "USB is disabled" refusals say it better
    seen: set[tuple[int, str]] = set()
    for d in guest.domain.devices:
        a = d.address
        if a is None or a.type != "usb" or isinstance(d, Controller):
            continue
        bus = _int(a.attrs.get("bus"), 0)
        if bus not in buses:
            raise PlanError(f"Missing USB bus {bus}", d.describe())
        port = a.attrs.get("port")
        if not port:
            continue
        if "." not in port and _int(port, 0) > buses[bus]:
            raise PlanError(f"requested USB port {port} not present on USB bus {bus}", d.describe())
        if (bus, port) in seen:
            raise PlanError(f"Duplicate USB address bus {bus} port {port}", d.describe())
        seen.add((bus, port))


def retarget_after_pci(guest: Guest) -> None:
    """libvirt's USB and DIMM passes (after the PCI one) overwrite a PCI address on a USB
    hub or a DIMM with their own; pciplan, which writes neither, leaves none."""
    for d in guest.domain.devices:
        kind = LATE_TRANSPORTS.get(d.tag)
        if kind is None or d.address is None or d.address.type != "pci":
            continue
        if d.tag == "memory" and d.model != "dimm":
            continue
        if d.tag == "hub" and d.type != "usb":
            continue
        d.set("address", None)


# ---- virtio-serial ports (libvirt does this first when it assigns addresses) -----------
def _int(text: str | None, default: int) -> int:
    try:
        return int(text, 0) if text is not None else default
    except ValueError:
        return default


def assign_virtio_serial_ports(guest: Guest) -> None:
    """Channels and consoles need a port on a virtio-serial controller; when every
    port is taken libvirt adds another controller."""
    ports: dict[int, set[int]] = {}
    size: dict[int, int] = {}
    for c in guest.controllers:
        if c.type == "virtio-serial" and c.index is not None:
            ports.setdefault(c.index, set())
            size[c.index] = _int(c.attrs.get("ports"), VIRTIO_SERIAL_PORTS)
    users = [(d, True) for d in guest.devices("console") if d.target.get("type") == "virtio"]
    users += [(d, False) for d in guest.devices("channel") if d.target.get("type") == "virtio"]
    for d, _ in users:
        a = d.address
        if a is not None and a.type == "virtio-serial":
            port = _int(a.attrs.get("port"), 0)
            if port:
                ports.setdefault(_int(a.attrs.get("controller"), 0), set()).add(port)
    for d, allow_zero in users:
        a = d.address
        if a is not None and a.type == "virtio-serial" and _int(a.attrs.get("port"), 0):
            continue
        wanted_ctrl = _int(a.attrs.get("controller"), 0) if a is not None and a.type == "virtio-serial" \
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
        if not placed and wanted_ctrl is None:
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
