"""TABLE: what each kind of device needs from the PCI bus.

Every device is classified as one of

* ``PCI``    a conventional PCI endpoint,
* ``PCIE``   a PCI Express endpoint (conventional PCI on machines without a PCIe root),
* ``VIRTIO`` a virtio device: PCI Express where the machine has a PCIe root
  (QEMU 7.2 can disable legacy virtio), conventional PCI elsewhere,
* ``None``   not a PCI device at all,

from the tables below, keyed by the element and its model/bus/type.  Where
libvirt's decision depends on the host (a host PCI device that exists and is
conventional PCI) the caller passes a ``HostProbe``.
"""

from __future__ import annotations

from typing import Callable, Optional

from .domain import Controller, Device
from .machines import ARM, PPC64, RISCV, S390, X86

#: libvirt's device iteration order (virDomainDeviceInfoIterate): it decides
#: which of two clashing user addresses is reported, and multifunction marking
ITERATION_ORDER = ("disk", "interface", "sound", "hostdev", "video", "controller", "smartcard",
                   "serial", "parallel", "channel", "console", "input", "filesystem", "watchdog",
                   "memballoon", "rng", "nvram", "hub", "shmem", "tpm", "panic", "memory",
                   "redirdev", "iommu", "vsock")
#: the <driver> options of an <iommu> (only model intel takes them; xmlio keeps those
#: given in ``Device.attrs``)
IOMMU_DRIVER_OPTIONS = ("intremap", "caching_mode", "eim", "iotlb", "aw_bits")
#: the console target types of a console that stands for the first serial port (none
#: written is one)
SERIAL_CONSOLE_TARGETS = (None, "serial")

PCI = "pci"
PCIE = "pcie"
VIRTIO = "virtio"

# ---- controllers -----------------------------------------------------------
USB_MODELS: dict[str, str | None] = {
    "qemu-xhci": PCIE, "nec-xhci": PCIE,
    "piix3-uhci": PCI, "piix4-uhci": PCI, "vt82c686b-uhci": PCI, "ehci": PCI,
    "ich9-ehci1": PCI, "ich9-uhci1": PCI, "ich9-uhci2": PCI, "ich9-uhci3": PCI,
    "pci-ohci": PCI, "default": PCI,
    "none": None, "qusb1": None, "qusb2": None,
}
#: the USB2 companion controllers: the function each takes in the shared slot
USB2_COMPANION_FUNCTION: dict[str, int] = {
    "ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2,
}
USB2_MASTER = "ich9-ehci1"
#: USB controller models without ports of their own (the UHCI companions share their
#: EHCI's; none has none): they take no index in libvirt's USB address set
USB_WITHOUT_PORTS = frozenset({"ich9-uhci1", "ich9-uhci2", "ich9-uhci3", "none"})
SCSI_MODELS: dict[str, str | None] = {
    "virtio-scsi": VIRTIO, "virtio-non-transitional": VIRTIO, "virtio-transitional": PCI,
    "lsilogic": PCI, "lsisas1068": PCI, "lsisas1078": PCI, "buslogic": PCI, "vmpvscsi": PCI,
    "dc390": PCI, "am53c974": PCI, "auto": PCI, "ibmvscsi": PCI,
    "ncr53c90": None,
}
#: ports of the USB controllers that have their own bus (the ICH9 UHCI companions share
#: their EHCI's); an XHCI takes a ``ports`` attribute instead.  ``None``: a controller left
#: at libvirt's default model (s390x has no default), which libvirt counts as a PIIX3 UHCI
USB_PORTS = {None: 2, "piix3-uhci": 2, "piix4-uhci": 2, "vt82c686b-uhci": 2, "pci-ohci": 3, "ehci": 6,
             "ich9-ehci1": 6, "nec-xhci": 4, "qemu-xhci": 4}
#: the NIC models that are virtio-net (what vhost-user and vDPA interfaces need)
VIRTIO_NIC_MODELS = frozenset({"virtio", "virtio-transitional", "virtio-non-transitional"})
#: SCSI controller models libvirt 9.0 knows and Debian's QEMU 7.2 is built without
SCSI_MODELS_QEMU_LACKS = frozenset({"buslogic"})
#: the guest arches whose QEMU has a PS/2 controller (i8042)
PS2_ARCHES = frozenset({"x86_64", "i686", "ppc64", "ppc64le", "ppc", "alpha"})


def default_input_bus(itype: str | None, arch: str, os_type: str = "hvm") -> str | None:
    """The bus libvirt's parser gives an ``<input>`` without one (None: no bus): on an
    HVM guest a mouse or keyboard is PS/2 on x86, anything virtio on s390, a passthrough
    one virtio, an evdev one none, the others USB."""
    if os_type in ("xen", "xenpvh"):
        return "xen"
    if os_type != "hvm":
        return "ps2"  # (the enum's first value: refused later as no QEMU guest)
    if itype in ("mouse", "keyboard") and arch in ("x86_64", "i686"):
        return "ps2"
    if arch in ("s390x", "s390") or itype == "passthrough":
        return "virtio"
    if itype == "evdev":
        return None
    return "usb"
#: SCSI controller models libvirt checks the emulator for: (QEMU device, libvirt's name of it)
SCSI_MODEL_DEVICES = {"lsilogic": ("lsi53c895a", "the LSI 53C895A SCSI controller"),
                      "lsisas1068": ("mptsas1068", "the LSI SAS1068 (MPT Fusion) controller"),
                      "lsisas1078": ("megasas", "the LSI SAS1078 (MegaRAID) controller"),
                      "vmpvscsi": ("pvscsi", "the pvscsi (VMware paravirtual SCSI) controller"),
                      "virtio-scsi": ("virtio-scsi-pci", "virtio scsi controller"),
                      "virtio-transitional": ("virtio-scsi-pci", "virtio scsi controller"),
                      "virtio-non-transitional": ("virtio-scsi-pci", "virtio scsi controller")}
#: <driver> options of a controller only virtio-scsi takes, in the order libvirt checks them
VIRTIO_SCSI_DRIVER_OPTIONS = ("queues", "cmd_per_lun", "max_sectors", "ioeventfd", "iothread")
#: TABLE: the controllers libvirt's post-parse lets have an I/O thread: it compares the model's
#: number with the virtio-scsi models' whatever the controller's type, so these USB and PCI
#: models (numbered alike) pass too and are refused by QEMU's validation only
IOTHREAD_POST_PARSE_MODELS = frozenset({
    ("scsi", "virtio-scsi"), ("scsi", "virtio-transitional"), ("scsi", "virtio-non-transitional"),
    ("usb", "ich9-uhci3"), ("usb", "pci-ohci"), ("usb", "nec-xhci"),
    ("pci", "pcie-switch-upstream-port"), ("pci", "pci-expander-bus"), ("pci", "pcie-expander-bus")})
#: an <input model>: libvirt's virtio ones (all but the default)
VIRTIO_INPUT_MODELS = frozenset({"virtio", "virtio-transitional", "virtio-non-transitional"})
VIRTIO_SCSI_MODELS = frozenset({"virtio-scsi", "virtio-transitional", "virtio-non-transitional"})
#: the XHCI controllers: their ``ports`` attribute sets their port count, up to
#: ``XHCI_MAX_PORTS``
XHCI_MODELS = frozenset({"nec-xhci", "qemu-xhci"})
XHCI_MAX_PORTS = 15
#: USB controller models libvirt 9.0 knows and its QEMU driver refuses
USB_MODELS_QEMU_LACKS = frozenset({"qusb1", "qusb2"})
#: units of a SCSI controller libvirt will not give a device: the highest unit the model
#: has and a unit the controller itself takes (QEMU's limits, as libvirt 9.0 keeps them)
SCSI_MAX_UNIT = {"virtio-scsi": 16383, "virtio-transitional": 16383, "virtio-non-transitional": 16383,
                 "ibmvscsi": 31, "lsisas1068": 1, "lsisas1078": 255,
                 "ncr53c90": 6, "dc390": 6, "am53c974": 6}
SCSI_RESERVED_UNIT = {"ibmvscsi": 7, "lsilogic": 7, "vmpvscsi": 7, "buslogic": 7}
#: units per SCSI bus in libvirt's QEMU driver (a narrow bus: 0-6)
SCSI_NARROW_UNITS = 7
#: SCSI controller models whose disks must all be at target 0
SCSI_MODELS_TARGET_0 = frozenset({"lsilogic", "auto"})
VIRTIO_SERIAL_MODELS: dict[str, str | None] = {
    "virtio": VIRTIO, "virtio-non-transitional": VIRTIO, "virtio-transitional": PCI,
}
CONTROLLER_TYPES: dict[str, str | None] = {
    "sata": PCI, "ide": PCI, "fdc": None, "ccid": None, "xenbus": None, "isa": None,
}

# ---- endpoints -------------------------------------------------------------
#: NIC models libvirt 9.0 knows; any other model string is treated as PCI Express
#: (libvirt spells SMSC's smc91c111 'scm91c111': the right spelling is an unknown model)
NIC_MODELS: dict[str, str | None] = {
    "virtio": VIRTIO, "virtio-non-transitional": VIRTIO, "virtio-transitional": PCI,
    "e1000e": PCIE, "usb-net": None, "spapr-vlan": None,
    "netfront": PCI, "rtl8139": PCI, "e1000": PCI, "lan9118": PCI, "scm91c111": PCI,
    "vlance": PCI, "vmxnet": PCI, "vmxnet2": PCI, "vmxnet3": PCI, "Am79C970A": PCI,
    "Am79C973": PCI, "82540EM": PCI, "82545EM": PCI, "82543GC": PCI,
}
NIC_UNKNOWN_MODEL = PCIE

#: TABLE: the NIC devices of QEMU 7.2 (``-device help``, "Network devices", with their
#: aliases) by guest arch, as libvirt 9.0 names them by the model as written (all models
#: but virtio's): (PCI devices, devices of another bus)
#: (the virtio NICs QEMU has for PCI alone; its alias 'virtio-net' is the bus's own)
QEMU_PCI_ONLY_VIRTIO_NICS = frozenset({"virtio-net-pci", "virtio-net-pci-transitional",
                                       "virtio-net-pci-non-transitional"})
_VIRTIO_NET_PCI = QEMU_PCI_ONLY_VIRTIO_NICS | {"virtio-net"}
_QEMU_PCI_NICS = _VIRTIO_NET_PCI | {
    "e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82550", "i82551",
    "i82557a", "i82557b", "i82557c", "i82558a", "i82558b", "i82559a", "i82559b", "i82559c",
    "i82559er", "i82562", "i82801", "ne2k_pci", "pcnet", "pvrdma", "rocker", "rtl8139", "tulip",
    "vmxnet3"}
#: QEMU's aliases of NIC devices (qdev's alias table): one whose device the emulator lacks
#: is refused naming both ("'e1000-82540em' (alias 'e1000') is not a valid device model name")
QEMU_NIC_ALIASES = {"e1000-82540em": "e1000"}
QEMU_NICS_BY_ARCH: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    **{a: (_QEMU_PCI_NICS, frozenset({"ne2k_isa", "virtio-net-device"})) for a in X86},
    **{a: (_QEMU_PCI_NICS | {"sungem"}, frozenset({"ne2k_isa", "virtio-net-device"}))
       for a in PPC64},
    **{a: (_QEMU_PCI_NICS, frozenset({"virtio-net-device"})) for a in ARM | RISCV},
    # (s390x's QEMU has virtio NICs alone; its CCW and virtio-bus ones are left to QEMU)
    **{a: (_VIRTIO_NET_PCI, frozenset({"virtio-net-ccw", "virtio-net-device"})) for a in S390},
}


def qemu_nic_problem(nic: Device, arch: str) -> str | None:
    """Why QEMU 7.2 takes no device for a NIC's model, which libvirt 9.0 passes on as the
    device's name when it does not name the device itself (all models but virtio's):
    "unknown" (no such device), "not-pci" (a device of another bus), or None."""
    known = QEMU_NICS_BY_ARCH.get(arch)
    model = nic.model
    if known is None or model is None or model in VIRTIO_NIC_MODELS or nic.type == "hostdev":
        return None
    pci, other = known
    if model in other:
        return "not-pci"
    return None if model in pci else "unknown"
#: libvirt matches a NIC model against the ones it knows without regard to case, and
#: writes the known spelling back ('E1000' -> 'e1000', 'am79c973' -> 'Am79C973')
NIC_MODEL_SPELLING = {m.lower(): m for m in NIC_MODELS}
SOUND_MODELS: dict[str, str | None] = {
    "ich6": PCI, "ich9": PCI, "ac97": PCI, "es1370": PCI,
    "sb16": None, "pcspk": None, "usb": None, "ich7": None,
}
#: (element, model) of devices libvirt 9.0 still wants a PCI address for, with no connect
#: flags (QEMU has no such PCI device): it cannot place one ("Cannot automatically add a new
#: PCI bus for a device with connect flags 00"); an ich7 placed by hand is refused later
#: ("not supported by qemu")
WANTED_WITHOUT_FLAGS = frozenset({("sound", "ich7"), ("interface", "usb-net"), ("memballoon", "xen"),
                                  ("video", "gop"),  # (a primary one gets the chipset's video slot)
                                  ("video", "default"),  # (an emulator without cirrus and VGA)
                                  # controllers by type: these are no PCI device either
                                  ("controller", "xenbus"), ("controller", "isa"),
                                  # filesystems by driver type: only 9p and virtiofs are
                                  # (on s390x every filesystem is on CCW, and refused later)
                                  ("filesystem", "loop"), ("filesystem", "nbd"),
                                  ("filesystem", "ploop")})
VIDEO_MODELS: dict[str, str | None] = {
    "virtio": VIRTIO, "bochs": PCIE, "none": None, "ramfb": None,
    "vga": PCI, "cirrus": PCI, "vmvga": PCI, "qxl": PCI, "xen": PCI, "vbox": PCI,
    "parallels": PCI, "gop": None, "default": None,
}
#: devices whose only PCI-relevant knob is "virtio, virtio-transitional or none"
#: video models that may also be a secondary video device
SECONDARY_VIDEO_MODELS = frozenset({"qxl", "virtio"})
VIRTIO_MODEL_CLASS: dict[str, str | None] = {
    "virtio": VIRTIO, "virtio-non-transitional": VIRTIO, "virtio-transitional": PCI,
}
WATCHDOG_MODELS: dict[str, str | None] = {"i6300esb": PCI}
SHMEM_MODELS: dict[str, str | None] = {"ivshmem": PCI, "ivshmem-plain": PCI, "ivshmem-doorbell": PCI}
IOMMU_MODELS: dict[str, str | None] = {"virtio": VIRTIO}
MEMORY_MODELS: dict[str, str | None] = {"virtio-mem": VIRTIO, "virtio-pmem": VIRTIO}
#: the filesystem drivers QEMU has a PCI device for (virtio-9p, vhost-user-fs)
FS_PCI_DRIVERS = frozenset({None, "default", "path", "handle", "virtiofs"})

#: Answers "is the host PCI device at this address conventional PCI?" (True),
#: PCI Express (False), or unknown (None: libvirt then assumes PCI Express).
HostProbe = Callable[[dict[str, str]], Optional[bool]]


def wanted_without_flags(dev: Device) -> bool:
    kind = dev.type if isinstance(dev, Controller) else \
        dev.attrs.get("driver") if dev.tag == "filesystem" else dev.model
    return (dev.tag, kind) in WANTED_WITHOUT_FLAGS


def classify(dev: Device, host_is_conventional: HostProbe | None = None) -> str | None:
    """PCI, PCIE, VIRTIO or None for one device (controllers of type pci excluded)."""
    tag = dev.tag
    model = dev.model
    if isinstance(dev, Controller):
        t = dev.type
        if t == "usb":
            return USB_MODELS.get(model or "default", PCI)
        if t == "scsi":
            return SCSI_MODELS.get(model or "auto", PCI)
        if t == "virtio-serial":
            return VIRTIO_SERIAL_MODELS.get(model or "virtio", VIRTIO)
        return CONTROLLER_TYPES.get(t or "", None)
    if tag == "interface":
        if dev.type == "hostdev":
            # a host device in disguise: placed with the hostdevs
            src = dev.source
            if src.get("type", "pci") != "pci":
                return None
            return _hostdev_pci(dev, host_is_conventional)
        if model is None:
            return NIC_MODELS["rtl8139"]
        return NIC_MODELS.get(model, NIC_UNKNOWN_MODEL)
    if tag == "disk":
        if dev.bus != "virtio":
            return None
        return PCI if model == "virtio-transitional" else VIRTIO
    if tag == "sound":
        return SOUND_MODELS.get(model or "", PCI)
    if tag == "video":
        return VIDEO_MODELS.get(model or "", PCI)
    if tag in ("memballoon", "rng", "vsock"):
        if tag == "memballoon" and model == "none":
            return None
        return VIRTIO_MODEL_CLASS.get(model or "virtio")
    if tag == "input":
        if dev.bus != "virtio":
            return None
        return PCI if model == "virtio-transitional" else VIRTIO
    if tag == "filesystem":
        driver = dev.attrs.get("driver")
        if driver not in FS_PCI_DRIVERS:
            return None
        return PCI if model == "virtio-transitional" and driver != "virtiofs" else VIRTIO
    if tag == "watchdog":
        return WATCHDOG_MODELS.get(model or "")
    if tag == "shmem":
        return SHMEM_MODELS.get(model or "ivshmem-plain", PCI)
    if tag == "serial":
        return PCI if dev.target.get("type") == "pci-serial" else None
    if tag == "iommu":
        return IOMMU_MODELS.get(model or "")
    if tag == "memory":
        return MEMORY_MODELS.get(model or "")
    if tag == "hostdev":
        return _hostdev(dev, host_is_conventional)
    return None


def _hostdev(dev: Device, host_is_conventional: HostProbe | None) -> str | None:
    if dev.attrs.get("mode", "subsys") != "subsys":
        return None
    kind = dev.type
    if kind == "mdev":
        return PCIE if dev.model == "vfio-pci" else None
    if kind == "scsi_host":
        return PCI if dev.model == "virtio-transitional" else VIRTIO
    if kind != "pci":
        return None
    return _hostdev_pci(dev, host_is_conventional)


def _hostdev_pci(dev: Device, host_is_conventional: HostProbe | None) -> str:
    if dev.pci_address is not None and not dev.pci_address.is_empty:
        return PCIE  # the user placed it: trust them
    if host_is_conventional is not None and host_is_conventional(dev.source):
        return PCI
    return PCIE


def is_virtio(dev: Device) -> bool:
    """Devices that libvirt may switch to the virtio-mmio transport on ARM/RISC-V boards."""
    tag = dev.tag
    if tag == "disk":
        return dev.bus == "virtio"
    if tag == "interface":
        return (dev.model or "") in VIRTIO_MODEL_CLASS and dev.type != "hostdev"
    if tag == "video":
        return dev.model == "virtio"
    if tag == "input":
        return dev.bus == "virtio"
    if isinstance(dev, Controller):
        if dev.type == "virtio-serial":
            return True
        return dev.type == "scsi"  # libvirt moves every address-less SCSI controller
    if tag == "memballoon":
        return dev.model != "none"  # (libvirt: "all memballoon devices ... are virtio": xen too)
    if tag == "rng":
        return (dev.model or "virtio") in VIRTIO_MODEL_CLASS
    if tag == "hostdev":
        return dev.type == "scsi_host"
    if tag == "memory":
        return dev.model in MEMORY_MODELS
    return False


# ---- serial ports -------------------------------------------------------------
#: TABLE: a serial port's target model and the target type it belongs to
SERIAL_MODEL_TARGETS = {
    "isa-serial": "isa-serial", "usb-serial": "usb-serial", "pci-serial": "pci-serial",
    "spapr-vty": "spapr-vio-serial", "pl011": "system-serial", "16550a": "system-serial",
    "sclpconsole": "sclp-serial", "sclplmconsole": "sclp-serial", "isa-debugcon": "isa-debug",
}
#: the serial target type of a machine family, when none is given (libvirt's post-parse;
#: it reads 'isa-serial' as none, for the old XML that wrote it everywhere)
SERIAL_TARGET_DEFAULTS = {"pseries": "spapr-vio-serial", "arm-virt": "system-serial",
                          "riscv-virt": "system-serial", "s390-ccw": "sclp-serial"}
#: TABLE: the model a serial target type gets when none is given, per machine family
#: ('' for any machine)
SERIAL_TARGET_MODELS = {
    ("isa-serial", ""): "isa-serial", ("usb-serial", ""): "usb-serial",
    ("pci-serial", ""): "pci-serial", ("spapr-vio-serial", ""): "spapr-vty",
    ("system-serial", "arm-virt"): "pl011", ("system-serial", "riscv-virt"): "16550a",
    ("sclp-serial", ""): "sclpconsole", ("isa-debug", ""): "isa-debugcon",
}
#: TABLE: the machine families a serial target model exists on (the others: any)
SERIAL_MODEL_MACHINES = {
    "pl011": frozenset({"arm-virt"}), "16550a": frozenset({"riscv-virt"}),
    "spapr-vty": frozenset({"pseries"}), "sclpconsole": frozenset({"s390-ccw"}),
    "sclplmconsole": frozenset({"s390-ccw"}),
}
#: serial target types that take no address
SERIAL_TARGETS_WITHOUT_ADDRESS = frozenset({"system-serial", "sclp-serial"})


def serial_target_type(dev: Device, x86: bool, family: str) -> str | None:
    """The target type libvirt gives a ``<serial>`` (None: the machine has no default)."""
    ttype = dev.target.get("type")
    if ttype == "isa-serial" and not x86:
        ttype = None
    if ttype is None:
        ttype = "isa-serial" if x86 else SERIAL_TARGET_DEFAULTS.get(family)
    return ttype

