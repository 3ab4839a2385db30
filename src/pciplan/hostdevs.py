"""What libvirt 9.0 refuses of a ``<hostdev>``, and when.

The parser reads a host device's source by its kind (:func:`check_parse`, called by
``parsecheck`` with the device's other parser checks): a USB device's vendor and
product, a mediated device's UUID, a SCSI device's adapter and address or its iSCSI
target, a vhost-scsi host's protocol and WWPN, a capabilities-mode device's block,
char or interface; and the options only some kinds take (startupPolicy, sgio, rawio).
Validation (``validate.validate_late``, the host devices after the sounds) makes the
QEMU driver's checks first (:func:`check_qemu`: capabilities mode, PCI write filtering,
boot from vhost-scsi or mediated devices, mediated device models this QEMU lacks,
displays) and libvirt's generic ones after them (:func:`check_generic`: teaming).  Each
check and its place was tried against the libvirt 9.0 daemon.

``xmlio`` reads what validation needs of each host device into a :class:`HostdevFacts`.
"""

from __future__ import annotations

import re

from typing import TYPE_CHECKING, Callable

from lxml import etree

from . import defaults  # (read at call time: defaults imports parsecheck, which imports this)
from . import devices, sources
from .errors import PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Address, Device

#: a vhost-scsi WWPN: 'naa.' and 16 hex digits
WWPN = re.compile(r"naa\.[0-9A-Fa-f]{16}")
#: the element a capabilities-mode host device of each type needs in its <source>, and
#: how libvirt names the device in its refusal
CAPS_SOURCES = {"storage": ("block", "hostdev storage device"),
                "misc": ("char", "hostdev character device"),
                "net": ("interface", "hostdev net device")}
#: the address type a mediated device of a model must have (vfio-ap: any)
MDEV_ADDRESS_TYPES = {"vfio-pci": "pci", "vfio-ccw": "ccw"}
#: the architectures whose QEMU 7.2 usb-host cannot be told how to handle guest resets
GUEST_RESET_LACKING_ARCHES = frozenset({"s390x"})
SGIO_WORDS = frozenset({"filtered", "unfiltered"})
#: rawio and writeFiltering
RAWIO_WORDS = frozenset({"yes", "no"})
ON_OFF = frozenset({"on", "off"})
SECRET_TYPES = frozenset({"none", "volume", "ceph", "iscsi", "tls", "vtpm"})
#: the kinds of PCI, USB, SCSI... host device (``<hostdev mode='subsystem' type=...>``)
SUBSYSTEM_TYPES = frozenset({"usb", "pci", "scsi", "scsi_host", "mdev"})
#: the models of the host devices that have one: mediated devices (which must have one) and
#: vhost-scsi hosts ('default' is none)
MODELS = {"mdev": frozenset({"vfio-pci", "vfio-ccw", "vfio-ap"}),
          "scsi_host": frozenset({"default", "virtio", "virtio-transitional", "virtio-non-transitional"})}
#: a USB host device's <source startupPolicy> ('default' is refused)
STARTUP_POLICIES = frozenset({"mandatory", "requisite", "optional"})
#: a USB host device's guestReset ('default' is refused)
USB_GUEST_RESETS = frozenset({"off", "uninitialized", "on"})
#: the mediated device models QEMU 7.2 has on each architecture family it is not s390
S390_MDEV_MODELS = {"vfio-ap": "VFIO AP", "vfio-ccw": "VFIO CCW"}


class HostdevFacts(Value):
    """What validation needs of a ``<hostdev>`` beyond ``Device``'s fields."""

    #: ``<source writeFiltering>`` given; ``<boot>`` given
    write_filtering: bool = False
    boot: bool = False
    #: ``<teaming>``'s attributes, None without one
    teaming: dict[str, str] | None = None
    #: ``ramfb='on'``
    ramfb: bool = False
    #: ``sgio='unfiltered'``
    sgio_unfiltered: bool = False
    #: a USB device's ``<source guestReset>`` is given
    guest_reset: bool = False
    #: what names the host device (its kind first), as libvirt compares two of them
    #: (:func:`same_source`); None for a PCI one (``Device.source``)
    identity: tuple | None = None
    #: a PCI one's back end as written (``<driver name='vfio'>``, ``kvm``, ``xen``; None:
    #: the default one, chosen when the guest starts, so not checked before)
    backend: str | None = None

    def __init__(self, write_filtering=False, boot=False, teaming=None, ramfb=False, sgio_unfiltered=False, guest_reset=False, identity=None, backend=None) -> None:
        self.write_filtering = write_filtering
        self.boot = boot
        self.teaming = teaming
        self.ramfb = ramfb
        self.sgio_unfiltered = sgio_unfiltered
        self.guest_reset = guest_reset
        self.identity = identity
        self.backend = backend


#: the ``<source>`` child naming a host device of each capabilities type
CAPS_SOURCE_TAGS = {"storage": "block", "misc": "char", "net": "interface"}


def _uint(text: str, top: int = 0xFFFFFFFF) -> int | None:
    """A number as libvirt's virXMLPropUInt reads it (base 0: 0x for hex, a leading 0 for
    octal), up to ``top``; None when it is not one."""
    from . import parsecheck   # (parsecheck imports this module)
    return parsecheck.c_uint(text, 0, top)


def check_parse(el: etree._Element, what: Callable[[], str], kids: dict) -> None:
    """libvirt's parser checks of a host device's source and kind-bound options."""
    from . import interfaces  # (at call time: interfaces imports parsecheck, which imports this)
    src = kids.get("source")
    mode = el.get("mode", "subsystem")
    htype = el.get("type")
    if mode == "capabilities":
        need = CAPS_SOURCES.get(htype or "")
        if need is not None and src is not None and src.find(need[0]) is None:
            raise PlanError(f"Missing <{need[0]}> element in {need[1]}", what, el.sourceline)
        if htype == "net" and src is not None:
            interfaces.check_ip_info(el, "Domain hostdev device", what)
    elif mode != "subsystem" or htype not in SUBSYSTEM_TYPES:
        return  # (an unknown type is refused first, with its own words)
    else:
        check_subsys(el, htype, src, what)
    interfaces.check_teaming_parse(kids.get("teaming"), what)


def check_subsys(el: etree._Element, htype: str, src: etree._Element | None,
                 what: Callable[[], str]) -> None:
    """The checks of a subsystem host device of a known type: a ``<hostdev>``'s, or a
    type='hostdev' ``<interface>``'s (``el``), whose type is its source address's."""
    if src is None:
        raise PlanError("Missing <source> element in hostdev device", what, el.sourceline)
    if src.get("startupPolicy") is not None and htype != "usb":
        raise PlanError("Setting startupPolicy is only allowed for USB devices", what, src.sourceline,
                        kind="unsupported")
    filtering = src.get("writeFiltering") if htype == "pci" else None
    if filtering is not None and filtering not in RAWIO_WORDS:
        raise PlanError(f"Invalid value for attribute 'writeFiltering' in element 'source': '{filtering}'.",
                        what, src.sourceline)
    for attr, words in (("sgio", SGIO_WORDS), ("rawio", RAWIO_WORDS)):
        value = el.get(attr)
        if value is not None and value not in words:
            raise PlanError(f"Invalid value for attribute '{attr}' in element 'hostdev': '{value}'.",
                            what, el.sourceline)
    for attr in ("sgio", "rawio"):
        if el.get(attr) is not None and htype != "scsi":
            raise PlanError(f"{attr} is only supported for scsi host device", what, el.sourceline)
    _check_model(el, htype, what)
    if htype == "usb":
        _check_usb(src, what)
    elif htype == "mdev":
        addr = src.find("address")
        if addr is None:
            raise PlanError("Missing <address> element", what, src.sourceline, kind="unsupported")
        uuid = addr.get("uuid")
        if uuid is None:
            raise PlanError("Missing 'uuid' attribute for element <address>", what, addr.sourceline,
                            kind="unsupported")
        if not sources.uuid_ok(uuid):
            raise PlanError("Cannot parse uuid attribute of element <address>", what, addr.sourceline,
                            kind="internal")
    elif htype == "scsi":
        _check_scsi(src, what)
    elif htype == "scsi_host":
        protocol = src.get("protocol")
        if protocol is None:
            raise PlanError("Missing scsi_host subsystem protocol", what, src.sourceline)
        if protocol != "vhost":
            raise PlanError(f"Unknown scsi_host subsystem protocol '{protocol}'", what, src.sourceline,
                            kind="unsupported")
        wwpn = src.get("wwpn")
        if wwpn is None:
            raise PlanError("missing vhost-scsi hostdev source wwpn", what, src.sourceline)
        if WWPN.fullmatch(wwpn) is None:
            raise PlanError("malformed 'wwpn' value", what, src.sourceline)


def _check_model(el: etree._Element, htype: str | None, what: Callable[[], str]) -> None:
    """The model (only of the types in ``MODELS``; a mediated device's must be there), then a
    mediated device's display and ramfb switches, which no other type reads."""
    model = el.get("model")
    words = MODELS.get(htype or "")
    if model is not None and words is None:  # (libvirt's words, type and all)
        raise PlanError(f"'model' attribute in <hostdev> is only supported when type='{htype}'",
                        what, el.sourceline)
    if model is None and htype == "mdev":
        raise PlanError(f"Missing required attribute 'model' in element '{el.tag}'", what, el.sourceline)
    checks = (("model", words),) if model is not None else ()
    if htype == "mdev":
        checks += (("display", ON_OFF), ("ramfb", ON_OFF))
    for attr, allowed in checks:
        value = el.get(attr)
        if value is not None and value not in allowed:
            raise PlanError(f"Invalid value for attribute '{attr}' in element '{el.tag}': '{value}'.",
                            what, el.sourceline)


def _check_usb(src: etree._Element, what: Callable[[], str]) -> None:
    policy = src.get("startupPolicy")
    if policy is not None and policy not in STARTUP_POLICIES:
        raise PlanError(f"Invalid value for attribute 'startupPolicy' in element 'source': '{policy}'.",
                        what, src.sourceline)
    from . import parsecheck   # (parsecheck imports this module)
    parsecheck._word(src, "autoAddress", parsecheck.YES_NO, what)
    parsecheck._word(src, "guestReset", USB_GUEST_RESETS, what)
    # (each id in turn, then whether its partner is there: a vendor's id is not 0)
    vendor, product = src.find("vendor"), src.find("product")
    for el, partner, missing in ((vendor, product, "product"), (product, vendor, "vendor")):
        if el is None:
            continue
        value = el.get("id")
        if value is None:
            raise PlanError(f"Missing required attribute 'id' in element '{el.tag}'", what, el.sourceline)
        n = _uint(value)
        if n is None:
            raise PlanError(f"Invalid value for attribute 'id' in element '{el.tag}': '{value}'. "
                            "Expected non-negative integer value", what, el.sourceline)
        if el is vendor and n == 0:
            raise PlanError("Invalid value for attribute 'id' in element 'vendor': Zero is not permitted",
                            what, el.sourceline)
        if partner is None:
            raise PlanError(f"missing {missing}", what, src.sourceline, kind="internal")
    addr = src.find("address")
    for attr in ("bus", "device"):
        value = addr.get(attr) if addr is not None else None
        if addr is not None and value is None:
            raise PlanError(f"Missing required attribute '{attr}' in element 'address'", what,
                            addr.sourceline)
        if value is not None and _uint(value) is None:
            raise PlanError(f"Invalid value for attribute '{attr}' in element 'address': '{value}'. "
                            "Expected non-negative integer value", what, addr.sourceline)


def _check_scsi(src: etree._Element, what: Callable[[], str]) -> None:
    protocol = src.get("protocol")
    if protocol not in (None, "adapter", "iscsi"):
        raise PlanError(f"Unknown SCSI subsystem protocol '{protocol}'", what, src.sourceline,
                        kind="unsupported")
    if protocol == "iscsi":
        if src.get("name") is None:   # (name='' passes)
            raise PlanError("missing iSCSI hostdev source path name", what, src.sourceline)
        hosts = src.findall("host")
        for host in hosts:  # (each read as a network disk's, before they are counted)
            sources.check_host(host, what)
        if not hosts:
            raise PlanError("missing the host address for the iSCSI hostdev", what, src.sourceline)
        if len(hosts) > 1:
            raise PlanError("only one source host address may be specified for the iSCSI hostdev",
                            what, src.sourceline)
        auth = src.find("auth")
        if auth is not None:
            sources.check_auth(auth, what)
            secret = auth.find("secret")
            stype = secret.get("type") if secret is not None else None
            if stype not in SECRET_TYPES:
                raise PlanError(f"invalid secret type {stype if stype is not None else '(null)'}",
                                what, secret.sourceline if secret is not None else None,
                                kind="unsupported")
            if stype != "iscsi":
                raise PlanError(f"hostdev invalid secret type '{stype}'", what, secret.sourceline,
                                kind="internal")
        return
    addr = src.find("address")
    if addr is None:
        raise PlanError("'address' must be specified for scsi hostdev source", what, src.sourceline)
    for attr in ("bus", "target", "unit"):
        value = addr.get(attr)
        if value is None:
            raise PlanError(f"Missing required attribute '{attr}' in element 'address'", what,
                            addr.sourceline)
        if _uint(value, 0xFFFFFFFFFFFFFFFF if attr == "unit" else 0xFFFFFFFF) is None:
            raise PlanError(f"Invalid value for attribute '{attr}' in element 'address': '{value}'. "
                            "Expected non-negative integer value", what, addr.sourceline)
    adapter = src.find("adapter")
    if adapter is None or not adapter.get("name"):
        raise PlanError("'adapter' name must be specified for scsi hostdev source", what,
                        src.sourceline)


def read_facts(el: etree._Element, kids: dict) -> HostdevFacts:
    """What validation needs of a ``<hostdev>``: read once, with the device."""
    f = HostdevFacts()
    src = kids.get("source")
    f.write_filtering = src is not None and src.get("writeFiltering") is not None
    f.boot = "boot" in kids
    team = kids.get("teaming")
    if team is not None and (team.get("type") or team.get("persistent")):  # (empty ones: none)
        f.teaming = {k: v for k, v in team.attrib.items() if v}
    f.ramfb = el.get("ramfb") == "on"
    f.sgio_unfiltered = el.get("sgio") == "unfiltered"
    f.guest_reset = src is not None and bool(src.get("guestReset"))
    f.identity = _identity(el, src)
    driver = kids.get("driver")
    f.backend = driver.get("name") if driver is not None else None
    return f


def _number(el: etree._Element | None, attr: str, top: int = 0xFFFFFFFF) -> int:
    """A number as the parser read it (:func:`_uint`; 0 when not there or not one)."""
    text = el.get(attr) if el is not None else None
    return (_uint(text, top) if text is not None else None) or 0


def _text(src: etree._Element | None, tag: str | None) -> str | None:
    el = src.find(tag) if src is not None and tag else None
    return el.text if el is not None else None


def _identity(el: etree._Element, src: etree._Element | None) -> tuple | None:
    """What libvirt compares of two host devices of one mode and type to find the same
    host device twice."""
    mode, htype = el.get("mode", "subsystem"), el.get("type")
    if mode != "subsystem":
        return ("caps", htype, _text(src, CAPS_SOURCE_TAGS.get(htype or "")))
    address = src.find("address") if src is not None else None
    if htype == "usb":
        return ("usb", _number(address, "bus"), _number(address, "device"),
                _number(src.find("vendor") if src is not None else None, "id"),
                _number(src.find("product") if src is not None else None, "id"))
    if htype == "scsi":
        protocol = src.get("protocol") if src is not None else None
        if protocol == "iscsi":
            host = src.find("host") if src is not None else None
            return ("scsi", protocol, host.get("name") if host is not None else None,
                    _number(host, "port"), src.get("name") if src is not None else None)
        adapter = src.find("adapter") if src is not None else None
        return ("scsi", protocol, adapter.get("name") if adapter is not None else None,
                _number(address, "bus"), _number(address, "target"),
                _number(address, "unit", 0xFFFFFFFFFFFFFFFF))  # (a 64-bit unit)
    if htype == "scsi_host":
        return ("scsi_host", src.get("protocol") if src is not None else None,
                src.get("wwpn") if src is not None else None)
    if htype == "mdev":
        uuid = address.get("uuid") if address is not None else None
        # (libvirt compares the UUIDs as it writes them: '53764D0E...' is '53764d0e...')
        return ("mdev", sources.uuid_text(uuid) if uuid else uuid)
    return None


def same_source(first: tuple, second: tuple) -> bool:
    """Do two host devices' identities name one host device?  A USB device named by its
    host bus and device (the first one's way decides) or by its vendor and product."""
    if first[0] != "usb" or second[0] != "usb":
        return first == second
    if first[1] and first[2]:
        return first[1:3] == second[1:3]
    return first[3:] == second[3:]


def _drive(a: Address | None) -> tuple[int, ...] | None:
    if a is None or a.type != "drive":
        return None
    return tuple(defaults.number(a.attrs.get(k), 0) for k in ("controller", "bus", "target", "unit"))


def _drive_as_read(a: Address | None) -> tuple[int, ...] | None:
    """The drive address libvirt's post-parse compares with the SCSI disks': it reads it
    from the address whatever its type, so a PCI address's domain, bus, slot and function
    count as controller, bus, target and unit (``<address type='pci'/>`` is 0:0:0:0)."""
    if a is not None and a.is_pci:
        p = a.pci
        return (p.domain, p.bus, p.slot, p.function)
    return _drive(a)


def post_parse(disks: list[Device], devs: list[Device]) -> None:
    """libvirt's post-parse of the host devices (made after the disks' names are checked,
    before the controllers'): a SCSI disk whose target name gives the drive address of a
    SCSI host device; then, for each host device, a mediated device's address is of its
    model's kind and a SCSI host device's drive address is no SCSI disk's."""
    scsi = [(h, _drive(h.address)) for h in devs
            if h.type == "scsi" and h.attrs.get("mode") == "subsys" and _drive(h.address)]
    used: dict[tuple[int, ...], Device] = {}
    for disk in disks:
        if disk.bus != "scsi":
            continue
        n = _drive(disk.address)
        if n is None and disk.address is None:
            index = defaults.target_index(disk)
            if index < 0:
                continue
            n = (index // devices.SCSI_NARROW_UNITS, 0, 0, index % devices.SCSI_NARROW_UNITS)
            if any(d == n for _, d in scsi):
                raise PlanError(f"using disk target name '{disk.target.get('dev', '')}' conflicts with "
                                f"SCSI host device address controller='{n[0]}' bus='{n[1]}' "
                                f"target='{n[2]}' unit='{n[3]}", disk.describe(), kind="unsupported")
        if n is not None:
            used.setdefault(n, disk)
    for h in devs:
        need = MDEV_ADDRESS_TYPES.get(h.model or "") if h.type == "mdev" else None
        if need is not None and h.address is not None and h.address.type != need:
            raise PlanError(f"Unsupported address type '{h.address.type}' with mediated device "
                            f"model '{h.model}'", h.describe())
        n = _drive_as_read(h.address) if h.type == "scsi" and h.attrs.get("mode") == "subsys" else None
        if n is not None and n in used:
            raise PlanError(f"SCSI host address controller='{n[0]}' bus='{n[1]}' target='{n[2]}' "
                            f"unit='{n[3]}' in use by a SCSI disk", h.describe())


def check_vfio_backend(guest: Guest, what: str) -> None:
    """A PCI host device (or ``<interface type='hostdev'>``) written with the VFIO back end,
    on an emulator without VFIO PCI."""
    if "vfio-pci" in guest.machine.lacks:
        raise PlanError("VFIO PCI device assignment is not supported by this version of qemu", what,
                        kind="unsupported")


def check_qemu(guest: Guest, h: Device, f: HostdevFacts) -> None:
    """The QEMU driver's checks of a host device (after libvirt's own and its address's)."""
    what = h.describe()
    if h.attrs.get("mode") == "capabilities":
        raise PlanError(f"hostdev mode 'capabilities' is not supported in {guest.domain.virt_type}",
                        what, kind="unsupported")
    if h.type == "usb" and f.guest_reset and guest.domain.arch in GUEST_RESET_LACKING_ARCHES:
        raise PlanError("guestReset is not supported with this version of QEMU", what,
                        kind="unsupported")
    if h.type == "pci" and f.backend == "vfio":
        check_vfio_backend(guest, what)
    if h.type == "pci" and f.write_filtering:
        raise PlanError("Write filtering of PCI device configuration space is not supported by qemu",
                        what, kind="unsupported")
    if h.type == "scsi_host" and f.boot:
        raise PlanError("booting from assigned devices is not supported by vhost SCSI devices", what,
                        kind="unsupported")
    if h.type != "mdev":
        return
    if h.model in S390_MDEV_MODELS and guest.domain.arch != "s390x":
        raise PlanError(f"{S390_MDEV_MODELS[h.model]} device assignment is not supported by this "
                        "version of QEMU", what, kind="unsupported")
    if h.model == "vfio-pci" and "vfio-pci" in guest.machine.lacks:
        raise PlanError("VFIO PCI device assignment is not supported by this version of QEMU", what,
                        kind="unsupported")
    if h.model in ("vfio-pci", "vfio-ap") and f.boot:
        raise PlanError("booting from assigned devices is not supported by mediated devices of "
                        f"model {h.model}", what, kind="unsupported")
    if h.model == "vfio-pci" and h.attrs.get("display") == "on" and not guest.domain.graphics:
        raise PlanError("graphics device is needed for attribute value 'display=on' in <hostdev>",
                        what, kind="unsupported")
    if h.model == "vfio-ap":
        aps = [d for d in guest.devices("hostdev") if d.type == "mdev" and d.model == "vfio-ap"]
        if len(aps) > 1:
            raise PlanError("Only one hostdev of model vfio-ap is supported", what, kind="unsupported")


def check_generic(h: Device, f: HostdevFacts) -> None:
    """libvirt's own checks of a host device (before its address's and its QEMU driver's)."""
    what = h.describe()
    if f.sgio_unfiltered:
        raise PlanError("unfiltered sgio is no longer supported", what, kind="unsupported")
    if f.teaming is None:
        return
    if f.teaming.get("type") != "transient":
        raise PlanError("teaming hostdev devices must have type='transient'", what, kind="unsupported")
    if not f.teaming.get("persistent"):
        raise PlanError("missing required persistent attribute in hostdev teaming element", what,
                        kind="unsupported")
    if h.attrs.get("mode") != "subsys" or h.type != "pci":
        raise PlanError("teaming is only supported for pci hostdev devices", what, kind="unsupported")


def check_ramfb(devs: list[Device]) -> None:
    """At most one mediated device may have ``ramfb='on'`` (checked with the duplicate host
    devices, after every device's own checks)."""
    ramfb = [h for h in devs if h.type == "mdev" and h.attrs.get("mode") == "subsys" and
             h.hostdev is not None and h.hostdev.ramfb]
    if len(ramfb) > 1:
        raise PlanError("Only one vgpu device can have 'ramfb' enabled", ramfb[1].describe(),
                        kind="unsupported")


def check_duplicate_drives(devs: list[Device]) -> None:
    """Two SCSI host devices at one drive address (checked after the disks'; libvirt 9.0
    names the address's bus as its controller and its controller as its bus)."""
    seen: set[tuple[int, ...]] = set()
    for h in devs:
        a = h.address
        if h.type != "scsi" or h.attrs.get("mode") != "subsys" or a is None or a.type != "drive":
            continue
        key = tuple(int(a.attrs.get(k) or 0) if (a.attrs.get(k) or "0").isdigit() else -1
                    for k in ("controller", "bus", "target", "unit"))
        if key in seen:
            controller, bus, target, unit = key
            raise PlanError(f"SCSI host address controller='{bus}' bus='{controller}' target='{target}' "
                            f"unit='{unit}' in use by another SCSI host device", h.describe(),
                            kind="unsupported")
        seen.add(key)
