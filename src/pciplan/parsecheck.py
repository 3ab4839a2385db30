"""libvirt 9.0's XML parser checks on the parts of a domain pciplan reads.

libvirt refuses a definition whose numbers or keywords it cannot parse before
it assigns a single address; pciplan refuses the same inputs (exit 1) instead
of planning something libvirt would never define.  Only the elements and
attributes that take part in PCI planning are checked: everything else in the
document is carried through untouched and unjudged.

Numbers follow C's ``strtoul``/``strtol`` as libvirt calls them: leading
blanks and a ``+`` are allowed, trailing characters are not, base 0 means
``0x`` hex / leading-``0`` octal / decimal, and values must fit 32 bits.
"""

from __future__ import annotations

from typing import Callable, Union

from lxml import etree

from . import (audios, chardevs, controllers, devices, filesystems, graphics, guestconf, hostdevs,
               interfaces, leases, machines, memdevs, redirfilter, rng, shmems, sounds, sources,
               tpm, video)
from .errors import UNKNOWN_CAUSE, PlanError
from .records import Row

#: what an error is about: a description, or a function making one (only called on error)
What = Union[str, None, Callable[[], str]]


def _what(what: What) -> str | None:
    return what() if callable(what) else what

_C_BLANKS = " \t\n\v\f\r"
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
UINT_MAX = 0xFFFFFFFF
#: the largest channel subsystem id, subchannel set id and device number of a CCW address
CCW_CSSID_MAX, CCW_SSID_MAX, CCW_DEVNO_MAX = 0xFE, 3, 0xFFFF
INT_MAX = 0x7FFFFFFF
ULLONG_MAX = 0xFFFFFFFFFFFFFFFF


#: numbers already read, by (text, base): a domain spells the same few bus, slot and
#: function numbers hundreds of times; bounded, since the texts come from the input
_PARSED: dict[tuple[str, int], tuple[bool, int] | None] = {}
_PARSED_MAX = 4096


def _c_parse(text: str, base: int) -> tuple[bool, int] | None:
    """(negative, magnitude) as strtoul/strtol read all of ``text``, or None."""
    key = (text, base)
    try:
        return _PARSED[key]
    except KeyError:
        pass
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    r = _PARSED[key] = _c_read(text, base)
    return r


def _c_read(text: str, base: int) -> tuple[bool, int] | None:
    s = text.lstrip(_C_BLANKS)
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    b = base
    if base in (0, 16) and s[:2] in ("0x", "0X") and len(s) > 2 and s[2] in _DIGITS[16]:
        s, b = s[2:], 16
    elif base == 0:
        b = 8 if s.startswith("0") else 10
    if not s or any(c not in _DIGITS[b] for c in s):
        return None
    return neg, int(s, b)


#: the numbers of a disk's <iotune>, in the order libvirt's parser reads them (its
#: group_name is a name)
IOTUNE_ORDER = tuple(f"{kind}_{what}{more}" for more in ("", "_max") for what in ("bytes_sec", "iops_sec")
                     for kind in ("total", "read", "write")) + ("size_iops_sec",) + \
    tuple(f"{kind}_{what}_max_length" for what in ("bytes_sec", "iops_sec")
          for kind in ("total", "read", "write"))
IOTUNE_FIELDS = frozenset(IOTUNE_ORDER)


def c_uint(text: str, base: int = 0, top: int = UINT_MAX) -> int | None:
    """libvirt's virStrToLong_uip: a non-negative number up to ``top``, else None."""
    r = _c_parse(text, base)
    if r is None or r[0] or r[1] > top:
        return None
    return r[1]


def c_ui(text: str, base: int = 0) -> int | None:
    """libvirt's virStrToLong_ui: an unsigned int, where '-N' stands for 2**32 - N."""
    r = _c_parse(text, base)
    if r is None or r[1] > ULLONG_MAX:
        return None
    neg, value = r
    if neg:
        return None if value > UINT_MAX else -value & UINT_MAX
    return value if value <= UINT_MAX else None


def c_int(text: str, base: int = 10) -> int | None:
    """libvirt's virStrToLong_i: a signed 32-bit number, else None."""
    r = _c_parse(text, base)
    if r is None:
        return None
    value = -r[1] if r[0] else r[1]
    return value if -INT_MAX - 1 <= value <= INT_MAX else None


def c_llong(text: str, base: int = 10) -> int | None:
    """libvirt's virStrToLong_ll: a signed 64-bit number, else None."""
    r = _c_parse(text, base)
    if r is None:
        return None
    value = -r[1] if r[0] else r[1]
    return value if -(1 << 63) <= value < (1 << 63) else None


def printable(text: str) -> bool:
    """Every character is printable ASCII (a blank too, not a tab; nothing beyond ASCII)."""
    return all(" " <= c <= "~" for c in text)


def _line(el: etree._Element) -> int | None:
    return el.sourceline


def _invalid(el: etree._Element, attr: str, value: str, what: What, expect: str = "") -> PlanError:
    tag = el.tag if isinstance(el.tag, str) else "?"
    tail = f". Expected {expect}" if expect else "."
    return PlanError(f"Invalid value for attribute '{attr}' in element '{tag}': '{value}'{tail}",
                     _what(what), _line(el))


def _word(el: etree._Element, attr: str, words: frozenset[str], what: What,
          required: bool = False) -> None:
    """An attribute the parser reads as one of ``words`` (left out, it is refused when
    ``required``, else not checked)."""
    value = el.get(attr)
    if value is None and required:
        raise PlanError(f"Missing required attribute '{attr}' in element '{el.tag}'", _what(what),
                        _line(el))
    if value is not None and value not in words:
        raise _invalid(el, attr, value, what)


def int_attr(el: etree._Element, attr: str, what: What, nonnegative: bool = False) -> int | None:
    """An attribute libvirt reads with virXMLPropInt (base 10): a C int, not negative when
    ``nonnegative``; None when it is not there."""
    value = el.get(attr)
    if value is None:
        return None
    n = c_int(value, 10)
    if n is None:
        raise _invalid(el, attr, value, what, "integer value")
    if nonnegative and n < 0:
        raise _invalid(el, attr, value, what, "non-negative value")
    return n


def _uint_attrs(el: etree._Element, names: tuple[str, ...], base: int, what: What,
                top: int = UINT_MAX) -> None:
    for name in names:
        v = el.get(name)
        if v is not None and c_uint(v, base, top) is None:
            raise _invalid(el, name, v, what, "non-negative integer value")


# ---- <address> --------------------------------------------------------------------------
#: libvirt 9.0's device address types ('none' is its name for no address: written, it is
#: an unknown type)
ADDRESS_TYPES = frozenset({"pci", "drive", "virtio-serial", "ccid", "usb", "spapr-vio",
                           "virtio-s390", "ccw", "virtio-mmio", "isa", "dimm", "unassigned"})


def check_address(el: etree._Element, what: What) -> None:
    """The checks libvirt's virDomainDeviceInfoParseXML makes on a non-PCI ``<address>``
    (PCI numbers are read, and checked, by xmlio)."""
    atype = el.get("type")
    if atype is None:
        raise PlanError("No type specified for device address", _what(what), _line(el), kind="internal")
    if atype not in ADDRESS_TYPES:
        raise PlanError(f"unknown address type '{atype}'", _what(what), _line(el), kind="unsupported")
    if atype == "drive":
        _uint_attrs(el, ("controller", "bus", "target", "unit"), 10, what)
    elif atype == "virtio-serial":
        _uint_attrs(el, ("controller", "bus", "port"), 10, what)
    elif atype == "ccid":
        _uint_attrs(el, ("controller", "slot"), 10, what)
    elif atype == "usb":
        _uint_attrs(el, ("bus",), 10, what)
        port = el.get("port")
        if port is not None and not _usb_port_ok(port):
            raise PlanError("Cannot parse <address> 'port' attribute", _what(what), _line(el), kind="internal")
    elif atype == "spapr-vio":
        _uint_attrs(el, ("reg",), 16, what, ULLONG_MAX)
    elif atype == "virtio-s390":
        raise PlanError("virtio-s390 bus doesn't have an address", _what(what), _line(el))
    elif atype == "ccw":
        _uint_attrs(el, ("cssid", "ssid", "devno"), 0, what)
        given = [el.get(k) for k in ("cssid", "ssid", "devno")]
        if any(v is not None for v in given):
            if any(v is None for v in given):
                raise PlanError("Invalid partial specification for virtio ccw address", _what(what),
                                _line(el), kind="internal")
            cssid, ssid, devno = (c_uint(v or "", 0) or 0 for v in given)
            if cssid > CCW_CSSID_MAX or ssid > CCW_SSID_MAX or devno > CCW_DEVNO_MAX:
                raise PlanError("Invalid specification for virtio ccw address: "
                                f"cssid='{given[0]}' ssid='{given[1]}' devno='{given[2]}'", _what(what),
                                _line(el), kind="internal")
    elif atype == "isa":
        _uint_attrs(el, ("iobase", "irq"), 16, what)
    elif atype == "dimm":
        if el.get("slot") is None:
            raise PlanError("Missing required attribute 'slot' in element 'address'", _what(what), _line(el))
        _uint_attrs(el, ("slot",), 10, what)
        _uint_attrs(el, ("base",), 16, what, ULLONG_MAX)


def _usb_port_ok(port: str) -> bool:
    """virDomainDeviceUSBAddressParsePort: up to 4 dot-separated numbers."""
    parts = port.split(".")
    if len(parts) > 4:
        return False
    return all(c_uint(p, 10) is not None for p in parts)


# ---- domain -----------------------------------------------------------------------------
VIRT_TYPES = frozenset({"none", "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test",
                        "vmware", "hyperv", "vbox", "phyp", "parallels", "bhyve", "vz", "hvf"})
OS_TYPES = frozenset({"hvm", "xen", "linux", "exe", "uml", "xenpvh"})
MEMORY_ACCESS_MODES = frozenset({"shared", "private"})
FIRMWARES = frozenset({"bios", "efi"})
SMBIOS_MODES = frozenset({"none", "emulate", "host", "sysinfo"})  # "none" = no <smbios>
YES_NO = frozenset({"yes", "no"})
ON_OFF = frozenset({"on", "off"})
#: the models virtio devices take (their transitional variants included)
VIRTIO_MODELS = frozenset({"virtio", "virtio-transitional", "virtio-non-transitional"})
LOADER_TYPES = frozenset({"rom", "pflash"})
#: the features <os><firmware> may ask of an automatically chosen firmware
FIRMWARE_FEATURES = frozenset({"enrolled-keys", "secure-boot"})
BOOT_DEVICES = frozenset({"fd", "cdrom", "hd", "network"})


#: the units libvirt takes for sizes (virScaleInteger)
_UNITS = {"b": 1, "bytes": 1, "kb": 1000, "k": 1024, "kib": 1024, "mb": 1000 ** 2, "m": 1024 ** 2,
          "mib": 1024 ** 2, "gb": 1000 ** 3, "g": 1024 ** 3, "gib": 1024 ** 3, "tb": 1000 ** 4,
          "t": 1024 ** 4, "tib": 1024 ** 4, "pb": 1000 ** 5, "p": 1024 ** 5, "pib": 1024 ** 5,
          "eb": 1000 ** 6, "e": 1024 ** 6, "eib": 1024 ** 6}


def size_bytes(el: etree._Element | None, text: str | None = None, unit: str | None = None) -> int:
    """A size element (or attribute text) in bytes, KiB when no unit is given; 0 when unreadable."""
    if el is not None:
        text, unit = el.text, el.get("unit")
    n = c_uint((text or "").strip(), 10, ULLONG_MAX)
    return (n or 0) * _UNITS.get((unit or "KiB").lower(), 1024)


class MemorySizes(Row):
    """The sizes libvirt's post-parse weighs, in bytes."""

    numa: int          # the NUMA cells' memory (0: none)
    memory: int        # <memory> (0: none): the initial memory and the memory devices
    devices: int       # the memory devices' <target><size>
    maximum: int       # <maxMemory> (0: none)
    slots: int         # its slots


def memory_sizes(root: etree._Element) -> MemorySizes:
    cells = root.findall("cpu/numa[1]/cell")
    numa = sum(size_bytes(None, c.get("memory"), c.get("unit")) for c in cells)
    devices = sum(size_bytes(m.find("target/size")) for m in root.iterfind("devices/memory"))
    top = root.find("maxMemory")
    return MemorySizes(numa, size_bytes(root.find("memory")), devices,
                       size_bytes(top) if top is not None else 0,
                       c_uint(top.get("slots") or "", 10) or 0 if top is not None else 0)


def check_domain(root: etree._Element) -> guestconf.GuestFacts:
    """The uuid and genid, ``<domain type>``, ``<os><type>`` and its arch, in libvirt's
    order: what it reads before anything else."""
    guestconf.check_ids(root)
    vt = root.get("type")
    if not vt:
        raise PlanError("missing domain type attribute", "domain", _line(root), kind="internal")
    if vt not in VIRT_TYPES:
        raise PlanError(f"invalid domain type {vt}", "domain", _line(root), kind="unsupported")
    # (a known type other than qemu/kvm is read as a QEMU guest and refused by the QEMU
    # driver's validation: guestconf.validate_first)
    ostype = root.find("os/type")
    text = (ostype.text or "") if ostype is not None else ""  # (as written: ' hvm' is no type)
    if not text:
        raise PlanError("an os <type> must be specified", "os",
                        _line(ostype if ostype is not None else root))
    if text not in OS_TYPES:
        raise PlanError(f"unknown OS type '{text}'", "os/type", _line(ostype))
    arch = ostype.get("arch") if ostype is not None else None
    if arch and arch not in machines.LIBVIRT_ARCHES:  # ('' is none: the host's)
        raise PlanError(f"Unknown architecture {arch}", "os/type", _line(ostype), kind="unsupported")
    guestconf.check_title(root)  # (an os type QEMU lacks is refused with its domain checks)
    guestconf.check_sizing(root)
    access = root.find("memoryBacking/access")
    mode = access.get("mode") if access is not None else None
    if mode and mode not in MEMORY_ACCESS_MODES:  # ('' is none)
        raise PlanError(f"unknown memoryBacking/access/mode '{mode}'", "memoryBacking",
                        _line(access), kind="unsupported")
    facts = guestconf.GuestFacts()
    guestconf.check_cpu(root, facts)
    features = root.find("features")
    if features is not None:
        check_features(features)
    guestconf.check_after_features(root, facts)
    os_el = root.find("os")
    if os_el is not None:
        check_boot_options(os_el)
    return guestconf.read(root, facts)


def check_boot_options(os_el: etree._Element) -> None:
    """``<os>``'s firmware and boot options, in the order libvirt's parser reads them."""
    firmware = os_el.get("firmware")
    if firmware and firmware not in FIRMWARES:  # ('' is none)
        raise PlanError(f"unknown firmware value {firmware}", "os", _line(os_el))
    for feature in os_el.iterfind("firmware/feature"):
        for attr, words in (("name", FIRMWARE_FEATURES), ("enabled", YES_NO)):
            if feature.get(attr) is None:
                raise PlanError(f"Missing required attribute '{attr}' in element 'feature'", "os",
                                _line(feature))
            _word(feature, attr, words, "os")
    nvram = os_el.find("nvram")
    if nvram is not None:
        check_nvram(nvram, os_el.find("nvram/source"))
    loader = os_el.find("loader")
    if loader is not None:
        for attr, words in (("readonly", YES_NO), ("type", LOADER_TYPES), ("secure", YES_NO),
                            ("stateless", YES_NO)):
            _word(loader, attr, words, "os")
    guestconf.check_acpi_tables(os_el)
    for boot in os_el.findall("boot")[:len(BOOT_DEVICES)]:  # (the parser reads as many as there are kinds)
        _word(boot, "dev", BOOT_DEVICES, "os", required=True)
    menu = os_el.find("bootmenu")
    if menu is not None:
        _word(menu, "enable", YES_NO, "os")
        if menu.get("enable") == "yes":  # (a menu not enabled has its timeout unread)
            _uint_attrs(menu, ("timeout",), 10, "os")
    smbios = os_el.find("smbios")
    smode = smbios.get("mode") if smbios is not None else None
    if smode and smode not in SMBIOS_MODES:  # ('' is no mode)
        raise PlanError(f"unknown smbios mode '{smode}'", "os", _line(smbios), kind="unsupported")
    bios = os_el.find("bios")
    timeout = bios.get("rebootTimeout") if bios is not None else None
    if timeout is not None and c_int(timeout, 10) is None:
        raise _invalid(bios, "rebootTimeout", timeout, "os", "integer value")


def check_nvram(nvram: etree._Element, src: etree._Element | None) -> None:
    """A typed ``<nvram>``'s storage source, read as a disk's (an untyped one is a path).
    ``src``: the source libvirt reads, the first ``<os><nvram><source>``."""
    ntype = nvram.get("type")
    if ntype is None:
        return
    if ntype not in DISK_TYPES | {"none"}:
        raise _invalid(nvram, "type", ntype, "os")
    if src is None:  # (libvirt's parser fails without saying why)
        raise PlanError(UNKNOWN_CAUSE, "os", _line(nvram), kind="internal")
    if ntype == "none":
        raise PlanError("unexpected disk type none", "os", _line(nvram), kind="internal")
    sources.check_storage_source(src, ntype, "os")


# ---- <features> -------------------------------------------------------------------------
_STATE = (("state", ON_OFF, False),)
_STATE_REQUIRED = (("state", ON_OFF, True),)
_SPECTRE = frozenset({"broken", "workaround", "fixed"})
#: TABLE: the features libvirt 9.0 knows, with the attributes its parser reads as one of
#: a few words: (attribute, words, required)
FEATURES: dict[str, tuple[tuple[str, frozenset[str], bool], ...]] = {
    "acpi": (), "apic": (("eoi", ON_OFF, False),), "pae": (),
    "hap": _STATE, "viridian": (), "privnet": (),
    "hyperv": (("mode", frozenset({"custom", "passthrough"}), False),), "kvm": (),
    "pvspinlock": _STATE, "capabilities": (("policy", frozenset({"default", "allow", "deny"}), False),),
    "pmu": _STATE, "vmport": _STATE, "gic": (("version", frozenset({"2", "3", "host"}), False),),
    "smm": _STATE, "ioapic": (("driver", frozenset({"qemu", "kvm"}), False),),
    "hpt": (("resizing", frozenset({"enabled", "disabled", "required"}), False),),
    "vmcoreinfo": _STATE, "htm": _STATE_REQUIRED, "nested-hv": _STATE_REQUIRED,
    "msrs": (("unknown", frozenset({"ignore", "fault"}), True),), "ccf-assist": _STATE_REQUIRED,
    "xen": (), "cfpc": (("value", _SPECTRE, False),), "sbbc": (("value", _SPECTRE, False),),
    "ibs": (("value", frozenset({"broken", "workaround", "fixed-ibs", "fixed-ccd", "fixed-na"}),
             False),),
    "tcg": (),
}
#: TABLE: the sub-features of <hyperv>, <kvm> and <xen> (each takes a required state)
SUB_FEATURES = {
    "hyperv": ("HyperV Enlightenment", frozenset({
        "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset",
        "vendor_id", "frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic"})),
    "kvm": ("KVM", frozenset({"hidden", "hint-dedicated", "poll-control", "pv-ipi", "dirty-ring"})),
    "xen": ("Xen", frozenset({"e820_host", "passthrough"})),
}
#: the fewest retries of a Hyper-V spinlock, and the sizes a KVM dirty ring may have
HYPERV_SPINLOCK_RETRIES_MIN = 4095
DIRTY_RING_MIN, DIRTY_RING_MAX = 1024, 65536


def _missing(el: etree._Element, attr: str) -> PlanError:
    return PlanError(f"Missing required attribute '{attr}' in element '{el.tag}'", "features",
                     _line(el))


def check_features(features: etree._Element) -> None:
    """libvirt's parser reads ``<features>`` child by child: an unknown feature, a word it
    does not know, or a required attribute left out stops it."""
    for el in features:
        if not isinstance(el.tag, str):
            continue
        attrs = FEATURES.get(el.tag)
        if attrs is None:
            raise PlanError(f"unexpected feature '{el.tag}'", "features", _line(el),
                            kind="unsupported")
        for attr, words, required in attrs:
            value = el.get(attr)
            if value is None:
                if required:
                    raise _missing(el, attr)
            elif value not in words:
                raise _invalid(el, attr, value, "features")
        if el.tag in SUB_FEATURES:
            _check_sub_features(el)
        if el.tag == "smm" and el.get("state", "on") == "on":
            _check_tseg(features)


def _check_tseg(features: etree._Element) -> None:
    """SMM's TSEG size (in MiB unless a unit says otherwise), read when SMM is on."""
    tseg = features.find("smm/tseg")
    text = tseg.text if tseg is not None else None
    if not text:
        return
    path = "string(./features/smm/tseg)"
    if c_uint(text, 10, ULLONG_MAX) is None:
        raise PlanError(f"Invalid value '{text}' for element or attribute '{path}'", "features",
                        _line(tseg))
    unit = tseg.get("unit")
    if unit and unit.lower() not in _UNITS:
        raise PlanError(f"unknown suffix '{unit}'", "features", _line(tseg))


def _required_uint(el: etree._Element, attr: str, base: int = 10) -> int:
    """A sub-feature's number, which must be there."""
    text = el.get(attr)
    if text is None:
        raise _missing(el, attr)
    n = c_uint(text, base)
    if n is None:
        raise _invalid(el, attr, text, "features", "non-negative integer value")
    return n


def _check_sub_features(parent: etree._Element) -> None:
    kind, names = SUB_FEATURES[parent.tag]
    for el in parent:
        if not isinstance(el.tag, str):
            continue
        if el.tag not in names:
            raise PlanError(f"unsupported {kind} feature: {el.tag}", "features", _line(el),
                            kind="unsupported")
        state = el.get("state")
        if state is None:
            raise _missing(el, "state")
        if state not in ON_OFF:
            raise _invalid(el, "state", state, "features")
        if state != "on":
            continue
        if el.tag == "spinlocks":
            if _required_uint(el, "retries", 0) < HYPERV_SPINLOCK_RETRIES_MIN:
                raise PlanError(f"HyperV spinlock retry count must be at least "
                                f"{HYPERV_SPINLOCK_RETRIES_MIN}", "features", _line(el))
        elif el.tag == "vendor_id":
            value = el.get("value")
            if value is None:
                raise PlanError("missing 'value' attribute for HyperV feature 'vendor_id'",
                                "features", _line(el))
            if len(value) > HYPERV_VENDOR_ID_MAX:
                raise PlanError(f"HyperV vendor_id value must not be more than "
                                f"{HYPERV_VENDOR_ID_MAX} characters.", "features", _line(el))
        elif el.tag == "stimer" and parent.tag == "hyperv":
            for child in el:
                if not isinstance(child.tag, str):
                    continue
                if child.tag != "direct":
                    raise PlanError(f"unsupported Hyper-V stimer feature: {child.tag}", "features",
                                    _line(child), kind="unsupported")
                _word(child, "state", ON_OFF, "features", required=True)
        elif el.tag == "dirty-ring":
            n = _required_uint(el, "size", 0)
            if n & (n - 1) or not DIRTY_RING_MIN <= n <= DIRTY_RING_MAX:
                raise PlanError(f"dirty ring must be power of 2 and ranges [{DIRTY_RING_MIN}, "
                                f"{DIRTY_RING_MAX}]", "features", _line(el))


# ---- devices ----------------------------------------------------------------------------
#: TABLE: the order libvirt 9.0's parser reads the kinds of device in (the elements of a
#: kind in document order): of several mistakes, it reports the one of the earliest kind
DEVICE_PARSE_ORDER = {tag: rank for rank, tag in enumerate((
    "disk", "controller", "lease", "filesystem", "interface", "smartcard", "parallel", "serial",
    "console", "channel", "input", "graphics", "sound", "audio", "video", "hostdev", "watchdog",
    "memballoon", "rng", "tpm", "nvram", "hub", "redirdev", "redirfilter", "panic", "shmem",
    "memory", "iommu", "vsock"))}
#: devices the parser takes one of at most (it counts them before it reads one), with its words
SINGLE_DEVICES = {"watchdog": ("only a single watchdog device is supported", "internal"),
                  "memballoon": ("only a single memory balloon device is supported", "internal"),
                  "nvram": ("only a single nvram device is supported", "internal"),
                  "iommu": ("only a single IOMMU device is supported", "xml"),
                  "redirfilter": ("only one set of redirection filter rule is supported", "internal"),
                  "vsock": ("only a single vsock device is supported", "xml"),
                  "tpm": ("a maximum of two TPM devices is supported, one of them being a TPM Proxy "
                          "device", "xml")}
#: of those, the ones the parser takes more than one of: how many
DEVICE_LIMITS = {"tpm": 2}


#: TABLE: the parser checks of a kind of device kept in its own module.  Filled on first
#: use: those modules import this one's helpers, and may still be loading when it loads.
KIND_PARSE_CHECKS: dict[str, Callable[[etree._Element, What, dict], None]] = {}


def kind_parse_checks() -> dict[str, Callable[[etree._Element, What, dict], None]]:
    if not KIND_PARSE_CHECKS:
        KIND_PARSE_CHECKS.update({
            "video": video.check_parse,
            "filesystem": filesystems.check_parse,
            "memory": memdevs.check_parse,
            "graphics": graphics.check_parse,
            "tpm": tpm.check_parse,
            "sound": sounds.check_parse,
            "audio": audios.check_parse,
            "lease": leases.check_parse,
            "redirfilter": redirfilter.check_parse,
            **{tag: chardevs.check_parse for tag in chardevs.CHR_TAGS},
            "shmem": shmems.check_parse,
            "smartcard": chardevs.check_device_source_parse,
            "redirdev": chardevs.check_device_source_parse,
        })
    return KIND_PARSE_CHECKS


def parse_rank(tag: str, position: int) -> tuple[int, int]:
    """Where libvirt's parser reads a device: an error found earlier in this order wins."""
    return DEVICE_PARSE_ORDER.get(tag, len(DEVICE_PARSE_ORDER)), position


#: storage source types: a disk's ``type``, a backing store's
DISK_TYPES = frozenset({"file", "block", "dir", "network", "volume", "nvme", "vhostuser"})

CONTROLLER_TYPES = frozenset({"ide", "fdc", "scsi", "sata", "virtio-serial", "ccid", "usb", "pci",
                              "xenbus", "isa"})
#: controller models libvirt 9.0 parses, per type (pci models are the planner's business)
CONTROLLER_MODELS = {
    "scsi": frozenset({"auto", "buslogic", "lsilogic", "lsisas1068", "vmpvscsi", "ibmvscsi",
                       "virtio-scsi", "lsisas1078", "virtio-transitional", "virtio-non-transitional",
                       "ncr53c90", "dc390", "am53c974"}),
    "usb": frozenset({"piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2",
                      "ich9-uhci3", "vt82c686b-uhci", "pci-ohci", "nec-xhci", "qusb1", "qusb2",
                      "qemu-xhci", "none"}),
    "ide": frozenset({"piix3", "piix4", "ich6"}),
    "virtio-serial": VIRTIO_MODELS,
    "pci": frozenset(controllers.MODELS),
    # (no model at all: libvirt knows none for these, and refuses any, even model='')
    "isa": frozenset(), "sata": frozenset(), "ccid": frozenset(), "fdc": frozenset(), "xenbus": frozenset(),
}
#: the <model name> of a controller (whatever its model: checked against that later)
CONTROLLER_MODEL_NAMES = frozenset({"none", "pci-bridge", "i82801b11-bridge", "ioh3420", "x3130-upstream",
                                    "xio3130-downstream", "pxb", "pxb-pcie", "pcie-root-port",
                                    "spapr-pci-host-bridge", "pcie-pci-bridge"})
#: TABLE: attributes the parser reads as one of a few words, case and all
#: (element, attribute, words, message: None for "Invalid value for attribute ...")
ENUM_ATTRIBUTES: tuple[tuple[str, str, frozenset[str], str | None], ...] = (
    ("hostdev", "mode", frozenset({"subsystem", "capabilities"}), "unknown hostdev mode '{}'"),
    ("watchdog", "model", frozenset({"i6300esb", "ib700", "diag288"}),  # (itco came later)
     "unknown watchdog model '{}'"),
    ("input", "type", frozenset({"mouse", "tablet", "keyboard", "passthrough", "evdev"}),
     "unknown input device type '{}'"),
    ("iommu", "model", frozenset({"intel", "smmuv3", "virtio"}), None),
    ("vsock", "model", VIRTIO_MODELS | {"default"}, None),
    ("memory", "model", frozenset({"dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"}), None),
    ("filesystem", "type", frozenset({"mount", "block", "file", "template", "ram", "bind", "volume"}),
     None),
    ("redirdev", "bus", frozenset({"usb"}), "unknown redirdev bus '{}'"),
    ("filesystem", "accessmode", frozenset({"passthrough", "mapped", "squash", ""}), None),
    ("disk", "type", DISK_TYPES, None),
    ("graphics", "type", frozenset({"sdl", "vnc", "rdp", "desktop", "spice", "egl-headless", "dbus"}),
     None),
    ("audio", "type", frozenset({"none", "alsa", "coreaudio", "jack", "oss", "pulseaudio", "sdl",
                                 "spice", "file", "dbus"}), None),
    ("tpm", "model", frozenset({"tpm-tis", "tpm-crb", "tpm-spapr", "spapr-tpm-proxy"}), None),
    ("hub", "type", frozenset({"usb"}), "unknown hub device type '{}'"),
    ("smartcard", "mode", frozenset({"host", "host-certificates", "passthrough"}), None),
    ("sound", "model", frozenset({"sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "ich7"}),
     None),
    ("interface", "type", frozenset({"user", "ethernet", "vhostuser", "server", "client", "mcast",
                                     "network", "bridge", "internal", "direct", "hostdev", "udp",
                                     "vdpa", "null", "vds"}), None),
    ("input", "model", VIRTIO_MODELS, "unknown input model '{}'"),
    ("input", "bus", frozenset({"ps2", "usb", "xen", "parallels", "virtio", "none"}),
     "unknown input bus type '{}'"),
    ("rng", "model", VIRTIO_MODELS, "unknown RNG model '{}'"),
    ("watchdog", "action", frozenset({"reset", "shutdown", "poweroff", "pause", "dump", "none",
                                      "inject-nmi"}), "unknown watchdog action '{}'"),
)
#: TABLE: attributes the parser cannot do without: (element, attribute, message, error kind);
#: message None for "Missing required attribute ..."
REQUIRED_ATTRIBUTES: dict[str, tuple[str, str | None, str]] = {
    "watchdog": ("model", "watchdog must contain model name", "internal"),
    "input": ("type", "missing input device type", "internal"),
    "iommu": ("model", None, "xml"),
    "memory": ("model", None, "xml"),
    "graphics": ("type", None, "xml"),
    "audio": ("type", None, "xml"),
    "hub": ("type", "missing hub device type", "internal"),
    "smartcard": ("mode", None, "xml"),
    "sound": ("model", None, "xml"),
    "memballoon": ("model", None, "xml"),
    "rng": ("model", "missing RNG device model", "xml"),
}
TPM_BACKENDS = frozenset({"passthrough", "emulator", "external"})
#: TABLE: character devices: what the host side may be, and the target types and models
CHARDEV_TYPES = frozenset({"null", "vc", "pty", "dev", "file", "pipe", "stdio", "udp", "tcp", "unix",
                           "spicevmc", "spiceport", "nmdm", "qemu-vdagent", "dbus"})
CHARDEV_TARGET_TYPES = {  # ('none' is each enum's first word: no type, which libvirt takes)
    "serial": frozenset(devices.SERIAL_MODEL_TARGETS.values()) | {"none"},
    "channel": frozenset({"none", "guestfwd", "virtio", "xen"}),
    "console": frozenset({"none", "serial", "xen", "uml", "virtio", "lxc", "openvz", "sclp", "sclplm"}),
}
#: TABLE: attributes of a device's child elements the parser reads as one of a few words
#: (device, child, attribute, words); "Invalid value for attribute ..." when not one (and
#: 'default' is a word only where listed)
CHILD_ENUM_ATTRIBUTES: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("hostdev", "driver", "name", frozenset({"kvm", "vfio", "xen"})),
    ("video", "driver", "name", frozenset({"qemu", "vhostuser"})),
    ("interface", "rom", "enabled", YES_NO),
    ("hostdev", "rom", "enabled", YES_NO),
    ("vsock", "cid", "auto", YES_NO),
    ("iommu", "driver", "intremap", ON_OFF),
    ("iommu", "driver", "caching_mode", ON_OFF),
    ("iommu", "driver", "eim", ON_OFF),
    ("iommu", "driver", "iotlb", ON_OFF),
)
#: devices whose <driver> takes the virtio options (each on or off)
VIRTIO_DRIVER_SWITCHES = ("iommu", "ats", "packed", "page_per_vq")
_CHILD_ENUMS_BY_TAG: dict[str, list[tuple[str, str, frozenset[str]]]] = {}
for _tag, _child, _attr, _words in CHILD_ENUM_ATTRIBUTES:
    _CHILD_ENUMS_BY_TAG.setdefault(_tag, []).append((_child, _attr, _words))
#: the devices libvirt reads a device's common part of (alias, boot, ROM, ACPI index, address)
DEVICE_INFO_TAGS = frozenset({"disk", "controller", "filesystem", "interface", "hostdev", "hub",
                              "iommu", "input", "memballoon", "memory", "panic", "rng", "redirdev",
                              "shmem", "smartcard", "sound", "tpm", "video", "vsock", "watchdog",
                              "serial", "parallel", "channel", "console"})
#: the devices whose <boot order> libvirt reads (the others' <boot> is ignored)
BOOTABLE = frozenset({"disk", "interface", "hostdev", "redirdev", "filesystem"})
#: per tag, each child's attributes of ``_CHILD_ENUMS_BY_TAG``; the switches' names
_CHILD_ENUM_NAMES = {_tag: [(_child, frozenset(a for c, a, _ in _rows if c == _child))
                            for _child in dict.fromkeys(c for c, _, _ in _rows)]
                     for _tag, _rows in _CHILD_ENUMS_BY_TAG.items()}
_VIRTIO_SWITCH_NAMES = frozenset(VIRTIO_DRIVER_SWITCHES)
_ENUMS_BY_TAG: dict[str, list[tuple[str, frozenset[str], str | None]]] = {}
for _tag, _attr, _words, _message in ENUM_ATTRIBUTES:
    _ENUMS_BY_TAG.setdefault(_tag, []).append((_attr, _words, _message))
RNG_BACKEND_MODELS = frozenset({"random", "egd", "builtin"})
EVDEV_GRABS = frozenset({"all"})
EVDEV_GRAB_TOGGLES = frozenset({"ctrl-ctrl", "alt-alt", "shift-shift", "meta-meta", "scrolllock",
                                "ctrl-scrolllock"})
#: the longest Hyper-V vendor_id value
HYPERV_VENDOR_ID_MAX = 12
DISK_BUSES = frozenset({"ide", "fdc", "scsi", "virtio", "xen", "usb", "uml", "sata", "sd"})
DISK_DEVICES = frozenset({"disk", "cdrom", "floppy", "lun"})
#: the formats a disk's <driver type> may name ('aio' is an old 'raw')
DISK_FORMATS = frozenset({"raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd",
                          "ploop", "cow", "qcow", "qcow2", "qed", "vmdk", "aio"})
#: a disk's snapshot attribute and its source's startupPolicy
SNAPSHOT_LOCATIONS = frozenset({"default", "no", "internal", "external", "manual"})
STARTUP_POLICIES = frozenset({"default", "mandatory", "requisite", "optional"})
#: the image formats of a storage source (a backing store's ``<format type>``)
STORAGE_FORMATS = DISK_FORMATS - {"aio"}
MEMBALLOON_MODELS = frozenset({"virtio", "xen", "none", "virtio-transitional", "virtio-non-transitional"})
#: a memballoon's on/off attributes, in the parser's order
MEMBALLOON_SWITCHES = ("autodeflate", "freePageReporting")
PANIC_MODELS = frozenset({"default", "isa", "pseries", "hyperv", "s390"})
VIDEO_MODELS = frozenset({"default", "vga", "cirrus", "vmvga", "xen", "vbox", "qxl", "parallels",
                          "virtio", "gop", "none", "bochs", "ramfb"})


#: the prefixes of the disk names libvirt turns into a drive index, in the order it tries them
DISK_INDEX_PREFIXES = ("fd", "hd", "vd", "sd", "xvd", "ubd")


def _scan_disk_name(name: str) -> tuple[int, str] | None:
    """libvirt's virDiskNameParse: a known prefix, at least one lowercase letter, then only
    digits; (the letters' index, the digits).  libvirt computes the index in a C int: a long
    name wraps around."""
    for prefix in DISK_INDEX_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            break
    else:
        return None
    idx = 0
    i = 0
    while i < len(rest) and "a" <= rest[i] <= "z":
        idx = _int32((idx + (1 if i else 0)) * 26 + ord(rest[i]) - ord("a"))
        i += 1
    digits = rest[i:]
    if i == 0 or (digits and not (digits.isascii() and digits.isdigit())):
        return None
    return idx, digits


def disk_name_index(name: str) -> int | None:
    """libvirt's virDiskNameToIndex: 'sda' -> 0, 'hdz' -> 25, 'vdaa' -> 26 (trailing digits
    ignored); None when invalid (a name that wraps to a negative index too)."""
    found = _scan_disk_name(name)
    return found[0] if found is not None and found[0] >= 0 else None


def disk_name_partition(name: str) -> int | None:
    """The partition number a disk name ends in, as libvirt's virDiskNameParse reads it
    ('vda1' -> 1; 'sda', and 'sda0', -> 0); None when libvirt cannot parse the name (no
    letter after the prefix, digits that start with 0, a number past a C int)."""
    found = _scan_disk_name(name)
    if found is None:
        return None
    digits = found[1]
    if len(digits) > 1 and digits[0] == "0":
        return None
    number = int(digits) if digits else 0
    return number if number <= INT_MAX else None


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value > INT_MAX else value


#: the virtio-scsi models (the only controllers with an I/O thread)
VIRTIO_SCSI_MODELS = frozenset({"virtio-scsi", "virtio-transitional", "virtio-non-transitional"})


def check_controller(el: etree._Element, what: What) -> tuple[dict[str, str], bool] | None:
    """A ``<controller>`` in the parser's order: type, model, index, ``<driver>``, one
    ``<model>`` (its name), one ``<target>`` (only a PCI controller's attributes are read:
    its numbers and hotplug, :func:`canonical_target`), ports, vectors, ``<pcihole64>``.
    Returns a PCI controller's target attributes as libvirt writes them back and whether
    that changed one, None for another controller or none written."""
    read = None
    _word(el, "type", CONTROLLER_TYPES, what)
    ctype = el.get("type") or "ide"
    model = el.get("model")
    if model is not None and ctype in CONTROLLER_MODELS and model not in CONTROLLER_MODELS[ctype]:
        raise PlanError(f"Unknown model type '{model}'", _what(what), _line(el), kind="unsupported")
    int_attr(el, "index", what, nonnegative=True)  # (a C int, base 10, not negative)
    drv = el.find("driver")
    if drv is not None:
        _uint_attrs(drv, ("queues", "cmd_per_lun", "max_sectors"), 10, what)
        _word(drv, "ioeventfd", ON_OFF, what)
        _uint_attrs(drv, ("iothread",), 10, what)  # (0 is none; where it may be: post-parse)
    for child in ("model", "target"):
        found = el.findall(child)
        if len(found) > 1:
            raise PlanError(f"Multiple <{child}> elements in controller definition not allowed",
                            _what(what), _line(found[1]))
        if found and ctype == "pci":
            if child == "model":
                _word(found[0], "name", CONTROLLER_MODEL_NAMES, what)
            else:
                target = dict(found[0].attrib)
                read = target, canonical_target(found[0], target, what)
    # (ports, and vectors of a virtio-serial controller: C ints, base 10, not negative)
    for attr in ("ports", "vectors") if ctype == "virtio-serial" else ("ports",):
        int_attr(el, attr, what, nonnegative=True)
    hole = el.find("pcihole64") if controllers.reads_pcihole64(ctype, model) else None
    if hole is not None:  # (KiB unless a unit says otherwise, at most 1024 * ULONG_MAX in 64 bits)
        from . import guestconf
        guestconf.scaled_size(hole, "./pcihole64", (1024 * ULLONG_MAX) & ULLONG_MAX, _what(what))
    return read


#: a controller's <target> numbers, and how libvirt writes each back
TARGET_NUMBERS = {"chassisNr": "{}", "chassis": "{}", "port": "0x{:x}", "busNr": "{}", "index": "{}"}


def canonical_target(t: etree._Element, target: dict[str, str], what: What) -> bool:
    """Read the numbers of a controller's <target> as libvirt's parser does (C ints, base
    0: '010' is 8, '+5' is 5, '5 ' is refused) and respell them as libvirt writes them;
    True when one changed.  (``hotplug``, a switch, is read between ``busNr`` and ``index``.)"""
    changed = False
    for name, fmt in TARGET_NUMBERS.items():
        if name == "index":
            _word(t, "hotplug", ON_OFF, what)
        value = target.get(name)
        if value is None:
            continue
        n = c_int(value, 0)
        if n is None:
            raise _invalid(t, name, value, what, "integer value")
        if n < 0:
            raise _invalid(t, name, value, what, "non-negative value")
        spelled = fmt.format(n)
        if spelled != value:
            target[name] = spelled
            changed = True
    return changed


def nonzero_uint(el: etree._Element, attr: str, what: What,
                 expect: str = "non-negative integer value") -> int:
    """An attribute libvirt reads as a non-zero unsigned number (an I/O thread, a boot order,
    an ACPI index)."""
    value = el.get(attr, "")
    n = c_uint(value, 10)
    if n is None:
        raise _invalid(el, attr, value, what, expect)
    if n == 0:
        raise PlanError(f"Invalid value for attribute '{attr}' in element '{el.tag}': Zero is not "
                        "permitted", _what(what), _line(el))
    return n


#: TABLE: the words of a disk's own attributes and of its <target>, <geometry>, in the
#: parser's order (disk model 'default' is a word; snapshot 'default' is not)
DISK_MODELS = VIRTIO_MODELS | {"default"}
DISK_ATTR_WORDS = (("device", DISK_DEVICES), ("model", DISK_MODELS),
                   ("snapshot", SNAPSHOT_LOCATIONS - {"default"}), ("rawio", YES_NO),
                   ("sgio", frozenset({"filtered", "unfiltered"})))
DISK_TARGET_WORDS = (("bus", DISK_BUSES), ("tray", frozenset({"closed", "open"})),
                     ("removable", ON_OFF))
GEOMETRY_TRANSLATIONS = frozenset({"none", "auto", "lba"})
#: TABLE: a disk's <driver> attributes in the parser's order: words, or None for a number
#: (the virtio switches come first, the format last)
DISK_DRIVER_ATTRS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("cache", frozenset({"default", "none", "writethrough", "writeback", "directsync", "unsafe"})),
    ("error_policy", frozenset({"stop", "report", "ignore", "enospace"})),
    ("rerror_policy", frozenset({"stop", "report", "ignore", "enospace"})),
    ("io", frozenset({"native", "threads", "io_uring"})),
    ("ioeventfd", ON_OFF), ("event_idx", ON_OFF), ("copy_on_read", ON_OFF),
    ("discard", frozenset({"unmap", "ignore"})),
    ("iothread", None),
    ("detect_zeroes", frozenset({"off", "on", "unmap"})),
    ("queues", None), ("queue_size", None))


def check_disk(el: etree._Element, what: What, kids: dict) -> None:
    """A ``<disk>`` in the parser's order: its source (with its ``<auth>``, ``<encryption>``
    and label overrides), the disk's own ``<auth>`` and ``<encryption>``, the backing
    chain, the disk's attributes, ``<target>``, ``<geometry>``, ``<blockio>``, ``<driver>``
    (virtio switches first, the format last), ``<iotune>``.  (A disk without a target
    name passes: libvirt refuses it when it validates the disk, ``disks.check_generic``.)"""
    src = kids.get("source")
    if src is not None:
        sources.check_storage_source(src, el.get("type") or "file", what)
    for name, check in (("auth", sources.check_auth), ("encryption", sources.check_encryption)):
        if name in kids:
            if src is not None and src.find(name) is not None:
                raise PlanError(f"an <{name}> definition already found for disk source", _what(what),
                                _line(kids[name]), kind="unsupported")
            check(kids[name], what)
    _check_backing_store(kids.get("backingStore"), what)
    for attr, words in DISK_ATTR_WORDS:
        _word(el, attr, words, what)
    if src is not None:
        _word(src, "startupPolicy", STARTUP_POLICIES - {"default"}, what)
    target = kids.get("target")
    if target is not None:
        for attr, words in DISK_TARGET_WORDS:
            _word(target, attr, words, what)
        _uint_attrs(target, ("rotation_rate",), 10, what)
    geometry = kids.get("geometry")
    if geometry is not None:
        _uint_attrs(geometry, ("cyls", "heads", "secs"), 10, what)
        _word(geometry, "trans", GEOMETRY_TRANSLATIONS, what)
    if "blockio" in kids:
        _uint_attrs(kids["blockio"], ("logical_block_size", "physical_block_size"), 10, what)
    drv = kids.get("driver")
    if drv is not None:
        _check_disk_driver(drv, what)
    if "iotune" in kids:
        found = iotune_elements(el)
        for name in IOTUNE_ORDER:
            c = found.get(name)
            text = c.xpath("string()") if c is not None else ""
            if text and c_uint(text, 10, ULLONG_MAX) is None:
                raise PlanError(f"disk iotune field '{name}' must be an integer", _what(what), _line(c))


def iotune_elements(disk: etree._Element) -> dict[str, etree._Element]:
    """The elements libvirt's parser reads a disk's I/O throttling from: of each number and
    of group_name, the first of that name in any ``<iotune>``."""
    found: dict[str, etree._Element] = {}
    for c in disk.iterfind("iotune/*"):
        tag = c.tag
        if (tag in IOTUNE_FIELDS or tag == "group_name") and tag not in found:
            found[tag] = c
    return found


def _check_disk_driver(drv: etree._Element, what: What) -> None:
    for attr in VIRTIO_DRIVER_SWITCHES:
        _word(drv, attr, ON_OFF, what)
    for attr, words in DISK_DRIVER_ATTRS:
        if words is None:
            if attr == "iothread":
                if drv.get(attr) is not None:
                    nonzero_uint(drv, "iothread", what, "integer value")
            else:
                _uint_attrs(drv, (attr,), 10, what)
            continue
        _word(drv, attr, words, what)
        if attr == "rerror_policy" and drv.get(attr) == "enospace":
            raise PlanError("Invalid disk read error policy: 'enospace'", _what(what), _line(drv),
                            kind="unsupported")
    fmt = drv.get("type")
    if fmt is not None and fmt not in DISK_FORMATS:
        raise PlanError(f"unknown driver format value '{fmt}'", _what(what), _line(drv),
                        kind="unsupported")
    _check_metadata_cache(drv, "metadata_cache/max_size", what)


def _check_metadata_cache(holder: etree._Element, path: str, what: What) -> None:
    """A qcow2 metadata cache's size: bytes unless a unit says otherwise."""
    el = holder.find(path)
    if el is not None:
        from . import guestconf
        guestconf.scaled_size(el, "./" + path, ULLONG_MAX, _what(what), default_scale=1)


def _check_backing_store(bs: etree._Element | None, what: What) -> None:
    """A disk's ``<backingStore>`` chain, read with its source: one without a type ends it
    (``<backingStore/>``: no backing image); each other needs a format and a source."""
    while bs is not None:
        btype = bs.get("type")
        if btype is None:
            return
        fmt_el = bs.find("format")
        fmt = fmt_el.get("type") if fmt_el is not None else None
        if not fmt:
            raise PlanError("missing disk backing store format", _what(what), _line(bs))
        if bs.find("source") is None:
            raise PlanError("missing disk backing store source", _what(what), _line(bs))
        if btype not in DISK_TYPES:
            raise PlanError(f"unknown storage source type '{btype}'", _what(what), _line(bs))
        if fmt not in STORAGE_FORMATS:
            raise PlanError(f"unknown storage source format '{fmt}'", _what(what), _line(fmt_el))
        _check_metadata_cache(bs, "format/metadata_cache/max_size", what)
        sources.check_storage_source(bs.find("source"), btype, what)
        bs = bs.find("backingStore")


def check_device(el: etree._Element, what: What, kids: dict) -> None:
    """The parser checks of one ``<devices>`` child (and its ``<address>``); controllers
    have theirs in :func:`check_controller`.  ``kids``: the first child element of each
    tag (the reader indexes them once per device)."""
    tag = el.tag
    required = REQUIRED_ATTRIBUTES.get(tag)
    if required is not None and el.get(required[0]) is None:
        attr, message, kind = required
        raise PlanError(message or f"Missing required attribute '{attr}' in element '{tag}'",
                        _what(what), _line(el), kind=kind)
    for attr, words, message in _ENUMS_BY_TAG.get(tag, ()):
        value = el.get(attr)
        if value is not None and value not in words:
            if message is None:
                raise _invalid(el, attr, value, what)
            raise PlanError(message.format(value), _what(what), _line(el), kind="unsupported")
    if tag == "redirdev":  # (its host side, read right after its bus)
        if el.get("type") is None:
            raise PlanError("missing type in redirdev", _what(what), _line(el), kind="internal")
        if el.get("type") not in CHARDEV_TYPES:
            raise PlanError(f"unknown redirdev character device type '{el.get('type')}'", _what(what),
                            _line(el), kind="unsupported")
    if tag == "interface":
        interfaces.check_source(el, what, kids)  # (the rest after its address: ``xmlio``)
    # (each loop runs only when an attribute it checks is there: most devices have none)
    for c, n in _CHILD_ENUM_NAMES.get(tag, ()):
        if c in kids and not n.isdisjoint(kids[c].keys()):
            for child, attr, words in _CHILD_ENUMS_BY_TAG[tag]:
                if child in kids:
                    _word(kids[child], attr, words, what)
            break
    drv = kids.get("driver")
    if drv is not None and tag not in DRIVER_AFTER_ADDRESS and tag not in DRIVER_OF_KIND:
        check_virtio_switches(drv, what)
    boot = kids.get("boot") if tag in BOOTABLE else None
    if boot is not None and tag != "disk":  # (a disk's with its address, after the rest)
        _check_boot(boot, what)
    if tag == "hostdev":
        hostdevs.check_parse(el, what, kids)
    if tag == "rng":  # (all read before its ACPI index and address)
        rng.check_parse(el, what, kids)
    if tag == "tpm":
        backend = kids.get("backend")
        if backend is None:
            raise PlanError("missing TPM device backend", _what(what), _line(el))
        if backend.get("type") is None:
            raise PlanError("Missing required attribute 'type' in element 'backend'", _what(what),
                            _line(backend))
        _word(backend, "type", TPM_BACKENDS, what)
    if tag in CHARDEV_TARGET_TYPES or tag == "parallel":
        _check_chardev(el, what, kids)
    if tag == "vsock" and "cid" in kids and kids["cid"].get("address") is not None:
        nonzero_uint(kids["cid"], "address", what)
    if tag == "memballoon":  # (before its ROM and ACPI index: the rest of the device info)
        _check_memballoon(el, what, kids)
    master = kids.get("master")  # (any device's, a USB companion's in practice)
    if master is not None:
        _uint_attrs(master, ("startport",), 10, what)
    rom = kids.get("rom")
    if rom is not None:
        bar = rom.get("bar")
        _word(rom, "bar", ON_OFF, what)
        if rom.get("enabled") == "no" and (bar is not None or rom.get("file") is not None):
            raise PlanError("ROM tuning is not supported when ROM is disabled", _what(what), _line(rom),
                            kind="unsupported")
    acpi = kids.get("acpi")
    if acpi is not None and acpi.get("index") is not None:
        nonzero_uint(acpi, "index", what)
    if tag == "hostdev":
        htype = el.get("type")
        if el.get("mode", "subsystem") == "subsystem":
            if htype is None:
                raise PlanError("missing source address type", _what(what), _line(el))
            known = htype in hostdevs.SUBSYSTEM_TYPES
        else:
            known = htype in (None, "storage", "misc", "net")
        if not known:
            raise PlanError(f"unknown host device source address type '{htype}'", _what(what),
                            _line(el), kind="unsupported")
    if tag == "input" and el.get("type") in ("evdev", "passthrough") and "source" in kids:
        src = kids["source"]
        if src.get("dev" if el.get("type") == "evdev" else "evdev") is None:
            raise PlanError("Missing evdev path for input device", _what(what), _line(src))
        if el.get("type") == "evdev":
            _word(src, "grab", EVDEV_GRABS, what)
            _word(src, "grabToggle", EVDEV_GRAB_TOGGLES, what)
            _word(src, "repeat", ON_OFF, what)
    if tag == "disk":
        check_disk(el, what, kids)
        if boot is not None:
            _check_boot(boot, what)
    elif tag == "panic":
        model = el.get("model")
        if model is not None and model not in PANIC_MODELS:
            raise PlanError(f"unknown panic model '{model}'", _what(what), _line(el), kind="unsupported")
    elif tag == "video":
        m = kids.get("model")
        mtype = m.get("type") if m is not None else None
        if mtype and mtype not in VIDEO_MODELS:
            raise PlanError(f"unknown video model '{mtype}'", _what(what), _line(m), kind="unsupported")
    elif tag == "hostdev" and el.get("mode", "subsystem") == "subsystem" and el.get("type") == "pci":
        src = kids.get("source")  # (there is one: hostdevs.check_parse)
        a = src.find("address")
        if a is not None:
            check_host_pci_address(a, what)
    kind_check = (KIND_PARSE_CHECKS or kind_parse_checks()).get(tag)
    if kind_check is not None:
        kind_check(el, what, kids)
    addr = kids.get("address")
    if addr is not None and addr.get("type") != "pci":
        check_address(addr, what)
    if addr is not None and _usb_only(el) and addr.get("type") not in ("usb", None):
        raise PlanError("Invalid address for a USB device", _what(what), _line(addr))


#: devices whose virtio <driver> switches the parser reads after their ACPI index and
#: address (:func:`check_driver_after_address`, called by the reader once it read them)
VIRTIO_AFTER_ADDRESS = frozenset({"input", "rng", "memballoon", "vsock"})
#: devices whose <driver> the parser reads after their address (a disk's and a NIC's
#: switches: ``check_disk``, ``interfaces``)
DRIVER_AFTER_ADDRESS = frozenset({"interface", "disk"}) | VIRTIO_AFTER_ADDRESS
#: devices whose <driver> their kind's own parse check reads, in its order
DRIVER_OF_KIND = frozenset({"filesystem"})


def check_driver_after_address(el: etree._Element, what: What, kids: dict) -> None:
    """The virtio switches of a device of ``VIRTIO_AFTER_ADDRESS``, read last."""
    drv = kids.get("driver")
    if drv is not None:
        check_virtio_switches(drv, what)


def check_virtio_switches(drv: etree._Element, what: What) -> None:
    """The virtio options of a device's <driver>: each on or off."""
    if not _VIRTIO_SWITCH_NAMES.isdisjoint(drv.keys()):
        for attr in VIRTIO_DRIVER_SWITCHES:
            _word(drv, attr, ON_OFF, what)


def _check_memballoon(el: etree._Element, what: What, kids: dict) -> None:
    """A memballoon's model, its two switches and its statistics period (a C int, base 0:
    a negative one is taken, as 0), read before its address (even a model 'none''s)."""
    _word(el, "model", MEMBALLOON_MODELS, what)
    for attr in MEMBALLOON_SWITCHES:
        _word(el, attr, ON_OFF, what)
    stats = kids.get("stats")
    period = stats.get("period") if stats is not None else None
    if period is not None and c_int(period, 0) is None:
        raise _invalid(stats, "period", period, what, "integer value")


#: TABLE: the largest bus, slot and function of a host PCI address, and how libvirt says so
#: (the domain is any unsigned number)
HOST_PCI_LIMITS = (("bus", 0xFF, "bus='0x{:x}', must be <= 0xFF"),
                   ("slot", 0x1F, "slot='0x{:x}', must be <= 0x1F"),
                   ("function", 7, "function=0x{:x}, must be <= 7"))


def check_host_pci_address(a: etree._Element, what: What) -> None:
    """A host PCI address (a PCI host device's, an NVMe disk's) as libvirt's
    virPCIDeviceAddressParseXML reads it: unsigned numbers (base 0), a multifunction
    switch, and the ranges of bus, slot and function, checked only when one of domain,
    bus or slot is not 0 (0000:00:00.9 passes)."""
    _uint_attrs(a, ("domain", "bus", "slot", "function"), 0, what)
    _word(a, "multifunction", ON_OFF, what)
    n = {k: c_uint(a.get(k) or "0", 0) or 0 for k in ("domain", "bus", "slot", "function")}
    if not (n["domain"] or n["bus"] or n["slot"]):
        return
    for name, top, fmt in HOST_PCI_LIMITS:
        if n[name] > top:
            raise PlanError("Invalid PCI address " + fmt.format(n[name]), _what(what), _line(a))


#: the characters an s390 boot loadparm may have (written in upper case)
LOADPARM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789. ")


def _check_boot(boot: etree._Element, what: What) -> None:
    """A device's ``<boot>``: its order (a number, not 0), its loadparm (1 to 8 characters
    of [A-Z0-9. ], as libvirt writes it: in upper case)."""
    order = boot.get("order")
    if order is None:
        raise PlanError("Missing required attribute 'order' in element 'boot'", _what(what), _line(boot))
    nonzero_uint(boot, "order", what)
    loadparm = boot.get("loadparm")
    if loadparm is None:
        return
    upper = "".join(c.upper() if c.isascii() else c for c in loadparm)
    if not upper.strip(_C_BLANKS) or len(upper.encode()) > 8:
        raise PlanError(f"loadparm value '{upper}' must be between 1 and 8 characters", _what(what),
                        _line(boot), kind="internal")
    if not set(upper) <= LOADPARM_CHARS:
        raise PlanError(f"invalid loadparm value '{upper}', expecting chars in set of [a-zA-Z0-9.] and "
                        "blank spaces", _what(what), _line(boot), kind="internal")


def _check_chardev(el: etree._Element, what: What, kids: dict) -> None:
    ctype = el.get("type")
    if ctype is not None and ctype not in CHARDEV_TYPES:
        raise PlanError(f"unknown type presented to host for character device: {ctype}",
                        _what(what), _line(el), kind="unsupported")
    target = kids.get("target")
    if target is None and el.tag == "channel":
        raise PlanError("target type must be specified for channel device", _what(what), _line(el),
                        kind="unsupported")
    if target is None:
        return
    port = target.get("port") if el.tag != "channel" else None
    if port is not None and c_int(port, 10) is None:
        raise PlanError(f"Invalid port number: {port}", _what(what), _line(target))
    if el.tag == "parallel":
        return
    ttype = target.get("type")
    if ttype is None and el.tag == "channel":
        ttype = "(null)"  # a channel's target has no default type
    if ttype is not None and ttype not in CHARDEV_TARGET_TYPES[el.tag]:
        raise PlanError(f"unknown target type '{ttype}' specified for character device",
                        _what(what), _line(target), kind="unsupported")
    model = target.find("model")
    name = model.get("name") if model is not None else None
    if el.tag == "serial" and name and name != "none" and name not in devices.SERIAL_MODEL_TARGETS:
        raise PlanError(f"unknown target model '{name}' specified for character device",
                        _what(what), _line(model), kind="unsupported")


def _usb_only(el: etree._Element) -> bool:
    """A USB input (as written, or by default: :func:`input_bus`) or redirdev: its parser
    accepts no other address."""
    if el.tag == "redirdev":
        return True
    return el.tag == "input" and input_bus(el) == "usb"


def input_bus(el: etree._Element) -> str | None:
    """An ``<input>``'s bus: as written, else the one libvirt's parser gives it for the
    guest's arch and OS type (read from the document)."""
    bus = el.get("bus")
    if bus is not None:
        return bus
    ostype = el.getroottree().getroot().find("os/type")
    arch = (ostype.get("arch") if ostype is not None else None) or "x86_64"
    text = (ostype.text or "") if ostype is not None else ""
    return devices.default_input_bus(el.get("type"), arch, text)
