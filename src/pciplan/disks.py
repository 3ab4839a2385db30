"""What libvirt 9.0 refuses of a ``<disk>`` when it validates a domain, in its order.

A disk's checks run with the other devices' (``validate.validate_late``, disks first);
within one disk libvirt makes its generic checks first (:func:`check_generic`: the
storage chain, a LUN's source and options, the bus, an NVMe namespace, vhost-user
limits, names and media) and its QEMU driver's after them (:func:`check_qemu`:
geometry, addresses, media, sharing, I/O threads, the driver, each storage layer's
format, protocol, metadata cache, encryption and TLS host, shared memory for
vhost-user).  The
order decides which error a disk with several mistakes gets; each was checked against
the libvirt 9.0 daemon with pairs of mistakes.

``xmlio`` reads what the checks need of each disk into a :class:`DiskFacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from lxml import etree

from . import devices, parsecheck, sources
from .defaults import number, target_index
from .errors import Element, PlanError
from .records import Value

if TYPE_CHECKING:
    from .defaults import Guest
    from .domain import Device


class Storage(Value):
    """One layer of a disk's storage chain: its ``<source>``, then each ``<backingStore>``."""

    type: str | None
    #: the image format (``<driver type>``, ``<format type>`` of a backing store); None: not given
    format: str | None = None
    readonly: bool = False
    #: ``<encryption format>`` ('' when the element has none), None: no encryption
    encryption: str | None = None
    #: the encryption names a ``<cipher>``
    cipher: bool = False
    #: ``<encryption engine>`` (a disk's is QEMU's when not given; None: unset, the NVRAM
    #: store's when not given)
    engine: str | None = None
    #: a network source's protocol
    protocol: str | None = None
    #: its ``<auth>``: the type its ``<secret>`` names ('' for none), None: no ``<auth>``
    auth_secret: str | None = None
    #: its ``<host>``s: (transport, port: 0 when none)
    hosts: tuple[tuple[str, int], ...] = ()
    #: it names a TLS host (``tlsHostname``, even empty)
    tls_hostname: bool = False
    #: ``<metadata_cache><max_size>`` is set (not 0): the disk's ``<driver>``'s, a backing
    #: store's ``<format>``'s
    metadata_cache: bool = False

    def __init__(self, type, format=None, readonly=False, encryption=None, cipher=False, engine=None,
                 protocol=None, auth_secret=None, hosts=(), tls_hostname=False,
                 metadata_cache=False) -> None:
        self.type = type
        self.format = format
        self.readonly = readonly
        self.encryption = encryption
        self.cipher = cipher
        self.engine = engine
        self.protocol = protocol
        self.auth_secret = auth_secret
        self.hosts = hosts
        self.tls_hostname = tls_hostname
        self.metadata_cache = metadata_cache


def storage_layer(type_: str | None, fmt: str | None, readonly: bool, holder: etree._Element | None,
                  kids: dict | None = None, cache: etree._Element | None = None,
                  engine: str | None = "qemu") -> Storage:
    """One layer of a disk's storage chain; its ``<encryption>`` is a child of ``holder``
    (the ``<source>``) or of the disk itself (``kids``: the disk's first child of each tag);
    ``cache``: the element whose ``<metadata_cache>`` is the layer's; ``engine``: the
    encryption engine when none is named (a disk's post-parse makes it QEMU's, the NVRAM
    store's stays unset)."""
    enc = auth = None
    if holder is not None and len(holder):  # (a childless source has neither)
        enc = holder.find("encryption")
        auth = holder.find("auth")
    if kids is not None:
        if enc is None:
            enc = kids.get("encryption")
        if auth is None:
            auth = kids.get("auth")
    network = holder is not None and type_ == "network"
    protocol = holder.get("protocol") if network else None
    secret = None
    if auth is not None:
        secret_el = auth.find("secret")
        secret = (secret_el.get("type") if secret_el is not None else None) or ""
    more: dict[str, Any] = {}
    if network:
        more["tls_hostname"] = holder.get("tlsHostname") is not None
        more["hosts"] = tuple((h.get("transport") or "tcp", parsecheck.c_uint(h.get("port") or "0", 10) or 0)
                              for h in holder.iterfind("host"))
    if cache is not None and len(cache):
        size = cache.findtext("metadata_cache/max_size")
        parsed = parsecheck._c_parse(size, 10) if size else None
        more["metadata_cache"] = parsed is not None and parsed[1] > 0
    if enc is None:
        return Storage(type_, fmt, readonly, protocol=protocol, auth_secret=secret, **more)
    return Storage(type_, fmt, readonly, enc.get("format") or "", enc.find("cipher") is not None,
                   enc.get("engine") or engine, protocol, secret, **more)


class DiskFacts(Value):
    """What validation needs of a ``<disk>`` beyond ``Device``'s fields."""

    device: str = "disk"
    #: ``<driver>``'s attributes
    driver: dict[str, str]
    #: the disk element's own attributes that matter (sgio, rawio, model, snapshot)
    attrs: dict[str, str]
    #: ``<source>``'s attributes, None without a ``<source>``
    source: dict[str, str] | None = None
    #: tags of the disk's child elements, and of its ``<source>``'s
    children: frozenset[str] = frozenset()
    source_children: frozenset[str] = frozenset()
    #: text of ``<wwn>``, ``<vendor>``, ``<product>``, ``<serial>`` when given
    text: dict[str, str]
    #: attributes of ``<geometry>``, ``<blockio>`` and ``<transient>`` when given
    child_attrs: dict[str, dict[str, str]]
    #: ``<iotune>``'s limits as libvirt reads them: the first of each name, its number (not
    #: given: none), None: no ``<iotune>``
    iotune: dict[str, int] | None = None
    #: its group_name (the first, blanks and all; empty: None)
    iotune_group: str | None = None
    #: the storage chain: the disk's source first
    chain: tuple[Storage, ...] = ()
    #: the source has a storage slice (``<slices><slice type='storage'>``)
    storage_slice: bool = False

    def __init__(self, device='disk', driver=..., attrs=..., source=None, children=frozenset(), source_children=frozenset(), text=..., child_attrs=..., iotune=None, iotune_group=None, chain=(), storage_slice=False) -> None:
        self.device = device
        self.driver = {} if driver is ... else driver
        self.attrs = {} if attrs is ... else attrs
        self.source = source
        self.children = children
        self.source_children = source_children
        self.text = {} if text is ... else text
        self.child_attrs = {} if child_attrs is ... else child_attrs
        self.iotune = iotune
        self.iotune_group = iotune_group
        self.chain = chain
        self.storage_slice = storage_slice

    @property
    def readonly(self) -> bool:
        return self.chain[0].readonly if self.chain else False


#: the disk element's own attributes its checks read
CHECKED_ATTRS = frozenset({"sgio", "rawio", "model", "snapshot"})
#: disk buses whose disks sit on a controller: a 'drive' address or none
DRIVE_BUSES = frozenset({"ide", "fdc", "scsi", "sata"})
#: disk buses whose devices cannot be cdroms (nor floppies: those are on 'fdc')
EJECTLESS_BUSES = frozenset({"virtio", "sd"})
#: the buses a LUN (SCSI passthrough) may sit on
LUN_BUSES = frozenset({"scsi", "virtio"})
#: the path attribute of a local storage source, per disk type (an empty one is no source)
LOCAL_PATHS = {"file": "file", "block": "dev", "dir": "dir"}
#: the disk types that may have a startup policy: local storage, a volume (not yet resolved)
STARTUP_POLICY_TYPES = frozenset({*LOCAL_PATHS, "volume", None})
#: the source attribute libvirt names a disk by when it has no target
SOURCE_PATHS = {**LOCAL_PATHS, "network": "name"}
#: disk names a disk or LUN may have, and a floppy's
DISK_NAME_PREFIXES = ("hd", "sd", "vd", "xvd", "ubd")
FLOPPY_NAME_PREFIX = "fd"
#: the longest vendor and product strings of a SCSI disk
VENDOR_LEN = 8
PRODUCT_LEN = 16
#: the virtio-only <driver> options and how libvirt names each in its refusal
VIRTIO_OPTIONS = (("iommu", "iommu driver option"), ("ats", "ats driver option"),
                  ("packed", "packed driver option"), ("page_per_vq", "page_per_vq option"))
#: what a vhost-user disk may not have, in libvirt's order: (what it names, is it there)
VHOSTUSER_UNSUPPORTED: tuple[tuple[str, Callable[[DiskFacts], bool]], ...] = (
    ("cache", lambda f: f.driver.get("cache", "default") != "default"),
    ("error_policy", lambda f: bool(f.driver.get("error_policy") or f.driver.get("rerror_policy"))),
    ("io", lambda f: bool(f.driver.get("io"))),
    ("ioeventfd", lambda f: f.driver.get("ioeventfd") is not None),
    ("copy_on_read", lambda f: bool(f.driver.get("copy_on_read"))),
    ("discard", lambda f: bool(f.driver.get("discard"))),
    ("iothread", lambda f: bool(f.driver.get("iothread"))),
    ("detect_zeroes", lambda f: bool(f.driver.get("detect_zeroes"))),
    ("metadata_cache", lambda f: f.chain[0].metadata_cache),
    ("iotune", lambda f: _throttled(f)),
    ("backingStore", lambda f: len(f.chain) > 1),
    ("encryption", lambda f: f.chain[0].encryption is not None),
    ("readonly", lambda f: f.readonly),
    ("shareable", lambda f: "shareable" in f.children),
    ("transient", lambda f: "transient" in f.children),
    # (an empty <serial/>, <wwn/>, ... is none)
    ("serial", lambda f: bool(f.text.get("serial"))),
    ("wwn", lambda f: bool(f.text.get("wwn"))),
    ("vendor", lambda f: bool(f.text.get("vendor"))),
    ("product", lambda f: bool(f.text.get("product"))),
    ("auth", lambda f: "auth" in f.children or "auth" in f.source_children),
    # (a geometry or block size of 0 is none)
    ("geometry", lambda f: _given(f, "geometry", ("cyls", "heads", "secs")) or
     "trans" in f.child_attrs.get("geometry", {})),
    ("blockio", lambda f: _given(f, "blockio", ("logical_block_size", "physical_block_size"))),
)


def _given(f: DiskFacts, child: str, attrs: tuple[str, ...]) -> bool:
    """One of a child element's numbers is set (not 0)."""
    got = f.child_attrs.get(child)
    return got is not None and any(parsecheck.c_uint(got.get(a) or "0", 10) for a in attrs)


def _throttled(f: DiskFacts) -> bool:
    """The disk's ``<iotune>`` names a group or sets a limit (not 0)."""
    return f.iotune_group is not None or any((f.iotune or {}).values())
#: network protocols whose sources take no ``<auth>``
AUTHLESS_PROTOCOLS = frozenset({"nbd", "sheepdog", "gluster", "tftp", "vxhs", "nfs"})
#: the secret types (usages) libvirt knows, and the one a protocol's ``<auth>`` needs
SECRET_USAGES = frozenset({"none", "volume", "ceph", "iscsi", "tls", "vtpm"})
AUTH_SECRET_USAGES = {"iscsi": "iscsi", "rbd": "ceph"}
#: the <iotune> limits given as a total or split into read and write, in libvirt's order
IOTUNE_SPLIT_LIMITS = ("bytes_sec", "iops_sec", "bytes_sec_max", "iops_sec_max")  # (not the lengths)
#: the largest <iotune> limit QEMU takes (a burst's length is not checked)
IOTUNE_MAX = 1_000_000_000_000_000
#: the characters QEMU takes in a disk's serial
SERIAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. +")
#: the buses whose transient disks may share their backing image (QEMU hotplugs them)
SHARED_BACKING_BUSES = frozenset({"usb", "virtio", "scsi"})
#: the cache modes io='native' works with
NATIVE_IO_CACHES = frozenset({"none", "directsync"})
#: a disk's ``<geometry>`` numbers, and the buses whose disks cannot have one
CHS = ("cyls", "heads", "secs")
CHS_LESS_BUSES = frozenset({"usb", "sd"})
#: the buses whose disks may have a rotation rate
ROTATION_BUSES = frozenset({"scsi", "ide", "sata"})
#: image formats QEMU 7.2 cannot open as a disk, and libvirt's refusal of each
UNOPENABLE_FORMATS = {
    "cow": "'cow' storage format is not supported",
    "dir": "'directory' storage format is not directly supported by QEMU, use 'dir' disk type instead",
    "iso": "storage format 'iso' is not directly supported by QEMU, use 'raw' instead",
}


def _wwn(text: str) -> bool:
    """libvirt's WWN: 16 hex digits, optionally written with a 0x prefix (not 0X)."""
    digits = text[2:] if text.startswith("0x") else text
    return len(digits) == 16 and all(c in "0123456789abcdefABCDEF" for c in digits)


def check_generic(guest: Guest, disk: Device, f: DiskFacts) -> None:
    """libvirt's own checks of a disk (before its QEMU driver's)."""
    what = disk.describe  # (named only when refused)
    if disk.target.get("dev") is None:  # (the first thing libvirt validates of a disk)
        src = f.source or {}
        path = f"pool = '{src.get('pool')}', volume = '{src.get('volume')}'" if "pool" in src \
            else src.get(SOURCE_PATHS.get(disk.type or "file", ""))
        if path and disk.type == "network" and src.get("protocol") in sources.POOL_IMAGE_PROTOCOLS:
            path = path.partition("/")[2]  # (libvirt keeps the pool apart: the path is the image)
        elif path and disk.type == "network" and src.get("protocol") == "iscsi" and "/" not in path:
            path += "/0"  # (an IQN without a LUN is LUN 0 after libvirt's post-parse)
        raise PlanError("missing target information for device" + (f" {path}" if path else ""), what)
    dst = disk.target.get("dev", "")
    for layer in f.chain:
        if layer.type == "network" and layer.auth_secret is not None:
            _check_auth(disk, layer)
        if layer.encryption == "luks" and layer.cipher:
            raise PlanError("supplying <cipher> for domain disk definition is unnecessary", what,
                            kind="unsupported")
    if f.attrs.get("sgio") == "unfiltered":
        raise PlanError("unfiltered sgio is no longer supported", what, kind="unsupported")
    if f.device == "lun":
        _check_lun_source(disk, f)
    else:
        if "reservations" in f.source_children:
            raise PlanError("<reservations/> allowed only for lun devices", what, kind="unsupported")
        if f.attrs.get("rawio") is not None:
            raise PlanError("rawio can be used only with device='lun'", what, kind="unsupported")
        if f.attrs.get("sgio") is not None:
            raise PlanError("sgio can be used only with device='lun'", what, kind="unsupported")
    if f.iotune:
        for limit in IOTUNE_SPLIT_LIMITS:
            if f.iotune.get("total_" + limit) and (f.iotune.get("read_" + limit) or
                                                   f.iotune.get("write_" + limit)):
                raise PlanError(f"total and read/write {limit} cannot be set at the same time", what)
    a = disk.address
    if a is not None and disk.bus in DRIVE_BUSES and a.type != "drive":
        raise PlanError(f"Invalid address type '{a.type}' for the disk '{dst}' with the bus type "
                        f"'{disk.bus}'", what, kind="unsupported")
    if disk.bus != "virtio":
        if disk.model in ("virtio", "virtio-transitional", "virtio-non-transitional"):
            raise PlanError(f"disk model '{disk.model}' not supported for bus '{disk.bus}'", what,
                            kind="unsupported")
        if parsecheck.c_uint(f.driver.get("queues") or "0", 10):  # (0 is none)
            raise PlanError("queues attribute in disk driver element is only supported by virtio-blk",
                            what, kind="unsupported")
        for opt in ("event_idx", "ioeventfd"):
            if f.driver.get(opt) is not None:
                raise PlanError(f"disk {opt} mode supported only for virtio bus", what,
                                kind="unsupported")
        for opt, name in VIRTIO_OPTIONS:
            if f.driver.get(opt) is not None:
                raise PlanError(f"{name} is only supported for virtio devices", what,
                                kind="unsupported")
    if disk.type == "nvme" and sources.nvme_namespace((f.source or {}).get("namespace", "")) == 0:
        raise PlanError("NVMe namespace can't be zero", what, kind="unsupported")
    if disk.type == "vhostuser":
        _check_vhostuser(disk, f)
    sources.check_overrides(disk)
    if disk.target.get("tray") == "open" and f.device not in ("floppy", "cdrom"):
        raise PlanError("tray is only valid for cdrom and floppy", what, kind="unsupported")
    for name, limit in (("vendor", VENDOR_LEN), ("product", PRODUCT_LEN)):
        text = f.text.get(name)
        if text is None:
            continue
        if not parsecheck.printable(text):
            raise PlanError(f"disk {name} is not printable string", what)
        if len(text) > limit:
            raise PlanError(f"disk {name} is more than {limit} characters", what, kind="unsupported")
    if f.device == "floppy" and disk.bus != "fdc":
        raise PlanError(f"Invalid bus type '{disk.bus}' for floppy disk", what, kind="internal")
    if f.device != "floppy" and disk.bus == "fdc":
        raise PlanError(f"Invalid bus type '{disk.bus}' for disk", what, kind="internal")
    if disk.target.get("removable") is not None and disk.bus != "usb":
        raise PlanError("removable is only valid for usb disks", what)
    policy = (f.source or {}).get("startupPolicy")
    if policy and policy != "default":
        if disk.type not in STARTUP_POLICY_TYPES:
            raise PlanError(f"disk startupPolicy '{policy}' is not allowed for disk of '{disk.type}' "
                            "type", what)
        if f.device not in ("cdrom", "floppy") and policy == "requisite":
            raise PlanError(f"disk startupPolicy '{policy}' is allowed only for cdrom or floppy", what)
    wwn = f.text.get("wwn")
    if wwn is not None and not _wwn(wwn):
        raise PlanError(f"Malformed wwn: {wwn}", what, kind="internal")
    if f.device in ("disk", "lun") and not dst.startswith(DISK_NAME_PREFIXES):
        raise PlanError(f"Invalid harddisk device name: {dst}", what, kind="internal")
    if f.device == "floppy" and not dst.startswith(FLOPPY_NAME_PREFIX):
        raise PlanError(f"Invalid floppy device name: {dst}", what, kind="internal")
    if f.device == "disk" and _empty_source(disk, f):
        raise PlanError(f"missing source information for device {dst}", what)


def _check_lun_source(disk: Device, f: DiskFacts) -> None:
    """What a LUN's source cannot be: a network one but iSCSI, a local one but a block
    device, an image in a format but raw, a slice of its storage, encrypted."""
    what = disk.describe  # (named only when refused)
    protocol = (f.source or {}).get("protocol")
    if disk.type == "network" and protocol != "iscsi":
        raise PlanError(f"disk device='lun' is not supported for protocol='{protocol}'", what,
                        kind="unsupported")
    if disk.type not in ("block", "volume", "network"):
        raise PlanError("disk device='lun' is only valid for block type disk source", what,
                        kind="unsupported")
    layer = f.chain[0] if f.chain else Storage(disk.type)
    if layer.format not in (None, "raw"):  # (a volume's format comes from its pool)
        raise PlanError("disk device 'lun' must use 'raw' format", what, kind="unsupported")
    if f.storage_slice:
        raise PlanError("disk device 'lun' doesn't support storage slice", what, kind="unsupported")
    if layer.encryption not in (None, "default"):  # ('default' is refused by QEMU's checks)
        raise PlanError("disk device 'lun' doesn't support encryption", what, kind="unsupported")


def _check_auth(disk: Device, layer: Storage) -> None:
    """libvirt's checks of a network source's ``<auth>``: a protocol that takes one, a
    known secret type, and the one iSCSI and RBD need."""
    what = disk.describe  # (named only when refused)
    if layer.protocol in AUTHLESS_PROTOCOLS:
        raise PlanError(f"authentication is not supported for protocol '{layer.protocol}'", what,
                        kind="unsupported")
    secret = layer.auth_secret
    if secret not in SECRET_USAGES:
        raise PlanError(f"unknown secret type '{secret or '<null>'}'", what, kind="unsupported")
    wanted = AUTH_SECRET_USAGES.get(layer.protocol or "")
    if wanted is not None and secret != wanted:
        raise PlanError(f"invalid secret type '{secret}'", what, kind="unsupported")


def empty_source(disk: Device) -> bool:
    """The disk has no medium (an empty cdrom or floppy drive)."""
    return _empty_source(disk, disk.disk if disk.disk is not None else DiskFacts())


def local_path(disk: Device) -> str | None:
    """The host file, block device or folder of a local disk (None: none, or not local)."""
    return _local_path(disk, disk.disk if disk.disk is not None else DiskFacts())


def _local_path(disk: Device, f: DiskFacts) -> str | None:
    path_attr = LOCAL_PATHS.get(disk.type or "file")
    return (f.source or {}).get(path_attr) or None if path_attr is not None else None


def _empty_source(disk: Device, f: DiskFacts) -> bool:
    if (disk.type or "file") in LOCAL_PATHS:
        return _local_path(disk, f) is None
    if disk.type == "network":  # (no <source>: no protocol either)
        return (f.source or {}).get("protocol", "none") == "none"
    return False


def _check_vhostuser(disk: Device, f: DiskFacts) -> None:
    what = disk.describe  # (named only when refused)
    if disk.bus != "virtio":
        raise PlanError("vhostuser disk supports only virtio bus", what, kind="unsupported")
    if f.attrs.get("snapshot", "no") != "no":
        raise PlanError("only snapshot=no is supported with vhostuser disk", what, kind="unsupported")
    for name, present in VHOSTUSER_UNSUPPORTED:
        if present(f):
            raise PlanError(f"{name} is not supported with vhostuser disk", what, kind="unsupported")


def check_qemu(guest: Guest, disk: Device, f: DiskFacts) -> None:
    """The QEMU driver's checks of a disk (after libvirt's own)."""
    what = disk.describe  # (named only when refused)
    dst = disk.target.get("dev", "")
    a = disk.address
    drive = drive_numbers(disk) if disk.bus in DRIVE_BUSES else None
    if drive is not None:  # (the address first: written, or given by post-parse)
        _check_drive_address(guest, disk, drive)
    geometry = f.child_attrs.get("geometry")
    # (QEMU's checks of a geometry need all three numbers set, not 0)
    if geometry is not None and all(parsecheck.c_uint(geometry.get(n) or "0", 10) for n in CHS):
        if disk.bus in CHS_LESS_BUSES:
            raise PlanError(f"CHS geometry can not be set for '{disk.bus}' bus", what,
                            kind="unsupported")
        if geometry.get("trans", "default") != "default" and disk.bus != "ide":
            raise PlanError(f"CHS translation mode can only be set for 'ide' bus not '{disk.bus}'",
                            what, kind="unsupported")
    if "serial" in f.text and disk.bus == "sd":
        raise PlanError(f"Serial property not supported for drive bus '{disk.bus}'", what,
                        kind="internal")
    if disk.bus in EJECTLESS_BUSES and f.device == "cdrom":
        raise PlanError(f"disk type of '{dst}' does not support ejectable media", what, kind="unsupported")
    if f.driver.get("copy_on_read") == "on":
        if f.readonly:
            raise PlanError(f"copy_on_read is not compatible with read-only disk '{dst}'", what,
                            kind="unsupported")
        if f.device in ("cdrom", "floppy"):
            raise PlanError(f"copy_on_read is not supported with removable disk '{dst}'", what,
                            kind="unsupported")
    if "wwn" in f.text and disk.bus not in ("ide", "scsi"):
        raise PlanError("Only ide and scsi disk support wwn", what, kind="unsupported")
    if ("vendor" in f.text or "product" in f.text) and disk.bus != "scsi":
        raise PlanError("Only scsi disk supports vendor and product", what, kind="unsupported")
    if f.device == "lun":
        if disk.bus not in LUN_BUSES:
            raise PlanError(f"disk device='lun' is not supported for bus='{disk.bus}'", what,
                            kind="unsupported")
        if f.driver.get("copy_on_read") == "on":
            raise PlanError(f"copy_on_read is not compatible with 'lun' disk '{dst}'", what,
                            kind="unsupported")
        if "wwn" in f.text:
            raise PlanError("Setting wwn is not supported for lun device", what, kind="unsupported")
        if "vendor" in f.text or "product" in f.text:
            raise PlanError("Setting vendor or product is not supported for lun device", what,
                            kind="unsupported")
    if disk.bus in ("ide", "sata") and f.device == "disk" and f.readonly:
        raise PlanError(f"readonly {disk.bus} disks are not supported", what, kind="unsupported")
    if parsecheck.c_uint(disk.target.get("rotation_rate") or "0", 10):  # (0 is none)
        if disk.bus not in ROTATION_BUSES:
            raise PlanError("rotation rate is only valid for SCSI/IDE/SATA bus", what, kind="internal")
        if f.device != "disk":
            raise PlanError("rotation rate is only valid for disk device", what, kind="internal")
    if disk.bus == "usb" and "usb-storage" in guest.machine.lacks:
        raise PlanError("This QEMU doesn't support '-device usb-storage'", what, kind="unsupported")
    if disk.bus == "usb" and a is not None and a.type != "usb":
        raise PlanError("unexpected address type for usb disk", what, kind="internal")
    if f.driver.get("io") == "native" and f.driver.get("cache") not in NATIVE_IO_CACHES:
        raise PlanError("io='native' needs either no disk cache or directsync cache mode", what,
                        kind="unsupported")
    if f.device == "lun" and disk.bus == "scsi" and "serial" in f.text:
        raise PlanError("scsi-block 'lun' devices do not support the serial property", what,
                        kind="unsupported")
    serial = f.text.get("serial")
    if serial is not None and not set(serial) <= SERIAL_CHARS:
        raise PlanError(f"driver serial '{serial}' contains unsafe characters", what, kind="internal")
    if disk.bus != "virtio" and "iothread" in disk.attrs:
        raise PlanError(f"IOThreads not available for bus {disk.bus} target {dst}", what,
                        kind="unsupported")
    check_iothread(guest, disk, "Disk")
    if f.iotune is not None:
        _check_iotune(guest, disk, f)
    transient = f.child_attrs.get("transient")
    if transient is not None:
        if _empty_source(disk, f):
            raise PlanError(f"transient disk '{dst}' must not be empty", what, kind="unsupported")
        if f.readonly:
            raise PlanError(f"transient disk '{dst}' must not be read-only", what, kind="unsupported")
        if disk.type not in ("file", None):
            raise PlanError(f"transient disk supported only with 'file' type ({dst})", what,
                            kind="unsupported")
        if f.device != "disk":
            raise PlanError(f"transient disk supported only with 'disk' device ({dst})", what,
                            kind="unsupported")
        if transient.get("shareBacking") == "yes" and disk.bus not in SHARED_BACKING_BUSES:
            raise PlanError(f"disk bus '{disk.bus}' doesn't support transiend disk backing image "
                            "sharing", what, kind="unsupported")
    if "shareable" in f.children and f.chain and not f.readonly and f.chain[0].format != "raw":
        raise PlanError(f"shared access for disk '{dst}' requires use of supported storage format",
                        what, kind="unsupported")
    name = f.driver.get("name", "qemu")
    if name != "qemu":
        raise PlanError(f"unsupported driver name '{name}' for disk '{dst}'", what, kind="unsupported")
    partition = parsecheck.disk_name_partition(dst)
    if partition is None:
        raise PlanError(f"invalid disk target '{dst}'", what, kind="unsupported")
    if partition:
        raise PlanError(f"invalid disk target '{dst}', partitions can't appear in disk targets", what,
                        kind="unsupported")
    for layer in f.chain:
        check_storage(layer, what)
    if disk.type == "vhostuser" and not guest.domain.shared_memory:
        raise PlanError("'vhostuser' requires shared memory", what, kind="unsupported")


def _limits(f: DiskFacts) -> tuple[int, ...]:
    """A disk's <iotune> limits, each one (0: not set)."""
    got = f.iotune or {}
    return tuple(got.get(k, 0) for k in parsecheck.IOTUNE_ORDER)


def _group_limits(guest: Guest, f: DiskFacts) -> tuple[int, ...]:
    """A disk's <iotune> limits after libvirt's post-parse: a disk that names a group but
    sets no limit takes those of the group's first disk that sets some (libvirt's disk
    order), if any."""
    limits = _limits(f)
    if f.iotune_group is None or any(limits):
        return limits
    for other in guest.devices("disk"):
        o = other.disk
        if o is not None and o.iotune_group == f.iotune_group and any(_limits(o)):
            return _limits(o)
    return limits


def _check_iotune(guest: Guest, disk: Device, f: DiskFacts) -> None:
    """QEMU's limits on a disk's I/O throttling, and one throttling per group (a group is
    named by its exact text, blanks and all)."""
    what = disk.describe  # (named only when refused)
    limits = _group_limits(guest, f)
    group = f.iotune_group
    if group is not None and not any(limits):
        raise PlanError("group_name can be configured only together with settings", what,
                        kind="unsupported")
    if group is not None:
        for other in guest.devices("disk"):
            o = other.disk
            if other is disk or o is None or o.iotune_group != group:
                continue
            if _group_limits(guest, o) != limits:
                raise PlanError(f"different iotunes for disks {disk.target.get('dev', '')} and "
                                f"{other.target.get('dev', '')}", what, kind="unsupported")
    if any(v > IOTUNE_MAX for k, v in zip(parsecheck.IOTUNE_ORDER, limits) if not k.endswith("_length")):
        raise PlanError(f"block I/O throttle limit must be no more than {IOTUNE_MAX} using QEMU", what,
                        kind="unsupported")


#: how libvirt derives a drive address from a target name's index, per disk bus:
#: (disks per controller, disks per bus); QEMU's SCSI buses are narrow (7 units)
DRIVE_LAYOUT = {"ide": (4, 2), "sata": (6, 6), "fdc": (2, 2),
                "scsi": (devices.SCSI_NARROW_UNITS, devices.SCSI_NARROW_UNITS)}
DRIVE_FIELDS = ("controller", "bus", "target", "unit")


def drive_numbers(disk: Device) -> tuple[int, int, int, int] | None:
    """A disk's drive address (controller, bus, target, unit): the one written, or the
    one libvirt's post-parse derives from the target name ('vda' on IDE is 'hda');
    None when it has none."""
    a = disk.address
    if a is not None and a.type == "drive":
        c, b, t, u = (number(a.attrs.get(k), 0) for k in DRIVE_FIELDS)
        return c, b, t, u
    if a is None and disk.bus in DRIVE_LAYOUT:
        index = target_index(disk)
        if index < 0:
            return None
        per_controller, per_bus = DRIVE_LAYOUT[disk.bus]
        return index // per_controller, (index % per_controller) // per_bus, 0, index % per_bus
    return None


def _check_drive_address(guest: Guest, disk: Device, drive: tuple[int, int, int, int]) -> None:
    """The numbers of a disk's drive address its controller cannot have: one SCSI bus (and
    target 0 on some models), one IDE controller, one floppy controller and bus, target 0
    on IDE, floppy and SATA, SATA bus 0."""
    what = disk.describe  # (named only when refused)
    n = dict(zip(DRIVE_FIELDS, drive))
    if disk.bus == "scsi":
        check_scsi_drive_address(guest, disk, drive)
        return
    if disk.bus == "ide" and n["controller"]:
        raise PlanError("Only 1 IDE controller is supported", what, kind="internal")
    if disk.bus == "fdc":
        if n["controller"]:
            raise PlanError("Only 1 fdc controller is supported", what, kind="internal")
        if n["bus"]:
            raise PlanError("Only 1 fdc bus is supported", what, kind="internal")
        if n["target"]:
            raise PlanError("target must be 0 for controller fdc", what, kind="unsupported")
    if disk.bus == "sata" and n["bus"]:
        raise PlanError("bus must be 0 for sata controller", what, kind="unsupported")
    if disk.bus in ("sata", "ide") and n["target"]:
        raise PlanError(f"target must be 0 for {disk.bus} controller", what, kind="unsupported")


def check_scsi_drive_address(guest: Guest, dev: Device, drive: tuple[int, int, int, int]) -> None:
    """A drive address (controller, bus, target, unit) on a SCSI bus: a SCSI disk's, or any
    other device's (libvirt takes all of those for SCSI host devices): one bus; target 0 on
    the models that have one."""
    controller, bus, target, _unit = drive
    if bus:
        raise PlanError("SCSI controller only supports 1 bus", dev.describe, kind="internal")
    ctrl = guest.find_controller("scsi", controller)
    model = ctrl.model if ctrl is not None else None
    if target and model in devices.SCSI_MODELS_TARGET_0:
        raise PlanError(f"target must be 0 for controller model '{model}'", dev.describe,
                        kind="unsupported")


def check_iothread(guest: Guest, dev: Device, what: str) -> None:
    """The I/O thread a disk or controller names must be one of the domain's."""
    text = dev.attrs.get("iothread")
    if text is None:
        return
    n = number(text, 0)
    if n == 0 and what == "controller":
        return  # (a controller's 0 is none)
    if what == "controller" and dev.address is not None and dev.address.type not in ("pci", "ccw"):
        raise PlanError("virtio-scsi IOThreads only available for virtio pci and virtio ccw "
                        "controllers", dev.describe(), kind="unsupported")
    if n not in guest.domain.iothreads:
        raise PlanError(f"{what} iothread '{n}' not defined in iothreadid", dev.describe(),
                        kind="unsupported")


#: the image formats QEMU's own encryption engine works with
QEMU_ENCRYPTED_FORMATS = frozenset({"raw", "qcow2"})


def _check_encryption(layer: Storage, what: Element) -> None:
    """QEMU's checks of one layer's ``<encryption>`` (whatever the image format): the
    old qcow encryption is gone, QEMU's engine opens LUKS in raw and qcow2 images only,
    librbd's engine serves network disks only; an engine must be set."""
    if layer.encryption in ("", "default", "qcow"):
        raise PlanError("old qcow/qcow2 encryption is not supported", what, kind="unsupported")
    if layer.engine == "qemu":
        if layer.encryption == "luks" and layer.format not in QEMU_ENCRYPTED_FORMATS:
            raise PlanError("encryption is supported only with 'raw' and 'qcow2' image format", what,
                            kind="unsupported")
        if layer.encryption == "luks2":
            raise PlanError("luks2 is currently not supported by the qemu encryption engine", what,
                            kind="unsupported")
    elif layer.engine == "librbd":
        if layer.type != "network":
            raise PlanError("librbd encryption is supported only with RBD backed disks", what,
                            kind="unsupported")
    else:  # (an NVRAM store's encryption without an engine: libvirt sets none)
        raise PlanError("Unexpected enum value 0 for virStorageEncryptionEngine", what,
                        kind="internal")


def check_storage(layer: Storage, what: Element) -> None:
    """QEMU's checks of one layer of a disk's storage chain, in libvirt's order: the
    formats QEMU cannot open, FAT, the network protocols QEMU cannot use (TFTP) or uses
    with limits (NFS), the metadata cache, the encryption, the TLS host name.  (SSL
    verification, cookies, read-ahead, timeout and query are checked too, but the parser
    reads them only for the protocols that have them.)  ``what``: the disk or NVRAM store."""
    fmt = layer.format
    if fmt in UNOPENABLE_FORMATS:
        raise PlanError(UNOPENABLE_FORMATS[fmt], what, kind="unsupported")
    if layer.type == "dir":
        if fmt != "fat":
            raise PlanError("storage type 'dir' requires use of storage format 'fat'", what,
                            kind="unsupported")
        if not layer.readonly:
            raise PlanError("virtual FAT storage can't be accessed in read-write mode", what,
                            kind="unsupported")
    elif fmt == "fat" and layer.type != "volume":
        raise PlanError("storage format 'fat' is supported only with 'dir' storage type", what,
                        kind="unsupported")
    if layer.type == "network":
        _check_protocol(layer, what)
    if layer.metadata_cache and fmt != "qcow2":
        raise PlanError("metadata cache max size control is supported only with qcow2 images", what,
                        kind="unsupported")
    if layer.encryption is not None:
        _check_encryption(layer, what)
    if layer.tls_hostname and (layer.type != "network" or layer.protocol != "nbd"):
        raise PlanError("'tlsHostname' field is supported only with NBD disks", what,
                        kind="unsupported")


def _check_protocol(layer: Storage, what: Element) -> None:
    """QEMU 7.2 has no TFTP; an NFS source has one host, over TCP, on the default port."""
    if layer.protocol == "tftp":
        raise PlanError("'tftp' protocol is not supported with this QEMU binary", what,
                        kind="unsupported")
    if layer.protocol == "nfs":
        if len(layer.hosts) != 1:
            raise PlanError("'nfs' protocol requires the usage of exactly one host", what,
                            kind="unsupported")
        transport, port = layer.hosts[0]
        if transport != "tcp":
            raise PlanError("'nfs' host must use TCP protocol", what, kind="unsupported")
        if port:
            raise PlanError("port cannot be specified in 'nfs' protocol host", what,
                            kind="unsupported")
