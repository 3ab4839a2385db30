"""The data model: a domain's devices as the planner sees them.

Values only: no XML, no I/O.  ``xmlio`` builds a ``Domain`` from a document and
writes the planner's changes back; the planner fills in the fields marked
"planned" and records every field it set in ``Device.changed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from .address import PciAddress
from .connect import Connect
from .records import Record, Value

if TYPE_CHECKING:
    from .disks import DiskFacts
    from .hostdevs import HostdevFacts
    from .interfaces import NetFacts
    from .parsecheck import MemorySizes


class Zpci(Value):
    """s390x zPCI identifiers of a PCI address (``<zpci uid= fid=/>``)."""

    uid: int | None = None
    fid: int | None = None

    def __init__(self, uid=None, fid=None) -> None:
        self.uid = uid
        self.fid = fid


class Address(Value):
    """One ``<address>`` element.

    For ``type='pci'`` the PCI fields are meaningful; for every other type the
    attributes are kept verbatim in ``attrs`` (drive, usb, virtio-serial, ccw...).
    """

    type: str
    pci: PciAddress
    multifunction: str | None = None  # 'on' | 'off' | None (absent)
    zpci: Zpci | None = None
    attrs: dict[str, str]

    def __init__(self, type, pci=..., multifunction=None, zpci=None, attrs=...) -> None:
        self.type = type
        self.pci = PciAddress() if pci is ... else pci
        self.multifunction = multifunction
        self.zpci = zpci
        self.attrs = {} if attrs is ... else attrs

    @property
    def is_pci(self) -> bool:
        return self.type == "pci"

    def __str__(self) -> str:
        return str(self.pci) if self.is_pci else self.type


class Device(Record):
    """One child element of ``<devices>`` that may take part in PCI planning."""

    tag: str
    #: the ``type`` attribute of the element (interface type, disk type, hostdev type...)
    type: str | None = None
    #: the device model, wherever the element keeps it (attribute or ``<model type>``)
    model: str | None = None
    #: disk target bus / input bus
    bus: str | None = None
    #: ``<target>`` attributes (disk dev, serial/console/channel type, controller options)
    target: dict[str, str]
    #: element attributes that matter beyond the above (disk device, hostdev mode, primary video...)
    attrs: dict[str, str]
    #: hostdev ``<source><address>`` attributes, when present
    source: dict[str, str]
    address: Address | None = None
    #: where the device comes from: 'user' (in the input), or what added it:
    #: 'default' (machine default), 'implicit' (needed by another device), 'bus' (a new bus)
    origin: str = "user"
    #: 1-based position among the input's ``<devices>`` children, and its source line
    position: int = 0
    line: int | None = None
    #: xmlio's handle on the element; None for devices the planner added
    ref: Any = None
    #: hostdev of an ``<interface type='hostdev'>``: the interface it belongs to
    parent: "Device | None" = None
    #: a ``<disk>``'s storage, media and options, as its validation needs them
    disk: "DiskFacts | None" = None
    #: an ``<interface>``'s and a ``<hostdev>``'s options, as their validation needs them
    net: "NetFacts | None" = None
    hostdev: "HostdevFacts | None" = None
    #: what validation needs of other kinds of device (``video.VideoFacts``, ...), read by xmlio
    facts: Any = None
    # ---- planned -------------------------------------------------------------
    #: what the device needs from its bus (computed by the planner)
    connect: Connect = Connect.NONE
    #: names of the fields the planner set or changed; xmlio writes exactly these
    changed: set[str]

    def __init__(self, tag, type=None, model=None, bus=None, target=..., attrs=..., source=..., address=None, origin='user', position=0, line=None, ref=None, parent=None, disk=None, net=None, hostdev=None, facts=None, connect=Connect.NONE, changed=...) -> None:
        self.tag = tag
        self.type = type
        self.model = model
        self.bus = bus
        self.target = {} if target is ... else target
        self.attrs = {} if attrs is ... else attrs
        self.source = {} if source is ... else source
        self.address = address
        self.origin = origin
        self.position = position
        self.line = line
        self.ref = ref
        self.parent = parent
        self.disk = disk
        self.net = net
        self.hostdev = hostdev
        self.facts = facts
        self.connect = connect
        self.changed = set() if changed is ... else changed

    # -- helpers -------------------------------------------------------------
    @property
    def pci_address(self) -> PciAddress | None:
        a = self.address
        return a.pci if a is not None and a.is_pci else None

    def set(self, name: str, value: Any) -> None:
        """Set a field and remember that the planner changed it."""
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.changed.add(name)

    def describe(self) -> str:
        """Short description naming the element, for messages and views."""
        return describe(self)


class Controller(Device):
    """A ``<controller>``: ``type`` is the controller type (pci, usb, scsi...)."""

    index: int | None = None
    model_name: str | None = None

    def __init__(self, *args, index: int | None = None, model_name: str | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.index = index
        self.model_name = model_name


class Domain(Value):
    """What the planner needs of a ``<domain>``."""

    arch: str
    machine: str
    virt_type: str = "qemu"
    #: ``machine=`` is not given: QEMU's post-parse takes the emulator's preferred one
    machine_omitted: bool = False
    devices: list[Device]
    #: NUMA cells declared in <cpu><numa>
    numa_cells: int = 0
    #: all guest memory is shared (``<memoryBacking><access mode='shared'>`` or every NUMA
    #: cell's ``memAccess``), as virtiofs needs
    shared_memory: bool = False
    #: the QEMU binary libvirt runs (``<emulator>`` or the arch's default)
    emulator: str | None = None
    #: the elements of ``<pm>`` (suspend-to-mem, suspend-to-disk)
    pm: frozenset[str] = frozenset()
    #: ``<maxMemory>`` is given (memory devices need it)
    max_memory: bool = False
    #: NUMA cells', ``<memory>``, memory devices' and ``<maxMemory>`` sizes
    memory: MemorySizes | None = None
    #: ``<features>``: each feature's attributes (and the names of its child elements)
    features: dict[str, dict[str, str]]
    #: ``<features><tcg><tb-cache>`` in bytes (None: not given)
    tb_cache: int | None = None
    #: ``<vcpu>``: the most vCPUs the guest may have
    max_vcpus: int = 1
    #: ``<cpu><topology>``: sockets x dies x cores x threads (None: no topology)
    topology_vcpus: int | None = None
    #: ``<loader secure='yes'>``, and ``<features><smm>`` on
    secure_boot: bool = False
    smm: bool = False
    #: ``<os firmware=...>``: libvirt picks the firmware (and turns SMM on when it needs it)
    firmware_auto: bool = False
    #: ``<os><loader>``'s attributes (and its path as 'path'), None without one
    loader: dict[str, str] | None = None
    #: the I/O thread ids disks and controllers may name
    iothreads: frozenset[int] = frozenset()
    #: number of <graphics> elements
    graphics: int = 0
    #: one of them is SPICE (which spicevmc channels, redirdevs and smartcards need)
    spice: bool = False
    #: what validation needs of each of them (``graphics.GraphicsFacts``), in order
    graphics_facts: list[Any]
    #: UEFI firmware (``<os firmware='efi'>`` or a pflash ``<loader>``) and ``<features><acpi/>``
    uefi: bool = False
    acpi: bool = False
    #: ``<features><ioapic driver=...>`` (None when not given)
    ioapic: str | None = None
    #: the settings outside ``<devices>`` later checks need (``guestconf.GuestFacts``)
    conf: Any = None
    #: ``<os>`` has ``<boot dev=...>`` elements
    os_boot: bool = False
    #: devices libvirt 9.0 drops from the definition (unknown to it)
    removed: list[Device]
    #: libvirt's own order of the elements of one kind, where it differs from the
    #: document and matters (USB controllers sharing an index, videos)
    list_order: dict[str, list[Device]]

    def __init__(self, arch, machine, virt_type='qemu', machine_omitted=False, devices=..., numa_cells=0, shared_memory=False, emulator=None, pm=frozenset(), max_memory=False, memory=None, features=..., tb_cache=None, max_vcpus=1, topology_vcpus=None, secure_boot=False, smm=False, firmware_auto=False, loader=None, iothreads=frozenset(), graphics=0, spice=False, graphics_facts=..., uefi=False, acpi=False, ioapic=None, conf=None, os_boot=False, removed=..., list_order=...) -> None:
        self.arch = arch
        self.machine = machine
        self.virt_type = virt_type
        self.machine_omitted = machine_omitted
        self.devices = [] if devices is ... else devices
        self.numa_cells = numa_cells
        self.shared_memory = shared_memory
        self.emulator = emulator
        self.pm = pm
        self.max_memory = max_memory
        self.memory = memory
        self.features = {} if features is ... else features
        self.tb_cache = tb_cache
        self.max_vcpus = max_vcpus
        self.topology_vcpus = topology_vcpus
        self.secure_boot = secure_boot
        self.smm = smm
        self.firmware_auto = firmware_auto
        self.loader = loader
        self.iothreads = iothreads
        self.graphics = graphics
        self.spice = spice
        self.graphics_facts = [] if graphics_facts is ... else graphics_facts
        self.uefi = uefi
        self.acpi = acpi
        self.ioapic = ioapic
        self.conf = conf
        self.os_boot = os_boot
        self.removed = [] if removed is ... else removed
        self.list_order = {} if list_order is ... else list_order

    def of(self, *tags: str) -> Iterator[Device]:
        return (d for d in self.devices if d.tag in tags)

    @property
    def controllers(self) -> list[Controller]:
        return [d for d in self.devices if isinstance(d, Controller)]


def _mac(dev: Device) -> str | None:
    return dev.attrs.get("mac")


def describe(dev: Device) -> str:
    """``controller type='pci' index='3'``, ``disk 'vda'``, ``interface #2 (virtio)``..."""
    if isinstance(dev, Controller):
        idx = "" if dev.index is None else f" index='{dev.index}'"
        model = f" model='{dev.model}'" if dev.model and dev.type == "pci" else ""
        return f"controller type='{dev.type}'{idx}{model}"
    if dev.tag == "disk" and dev.target.get("dev"):
        return f"disk '{dev.target['dev']}'"
    if dev.tag == "hostdev" and dev.source and dev.type in ("pci", None):
        s = dev.source
        try:
            src = "%04x:%02x:%02x.%x" % tuple(int(s.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function"))
        except ValueError:
            src = ",".join(f"{k}={v}" for k, v in s.items())
        return f"hostdev {src}"
    what = dev.tag
    bits = [b for b in (dev.model, _mac(dev)) if b]
    n = f" #{dev.position}" if dev.position else " (added)"
    return f"{what}{n}" + (f" ({', '.join(bits)})" if bits else "")
